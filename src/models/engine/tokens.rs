//! The engine's kernels for vision transformers (timm ViT and DeiT).
//!
//! Tokens are laid out `[B][N][D]`: one token per row, so a per-token linear layer is one GEMM
//! over all `B·N` rows and layer norm walks contiguous rows. (The convolutional kernels use
//! `[C][B][H][W]`; `tokens_forward` is where a patch embedding crosses from one to the other.)
//! As everywhere in the engine, each op has a forward and an input VJP and nothing computes a
//! weight gradient.
//!
//! Attention runs one (image, head) pair at a time, in parallel over the pairs: `S = Q·Kᵀ`,
//! its row softmax `P` (kept for the reverse pass), then `P·V`, each product a GEMM on strided
//! views of the fused `qkv` rows, so no head is ever copied out, and each writing its head's
//! columns of the token rows in place (`gemm::matmul_into`: the pairs' columns interleave,
//! which no set of `&mut` slices expresses).

use rayon::prelude::*;

use super::fast_math;
use super::gemm::{Dst, View, matmul, matmul_into};
use super::kernels::sequential;
use super::simd;

/// The shape of one attention op: `batch` images of `tokens` tokens (keys and values), the
/// first `queries` of which attend and come out (all of them, except in a ViT's last block,
/// whose class-token head reads only the prefix tokens), `width` channels (the output's; the
/// fused input has three times as many) in `heads` heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttentionShape {
    pub batch: usize,
    pub tokens: usize,
    pub queries: usize,
    pub width: usize,
    pub heads: usize,
}

impl AttentionShape {
    fn head_dim(&self) -> usize {
        self.width / self.heads
    }

    fn pairs(&self) -> usize {
        self.batch * self.heads
    }

    /// Floats of the kept softmax probabilities, `[B][H][M][N]` (`M` queries, `N` tokens).
    pub fn probs_len(&self) -> usize {
        self.pairs() * self.queries * self.tokens
    }

    /// Floats of the output `[B][M][D]` (or its `[B][H][M][hd]` per-head form).
    pub fn out_len(&self) -> usize {
        self.batch * self.queries * self.width
    }

    /// Floats of the fused input `[B][N][3D]` (and of its gradient).
    pub fn qkv_len(&self) -> usize {
        3 * self.batch * self.tokens * self.width
    }

    /// Multiply-add FLOPs of the forward pass: `Q·Kᵀ` and `P·V`.
    pub fn forward_flops(&self) -> f64 {
        2.0 * 2.0 * (self.batch * self.queries * self.tokens * self.width) as f64
    }
}

/// Runs `f(i, chunk_i)` over the `len`-long chunks of `a`, in parallel unless `work` (in
/// floats touched) is small or this thread is a batch shard.
fn for_chunks(a: &mut [f32], len: usize, work: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if len == 0 {
        return;
    }
    if sequential(work) {
        a.chunks_mut(len).enumerate().for_each(|(i, a)| f(i, a));
    } else {
        a.par_chunks_mut(len).enumerate().for_each(|(i, a)| f(i, a));
    }
}

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

/// `p = softmax(scale · p)` over each `n`-long row, in place.
fn softmax_rows(p: &mut [f32], n: usize, scale: f32) {
    simd::dispatch(
        #[inline(always)]
        || {
            for row in p.chunks_mut(n) {
                let max = fast_math::max(row);
                for v in row.iter_mut() {
                    *v = fast_math::exp((*v - max) * scale);
                }
                let inv = 1.0 / fast_math::sum(row);
                row.iter_mut().for_each(|v| *v *= inv);
            }
        },
    );
}

/// The views of one pair's `Q`, `K` and `V` (each `[N][hd]`) inside the fused `qkv` rows
/// `[B][N][3D]`.
fn head_views(qkv: &[f32], s: AttentionShape, pair: usize) -> [View<'_>; 3] {
    let (bi, h) = (pair / s.heads, pair % s.heads);
    let row = 3 * s.width;
    let base = bi * s.tokens * row + h * s.head_dim();
    [0, 1, 2].map(|part| View::rows(&qkv[base + part * s.width..], row))
}

/// Multi-head self-attention over fused `qkv` `[B][N][3D]` (timm's `attn.qkv` output, before
/// `attn.proj`), into `y` `[B][M][D]` for the first `M` tokens as queries. `probs` `[B][H][M][N]`
/// receives the softmax, which the VJP reads. Each (image, head) pair writes its `P·V`
/// straight into its columns of `y`.
pub(crate) fn attention_forward(qkv: &[f32], s: AttentionShape, probs: &mut [f32], y: &mut [f32]) {
    let (n, m, d, hd) = (s.tokens, s.queries, s.width, s.head_dim());
    assert!(
        y.len() >= s.out_len(),
        "attention output of {} < {}",
        y.len(),
        s.out_len()
    );
    let scale = (hd as f32).powf(-0.5);
    let work = s.probs_len() * hd;
    let y = Dst(y.as_mut_ptr());
    for_chunks(probs, m * n, work, |pair, p| {
        let [q, k, v] = head_views(qkv, s, pair);
        // Kᵀ is K's view with the strides swapped.
        let kt = View {
            data: k.data,
            row_stride: 1,
            col_stride: k.row_stride,
        };
        matmul(m, n, hd, p, n, false, q, kt);
        softmax_rows(p, n, scale);
        let (bi, h) = (pair / s.heads, pair % s.heads);
        // SAFETY: pair (bi, h) writes columns h·hd..(h + 1)·hd of image bi's M rows of `y`
        // (inside it, checked above), which no other pair touches.
        unsafe {
            let o = y.get().add(bi * m * d + h * hd);
            matmul_into(m, hd, n, o, (d, 1), false, View::rows(p, n), v);
        }
    });
}

