//! Pooling: k×k max pooling (forward, recording each window's winner for the VJP) and global
//! average pooling, over the engine's `[C][B][H][W]` planes.

use rayon::prelude::*;

use super::kernels::{Dims, every_nth, for_channels, sequential};
use super::simd;

/// k x k max pooling with symmetric padding that never wins (PyTorch pads with −inf).
/// With `argmax`, records the winning input index of each output for the VJP; the first
/// maximum in row-major window order wins, as in PyTorch, and the first NaN wins over
/// everything after it.
/// A forward pass that keeps nothing for a reverse pass skips the indices.
pub(crate) fn max_pool_forward(
    x: &[f32],
    xd: Dims,
    (k, stride, pad): (usize, usize, usize),
    y: &mut [f32],
    argmax: Option<&mut [u32]>,
) -> Dims {
    let ho = (xd.h + 2 * pad - k) / stride + 1;
    let wo = (xd.w + 2 * pad - k) / stride + 1;
    let yd = Dims { h: ho, w: wo, ..xd };
    let planes = xd.c * xd.b;
    let plane = yd.plane();
    let window = (k, stride, pad);
    let y = &mut y[..planes * plane];
    match argmax {
        Some(argmax) => {
            let argmax = &mut argmax[..planes * plane];
            let work = |p: usize, (y, at): (&mut [f32], &mut [u32])| {
                max_pool_plane::<true>(&x[p * xd.plane()..][..xd.plane()], xd, window, y, at);
            };
            if sequential(planes * plane) {
                y.chunks_mut(plane)
                    .zip(argmax.chunks_mut(plane))
                    .enumerate()
                    .for_each(|(p, ya)| work(p, ya));
            } else {
                y.par_chunks_mut(plane)
                    .zip(argmax.par_chunks_mut(plane))
                    .enumerate()
                    .for_each(|(p, ya)| work(p, ya));
            }
        }
        None => {
            let work = |p: usize, y: &mut [f32]| {
                max_pool_plane::<false>(&x[p * xd.plane()..][..xd.plane()], xd, window, y, &mut []);
            };
            if sequential(planes * plane) {
                y.chunks_mut(plane)
                    .enumerate()
                    .for_each(|(p, y)| work(p, y));
            } else {
                y.par_chunks_mut(plane)
                    .enumerate()
                    .for_each(|(p, y)| work(p, y));
            }
        }
    }
    yd
}

/// One plane of `max_pool_forward`. Each output row keeps its running maxima in L1 and is
/// updated one (input row, kernel column) tap at a time in window order, with a select
/// instead of a branch: after a ReLU, ties and near-ties are everywhere, and the branchy
/// per-window loop mispredicted on them (6% of a ResNet-18 iteration). Each input row is first
/// split into its `stride` phases (`phases[r][t] = row[t·stride + r]`), so every tap reads a
/// contiguous run and the select loops vectorise (a stride-2 walk over the row did not: the
/// stem's pool was 5% of ResNet-18 at batch 8).
fn max_pool_plane<const RECORD: bool>(
    xp: &[f32],
    xd: Dims,
    (k, stride, pad): (usize, usize, usize),
    y: &mut [f32],
    arg: &mut [u32],
) {
    let wo = (xd.w + 2 * pad - k) / stride + 1;
    let phase_len = xd.w.div_ceil(stride);
    let mut phases = vec![0f32; stride * phase_len];
    simd::dispatch(
        #[inline(always)]
        || {
            for (oy, best) in y.chunks_mut(wo).enumerate() {
                let ys = (oy * stride).saturating_sub(pad);
                let ye = (oy * stride + k).saturating_sub(pad).min(xd.h);
                best.fill(f32::NEG_INFINITY);
                let mut no_at: [u32; 0] = [];
                let at: &mut [u32] = if RECORD {
                    let at = &mut arg[oy * wo..(oy + 1) * wo];
                    // An all-padding-free window always has a first element: it wins a −inf tie.
                    for (ox, a) in at.iter_mut().enumerate() {
                        *a = (ys * xd.w + (ox * stride).saturating_sub(pad)) as u32;
                    }
                    at
                } else {
                    &mut no_at
                };
                for iy in ys..ye {
                    let src = &xp[iy * xd.w..(iy + 1) * xd.w];
                    for r in 0..stride.min(xd.w) {
                        let count = (xd.w - r).div_ceil(stride);
                        every_nth(&mut phases[r * phase_len..][..count], &src[r..], stride);
                    }
                    for kx in 0..k {
                        // Outputs whose window column ox·s + kx − pad lies inside the row.
                        let lo = pad.saturating_sub(kx).div_ceil(stride);
                        let hi = (xd.w + pad).saturating_sub(kx).div_ceil(stride).min(wo);
                        if lo >= hi {
                            continue;
                        }
                        let first = lo * stride + kx - pad;
                        let phase = &phases[(first % stride) * phase_len..][..phase_len];
                        let column = &phase[first / stride..][..hi - lo];
                        if RECORD {
                            let base = (iy * xd.w + first) as u32;
                            for (((b, a), &v), j) in best[lo..hi]
                                .iter_mut()
                                .zip(&mut at[lo..hi])
                                .zip(column)
                                .zip(0u32..)
                            {
                                // A larger value or a NaN wins, and a NaN stays, as in PyTorch.
                                let take = v > *b || v.is_nan();
                                *b = if take { v } else { *b };
                                *a = if take { base + j * stride as u32 } else { *a };
                            }
                        } else {
                            for (b, &v) in best[lo..hi].iter_mut().zip(column) {
                                let take = v > *b || v.is_nan();
                                *b = if take { v } else { *b };
                            }
                        }
                    }
                }
            }
        },
    );
}

