//! The hull heatmap shader (shaders/hull_heatmap.wgsl), rendered offscreen on a real wgpu
//! device (Mesa's lavapipe in CI): its pixels at known barycentric points against the colour
//! map of the piecewise-linear confidence field, contour lines where the field crosses a level,
//! and nothing drawn outside the triangle.

#![cfg(feature = "app")]

use blindspot::app::heatmap::{
    HeatmapFrame, PlaneToPixel, fit_corners, headless_device, render_offscreen,
};
use blindspot::figures::{Colormap, lattice_field};

const SIZE: u32 = 400;

fn frame(
    n: usize,
    conf: impl Fn(usize, usize) -> f32,
    contours: Vec<f32>,
) -> (HeatmapFrame, PlaneToPixel, [[f64; 2]; 2]) {
    let p1 = [1.0, 0.0];
    let p2 = [0.35, 0.8];
    let (corners_ndc, map) = fit_corners(p1, p2, SIZE as f32, SIZE as f32, 0.05);
    let mut confidences = Vec::new();
    for i in 0..=n {
        for j in 0..=n - i {
            confidences.push(conf(i, j));
        }
    }
    (
        HeatmapFrame {
            n,
            confidences,
            corners_ndc,
            contours,
            colormap: Colormap::Viridis,
        },
        map,
        [p1, p2],
    )
}

/// The weights (w1, w2) of the centre of pixel (x, y).
fn weights_at(map: &PlaneToPixel, [p1, p2]: [[f64; 2]; 2], x: u32, y: u32) -> (f64, f64) {
    let px = (f64::from(x) + 0.5 - f64::from(map.origin[0])) / f64::from(map.scale);
    let py = (f64::from(map.origin[1]) - (f64::from(y) + 0.5)) / f64::from(map.scale);
    let det = p1[0] * p2[1] - p1[1] * p2[0];
    (
        (px * p2[1] - py * p2[0]) / det,
        (p1[0] * py - p1[1] * px) / det,
    )
}

fn pixel_of(map: &PlaneToPixel, [p1, p2]: [[f64; 2]; 2], w1: f64, w2: f64) -> (u32, u32) {
    let [x, y] = map.apply([w1 * p1[0] + w2 * p2[0], w1 * p1[1] + w2 * p2[1]]);
    (x as u32, y as u32)
}

fn level(c: f32) -> usize {
    ((c.clamp(0.0, 1.0) * 100.0) as usize).min(99)
}

/// The pixel shows the colour of the field's level there, or of a neighbouring level (the GPU
/// and the CPU may round a value on a level edge differently).
fn assert_colour(got: [u8; 4], c: f32, at: &str) {
    let ok = [level(c).saturating_sub(1), level(c), (level(c) + 1).min(99)]
        .iter()
        .any(|&k| {
            let e = Colormap::Viridis.levels()[k];
            (0..3).all(|ch| (i32::from(got[ch]) - i32::from(e[ch])).abs() <= 1)
        });
    assert!(
        ok,
        "{at}: conf {c}, pixel {got:?}, expected {:?}",
        Colormap::Viridis.colour(c)
    );
    assert_eq!(got[3], 255, "{at}: inside pixels are opaque");
}

