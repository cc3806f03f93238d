//! Figures from synthetic data: sizes, formats, colours at known pixels, atomic writes.
//!
//! Set `BLINDSPOT_FIGURE_EXAMPLES=1` to also write the six example figures (PNG at scale 2 and
//! SVG) to `docs/examples/` for looking at them.

use std::path::{Path, PathBuf};

use blindspot::figures::{
    Figure, FigureError, GridCell, GridFigureData, HullFigureData, ProfileCurve, StepPoint,
    StripFrame, WidthFigureData, confidence_plot, hull_heatmap, interpolation_profile, pairs_grid,
    path_strip, viridis, width_plot,
};
use image::{Rgb, RgbImage};

/// Small deterministic noise, so the synthetic images look like images and not flat fills.
fn noise(seed: u32, x: u32, y: u32) -> f32 {
    let mut h = seed
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(x.wrapping_mul(0x85EB_CA6B))
        .wrapping_add(y.wrapping_mul(0xC2B2_AE35));
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    (h & 0xffff) as f32 / 65535.0 - 0.5
}

/// A 32×32 "object" image: a coloured blob on a gradient background.
fn object(kind: usize) -> RgbImage {
    let palette = [
        ([200.0, 60.0, 40.0], [90.0, 140.0, 200.0]),
        ([40.0, 150.0, 60.0], [230.0, 220.0, 170.0]),
        ([230.0, 200.0, 40.0], [40.0, 40.0, 90.0]),
        ([120.0, 60.0, 160.0], [180.0, 220.0, 180.0]),
        ([30.0, 30.0, 30.0], [240.0, 160.0, 120.0]),
    ];
    let (fg, bg) = palette[kind % palette.len()];
    let (cx, cy) = (
        10.0 + 4.0 * (kind % 3) as f32,
        12.0 + 3.0 * (kind % 2) as f32,
    );
    RgbImage::from_fn(32, 32, |x, y| {
        let d = ((x as f32 - cx).powi(2) / 1.4 + (y as f32 - cy).powi(2)).sqrt();
        let inside = (1.0 - (d - 8.0) / 2.0).clamp(0.0, 1.0);
        let shade = 0.75 + 0.25 * (y as f32 / 31.0);
        Rgb(std::array::from_fn(|c| {
            let v = inside * fg[c]
                + (1.0 - inside) * bg[c] * shade
                + 30.0 * noise(kind as u32 * 3 + c as u32, x, y);
            v.clamp(0.0, 255.0) as u8
        }))
    })
}

/// `a` with a faint ghost of `b` and structured perturbation mixed in: an LST-like iterate.
fn blend(a: &RgbImage, b: &RgbImage, t: f32, seed: u32) -> RgbImage {
    RgbImage::from_fn(a.width(), a.height(), |x, y| {
        let (pa, pb) = (a.get_pixel(x, y), b.get_pixel(x, y));
        Rgb(std::array::from_fn(|c| {
            let v = (1.0 - t) * pa[c] as f32
                + t * pb[c] as f32
                + 60.0 * t.sqrt() * noise(seed + c as u32, x / 2, y / 2);
            v.clamp(0.0, 255.0) as u8
        }))
    })
}

fn strip_figure() -> Figure {
    let (src, tgt) = (object(0), object(1));
    let mut frames = vec![StripFrame {
        image: src.clone(),
        source_confidence: 0.97,
        target_confidence: 0.01,
        caption: "source".into(),
    }];
    for k in 1..=6 {
        let t = k as f32 / 7.0;
        frames.push(StripFrame {
            image: blend(&src, &tgt, t * 0.9, k),
            source_confidence: 0.97 - 0.012 * k as f32,
            target_confidence: 0.01 + 0.004 * k as f32,
            caption: format!("step {}", k * 40),
        });
    }
    frames.push(StripFrame {
        image: blend(&src, &tgt, 0.92, 99),
        source_confidence: 0.89,
        target_confidence: 0.04,
        caption: "x*".into(),
    });
    path_strip(&frames, &tgt, "cat → frog, resnet20")
}

