//! Depthwise convolutions (one k×k filter per channel, as in EfficientNet's MBConv blocks),
//! forward and input VJP, as direct per-channel loops: a GEMM would have a depth of `k²`.
//!
//! Each output row stays in L1 and takes one pass per kernel tap: `y_row += w · x_row`
//! shifted. Strided layers first split each input plane (forward) or gradient plane (VJP)
//! into its `stride` column phases (`phase[r][iy][t]` is column `t·stride + r` of row `iy`),
//! so that every tap reads or writes a contiguous run, and every loop runs under
//! `simd::dispatch`. Written as gathers and scatters by `ox·stride` and compiled for SSE2,
//! these two functions were 55% of an EfficientNet-Lite0 iteration at batch 8.

use super::kernels::{Dims, Geometry, for_channels, input_row, valid_columns};
use super::simd;

/// A plane's columns split by phase: `phase(r)` is `[h][width]`, its row `iy` holding columns
/// `r, r + stride, …` of input row `iy`.
struct Phases {
    data: Vec<f32>,
    stride: usize,
    h: usize,
    width: usize,
}

impl Phases {
    fn new(xd: Dims, stride: usize) -> Self {
        let width = xd.w.div_ceil(stride);
        Self {
            data: vec![0.0; stride * xd.h * width],
            stride,
            h: xd.h,
            width,
        }
    }

    /// Where column `first` of row `iy` sits: its phase's row, from that column on.
    fn run_start(&self, iy: usize, first: usize) -> usize {
        ((first % self.stride) * self.h + iy) * self.width + first / self.stride
    }

    /// Splits a plane `[h][w]` into the phases.
    fn split(&mut self, plane: &[f32], w: usize) {
        let (h, width) = (self.h, self.width);
        for (iy, row) in plane.chunks_exact(w).enumerate() {
            for r in 0..self.stride.min(w) {
                let dst = &mut self.data[(r * h + iy) * width..][..width];
                // The first float of each stride-chunk vectorises; indexing by t·stride did not.
                let chunks = row[r..].chunks_exact(self.stride);
                let whole = chunks.len();
                for (d, chunk) in dst.iter_mut().zip(chunks) {
                    *d = chunk[0];
                }
                if let Some(&last) = row.get(r + whole * self.stride) {
                    dst[whole] = last;
                }
            }
        }
    }

    /// Adds the phases back onto the plane's columns they came from.
    fn add_to(&self, plane: &mut [f32], w: usize) {
        let (h, width) = (self.h, self.width);
        for (iy, row) in plane.chunks_exact_mut(w).enumerate() {
            for r in 0..self.stride.min(w) {
                let src = &self.data[(r * h + iy) * width..][..width];
                for (t, d) in row[r..].iter_mut().step_by(self.stride).enumerate() {
                    *d += src[t];
                }
            }
        }
    }
}

/// Per kernel column `kx`: the outputs `lo..hi` whose tap lands inside the row, and the input
/// column the first of them reads. The same for every row, channel and image, and worth
/// hoisting: rows are 7 to 112 floats, and the two divisions per tap cost as much as a short
/// row's arithmetic.
fn column_runs(g: &Geometry, w: usize) -> Vec<(usize, usize, usize)> {
    (0..g.kw)
        .map(|kx| {
            let (lo, hi) = valid_columns(g, kx, w);
            (lo, hi, (lo * g.stride + kx).saturating_sub(g.left))
        })
        .collect()
}

/// `y = depthwise(w, x)`, `w` `[C][kh·kw]`, `x` and `y` `[C][B][H][W]`.
pub(super) fn depthwise_forward(
    w: &[f32],
    x: &[f32],
    xd: Dims,
    y: &mut [f32],
    yd: Dims,
    g: &Geometry,
) {
    let taps = g.kh * g.kw;
    let columns = column_runs(g, xd.w);
    for_channels(y, yd.per_channel(), |c, yc| {
        let wc = &w[c * taps..(c + 1) * taps];
        let mut phases = (g.stride > 1).then(|| Phases::new(xd, g.stride));
        simd::dispatch(
            #[inline(always)]
            || {
                for b in 0..xd.b {
                    let xp = &x[(c * xd.b + b) * xd.plane()..][..xd.plane()];
                    let yp = &mut yc[b * yd.plane()..(b + 1) * yd.plane()];
                    // Stride 1 reads the plane itself; a stride reads its phases.
                    let (source, runs) = match phases.as_mut() {
                        Some(p) => {
                            p.split(xp, xd.w);
                            (&p.data[..], Some(&*p))
                        }
                        None => (xp, None),
                    };
                    for oy in 0..g.ho {
                        let dst = &mut yp[oy * g.wo..(oy + 1) * g.wo];
                        dst.fill(0.0);
                        for ky in 0..g.kh {
                            let Some(iy) = input_row(g, oy, ky, xd.h) else {
                                continue;
                            };
                            let weights = &wc[ky * g.kw..(ky + 1) * g.kw];
                            for (&wv, &(lo, hi, first)) in weights.iter().zip(&columns) {
                                if lo == hi {
                                    continue;
                                }
                                let start = match runs {
                                    Some(p) => p.run_start(iy, first),
                                    None => iy * xd.w + first,
                                };
                                let src = &source[start..start + (hi - lo)];
                                for (d, &s) in dst[lo..hi].iter_mut().zip(src) {
                                    *d += wv * s;
                                }
                            }
                        }
                    }
                }
            },
        );
    });
}

/// The adjoint of `depthwise_forward`, added onto `dx`.
pub(super) fn depthwise_vjp(
    w: &[f32],
    dy: &[f32],
    yd: Dims,
    dx: &mut [f32],
    xd: Dims,
    g: &Geometry,
) {
    let taps = g.kh * g.kw;
    let columns = column_runs(g, xd.w);
    for_channels(dx, xd.per_channel(), |c, dxc| {
        let wc = &w[c * taps..(c + 1) * taps];
        let mut phases = (g.stride > 1).then(|| Phases::new(xd, g.stride));
        simd::dispatch(
            #[inline(always)]
            || {
                for b in 0..xd.b {
                    let dyp = &dy[(c * yd.b + b) * yd.plane()..][..yd.plane()];
                    let dxp = &mut dxc[b * xd.plane()..(b + 1) * xd.plane()];
                    // Stride 1 adds onto the plane itself; a stride, onto zeroed phases that
                    // are then added back onto the plane.
                    if let Some(p) = phases.as_mut() {
                        p.data.fill(0.0);
                    }
                    for oy in 0..g.ho {
                        let src = &dyp[oy * g.wo..(oy + 1) * g.wo];
                        for ky in 0..g.kh {
                            let Some(iy) = input_row(g, oy, ky, xd.h) else {
                                continue;
                            };
                            let weights = &wc[ky * g.kw..(ky + 1) * g.kw];
                            for (&wv, &(lo, hi, first)) in weights.iter().zip(&columns) {
                                if lo == hi {
                                    continue;
                                }
                                let dst = match phases.as_mut() {
                                    Some(p) => {
                                        let start = p.run_start(iy, first);
                                        &mut p.data[start..start + (hi - lo)]
                                    }
                                    None => &mut dxp[iy * xd.w + first..][..hi - lo],
                                };
                                for (d, &s) in dst.iter_mut().zip(&src[lo..hi]) {
                                    *d += wv * s;
                                }
                            }
                        }
                    }
                    if let Some(p) = phases.as_ref() {
                        p.add_to(dxp, xd.w);
                    }
                }
            },
        );
    });
}
