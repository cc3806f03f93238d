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
