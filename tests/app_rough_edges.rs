//! Rough edges a new user hit (issue #13): the exported hull figure at n = 40, export file
//! names, the checkpoint dialog with no portal, the model panel's path box after a pick from
//! the Recent list, and the status bar of a paused job.

#![cfg(feature = "app")]

use blindspot::figures::{Colormap, HullFigureData, hull_heatmap};
use image::RgbImage;

fn hull(n: usize) -> HullFigureData {
    let mut confidences = Vec::new();
    for i in 0..=n {
        for j in 0..=n - i {
            confidences.push(((i + 2 * j) % 7) as f32 / 7.0);
        }
    }
    HullFigureData {
        n,
        confidences,
        p1: [1.0, 0.0],
        p2: [0.4, 0.9],
        degenerate: false,
        corners: [
            RgbImage::new(32, 32),
            RgbImage::new(32, 32),
            RgbImage::new(32, 32),
        ],
        corner_labels: ["source".into(), "x* → star".into(), "x* → square".into()],
        contour_levels: vec![0.5],
        title: "p(circle) over the hull".into(),
        colormap: Colormap::Viridis,
    }
}

/// The lattice dots are the figure's only circles: a white fill and a dark rim per point.
fn lattice_dots(svg: &str) -> usize {
    svg.matches("<circle").count() / 2
}

#[test]
fn hull_figure_dots_the_lattice_only_when_it_is_coarse() {
    let coarse = hull_heatmap(&hull(10)).svg_string().unwrap();
    assert_eq!(lattice_dots(&coarse), 66);
    let fine = hull_heatmap(&hull(40)).svg_string().unwrap();
    assert_eq!(lattice_dots(&fine), 0);
}

#[test]
fn hull_figure_says_what_rho_and_theta_are() {
    let svg = hull_heatmap(&hull(10)).svg_string().unwrap();
    for line in [
        "ρ = 0.98: upper side / lower side at the source",
        "θ = 66°: the angle at the source (true geometry)",
    ] {
        assert!(svg.contains(line), "no `{line}` in the caption");
    }
}

mod export_names {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use blindspot::app::export::{export_stem, name_part, reserve_stem, timestamp};

    /// 2026-12-06 06:49:06 UTC.
    fn when() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_539_746)
    }

    #[test]
    fn parts_are_file_name_safe() {
        assert_eq!(name_part("demo standard"), "demo-standard");
        assert_eq!(name_part("/data/my model.v2/../x"), "data-my-model-v2-x");
        assert_eq!(name_part("x* → star"), "x-star");
        assert_eq!(name_part("a_b:c\\d"), "a-b-c-d");
        assert_eq!(name_part("star+square"), "star+square");
        assert_eq!(name_part("→ ✓ ."), "unnamed");
        assert_eq!(name_part(""), "unnamed");
        assert!(name_part(&"long".repeat(30)).len() <= 40);
    }

    #[test]
    fn stems_read_what_pair_model_and_time() {
        assert_eq!(timestamp(when()), "2026-12-06_064906Z");
        assert_eq!(
            export_stem(
                "path-strip",
                Some(("circle", "star")),
                "demo_standard",
                when()
            ),
            "path-strip_circle-to-star_demo-standard_2026-12-06_064906Z"
        );
        assert_eq!(
            export_stem("grid", None, "resnet20", when()),
            "grid_resnet20_2026-12-06_064906Z"
        );
    }

    #[test]
    fn a_taken_name_gets_a_number_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let stem = "hull-n40_circle-to-star+square_m_2026-12-06_064906Z";
        assert_eq!(reserve_stem(d, stem, &["png", "svg"]).unwrap(), stem);
        // The name is claimed at once: a second export in the same second gets `-2`.
        assert!(d.join(format!("{stem}.png")).is_file());
        assert_eq!(
            reserve_stem(d, stem, &["png", "svg"]).unwrap(),
            format!("{stem}-2")
        );
        // Either file of a pair taken makes the whole name taken.
        std::fs::write(d.join(format!("{stem}-3.svg")), b"mine").unwrap();
        assert_eq!(
            reserve_stem(d, stem, &["png", "svg"]).unwrap(),
            format!("{stem}-4")
        );
        assert_eq!(
            std::fs::read(d.join(format!("{stem}-3.svg"))).unwrap(),
            b"mine"
        );
        assert!(
            !d.join(format!("{stem}-3.png")).exists(),
            "a half claim was left"
        );
        // Folders (no extensions) the same way.
        assert_eq!(reserve_stem(d, "run_x", &[]).unwrap(), "run_x");
        assert!(d.join("run_x").is_dir());
        assert_eq!(reserve_stem(d, "run_x", &[]).unwrap(), "run_x-2");
    }
}
