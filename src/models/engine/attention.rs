//! Multi-head self-attention over a ViT's fused `qkv` token rows `[B][N][3D]`, forward and
//! input VJP, one (image, head) pair at a time in parallel over the pairs.
//!
//! Each pair's products run on the `gemm` crate's AVX-512 micro-kernels through `Panels`:
//! one operand packed per pair (`Kᵀ` and `V`; in the VJP `Vᵀ`, `K`, `dO` and `Q`, 12–50 KB
//! each), the other read in place from the token rows, and every result written straight
//! into its head's columns of the token rows (the pairs' columns interleave, which no set of
//! `&mut` slices expresses: hence the raw destinations). The queries go in blocks of
//! `QUERY_BLOCK`, so a block's scores are softmaxed, and multiplied by `V`, while they are
//! still in L1. Through the `gemm` crate's own `gemm` (as without AVX-512), every one of
//! these ~200 × 200 × 64 products packed both operands afresh: 2% of a DeiT-S step.

use rayon::prelude::*;

use super::fast_math;
use super::gemm::{Dst, View, matmul, matmul_into};
use super::kernels::sequential;
use super::packed::Panels;
use super::simd;

/// Queries per block: a block's scores (`QUERY_BLOCK × N` floats, 38 KB at `N` = 197) stay in
/// L1 between the product that makes them, the softmax and the product that reads them. A
/// multiple of the micro-kernels' 6 columns.
const QUERY_BLOCK: usize = 48;

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

    /// Floats of the output `[B][M][D]`.
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

    fn scale(&self) -> f32 {
        (self.head_dim() as f32).powf(-0.5)
    }
}

/// One pair's `Q`, `K` and `V` (each `[N][hd]`, rows of `3D` floats) inside the fused `qkv`
/// rows, and where its head's columns start in the `[B][M][D]` output (and its gradient) and
/// in the `[B][N][3D]` input gradient.
struct Pair<'a> {
    q: View<'a>,
    k: View<'a>,
    v: View<'a>,
    out: usize,
    qkv: usize,
}

impl<'a> Pair<'a> {
    fn new(qkv: &'a [f32], s: AttentionShape, pair: usize) -> Self {
        let (bi, h) = (pair / s.heads, pair % s.heads);
        let row = 3 * s.width;
        let base = bi * s.tokens * row + h * s.head_dim();
        let [q, k, v] = [0, 1, 2].map(|part| View::rows(&qkv[base + part * s.width..], row));
        Self {
            q,
            k,
            v,
            out: bi * s.queries * s.width + h * s.head_dim(),
            qkv: base,
        }
    }
}

/// Panics, naming the buffer, where a caller sized one too small (a bug, not an input error).
fn check_len(what: &str, len: usize, need: usize) {
    assert!(len >= need, "attention {what} of {len} < {need}");
}

/// Runs `f(scratch, pair, chunk)` over the `len`-long chunks of `a`, one per (image, head)
/// pair, in parallel unless `work` (in multiply-adds) is small or this thread is a batch
/// shard; `scratch` comes from `init`, once per task.
fn for_pairs<S>(
    a: &mut [f32],
    len: usize,
    work: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [f32]) + Sync + Send,
) {
    if len == 0 {
        return;
    }
    if sequential(work) {
        let mut scratch = init();
        a.chunks_mut(len)
            .enumerate()
            .for_each(|(i, a)| f(&mut scratch, i, a));
    } else {
        a.par_chunks_mut(len)
            .enumerate()
            .for_each_init(init, |scratch, (i, a)| f(scratch, i, a));
    }
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

/// The softmax VJP in place over `n`-long rows: `dP` becomes `dS = scale · P ⊙ (dP −
/// rowsum(dP ⊙ P))`.
fn softmax_vjp_rows(ds: &mut [f32], p: &[f32], n: usize, scale: f32) {
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
}

/// Multi-head self-attention over fused `qkv` `[B][N][3D]` (timm's `attn.qkv` output, before
/// `attn.proj`), into `y` `[B][M][D]` for the first `M` tokens as queries. `probs` `[B][H][M][N]`
/// receives the softmax, which the VJP reads.
pub(crate) fn attention_forward(qkv: &[f32], s: AttentionShape, probs: &mut [f32], y: &mut [f32]) {
    attention_forward_with(qkv, s, probs, y, Panels::new);
}

/// `attention_forward` on `Panels` from `panels`, or through `gemm.rs` where it gives none.
fn attention_forward_with(
    qkv: &[f32],
    s: AttentionShape,
    probs: &mut [f32],
    y: &mut [f32],
    panels: fn() -> Option<Panels>,
) {
    let (n, m, d, hd) = (s.tokens, s.queries, s.width, s.head_dim());
    check_len("input", qkv.len(), s.qkv_len());
    check_len("output", y.len(), s.out_len());
    let scale = s.scale();
    let y = Dst(y.as_mut_ptr());
    let init = || (panels(), panels());
    for_pairs(
        probs,
        m * n,
        s.probs_len() * hd,
        init,
        |scratch, pair, p| {
            let Pair { q, k, v, out, .. } = Pair::new(qkv, s, pair);
            // SAFETY (all writes to `y` below): pair (bi, h) writes columns h·hd..(h + 1)·hd of
            // image bi's M rows of `y` (inside it, checked above), which no other pair touches.
            let o = unsafe { y.get().add(out) };
            let (Some(kt), Some(vp)) = scratch else {
                // Kᵀ is K's view with the strides swapped.
                let kt = View::transposed(k.data, k.row_stride);
                matmul(m, n, hd, p, n, false, q, kt);
                softmax_rows(p, n, scale);
                unsafe { matmul_into(m, hd, n, o, (d, 1), false, View::rows(p, n), v) };
                return;
            };
            kt.pack_transposed((n, hd), k.data, k.row_stride);
            vp.pack_rows((hd, n), v.data, v.row_stride);
            for q0 in (0..m).step_by(QUERY_BLOCK) {
                let rows = QUERY_BLOCK.min(m - q0);
                let scores = &mut p[q0 * n..(q0 + rows) * n];
                // Column j of Kᵀ times the block's queries (read in place) is query q0 + j's
                // row of scores.
                let queries = View::transposed(&q.data[q0 * q.row_stride..], q.row_stride);
                unsafe {
                    kt.product(rows, queries, (scores.as_mut_ptr(), n), false);
                    softmax_rows(scores, n, scale);
                    vp.product(rows, View::transposed(scores, n), (o.add(q0 * d), d), false);
                }
            }
        },
    );
}

/// The VJP of `attention_forward` into `dqkv` `[B][N][3D]`. Per pair, with `dO` the pair's
/// columns of `gy`: `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))`,
/// `dQ = dS·K`, `dK = dSᵀ·Q` (`Q` the `M` queries' rows; the other tokens' `dQ` is zero).
/// `scores` is `[B][H][M][N]` scratch, for `dS`.
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
    attention_vjp_with((qkv, probs, gy), s, scores, dqkv, accumulate, Panels::new);
}

