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
//! views of the fused `qkv` rows, so no head is ever copied out. Heads write into a
//! `[B][H][N][hd]` scratch whose per-pair blocks are contiguous (disjoint slices for the
//! threads) and are then interleaved back into `[B][N][D]`.

use rayon::prelude::*;

use super::fast_math;
use super::gemm::{View, matmul};
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

/// Runs `f(i, a_i, b_i)` over matching `a_len`- and `b_len`-long chunks of `a` and `b`, in
/// parallel unless `work` (in floats touched) is small or this thread is a batch shard.
fn for_pairs(
    a: &mut [f32],
    a_len: usize,
    b: &mut [f32],
    b_len: usize,
    work: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32]) + Sync + Send,
) {
    if a_len == 0 || b_len == 0 {
        return;
    }
    if sequential(work) {
        a.chunks_mut(a_len)
            .zip(b.chunks_mut(b_len))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    } else {
        a.par_chunks_mut(a_len)
            .zip(b.par_chunks_mut(b_len))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    }
}

/// Runs `f(row_index, y_row)` over the `width`-long rows of `y`.
fn for_rows(y: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if width == 0 {
        return;
    }
    if sequential(y.len()) {
        y.chunks_mut(width).enumerate().for_each(|(r, y)| f(r, y));
    } else {
        // Whole rows per task, about PARALLEL_MIN floats each.
        let rows_per_task = (1usize << 15).div_ceil(width).max(1);
        y.par_chunks_mut(rows_per_task * width)
            .enumerate()
            .for_each(|(t, block)| {
                block
                    .chunks_mut(width)
                    .enumerate()
                    .for_each(|(r, y)| f(t * rows_per_task + r, y));
            });
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

/// Layer norm over the last dimension of `[rows][width]`.
pub(crate) fn layer_norm_forward(
    x: &[f32],
    width: usize,
    (gamma, beta, eps): (&[f32], &[f32], f32),
    y: &mut [f32],
) {
    for_rows(y, width, |r, y| {
        let x = &x[r * width..(r + 1) * width];
        simd::dispatch(|| {
            let (mean, rstd) = row_stats(x, eps);
            for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
                *y = (x - mean) * rstd * g + b;
            }
        });
    });
}

/// The VJP of layer norm from its input `x`: with `x̂ = (x − μ)·r` and `g = gy·γ`,
/// `dx = r·(g − mean(g) − x̂·mean(g·x̂))`. The statistics are recomputed from `x`, which
/// costs one pass over a row instead of keeping two floats per token.
pub(crate) fn layer_norm_vjp(
    x: &[f32],
    gy: &[f32],
    width: usize,
    (gamma, eps): (&[f32], f32),
    dx: &mut [f32],
    accumulate: bool,
) {
    let n = width as f32;
    for_rows(dx, width, |r, dx| {
        let span = r * width..(r + 1) * width;
        let (x, gy) = (&x[span.clone()], &gy[span]);
        simd::dispatch(|| {
            let (mean, rstd) = row_stats(x, eps);
            let (sum_g, sum_gx) = fast_math::sums_of_products(gy, gamma, x, mean);
            let (mean_g, mean_gx) = (sum_g / n, sum_gx * rstd / n);
            for (((dx, &x), &gy), &w) in dx.iter_mut().zip(x).zip(gy).zip(gamma) {
                let xhat = (x - mean) * rstd;
                let v = rstd * (gy * w - mean_g - xhat * mean_gx);
                *dx = if accumulate { *dx + v } else { v };
            }
        });
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

/// `[B][H][M][hd]` to `[B][M][D]` (`M` the queries).
fn interleave_heads(s: AttentionShape, heads: &[f32], tokens: &mut [f32]) {
    let (n, d, hd) = (s.queries, s.width, s.head_dim());
    for_rows(tokens, d, |row, dst| {
        let (bi, t) = (row / n, row % n);
        for h in 0..s.heads {
            let src = &heads[((bi * s.heads + h) * n + t) * hd..][..hd];
            dst[h * hd..(h + 1) * hd].copy_from_slice(src);
        }
    });
}

/// Multi-head self-attention over fused `qkv` `[B][N][3D]` (timm's `attn.qkv` output, before
/// `attn.proj`), into `y` `[B][M][D]` for the first `M` tokens as queries. `probs` `[B][H][M][N]`
/// receives the softmax, which the VJP reads; `heads` is `[B][H][M][hd]` scratch.
pub(crate) fn attention_forward(
    qkv: &[f32],
    s: AttentionShape,
    probs: &mut [f32],
    heads: &mut [f32],
    y: &mut [f32],
) {
    let (n, m, hd) = (s.tokens, s.queries, s.head_dim());
    let scale = (hd as f32).powf(-0.5);
    let work = s.probs_len() * hd;
    for_pairs(probs, m * n, heads, m * hd, work, |pair, p, o| {
        let [q, k, v] = head_views(qkv, s, pair);
        // Kᵀ is K's view with the strides swapped.
        let kt = View {
            data: k.data,
            row_stride: 1,
            col_stride: k.row_stride,
        };
        matmul(m, n, hd, p, n, false, q, kt);
        softmax_rows(p, n, scale);
        matmul(m, hd, n, o, hd, false, View::rows(p, n), v);
    });
    interleave_heads(s, heads, y);
}

/// The VJP of `attention_forward` into `dqkv` `[B][N][3D]`. Per pair, with `dO` the pair's
/// slice of `gy`: `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))`,
/// `dQ = dS·K`, `dK = dSᵀ·Q` (`Q` the `M` queries' rows; the other tokens' `dQ` is zero).
/// `heads` is `[B][H][M][hd]` and `parts` `[B][H][3][N][hd]` scratch; `scores` `[B][H][M][N]`
/// scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_vjp(
    qkv: &[f32],
    probs: &[f32],
    gy: &[f32],
    s: AttentionShape,
    heads: &mut [f32],
    scores: &mut [f32],
    parts: &mut [f32],
    dqkv: &mut [f32],
    accumulate: bool,
) {
    let (n, m, d, hd) = (s.tokens, s.queries, s.width, s.head_dim());
    let scale = (hd as f32).powf(-0.5);
    gather_heads(s, gy, heads);
    let heads: &[f32] = heads;
    let work = s.probs_len() * hd;
    for_pairs(
        scores,
        m * n,
        parts,
        3 * n * hd,
        work,
        |pair, ds, dparts| {
            let [q, k, v] = head_views(qkv, s, pair);
            let p = &probs[pair * m * n..][..m * n];
            let d_o = View::rows(&heads[pair * m * hd..][..m * hd], hd);
            let (dq, rest) = dparts.split_at_mut(n * hd);
            let (dk, dv) = rest.split_at_mut(n * hd);
            matmul(n, hd, m, dv, hd, false, View::transposed(p, n), d_o);
            let vt = View {
                data: v.data,
                row_stride: 1,
                col_stride: v.row_stride,
            };
            matmul(m, n, hd, ds, n, false, d_o, vt);
            for (ds, p) in ds.chunks_mut(n).zip(p.chunks(n)) {
                let dot: f32 = ds.iter().zip(p).map(|(&a, &b)| a * b).sum();
                for (ds, &p) in ds.iter_mut().zip(p) {
                    *ds = scale * p * (*ds - dot);
                }
            }
            let (dq, dq_unused) = dq.split_at_mut(m * hd);
            matmul(m, hd, n, dq, hd, false, View::rows(ds, n), k);
            dq_unused.fill(0.0);
            matmul(n, hd, m, dk, hd, false, View::transposed(ds, n), q);
        },
    );
    // Scatter [B][H][3][N][hd] into [B][N][3D].
    for_rows(dqkv, 3 * d, |row, dst| {
        let (bi, t) = (row / n, row % n);
        for h in 0..s.heads {
            for part in 0..3 {
                let src = &parts[(((bi * s.heads + h) * 3 + part) * n + t) * hd..][..hd];
                let dst = &mut dst[part * d + h * hd..][..hd];
                if accumulate {
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
                } else {
                    dst.copy_from_slice(src);
                }
            }
        }
    });
}

/// `[B][M][D]` to `[B][H][M][hd]` (`M` the queries).
fn gather_heads(s: AttentionShape, tokens: &[f32], heads: &mut [f32]) {
    let (n, d, hd) = (s.queries, s.width, s.head_dim());
    for_rows(heads, hd, |row, dst| {
        let (pair, t) = (row / n, row % n);
        let (bi, h) = (pair / s.heads, pair % s.heads);
        dst.copy_from_slice(&tokens[(bi * n + t) * d + h * hd..][..hd]);
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