/// Routes each output gradient to the input that won its window; `dx` accumulates.
pub(crate) fn max_pool_vjp(dy: &[f32], yd: Dims, argmax: &[u32], dx: &mut [f32], xd: Dims) {
    let per_y = yd.per_channel();
    for_channels(dx, xd.per_channel(), |c, dxc| {
        for b in 0..xd.b {
            let dxp = &mut dxc[b * xd.plane()..(b + 1) * xd.plane()];
            let off = c * per_y + b * yd.plane();
            for (&g, &at) in dy[off..off + yd.plane()].iter().zip(&argmax[off..]) {
                dxp[at as usize] += g;
            }
        }
    });
}

/// Mean over each plane: `[C][B][H][W]` -> `[C][B]`.
pub(crate) fn global_avg_pool_forward(x: &[f32], xd: Dims, y: &mut [f32]) {
    let plane = xd.plane();
    let scale = 1.0 / plane as f64;
    for (p, out) in y.iter_mut().enumerate().take(xd.c * xd.b) {
        let sum: f64 = x[p * plane..(p + 1) * plane]
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        *out = (sum * scale) as f32;
    }
}

/// Spreads each pooled gradient evenly over its plane.
pub(crate) fn global_avg_pool_vjp(dy: &[f32], xd: Dims, dx: &mut [f32], accumulate: bool) {
    let plane = xd.plane();
    let scale = 1.0 / plane as f32;
    for_channels(dx, xd.per_channel(), |c, dxc| {
        for b in 0..xd.b {
            let g = dy[c * xd.b + b] * scale;
            let dst = &mut dxc[b * plane..(b + 1) * plane];
            if accumulate {
                dst.iter_mut().for_each(|d| *d += g);
            } else {
                dst.fill(g);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::engine::kernels::tests::pseudo_random;

    #[test]
    fn max_pool_matches_a_direct_window_maximum_and_routes_gradients() {
        // The stem's 3/2/1 on even and odd widths, and strides 1 and 3 (one and three phases).
        for (h, w, (k, s, p)) in [
            (7, 8, (3, 2, 1)),
            (7, 9, (3, 2, 1)),
            (5, 6, (3, 1, 1)),
            (8, 11, (2, 3, 0)),
        ] {
            let xd = Dims { c: 2, b: 2, h, w };
            let x = pseudo_random(xd.len(), 23);
            let ho = (h + 2 * p - k) / s + 1;
            let yd = Dims {
                h: ho,
                w: (w + 2 * p - k) / s + 1,
                ..xd
            };
            let mut y = vec![0.0; yd.len()];
            let mut arg = vec![0u32; yd.len()];
            assert_eq!(
                max_pool_forward(&x, xd, (k, s, p), &mut y, Some(&mut arg)),
                yd
            );
            let mut y_only = vec![0.0; yd.len()];
            max_pool_forward(&x, xd, (k, s, p), &mut y_only, None);
            assert_eq!(y_only, y);
            for plane in 0..xd.c * xd.b {
                for oy in 0..yd.h {
                    for ox in 0..yd.w {
                        let mut best = f32::NEG_INFINITY;
                        for iy in (oy * s).saturating_sub(p)..(oy * s + k - p).min(xd.h) {
                            for ix in (ox * s).saturating_sub(p)..(ox * s + k - p).min(xd.w) {
                                best = best.max(x[plane * xd.plane() + iy * xd.w + ix]);
                            }
                        }
                        let o = plane * yd.plane() + oy * yd.w + ox;
                        assert_eq!(y[o], best, "{h}×{w} {k}/{s}/{p}: y[{o}]");
                        assert_eq!(x[plane * xd.plane() + arg[o] as usize], best);
                    }
                }
            }
            let g = vec![1.0; yd.len()];
            let mut dx = vec![0.0; xd.len()];
            max_pool_vjp(&g, yd, &arg, &mut dx, xd);
            assert_eq!(dx.iter().sum::<f32>(), yd.len() as f32);
        }
    }

    #[test]
    fn max_pool_ties_go_to_the_first_in_window_order_and_nan_wins() {
        // After a ReLU most of a window is 0: the winner is its first element in row-major
        // order, as in PyTorch, whatever the kernel column order of our loop.
        let xd = Dims {
            c: 1,
            b: 1,
            h: 4,
            w: 4,
        };
        let mut x = vec![0.0f32; 16];
        let yd = Dims { h: 2, w: 2, ..xd };
        let mut y = vec![0.0; 4];
        let mut arg = vec![0u32; 4];
        max_pool_forward(&x, xd, (3, 2, 1), &mut y, Some(&mut arg));
        // Windows (rows, cols): (0..2, 0..2), (0..2, 1..4), (1..4, 0..2), (1..4, 1..4).
        assert_eq!(arg, [0, 1, 4, 5]);
        x[6] = 2.0;
        x[9] = 2.0;
        max_pool_forward(&x, xd, (3, 2, 1), &mut y, Some(&mut arg));
        assert_eq!(y, [0.0, 2.0, 2.0, 2.0]);
        assert_eq!(arg, [0, 6, 9, 6]);
        x[10] = f32::NAN;
        max_pool_forward(&x, xd, (3, 2, 1), &mut y, Some(&mut arg));
        assert!(y[3].is_nan());
        assert_eq!(arg[3], 10);
        assert_eq!(yd.len(), y.len());
    }
}
