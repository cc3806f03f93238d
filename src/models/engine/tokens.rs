//! The engine's kernels for vision transformers (timm ViT and DeiT).
//!
//! Tokens are laid out `[B][N][D]`: one token per row, so a per-token linear layer is one GEMM
//! over all `B·N` rows and layer norm walks contiguous rows. (The convolutional kernels use
//! `[C][B][H][W]`; `tokens_forward` is where a patch embedding crosses from one to the other.)
//! As everywhere in the engine, each op has a forward and an input VJP and nothing computes a
//! weight gradient. Attention has its own module, `attention`.

use rayon::prelude::*;

use super::fast_math;
use super::kernels::sequential;
use super::simd;

/// Runs `f(row_index, y_row)` over the `width`-long rows of `y`.
fn for_rows(y: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    for_rows_with(y, width, &mut [], 0, |r, y, _| f(r, y));
}

/// Runs `f(row_index, y_row, z_row)` over the `width`-long rows of `y` and the matching
/// `z_width`-long rows of `z` (none when `z_width` is 0). Each task's rows run inside one
/// `simd::dispatch`, so `f` is inlined into code built for the widest vectors there are.
fn for_rows_with(
    y: &mut [f32],
    width: usize,
    z: &mut [f32],
    z_width: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32]) + Sync + Send,
) {
    if width == 0 {
        return;
    }
    let rows = |first: usize, y: &mut [f32], z: &mut [f32]| {
        simd::dispatch(
            #[inline(always)]
            || {
                for (r, y) in y.chunks_mut(width).enumerate() {
                    let start = (r * z_width).min(z.len());
                    let z = &mut z[start..][..z_width];
                    f(first + r, y, z);
                }
            },
        );
    };
    if sequential(y.len()) {
        rows(0, y, z);
        return;
    }
    // Whole rows per task, about PARALLEL_MIN floats each.
    let per_task = (1usize << 15).div_ceil(width).max(1);
    let blocks = y.par_chunks_mut(per_task * width).enumerate();
    if z_width == 0 {
        blocks.for_each(|(t, y)| rows(t * per_task, y, &mut []));
    } else {
        blocks
            .zip(z.par_chunks_mut(per_task * z_width))
            .for_each(|((t, y), z)| rows(t * per_task, y, z));
    }
}

/// Patch embeddings `[D][B][gh·gw]` (a strided conv's output) to tokens `[B][P + gh·gw][D]`:
/// the `P` prefix tokens (class, distillation) first, then the patches in raster order,
/// each plus its position embedding `pos` `[P + gh·gw][D]`.
pub(crate) fn tokens_forward(
    patches: &[f32],
    (d, b, grid): (usize, usize, usize),
    prefix: &[f32],
    pos: &[f32],
    y: &mut [f32],
) {
    let p = prefix.len() / d.max(1);
    let n = p + grid;
    for_rows(y, d, |row, y| {
        let (bi, t) = (row / n, row % n);
        let pos = &pos[t * d..(t + 1) * d];
        if t < p {
            let pre = &prefix[t * d..(t + 1) * d];
            for ((y, &a), &e) in y.iter_mut().zip(pre).zip(pos) {
                *y = a + e;
            }
        } else {
            let i = t - p;
            for (c, (y, &e)) in y.iter_mut().zip(pos).enumerate() {
                *y = patches[(c * b + bi) * grid + i] + e;
            }
        }
    });
}

/// The VJP of `tokens_forward` into the patch embeddings `[D][B][gh·gw]` (the prefix and the
/// position embeddings are weights: no gradient).
pub(crate) fn tokens_vjp(
    gy: &[f32],
    (d, b, grid): (usize, usize, usize),
    prefix_tokens: usize,
    dx: &mut [f32],
    accumulate: bool,
) {
    let n = prefix_tokens + grid;
    for_rows(dx, grid, |row, dx| {
        let (c, bi) = (row / b, row % b);
        for (i, dx) in dx.iter_mut().enumerate() {
            let g = gy[(bi * n + prefix_tokens + i) * d + c];
            *dx = if accumulate { *dx + g } else { g };
        }
    });
}

/// Per-row mean and reciprocal standard deviation, as PyTorch's layer norm (biased variance,
/// two passes). Sums in `fast_math`'s lane order, so they vectorise.
#[inline(always)]
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = fast_math::sum(x) / n;
    let var = fast_math::sum_squared_deviations(x, mean) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// Layer norm over the last dimension of `[rows][width]`. With `stats` (two floats per