fn step_points() -> Vec<StepPoint> {
    (0..=200)
        .map(|s| {
            let t = s as f32 / 200.0;
            let accepted = !(s % 17 == 5 || (120..126).contains(&s));
            StepPoint {
                step: s,
                source_confidence: if accepted {
                    0.97 - 0.08 * t + 0.01 * noise(1, s as u32, 0)
                } else {
                    0.80 - 0.05 * t
                },
                target_confidence: 0.01 + 0.05 * t + 0.01 * noise(2, s as u32, 0).abs(),
                l2_normalized: 0.32 * (-3.0 * t).exp() + 0.01,
                linf: 0.9 * (-2.0 * t).exp() + 0.03,
                accepted,
            }
        })
        .collect()
}

fn hull_data(n: usize, conf: impl Fn(usize, usize) -> f32) -> HullFigureData {
    let mut confidences = Vec::new();
    for i in 0..=n {
        for j in 0..=n - i {
            confidences.push(conf(i, j));
        }
    }
    HullFigureData {
        n,
        confidences,
        p1: [1.0, 0.0],
        p2: [0.35, 0.85],
        degenerate: false,
        corners: [
            object(0),
            blend(&object(0), &object(1), 0.9, 5),
            blend(&object(0), &object(2), 0.9, 6),
        ],
        corner_labels: ["source".into(), "x1 (→ frog)".into(), "x2 (→ truck)".into()],
        contour_levels: vec![0.5, 0.8],
        title: "cat: hull of two LST outputs, resnet20".into(),
        colormap: blindspot::figures::Colormap::Viridis,
    }
}

fn hull_example() -> HullFigureData {
    hull_data(10, |i, j| {
        let (a, b) = (i as f32 / 10.0, j as f32 / 10.0);
        // High on the edges (the LST paths), a dip inside the hull.
        (0.95 - 1.6 * a * b - 0.1 * (a + b) + 0.03 * noise(9, i as u32, j as u32)).clamp(0.0, 1.0)
    })
}

fn width_example() -> WidthFigureData {
    let radii = vec![5.0, 10.0, 15.0, 20.0, 25.0, 30.0];
    let logs = 24;
    let mut q05 = Vec::new();
    let mut q95 = Vec::new();
    let mut skipped = Vec::new();
    for k in 0..logs {
        let skip = (9..12).contains(&k) || k == 19;
        let c0 = 0.95 - 0.01 * k as f32;
        let col = |spread: f32| -> Vec<f32> {
            if skip {
                return vec![0.0; radii.len() + 1];
            }
            std::iter::once(c0)
                .chain(
                    radii
                        .iter()
                        .map(|r| (c0 - spread * r / 30.0).clamp(0.0, 1.0)),
                )
                .collect()
        };
        q05.push(col(0.2 + 0.6 * k as f32 / logs as f32));
        q95.push(col(0.05 + 0.1 * k as f32 / logs as f32));
        skipped.push(skip);
    }
    WidthFigureData {
        logged_steps: (0..logs).map(|k| k * 10).collect(),
        radii,
        q05,
        q95,
        skipped,
        title: "path width, cat → frog, resnet20".into(),
    }
}

fn grid_example(k: usize) -> GridFigureData {
    let names = blindspot::models::classes::CIFAR10;
    let class_names: Vec<String> = (0..k).map(|i| names[i % names.len()].to_string()).collect();
    let cells = (0..k)
        .map(|i| {
            (0..k)
                .map(|j| {
                    if i == 2 && j == 0 && k > 3 {
                        return None;
                    }
                    let image = if i == j {
                        object(j)
                    } else {
                        blend(&object(j), &object(i), 0.85, (i * k + j) as u32)
                    };
                    Some(GridCell {
                        image,
                        source_confidence: if i == j { 0.98 } else { 0.9 - 0.02 * i as f32 },
                    })
                })
                .collect()
        })
        .collect();
    GridFigureData {
        k,
        class_names,
        cells,
        title: "all pairs, resnet20 (row: target, column: source)".into(),
        diagonal: "unmodified source",
    }
}