#[test]
fn pixels_follow_the_colour_map_of_the_interpolated_confidence() {
    let (device, queue) = headless_device().expect("a wgpu adapter (CI installs Mesa's lavapipe)");
    // A field that is not linear, so the interpolation inside each small triangle matters.
    let n = 10;
    let conf = |i: usize, j: usize| {
        let (a, b) = (i as f32 / n as f32, j as f32 / n as f32);
        (0.95 - 0.9 * a * b * 3.0 - 0.4 * b * b + 0.2 * a).clamp(0.0, 1.0)
    };
    let (f, map, plane) = frame(n, conf, Vec::new());
    let image = render_offscreen(&device, &queue, &f, SIZE, SIZE, [0, 0, 0, 0]).unwrap();
    let mut checked = 0;
    for (w1, w2) in [
        (0.0, 0.0),
        (0.21, 0.33),
        (0.52, 0.11),
        (0.08, 0.63),
        (0.34, 0.36),
        (0.71, 0.17),
        (0.05, 0.05),
        (0.45, 0.45),
    ] {
        let (x, y) = pixel_of(&map, plane, w1, w2);
        // Points on the border: step one pixel inside.
        let (x, y) = if (w1, w2) == (0.0, 0.0) {
            (x + 2, y - 2)
        } else {
            (x, y)
        };
        let (a, b) = weights_at(&map, plane, x, y);
        assert!(
            a >= 0.0 && b >= 0.0 && a + b <= 1.0,
            "({w1}, {w2}) is inside"
        );
        let c = lattice_field(n, &f.confidences, a * n as f64, b * n as f64);
        assert_colour(image.get_pixel(x, y).0, c, &format!("w = ({w1}, {w2})"));
        checked += 1;
    }
    assert_eq!(checked, 8);
    // Every pixel whose centre lies in the triangle, a few pixels away from its edges.
    let mut inside = 0;
    for y in (0..SIZE).step_by(7) {
        for x in (0..SIZE).step_by(7) {
            let (a, b) = weights_at(&map, plane, x, y);
            let margin = 0.02;
            if a > margin && b > margin && a + b < 1.0 - margin {
                let c = lattice_field(n, &f.confidences, a * n as f64, b * n as f64);
                assert_colour(image.get_pixel(x, y).0, c, &format!("pixel ({x}, {y})"));
                inside += 1;
            } else if a < -margin || b < -margin || a + b > 1.0 + margin {
                assert_eq!(
                    image.get_pixel(x, y).0,
                    [0, 0, 0, 0],
                    "outside at ({x}, {y})"
                );
            }
        }
    }
    assert!(inside > 500, "only {inside} pixels checked");
}

#[test]
fn contour_lines_darken_the_field_only_where_it_crosses_the_level() {
    let (device, queue) = headless_device().expect("a wgpu adapter (CI installs Mesa's lavapipe)");
    // conf = w1 (linear), so the 0.5 contour is the line w1 = 0.5.
    let n = 10;
    let (f, map, plane) = frame(n, |i, _| i as f32 / n as f32, vec![0.5]);
    let image = render_offscreen(&device, &queue, &f, SIZE, SIZE, [0, 0, 0, 0]).unwrap();
    let (x, y) = pixel_of(&map, plane, 0.5, 0.2);
    let on = image.get_pixel(x, y).0;
    let plain = Colormap::Viridis.colour(0.5);
    let luma = |p: [u8; 4]| 0.3 * f32::from(p[0]) + 0.59 * f32::from(p[1]) + 0.11 * f32::from(p[2]);
    assert!(
        luma(on) < 0.5 * luma([plain[0], plain[1], plain[2], 255]),
        "the contour at 0.5 is dark: {on:?} vs field colour {plain:?}"
    );
    // Far from the line the colour map shows through untouched.
    for w1 in [0.2, 0.8] {
        let (x, y) = pixel_of(&map, plane, w1, 0.1);
        let (a, b) = weights_at(&map, plane, x, y);
        let c = lattice_field(n, &f.confidences, a * n as f64, b * n as f64);
        assert_colour(image.get_pixel(x, y).0, c, &format!("w1 = {w1}"));
    }
}

#[test]
fn a_lattice_of_the_wrong_length_and_silly_sizes_are_refused() {
    let (device, queue) = headless_device().expect("a wgpu adapter (CI installs Mesa's lavapipe)");
    let (mut f, _, _) = frame(4, |_, _| 0.5, Vec::new());
    assert!(render_offscreen(&device, &queue, &f, 8, 8, [0; 4]).is_err());
    f.confidences.pop();
    assert!(render_offscreen(&device, &queue, &f, SIZE, SIZE, [0; 4]).is_err());
}