/// row), also each row's mean and reciprocal standard deviation there, which the VJP reads.
pub(crate) fn layer_norm_forward(
    x: &[f32],
    width: usize,
    (gamma, beta, eps): (&[f32], &[f32], f32),
    y: &mut [f32],
    stats: Option<&mut [f32]>,
) {
    let normalize = |r: usize, y: &mut [f32], stats: &mut [f32]| {
        let x = &x[r * width..(r + 1) * width];
        let (mean, rstd) = row_stats(x, eps);
        for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
            *y = (x - mean) * rstd * g + b;
        }
        if let [m, s] = stats {
            (*m, *s) = (mean, rstd);
        }
    };
    match stats {
        Some(stats) => for_rows_with(y, width, stats, 2, normalize),
        None => for_rows(y, width, |r, y| normalize(r, y, &mut [])),
    }
}

/// The VJP of layer norm from its input `x` and the `stats` its forward pass kept: with
/// `x̂ = (x − μ)·r` and `g = gy·γ`, `dx = r·(g − mean(g) − x̂·mean(g·x̂))`.
pub(crate) fn layer_norm_vjp(
    (x, stats): (&[f32], &[f32]),
    gy: &[f32],
    width: usize,
    gamma: &[f32],
    dx: &mut [f32],
    accumulate: bool,
) {
    let n = width as f32;
    for_rows(dx, width, |r, dx| {
        let span = r * width..(r + 1) * width;
        let (x, gy) = (&x[span.clone()], &gy[span]);
        let (mean, rstd) = (stats[2 * r], stats[2 * r + 1]);
        let (sum_g, sum_gx) = fast_math::sums_of_products(gy, gamma, x, mean);
        let (mean_g, mean_gx) = (sum_g / n, sum_gx * rstd / n);
        for (((dx, &x), &gy), &w) in dx.iter_mut().zip(x).zip(gy).zip(gamma) {
            let xhat = (x - mean) * rstd;
            let v = rstd * (gy * w - mean_g - xhat * mean_gx);
            *dx = if accumulate { *dx + v } else { v };
        }
    });
}

/// Tokens `start..start + count` of every image, `[B][count][D]`, or their mean `[B][1][D]`.
pub(crate) fn select_tokens_forward(
    x: &[f32],
    (b, n, d): (usize, usize, usize),
    (start, count, mean): (usize, usize, bool),
    y: &mut [f32],
) {
    for bi in 0..b {
        let src = &x[(bi * n + start) * d..][..count * d];
        if mean {
            let dst = &mut y[bi * d..][..d];
            dst.fill(0.0);
            for tok in src.chunks(d) {
                dst.iter_mut().zip(tok).for_each(|(a, &v)| *a += v);
            }
            let inv = 1.0 / count as f32;
            dst.iter_mut().for_each(|a| *a *= inv);
        } else {
            y[bi * count * d..][..count * d].copy_from_slice(src);
        }
    }
}

/// The VJP of `select_tokens_forward`; tokens not selected get no gradient.
pub(crate) fn select_tokens_vjp(
    gy: &[f32],
    (b, n, d): (usize, usize, usize),
    (start, count, mean): (usize, usize, bool),
    dx: &mut [f32],
    accumulate: bool,
) {
    if !accumulate {
        dx.fill(0.0);
    }
    for bi in 0..b {
        let dst = &mut dx[(bi * n + start) * d..][..count * d];
        if mean {
            let g = &gy[bi * d..][..d];
            let inv = 1.0 / count as f32;
            for tok in dst.chunks_mut(d) {
                tok.iter_mut().zip(g).for_each(|(a, &v)| *a += v * inv);
            }
        } else {
            let g = &gy[bi * count * d..][..count * d];
            dst.iter_mut().zip(g).for_each(|(a, &v)| *a += v);
        }
    }
}

/// Tokens `[B][N][D]` to features `[N·D][B]`, the layout of the engine's linear head.
pub(crate) fn tokens_to_features(x: &[f32], (b, per_image): (usize, usize), y: &mut [f32]) {
    for bi in 0..b {
        for (f, &v) in x[bi * per_image..][..per_image].iter().enumerate() {
            y[f * b + bi] = v;
        }
    }
}

/// The VJP of `tokens_to_features`.
pub(crate) fn tokens_to_features_vjp(
    gy: &[f32],
    (b, per_image): (usize, usize),
    dx: &mut [f32],
    accumulate: bool,
) {
    for bi in 0..b {
        for (f, dx) in dx[bi * per_image..][..per_image].iter_mut().enumerate() {
            let g = gy[f * b + bi];
            *dx = if accumulate { *dx + g } else { g };
        }
    }
}