/// `attention_vjp` on `Panels` from `panels`, or through `gemm.rs` where it gives none.
fn attention_vjp_with(
    (qkv, probs, gy): (&[f32], &[f32], &[f32]),
    s: AttentionShape,
    scores: &mut [f32],
    dqkv: &mut [f32],
    accumulate: bool,
    panels: fn() -> Option<Panels>,
) {
    let (n, m, d, hd) = (s.tokens, s.queries, s.width, s.head_dim());
    check_len("input", qkv.len(), s.qkv_len());
    check_len("softmax", probs.len(), s.probs_len());
    check_len("output gradient", gy.len(), s.out_len());
    check_len("gradient", dqkv.len(), s.qkv_len());
    let scale = s.scale();
    let dqkv = Dst(dqkv.as_mut_ptr());
    let init = || (panels(), panels());
    for_pairs(
        scores,
        m * n,
        s.probs_len() * hd,
        init,
        |scratch, pair, ds| {
            let Pair { q, k, v, out, qkv } = Pair::new(qkv, s, pair);
            let p = &probs[pair * m * n..][..m * n];
            let d_o = View::rows(&gy[out..], d);
            let token_rows = (3 * d, 1);
            // SAFETY (all writes to `dqkv` below): pair (bi, h) writes columns part·D + h·hd..
            // (+ hd) of image bi's N rows of `dqkv` (inside it, checked above), which no other
            // pair touches.
            let (dq, dk, dv) = unsafe {
                let base = dqkv.get().add(qkv);
                (base, base.add(d), base.add(2 * d))
            };
            if !accumulate {
                for t in m..n {
                    unsafe { std::slice::from_raw_parts_mut(dq.add(t * 3 * d), hd).fill(0.0) };
                }
            }
            let (Some(first), Some(second)) = scratch else {
                let vt = View::transposed(v.data, v.row_stride);
                matmul(m, n, hd, ds, n, false, d_o, vt);
                softmax_vjp_rows(ds, p, n, scale);
                unsafe {
                    matmul_into(
                        n,
                        hd,
                        m,
                        dv,
                        token_rows,
                        accumulate,
                        View::transposed(p, n),
                        d_o,
                    );
                    matmul_into(m, hd, n, dq, token_rows, accumulate, View::rows(ds, n), k);
                    matmul_into(
                        n,
                        hd,
                        m,
                        dk,
                        token_rows,
                        accumulate,
                        View::transposed(ds, n),
                        q,
                    );
                }
                return;
            };
            let (vt, kp) = (first, second);
            vt.pack_transposed((n, hd), v.data, v.row_stride);
            kp.pack_rows((hd, n), k.data, k.row_stride);
            for q0 in (0..m).step_by(QUERY_BLOCK) {
                let rows = QUERY_BLOCK.min(m - q0);
                let ds = &mut ds[q0 * n..(q0 + rows) * n];
                let d_o = View::transposed(&d_o.data[q0 * d..], d);
                unsafe {
                    vt.product(rows, d_o, (ds.as_mut_ptr(), n), false);
                    softmax_vjp_rows(ds, &p[q0 * n..(q0 + rows) * n], n, scale);
                    kp.product(
                        rows,
                        View::transposed(ds, n),
                        (dq.add(q0 * 3 * d), 3 * d),
                        accumulate,
                    );
                }
            }
            // dV and dK sum over all the queries: after the blocks, over whole columns of P and dS.
            let (dop, qp) = (vt, kp);
            dop.pack_rows((hd, m), d_o.data, d);
            qp.pack_rows((hd, m), q.data, q.row_stride);
            unsafe {
                dop.product(n, View::rows(p, n), (dv, 3 * d), accumulate);
                qp.product(n, View::rows(ds, n), (dk, 3 * d), accumulate);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(len: usize, f: f32) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * f).sin()).collect()
    }

    /// Scratch for the path through `gemm.rs`, which CPUs without AVX-512 take.
    fn without_panels() -> Option<Panels> {
        None
    }

    /// The VJP's accumulating form adds exactly what its overwriting form writes, including
    /// the zero `dQ` of tokens that are not queries, on both paths. (A ViT never accumulates
    /// into `qkv`'s gradient, so the model tests do not reach this path.)
    #[test]
    fn attention_vjp_accumulates_what_it_would_write() {
        let s = AttentionShape {
            batch: 2,
            tokens: 7,
            queries: 3,
            width: 8,
            heads: 2,
        };
        let qkv = wave(s.qkv_len(), 0.37);
        let gy = wave(s.out_len(), 0.61);
        for panels in [Panels::new, without_panels] {
            let mut probs = vec![0f32; s.probs_len()];
            let mut y = vec![0f32; s.out_len()];
            attention_forward_with(&qkv, s, &mut probs, &mut y, panels);
            let mut scores = vec![0f32; s.probs_len()];
            let inputs = (&qkv[..], &probs[..], &gy[..]);
            let mut written = vec![f32::NAN; s.qkv_len()];
            attention_vjp_with(inputs, s, &mut scores, &mut written, false, panels);
            let mut added = vec![1f32; s.qkv_len()];
            attention_vjp_with(inputs, s, &mut scores, &mut added, true, panels);
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

    /// On a shape ragged for the micro-kernels (tokens past a 64-row panel, queries past a
    /// block and a 6-column tile, a head width that is not a multiple of 16), the packed path
    /// matches softmax attention done in f64, and its VJP matches the `gemm.rs` path's.
    #[test]
    fn packed_attention_matches_f64_and_the_gemm_path() {
        let s = AttentionShape {
            batch: 2,
            tokens: 71,
            queries: 53,
            width: 48,
            heads: 2,
        };
        if Panels::new().is_none() {
            eprintln!("no AVX-512 here: nothing to check");
            return;
        }
        let (n, m, d, hd) = (s.tokens, s.queries, s.width, s.head_dim());
        let qkv = wave(s.qkv_len(), 0.113);
        let gy = wave(s.out_len(), 0.271);
        let mut probs = vec![0f32; s.probs_len()];
        let mut y = vec![f32::NAN; s.out_len()];
        attention_forward(&qkv, s, &mut probs, &mut y);
        let at = |bi: usize, t: usize, c: usize| qkv[(bi * n + t) * 3 * d + c] as f64;
        let scale = (hd as f64).powf(-0.5);
        for (bi, h, qi) in (0..s.batch)
            .flat_map(|b| (0..s.heads).flat_map(move |h| (0..m).map(move |q| (b, h, q))))
        {
            let logits: Vec<f64> = (0..n)
                .map(|t| {
                    (0..hd)
                        .map(|c| at(bi, qi, h * hd + c) * at(bi, t, d + h * hd + c))
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let max = logits.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..hd {
                let want: f64 = (0..n)
                    .map(|t| e[t] / z * at(bi, t, 2 * d + h * hd + c))
                    .sum();
                let got = y[(bi * m + qi) * d + h * hd + c] as f64;
                assert!(
                    (got - want).abs() < 1e-5,
                    "y[{bi}][{qi}][{h}·{c}]: {got} vs {want}"
                );
            }
        }
        let mut plain_probs = vec![0f32; s.probs_len()];
        let mut plain_y = vec![0f32; s.out_len()];
        attention_forward_with(&qkv, s, &mut plain_probs, &mut plain_y, without_panels);
        for (a, b) in probs.iter().zip(&plain_probs) {
            assert!((a - b).abs() < 1e-6, "softmax {a} vs {b}");
        }
        let inputs = (&qkv[..], &probs[..], &gy[..]);
        let mut scores = vec![0f32; s.probs_len()];
        let mut packed = vec![f32::NAN; s.qkv_len()];
        attention_vjp_with(inputs, s, &mut scores, &mut packed, false, Panels::new);
        let mut plain = vec![f32::NAN; s.qkv_len()];
        attention_vjp_with(inputs, s, &mut scores, &mut plain, false, without_panels);
        for (i, (a, b)) in packed.iter().zip(&plain).enumerate() {
            assert!((a - b).abs() < 1e-5, "dqkv[{i}]: {a} vs {b}");
        }
        assert!(packed.iter().any(|v| v.abs() > 1e-2));
    }
}
