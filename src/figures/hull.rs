//! Triangular hull heatmap (§1.7, §1.9), drawn in true geometry.
//!
//! The fill is rasterised here, per output pixel: the pixel centre's barycentric position in
//! the lattice picks one small triangle, the confidence is interpolated linearly inside it and
//! only then colour-mapped (interpolating colours instead would invent hues viridis does not
//! have). Axes, contours, dots and text stay vector in SVG; the fill is an embedded raster.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Canvas, TextStyleU, measure};
use super::colormap::{Colormap, VIRIDIS_LEVELS, level_start};
use super::style::{self, ALERT, DARK, FRAME, MID, pt};
use super::{FigureError, HullFigureData};

/// Single-column width (3.3 in at 144 units per inch).
const WIDTH: f64 = 480.0;
const MARGIN: f64 = 12.0;
/// Thumbnail box: 2× a 32-pixel CIFAR image.
const THUMB: f64 = 64.0;
/// Gap between a vertex and its thumbnail block.
const THUMB_PAD: f64 = 8.0;
/// Gap between a thumbnail and its label.
const LABEL_GAP: f64 = 4.0;
/// Room on the right for the colour bar, its tick labels and its title.
const BAR_AREA: f64 = 96.0;
const BAR_W: f64 = 14.0;
/// Tallest the triangle panel may get, so a needle-thin triangle cannot make a page-high figure.
const MAX_PANEL_H: f64 = 500.0;
/// Shortest panel, so the colour bar stays readable for a flat triangle.
const MIN_PANEL_H: f64 = 240.0;
const DOT_R: f64 = 2.2;
/// Finest lattice whose points are drawn as dots. At n = 10 the 66 dots show where the
/// confidences were measured; at n = 40 the 861 dots would cover the fill they explain.
const MAX_DOTTED_N: usize = 10;

/// Number of lattice points for resolution n.
fn points(n: usize) -> usize {
    (n + 1) * (n + 2) / 2
}

/// Index of lattice point (i, j) in the i-major order of `HullFigureData::confidences`.
fn index(n: usize, i: usize, j: usize) -> usize {
    // Rows 0..i hold (n+1) + n + … + (n+2-i) points.
    i * (n + 1) - i * i.saturating_sub(1) / 2 + j
}

/// The plotted positions actually used: the caller's, unless they cannot span a triangle
/// (degenerate or not finite), in which case the right isosceles layout of §1.9.
fn positions(h: &HullFigureData) -> ([f64; 2], [f64; 2]) {
    let p1 = [h.p1[0] as f64, h.p1[1] as f64];
    let p2 = [h.p2[0] as f64, h.p2[1] as f64];
    let det = p1[0] * p2[1] - p1[1] * p2[0];
    let ok = p1.iter().chain(&p2).all(|v| v.is_finite())
        && det.abs() > 1e-9 * (p1[0].hypot(p1[1]) * p2[0].hypot(p2[1])).max(1e-300);
    if ok {
        (p1, p2)
    } else {
        ([1.0, 0.0], [0.0, 1.0])
    }
}

/// Where everything goes, in units. Shared by `size`, `draw` and the pixel lookup.
pub(crate) struct Layout {
    pub w: f64,
    pub h: f64,
    /// Units per plane unit.
    s: f64,
    /// Unit position of the plane origin (the source).
    ox: f64,
    oy: f64,
    p1: [f64; 2],
    p2: [f64; 2],
    title_size: f64,
    subtitle_y: f64,
    panel: (f64, f64, f64, f64),
    /// Per corner: thumbnail box top-left, label anchor, whether the label sits above.
    thumbs: [(f64, f64, f64, f64, bool); 3],
    label_size: f64,
}

/// One item whose extent along an axis is `s·a + [lo, hi]`.
struct Extent {
    a: f64,
    lo: f64,
    hi: f64,
}