/// The VJP of `attention_forward` into `dqkv` `[B][N][3D]`. Per pair, with `dO` the pair's
/// slice of `gy`: `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))`,
/// `dQ = dS·K`, `dK = dSᵀ·Q` (`Q` the `M` queries' rows; the other tokens' `dQ` is zero).
/// `dO` is read in place, a strided view of `gy`, and each pair writes its `dQ`, `dK`, `dV`
/// straight into its columns of `dqkv`; `scores` is `[B][H][M][N]` scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_vjp(
    qkv: &[f32],
    probs: &[f32],
    gy: &[f32],
    s: AttentionShape,
    scores: &mut [f32],
    dqkv: &mut [f32],
    accumulate: bool,
) {
    let (n, m, d, hd) = (s.tokens, s.queries, s.width, s.head_dim());
    assert!(
        dqkv.len() >= s.qkv_len(),
        "attention gradient of {} < {}",
        dqkv.len(),
        s.qkv_len()
    );
    let scale = (hd as f32).powf(-0.5);
    let work = s.probs_len() * hd;
    let dqkv = Dst(dqkv.as_mut_ptr());
    for_chunks(scores, m * n, work, |pair, ds| {
        let [q, k, v] = head_views(qkv, s, pair);
        let p = &probs[pair * m * n..][..m * n];
        let (bi, h) = (pair / s.heads, pair % s.heads);
        let d_o = View::rows(&gy[bi * m * d + h * hd..], d);
        let vt = View {
            data: v.data,
            row_stride: 1,
            col_stride: v.row_stride,
        };
        matmul(m, n, hd, ds, n, false, d_o, vt);
        simd::dispatch(
            #[inline(always)]
            || {
                for (ds, p) in ds.chunks_mut(n).zip(p.chunks(n)) {
                    let dot = fast_math::dot(ds, p);
                    for (ds, &p) in ds.iter_mut().zip(p) {
                        *ds = scale * p * (*ds - dot);
                    }
                }
            },
        );
        // SAFETY: pair (bi, h) writes columns part·D + h·hd.. (+ hd) of image bi's N rows of
        // `dqkv` (inside it, checked above), which no other pair touches.
        unsafe {
            let rows = (3 * d, 1);
            let base = dqkv.get().add(bi * n * 3 * d + h * hd);
            let (dq, dk, dv) = (base, base.add(d), base.add(2 * d));
            matmul_into(n, hd, m, dv, rows, accumulate, View::transposed(p, n), d_o);
            matmul_into(m, hd, n, dq, rows, accumulate, View::rows(ds, n), k);
            if !accumulate {
                for t in m..n {
                    std::slice::from_raw_parts_mut(dq.add(t * 3 * d), hd).fill(0.0);
                }
            }
            matmul_into(n, hd, m, dk, rows, accumulate, View::transposed(ds, n), q);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The VJP's accumulating form adds exactly what its overwriting form writes, including
    /// the zero `dQ` of tokens that are not queries. (A ViT never accumulates into `qkv`'s
    /// gradient, so the model tests do not reach this path.)
    #[test]
    fn attention_vjp_accumulates_what_it_would_write() {
        let s = AttentionShape {
            batch: 2,
            tokens: 7,
            queries: 3,
            width: 8,
            heads: 2,
        };
        let wave = |len: usize, f: f32| (0..len).map(|i| (i as f32 * f).sin()).collect::<Vec<_>>();
        let qkv = wave(s.qkv_len(), 0.37);
        let gy = wave(s.out_len(), 0.61);
        let mut probs = vec![0f32; s.probs_len()];
        let mut y = vec![0f32; s.out_len()];
        attention_forward(&qkv, s, &mut probs, &mut y);
        let mut scores = vec![0f32; s.probs_len()];
        let mut written = vec![f32::NAN; s.qkv_len()];
        attention_vjp(&qkv, &probs, &gy, s, &mut scores, &mut written, false);
        let mut added = vec![1f32; s.qkv_len()];
        attention_vjp(&qkv, &probs, &gy, s, &mut scores, &mut added, true);
        for (i, (w, a)) in written.iter().zip(&added).enumerate() {
            assert!((w + 1.0 - a).abs() < 1e-5, "element {i}: {w} + 1 vs {a}");
        }
        // dQ of the non-query tokens is zero; their dK and dV are not.
        let row = 3 * s.width;
        let token = &written[(s.tokens - 1) * row..s.tokens * row];
        assert!(token[..s.width].iter().all(|&v| v == 0.0));
        assert!(token[s.width..].iter().any(|&v| v.abs() > 1e-3));
    }
}