fn profile_curves() -> Vec<ProfileCurve> {
    let t: Vec<f32> = (0..=20).map(|k| k as f32 / 20.0).collect();
    let mut curves = Vec::new();
    for (k, name) in ["frog", "truck", "ship"].iter().enumerate() {
        curves.push(ProfileCurve {
            label: format!("→ x* ({name})"),
            t: t.clone(),
            confidence: t
                .iter()
                .map(|&t| 0.97 - 0.05 * (k as f32 + 1.0) * (std::f32::consts::PI * t).sin())
                .collect(),
            dashed: false,
        });
    }
    for (k, name) in ["frog", "truck", "ship"].iter().enumerate() {
        curves.push(ProfileCurve {
            label: format!("→ target ({name})"),
            t: t.clone(),
            confidence: t
                .iter()
                .map(|&t| 0.97 / (1.0 + (12.0 * (t - 0.4 - 0.08 * k as f32)).exp()))
                .collect(),
            dashed: true,
        });
    }
    curves
}

fn all_figures() -> Vec<(&'static str, Figure, &'static str)> {
    vec![
        ("path_strip", strip_figure(), "cat → frog, resnet20"),
        (
            "confidence_plot",
            confidence_plot(
                &step_points(),
                "cat → frog, resnet20: confidence along the path",
            ),
            "confidence along the path",
        ),
        (
            "hull_heatmap",
            hull_heatmap(&hull_example()),
            "hull of two LST outputs",
        ),
        (
            "width_plot",
            width_plot(&width_example()),
            "path width, cat → frog",
        ),
        (
            "pairs_grid",
            pairs_grid(&grid_example(5)),
            "all pairs, resnet20",
        ),
        (
            "interpolation_profile",
            interpolation_profile(&profile_curves(), "cat: linear interpolation profile"),
            "linear interpolation profile",
        ),
    ]
}