fn span(items: &[Extent], s: f64) -> (f64, f64) {
    let lo = items
        .iter()
        .map(|e| s * e.a + e.lo)
        .fold(f64::INFINITY, f64::min);
    let hi = items
        .iter()
        .map(|e| s * e.a + e.hi)
        .fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// Largest scale at which `items` fit in `room`: the span is convex in s, so bisect its upper
/// crossing.
fn fit(items: &[Extent], room: f64) -> f64 {
    let width = |s: f64| {
        let (lo, hi) = span(items, s);
        hi - lo
    };
    let (mut lo, mut hi) = (0.0, 1.0e5);
    if width(lo) > room {
        // Thumbnails alone overflow; keep a visible triangle and accept the overflow.
        return 40.0;
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if width(mid) <= room {
            lo = mid
        } else {
            hi = mid
        }
    }
    lo
}

impl Layout {
    pub(crate) fn new(h: &HullFigureData) -> Self {
        let (p1, p2) = positions(h);
        let verts = [[0.0, 0.0], p1, p2];
        let title_size = style::fit_size(&h.title, style::TITLE_PT, WIDTH - 2.0 * MARGIN, true);
        let sub_size = pt(style::SMALL_PT);
        let subtitle_y = MARGIN + title_size + 2.0;
        // True geometry takes two subtitle lines (ρ and θ, each with what it is), the fallback one.
        let lines = if h.degenerate { 1.0 } else { 2.0 };
        let top = subtitle_y + lines * (sub_size + 2.0) + 8.0;
        let label_size = pt(style::TICK_PT);

        // Thumbnail blocks (thumbnail plus label) sit straight above the top vertex (x2, which
        // §1.9 always puts at y ≥ 0) and straight below the two base vertices, so they never
        // cover the triangle and spend the figure's flexible height rather than its fixed width.
        let top_vertex = if p2[1] >= p1[1] { 2 } else { 1 };
        let mut blocks = Vec::new();
        for (k, v) in verts.iter().enumerate() {
            let label_w = measure(&h.corner_labels[k], label_size, false).0;
            let (hx, hy) = (
                THUMB.max(label_w) / 2.0,
                (THUMB + LABEL_GAP + label_size) / 2.0,
            );
            let above = k == top_vertex;
            let dy = if above {
                -(hy + THUMB_PAD)
            } else {
                hy + THUMB_PAD
            };
            blocks.push((v, 0.0, dy, hx, hy, above));
        }
        let mut xs: Vec<Extent> = verts
            .iter()
            .map(|v| Extent {
                a: v[0],
                lo: 0.0,
                hi: 0.0,
            })
            .collect();
        let mut ys: Vec<Extent> = verts
            .iter()
            .map(|v| Extent {
                a: -v[1],
                lo: 0.0,
                hi: 0.0,
            })
            .collect();
        for &(v, cx, cy, hx, hy, _) in &blocks {
            xs.push(Extent {
                a: v[0],
                lo: cx - hx,
                hi: cx + hx,
            });
            ys.push(Extent {
                a: -v[1],
                lo: cy - hy,
                hi: cy + hy,
            });
        }
        let panel_w = WIDTH - BAR_AREA - 2.0 * MARGIN;
        let s = fit(&xs, panel_w).min(fit(&ys, MAX_PANEL_H));
        let (x_lo, x_hi) = span(&xs, s);
        let (y_lo, y_hi) = span(&ys, s);
        let panel_h = (y_hi - y_lo).max(MIN_PANEL_H);
        let ox = MARGIN + (panel_w - (x_hi - x_lo)) / 2.0 - x_lo;
        let oy = top + (panel_h - (y_hi - y_lo)) / 2.0 - y_lo;
        let mut thumbs = [(0.0, 0.0, 0.0, 0.0, false); 3];
        for (k, &(v, cx, cy, _, hy, above)) in blocks.iter().enumerate() {
            let (bx, by) = (ox + s * v[0] + cx, oy - s * v[1] + cy);
            let (thumb_y, label_y) = if above {
                (by + hy - THUMB, by - hy)
            } else {
                (by - hy, by - hy + THUMB + LABEL_GAP)
            };
            thumbs[k] = (bx - THUMB / 2.0, thumb_y, bx, label_y, above);
        }
        let panel = (MARGIN, top, MARGIN + panel_w, top + panel_h);
        Self {
            w: WIDTH,
            h: top + panel_h + MARGIN,
            s,
            ox,
            oy,
            p1,
            p2,
            title_size,
            subtitle_y,
            panel,
            thumbs,
            label_size,
        }
    }

    /// Unit position of a point of the plotted plane.
    pub(crate) fn to_units(&self, x: f64, y: f64) -> (f64, f64) {
        (self.ox + self.s * x, self.oy - self.s * y)
    }

    fn lattice(&self, n: usize, i: usize, j: usize) -> (f64, f64) {
        let (a, b) = (i as f64 / n as f64, j as f64 / n as f64);
        self.to_units(
            a * self.p1[0] + b * self.p2[0],
            a * self.p1[1] + b * self.p2[1],
        )
    }

    /// Lattice coordinates (i, j) as reals of a unit position: the inverse of `lattice`.
    fn to_lattice(&self, n: usize, ux: f64, uy: f64) -> (f64, f64) {
        let (x, y) = ((ux - self.ox) / self.s, (self.oy - uy) / self.s);
        let [ax, ay] = self.p1;
        let [bx, by] = self.p2;
        let det = ax * by - ay * bx;
        let u = (x * by - bx * y) / det;
        let v = (ax * y - x * ay) / det;
        (u * n as f64, v * n as f64)
    }
}

/// The two subtitle lines: ρ and θ with what they are in the figure's own terms. The source
/// sits at one end of the base; ρ = |x₂ − x_s| / |x₁ − x_s| is the side to x₂ over the side to
/// x₁, and θ is the angle between those two sides at the source (pixel-space L2, so the shape
/// is the true one).
fn rho_theta_lines(h: &HullFigureData) -> [String; 2] {
    let (p1, p2) = positions(h);
    let rho = p2[0].hypot(p2[1]) / p1[0].hypot(p1[1]);
    let theta = (p2[1].atan2(p2[0]) - p1[1].atan2(p1[0])).to_degrees();
    let (upper, lower) = if p2[1] >= p1[1] {
        ("upper", "lower")
    } else {
        ("lower", "upper")
    };
    [
        format!("ρ = {rho:.2}: {upper} side / {lower} side at the source"),
        format!("θ = {theta:.0}°: the angle at the source (true geometry)"),
    ]
}

pub(crate) fn size(h: &HullFigureData) -> (u32, u32) {
    let l = Layout::new(h);
    (l.w.ceil() as u32, l.h.ceil() as u32)
}

pub(crate) fn validate(h: &HullFigureData) -> Result<(), FigureError> {
    if h.n == 0 {
        return Err(FigureError::InvalidData(
            "hull lattice resolution n must be at least 1".into(),
        ));
    }
    if h.confidences.len() != points(h.n) {
        return Err(FigureError::InvalidData(format!(
            "hull with n = {} needs {} confidences, got {}",
            h.n,
            points(h.n),
            h.confidences.len()
        )));
    }
    Ok(())
}

/// Confidence at real lattice coordinates (a, b) with a, b ≥ 0 and a + b ≤ n: linear inside
/// the small up or down triangle that contains the point.
fn interpolate(h: &HullFigureData, a: f64, b: f64) -> f32 {
    lattice_field(h.n, &h.confidences, a, b)
}

/// The piecewise-linear confidence field of §1.9 at lattice coordinates (a, b) = n·(w1, w2):
/// linear inside each small lattice triangle. `confidences` is i-major then j, (n+1)(n+2)/2
/// values. The app's hover readout uses this too, so it reads what the figure draws.
pub fn lattice_field(n: usize, confidences: &[f32], a: f64, b: f64) -> f32 {
    let conf = |i: usize, j: usize| confidences.get(index(n, i, j)).map_or(0.0, |&c| c as f64);
    let i = (a.floor().max(0.0) as usize).min(n - 1);
    let j = (b.floor().max(0.0) as usize).min(n - 1 - i);
    let (fa, fb) = (a - i as f64, b - j as f64);
    let value = if fa + fb <= 1.0 || i + j + 2 > n {
        // Up triangle (i,j), (i+1,j), (i,j+1); on the outer edge only up triangles exist.
        (1.0 - fa - fb) * conf(i, j) + fa * conf(i + 1, j) + fb * conf(i, j + 1)
    } else {
        // Down triangle (i+1,j), (i,j+1), (i+1,j+1).
        (1.0 - fb) * conf(i + 1, j)
            + (1.0 - fa) * conf(i, j + 1)
            + (fa + fb - 1.0) * conf(i + 1, j + 1)
    };
    value as f32
}

/// Contour segments at `level`, in lattice coordinates, by marching triangles.
fn contour(h: &HullFigureData, level: f32) -> Vec<[(f64, f64); 2]> {
    let n = h.n;
    let conf = |i: usize, j: usize| h.confidences[index(n, i, j)];
    let mut tris: Vec<[(usize, usize); 3]> = Vec::new();
    for i in 0..n {
        for j in 0..n - i {
            tris.push([(i, j), (i + 1, j), (i, j + 1)]);
            if i + j + 2 <= n {
                tris.push([(i + 1, j), (i, j + 1), (i + 1, j + 1)]);
            }
        }
    }
    let mut out = Vec::new();
    for t in tris {
        let vals = t.map(|(i, j)| conf(i, j));
        if vals.iter().any(|v| !v.is_finite()) {
            continue;
        }
        let above = vals.map(|v| v >= level);
        let mut cut = Vec::with_capacity(2);
        for (p, q) in [(0, 1), (1, 2), (2, 0)] {
            if above[p] != above[q] {
                let f = ((level - vals[p]) / (vals[q] - vals[p])) as f64;
                let (pi, pj) = (t[p].0 as f64, t[p].1 as f64);
                let (qi, qj) = (t[q].0 as f64, t[q].1 as f64);
                cut.push((pi + f * (qi - pi), pj + f * (qj - pj)));
            }
        }
        if let [a, b] = cut[..] {
            out.push([a, b]);
        }
    }
    out
}

pub(crate) fn draw<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    h: &HullFigureData,
) -> Result<(), FigureError> {
    let l = Layout::new(h);
    let n = h.n;
    c.title(&h.title, l.w / 2.0, MARGIN, l.title_size)?;
    if h.degenerate {
        c.text(
            "drawn as a right isosceles triangle, not to scale",
            l.w / 2.0,
            l.subtitle_y,
            TextStyleU::new(pt(style::SMALL_PT))
                .color(MID)
                .anchor(HPos::Center, VPos::Top),
        )?;
    } else {
        for (k, line) in rho_theta_lines(h).iter().enumerate() {
            c.text(
                line,
                l.w / 2.0,
                l.subtitle_y + k as f64 * (pt(style::SMALL_PT) + 2.0),
                TextStyleU::new(pt(style::SMALL_PT))
                    .color(MID)
                    .anchor(HPos::Center, VPos::Top),
            )?;
        }
    }

    // Fill over the triangle's bounding box; pixels outside the triangle stay untouched.
    let corners = [l.lattice(n, 0, 0), l.lattice(n, n, 0), l.lattice(n, 0, n)];
    let (x0, x1) = corners
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let (y0, y1) = corners
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let nf = n as f64;
    c.raster(x0, y0, x1 - x0, y1 - y0, |ux, uy| {
        let (a, b) = l.to_lattice(n, ux, uy);
        if a < 0.0 || b < 0.0 || a + b > nf {
            return None;
        }
        Some(h.colormap.colour(interpolate(h, a, b)))
    })?;

    // Contours with a white halo, so they read on dark violet and on yellow alike.
    let segments: Vec<[(f64, f64); 2]> = h
        .contour_levels
        .iter()
        .filter(|v| v.is_finite())
        .flat_map(|&level| contour(h, level))
        .collect();
    let to_u = |(a, b): (f64, f64)| {
        l.to_units(
            (a * l.p1[0] + b * l.p2[0]) / nf,
            (a * l.p1[1] + b * l.p2[1]) / nf,
        )
    };
    for (colour, width) in [(WHITE.mix(0.9), 2.8), (BLACK.mix(0.9), 1.2)] {
        for [a, b] in &segments {
            c.line(to_u(*a), to_u(*b), colour, width)?;
        }
    }
    c.polyline(
        &[corners[0], corners[1], corners[2], corners[0]],
        DARK.to_rgba(),
        1.0,
    )?;
    // Lattice points: white dots with a dark rim, visible on every colour of the map. Only on
    // coarse lattices: on a fine one they would hide the field.
    let dotted = if n <= MAX_DOTTED_N { n + 1 } else { 0 };
    for i in 0..dotted {
        for j in 0..=n - i {
            let (x, y) = l.lattice(n, i, j);
            c.circle(x, y, DOT_R, WHITE.to_rgba(), true, 1.0)?;
            c.circle(x, y, DOT_R, DARK.mix(0.8), false, 0.6)?;
        }
    }
    // Corner thumbnails and their labels.
    for k in 0..3 {
        let (tx, ty, lx, ly, _) = l.thumbs[k];
        c.image(&h.corners[k], tx, ty, THUMB, Some((FRAME, 0.75)))?;
        c.text(
            &h.corner_labels[k],
            lx,
            ly,
            TextStyleU::new(l.label_size)
                .color(DARK)
                .anchor(HPos::Center, VPos::Top),
        )?;
    }
    if h.degenerate {
        c.text(
            "degenerate geometry",
            l.panel.2,
            l.panel.1,
            TextStyleU::new(pt(style::LABEL_PT))
                .bold()
                .color(ALERT)
                .anchor(HPos::Right, VPos::Top),
        )?;
    }
    let (_, top, right, bottom) = l.panel;
    colour_bar(
        c,
        right + 16.0,
        (top + 8.0, bottom - 8.0),
        &h.contour_levels,
        "p(source class)",
        h.colormap,
    )
}

