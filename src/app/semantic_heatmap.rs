//! The Semantic view's 2-D maps on the GPU, through the hull heatmap's pipeline and shader
//! (`heatmap::HeatmapGpu`): a square N × N grid is two triangular lattices of resolution
//! n = N − 1 that share the diagonal, each drawn by one paint callback. The field is
//! interpolated per fragment and coloured by the same 100-level map as the PNG/SVG figure.
//! Each triangle is drawn through its own heatmap slot (`heatmap::SEMANTIC_FIRST_SLOT` on).

use crate::figures::Colormap;

use super::heatmap::HeatmapFrame;

/// The colour map of the semantic maps, as in `figures::semantic_map`: blue high, red low.
pub const COLORMAP: Colormap = Colormap::RdBu;

/// The two triangles of an N × N map (`values` row-major, the first parameter along rows,
/// drawn upward; missing values read 0), filling the whole callback rect:
/// the lower-left one from (0, 0) and the upper-right one from (N−1, N−1). `None` below 2 × 2.
pub fn square_frames(values: &[f64], points: usize, contours: &[f32]) -> Option<[HeatmapFrame; 2]> {
    if points < 2 {
        return None;
    }
    let n = points - 1;
    let at = |i: usize, j: usize| values.get(i * points + j).map_or(0.0, |v| *v as f32);
    let lattice = |f: &dyn Fn(usize, usize) -> f32| {
        let mut out = Vec::with_capacity((n + 1) * (n + 2) / 2);
        for i in 0..=n {
            for j in 0..=(n - i) {
                out.push(f(i, j));
            }
        }
        out
    };
    let (bl, tl, br, tr) = ([-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]);
    let frame = |confidences, corners_ndc| HeatmapFrame {
        n,
        confidences,
        corners_ndc,
        contours: contours.to_vec(),
        colormap: COLORMAP,
    };
    Some([
        // Lattice (i, j) is grid (i, j): i upward from the bottom-left, j rightward.
        frame(lattice(&|i, j| at(i, j)), [bl, tl, br]),
        // Lattice (i, j) is grid (n − i, n − j): i downward from the top-right, j leftward.
        frame(lattice(&|i, j| at(n - i, n - j)), [tr, br, tl]),
    ])
}

/// The piecewise-linear field the two triangles draw at fractional grid coordinates
/// (row r, column c) in [0, N−1]², for tests that read the pixels back.
pub fn square_field(values: &[f64], points: usize, r: f64, c: f64) -> f32 {
    let n = (points - 1) as f64;
    let lower = r + c <= n;
    let (frames, u, v) = match square_frames(values, points, &[]) {
        Some(f) if lower => (f, r, c),
        Some(f) => (f, n - r, n - c),
        None => return 0.0,
    };
    let which = usize::from(!lower);
    crate::figures::lattice_field(points - 1, &frames[which].confidences, u, v)
}