#[test]
fn every_figure_renders_png_at_scale_and_svg_with_its_title() {
    for (name, fig, title) in all_figures() {
        let (w, h) = fig.size();
        assert!(w >= 300 && h >= 150, "{name}: base size {w}×{h} too small");
        for scale in [1.0f32, 2.0] {
            let png = fig.png_bytes(scale).unwrap();
            assert!(!png.is_empty());
            let img = image::load_from_memory(&png).unwrap();
            assert_eq!(
                (img.width(), img.height()),
                (
                    (w as f32 * scale).round() as u32,
                    (h as f32 * scale).round() as u32
                ),
                "{name} at scale {scale}"
            );
            assert_eq!(fig.png_size(scale), (img.width(), img.height()));
        }
        let svg = fig.svg_string().unwrap();
        assert!(
            svg.starts_with("<svg"),
            "{name}: {}",
            &svg[..40.min(svg.len())]
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{name}");
        assert!(svg.contains(title), "{name}: title missing from SVG");
        assert!(
            !svg.contains("BLINDSPOTIMAGE"),
            "{name}: an image marker was left in the SVG"
        );
    }
}

#[test]
fn svg_embeds_frames_as_pixelated_png_data() {
    let svg = strip_figure().svg_string().unwrap();
    // 8 frames and the target.
    assert_eq!(svg.matches("<image ").count(), 9);
    assert!(svg.contains("xlink:href=\"data:image/png;base64,"));
    assert!(svg.contains("image-rendering:pixelated"));
    assert!(svg.contains("xmlns:xlink=\"http://www.w3.org/1999/xlink\""));
}

#[test]
fn strip_frames_are_nearest_neighbour_blocks() {
    // A checkerboard frame must come out as exact 3×3 blocks at scale 1 (96-unit box, 32 px).
    let checker = RgbImage::from_fn(32, 32, |x, y| {
        if (x + y) % 2 == 0 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let frames = vec![StripFrame {
        image: checker.clone(),
        source_confidence: 0.5,
        target_confidence: 0.5,
        caption: "source".into(),
    }];
    let fig = path_strip(&frames, &checker, "t");
    let png = image::load_from_memory(&fig.png_bytes(1.0).unwrap())
        .unwrap()
        .to_rgb8();
    // Find the first pure red pixel: the top-left block of the first frame.
    let (x0, y0) = (0..png.height())
        .flat_map(|y| (0..png.width()).map(move |x| (x, y)))
        .find(|&(x, y)| *png.get_pixel(x, y) == Rgb([255, 0, 0]))
        .unwrap();
    for dy in 0..12 {
        for dx in 0..12 {
            let want = checker.get_pixel(dx / 3, dy / 3);
            assert_eq!(png.get_pixel(x0 + dx, y0 + dy), want, "({dx},{dy})");
        }
    }
}

#[test]
fn viridis_endpoints() {
    assert_eq!(viridis(0.0), [0x44, 0x01, 0x54]);
    assert_eq!(viridis(1.0), [0xfd, 0xe7, 0x25]);
}

fn pixel_at(png: &image::RgbImage, (x, y): (f64, f64)) -> [u8; 3] {
    png.get_pixel(x.floor() as u32, y.floor() as u32).0
}

fn assert_close(got: [u8; 3], want: [u8; 3], tol: u8, what: &str) {
    for c in 0..3 {
        assert!(
            got[c].abs_diff(want[c]) <= tol,
            "{what}: got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn hull_with_constant_confidence_has_its_colour_at_the_centroid() {
    for c in [0.0f32, 0.37, 0.8, 1.0] {
        let mut h = hull_data(10, |_, _| c);
        h.contour_levels.clear();
        let fig = hull_heatmap(&h);
        for scale in [1.0f32, 3.0] {
            let png = image::load_from_memory(&fig.png_bytes(scale).unwrap())
                .unwrap()
                .to_rgb8();
            let centroid = [(h.p1[0] + h.p2[0]) / 3.0, (h.p1[1] + h.p2[1]) / 3.0];
            let at = fig.hull_plane_to_pixel(centroid, scale).unwrap();
            assert_close(
                pixel_at(&png, at),
                viridis(c),
                2,
                &format!("c = {c}, scale {scale}"),
            );
        }
    }
}

#[test]
fn hull_colour_at_lattice_points_follows_the_confidences() {
    let n = 10;
    // Linear in i: constant along the direction of x2, so a sample nudged along P2 (off the
    // dot that marks the lattice point) has the lattice point's confidence.
    // Values sit mid-level (x.xx5), so sub-pixel placement cannot tip them into the next of
    // the 100 colour levels.
    let conf = |i: usize| 0.055 + 0.09 * i as f32;
    let mut h = hull_data(n, |i, _| conf(i));
    h.contour_levels.clear();
    let fig = hull_heatmap(&h);
    let scale = 2.0;
    let png = image::load_from_memory(&fig.png_bytes(scale).unwrap())
        .unwrap()
        .to_rgb8();
    // Points on the triangle's edges are under its outline; sample the others.
    for i in 1..n {
        for j in 0..n - i {
            let (a, b) = (i as f32 / n as f32, (j as f32 + 0.45) / n as f32);
            let p = [a * h.p1[0] + b * h.p2[0], a * h.p1[1] + b * h.p2[1]];
            let at = fig.hull_plane_to_pixel(p, scale).unwrap();
            assert_close(
                pixel_at(&png, at),
                viridis(conf(i)),
                4,
                &format!("lattice ({i},{j})"),
            );
        }
    }
}

#[test]
fn degenerate_hull_says_so() {
    let mut h = hull_example();
    h.degenerate = true;
    h.p1 = [1.0, 0.0];
    h.p2 = [0.0, 1.0];
    let svg = hull_heatmap(&h).svg_string().unwrap();
    assert!(svg.contains("degenerate geometry"));
    assert!(!hull_example().degenerate);
    assert!(
        !hull_heatmap(&hull_example())
            .svg_string()
            .unwrap()
            .contains("degenerate geometry")
    );
}

#[test]
fn inconsistent_data_is_an_error_not_a_panic() {
    let mut h = hull_example();
    h.confidences.pop();
    assert!(matches!(
        hull_heatmap(&h).png_bytes(1.0),
        Err(FigureError::InvalidData(_))
    ));
    let mut w = width_example();
    w.q95[3].pop();
    assert!(matches!(
        width_plot(&w).svg_string(),
        Err(FigureError::InvalidData(_))
    ));
    let mut g = grid_example(3);
    g.cells[1].pop();
    assert!(matches!(
        pairs_grid(&g).png_bytes(1.0),
        Err(FigureError::InvalidData(_))
    ));
    assert!(matches!(
        strip_figure().png_bytes(0.0),
        Err(FigureError::InvalidScale(_))
    ));
    assert!(matches!(
        strip_figure().png_bytes(f32::NAN),
        Err(FigureError::InvalidScale(_))
    ));
}

#[test]
fn large_grids_and_big_images_render() {
    let mut g = grid_example(10);
    // One ImageNet-sized image: shrunk into its cell, not clipped.
    g.cells[0][1] = Some(GridCell {
        image: RgbImage::from_pixel(224, 224, Rgb([10, 200, 30])),
        source_confidence: 0.5,
    });
    let fig = pairs_grid(&g);
    let (w, _) = fig.size();
    assert!(
        w <= 1100,
        "a 10×10 grid should fit a double column, got {w}"
    );
    image::load_from_memory(&fig.png_bytes(1.5).unwrap()).unwrap();
    fig.svg_string().unwrap();
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("blindspot-figures-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn writes_are_atomic_and_leave_no_temp_files() {
    let dir = temp_dir("atomic");
    let fig = strip_figure();
    let png = dir.join("strip.png");
    let svg = dir.join("strip.svg");
    fig.write_png(&png, 2.0).unwrap();
    fig.write_svg(&svg).unwrap();
    // Overwriting goes through the same rename.
    fig.write_png(&png, 1.0).unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["strip.png", "strip.svg"], "{names:?}");
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), fig.png_size(1.0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writing_into_a_missing_directory_names_the_path() {
    let path = std::env::temp_dir()
        .join("blindspot-no-such-dir-xyz")
        .join("fig.png");
    let err = strip_figure().write_png(&path, 1.0).unwrap_err();
    assert!(matches!(err, FigureError::Write { .. }));
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let err = strip_figure().write_svg(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn writing_below_a_regular_file_names_the_path() {
    // Fails for every user, root included: the "directory" is a file.
    let dir = temp_dir("notadir");
    let file = dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let path = file.join("fig.png");
    let err = strip_figure().write_png(&path, 1.0).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "only the plain file should be there");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn writing_into_a_read_only_directory_names_the_path_and_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("readonly");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let path = dir.join("fig.svg");
    let result = strip_figure().write_svg(&path);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if std::fs::metadata(&dir).is_ok() && result.is_ok() {
        // Running as root: permissions do not stop writes, so there is nothing to test.
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(left.is_empty(), "temp file left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn example_figures() {
    let out = match std::env::var_os("BLINDSPOT_FIGURE_EXAMPLES") {
        Some(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples"),
        None => temp_dir("examples"),
    };
    std::fs::create_dir_all(&out).unwrap();
    for (name, fig, _) in all_figures() {
        fig.write_png(&out.join(format!("{name}.png")), 2.0)
            .unwrap();
        fig.write_svg(&out.join(format!("{name}.svg"))).unwrap();
    }
    let mut h = hull_example();
    h.degenerate = true;
    h.p2 = [0.0, 1.0];
    hull_heatmap(&h)
        .write_png(&out.join("hull_degenerate.png"), 2.0)
        .unwrap();
    pairs_grid(&grid_example(10))
        .write_png(&out.join("pairs_grid_10.png"), 1.0)
        .unwrap();
}