/// A vertical colour bar with ticks 0, 0.2, …, 1, optional level marks (drawn like the
/// contours they stand for) and a title on its right. Shared with the width plot.
pub(crate) fn colour_bar<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    x0: f64,
    (y0, y1): (f64, f64),
    levels: &[f32],
    title: &str,
    colormap: Colormap,
) -> Result<(), FigureError> {
    let x1 = x0 + BAR_W;
    let y_of = |v: f64| y1 - v * (y1 - y0);
    for k in 0..VIRIDIS_LEVELS {
        let lo = level_start(k);
        let hi = level_start(k + 1);
        // Each level overlaps the next by a hair so no seam shows in anti-aliased viewers.
        let c_k = style::rgb(colormap.levels()[k]);
        c.rect([x0, y_of(hi) - 0.4, x1, y_of(lo)], c_k.to_rgba(), true, 1.0)?;
    }
    c.rect([x0, y0, x1, y1], DARK.to_rgba(), false, 0.75)?;
    let tick = TextStyleU::new(pt(style::TICK_PT))
        .color(DARK)
        .anchor(HPos::Left, VPos::Center);
    for k in 0..=5 {
        let v = k as f64 / 5.0;
        let y = y_of(v);
        c.line((x1, y), (x1 + 4.0, y), DARK.to_rgba(), 1.0)?;
        c.text(&format!("{v:.1}"), x1 + 8.0, y, tick)?;
    }
    for &level in levels.iter().filter(|v| v.is_finite()) {
        let y = y_of(level.clamp(0.0, 1.0) as f64);
        c.line((x0, y), (x1, y), WHITE.mix(0.9), 2.8)?;
        c.line((x0, y), (x1, y), BLACK.mix(0.9), 1.2)?;
    }
    c.text(
        title,
        x1 + 48.0,
        (y0 + y1) / 2.0,
        TextStyleU::new(pt(style::LABEL_PT))
            .color(DARK)
            .anchor(HPos::Center, VPos::Top)
            .vertical(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    fn data(n: usize, f: impl Fn(usize, usize) -> f32) -> HullFigureData {
        let mut confidences = Vec::new();
        for i in 0..=n {
            for j in 0..=n - i {
                confidences.push(f(i, j));
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
            corner_labels: ["x_s".into(), "x1".into(), "x2".into()],
            contour_levels: vec![0.5],
            title: "t".into(),
            colormap: Colormap::Viridis,
        }
    }

    /// The lattice dots are the figure's only circles: a white fill and a dark rim per point.
    fn lattice_dots(svg: &str) -> usize {
        svg.matches("<circle").count() / 2
    }

    fn pattern(i: usize, j: usize) -> f32 {
        ((i + 2 * j) % 7) as f32 / 7.0
    }

    #[test]
    fn the_lattice_is_dotted_only_when_it_is_coarse() {
        let coarse = crate::figures::hull_heatmap(&data(10, pattern))
            .svg_string()
            .unwrap();
        assert_eq!(lattice_dots(&coarse), 66);
        let fine = crate::figures::hull_heatmap(&data(40, pattern))
            .svg_string()
            .unwrap();
        assert_eq!(lattice_dots(&fine), 0);
    }

    #[test]
    fn the_caption_says_what_rho_and_theta_are() {
        let svg = crate::figures::hull_heatmap(&data(10, pattern))
            .svg_string()
            .unwrap();
        for line in [
            "ρ = 0.98: upper side / lower side at the source",
            "θ = 66°: the angle at the source (true geometry)",
        ] {
            assert!(svg.contains(line), "no `{line}` in the caption");
        }
    }

    #[test]
    fn index_is_i_major_then_j() {
        let n = 10;
        let mut k = 0;
        for i in 0..=n {
            for j in 0..=n - i {
                assert_eq!(index(n, i, j), k, "({i},{j})");
                k += 1;
            }
        }
        assert_eq!(k, 66);
        assert_eq!(points(10), 66);
    }

    #[test]
    fn interpolation_reproduces_lattice_values_and_linear_functions() {
        let h = data(10, |i, j| 0.03 * i as f32 + 0.05 * j as f32);
        for i in 0..=10 {
            for j in 0..=10 - i {
                let v = interpolate(&h, i as f64, j as f64);
                assert!((v - h.confidences[index(10, i, j)]).abs() < 1e-6);
            }
        }
        // Linear data is reproduced exactly inside both kinds of small triangle.
        for (a, b) in [(2.2, 3.1), (2.8, 3.9), (9.5, 0.4), (0.0, 9.99)] {
            let want = 0.03 * a + 0.05 * b;
            assert!(
                (interpolate(&h, a, b) as f64 - want).abs() < 1e-6,
                "({a},{b})"
            );
        }
    }

    #[test]
    fn contours_cross_where_the_value_does() {
        let h = data(4, |i, _| i as f32 / 4.0);
        let segs = contour(&h, 0.5);
        assert!(!segs.is_empty());
        for s in segs {
            for (a, _) in s {
                assert!((a - 2.0).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn layout_round_trips_lattice_coordinates() {
        let h = data(10, |_, _| 0.5);
        let l = Layout::new(&h);
        let (x, y) = l.lattice(10, 3, 4);
        let (a, b) = l.to_lattice(10, x, y);
        assert!((a - 3.0).abs() < 1e-9 && (b - 4.0).abs() < 1e-9);
        // Everything stays on the canvas.
        for (tx, ty, ..) in l.thumbs {
            assert!(tx >= 0.0 && ty >= 0.0 && tx + THUMB <= l.w && ty + THUMB <= l.h);
        }
    }

    #[test]
    fn unusable_positions_fall_back_to_the_isosceles_layout() {
        let mut h = data(2, |_, _| 0.5);
        h.p2 = [2.0, 0.0];
        assert_eq!(positions(&h), ([1.0, 0.0], [0.0, 1.0]));
        h.p2 = [f32::NAN, 1.0];
        assert_eq!(positions(&h), ([1.0, 0.0], [0.0, 1.0]));
    }
}
