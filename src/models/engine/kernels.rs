//! The engine's f32 CPU kernels. Activations are laid out channel-major, `[C][B][H][W]`, so a
//! whole batch is one GEMM per convolution (`N = B·H·W` columns) and a per-channel loop touches
//! one contiguous slice.
//!
//! Each layer has a forward and an input VJP; nothing here ever computes a weight gradient.

use rayon::prelude::*;

use super::depthwise::{depthwise_forward, depthwise_vjp};
use super::gemm::{View, matmul};
use super::simd;
use crate::models::layers::Padding;

/// Below this many elements a loop runs on the calling thread: rayon's fork/join costs more.
const PARALLEL_MIN: usize = 1 << 15;

/// Whether a loop over `len` elements runs on the calling thread: small, or inside a batch
/// shard that already has a thread to itself (`parallel`).
#[inline]
pub(super) fn sequential(len: usize) -> bool {
    len < PARALLEL_MIN || super::parallel::is_serial()
}

/// im2col chunks hold about this many floats (1 MiB), so a chunk is still in L2 (2 MiB per
/// core here) when the GEMM packs it: with 16 MiB chunks the ResNet-20 hull batch took 1.6x
/// as long, im2col writing to memory and the GEMM reading it back.
const COL_BUDGET: usize = 1 << 18;

/// ...but at least this many columns, or the products get too thin to split across threads
/// and repack their weights too often (a quarter of the budget made ResNet-18 1.3x slower).
const COL_MIN_COLUMNS: usize = 512;

/// Output rows per im2col chunk for `k` column rows of `wo` pixels.
fn chunk_rows(k: usize, wo: usize) -> usize {
    (COL_BUDGET / (k * wo).max(1))
        .max(COL_MIN_COLUMNS.div_ceil(wo.max(1)))
        .max(1)
}

/// The shape of an activation: `c` channels of `b` planes of `h x w`, laid out `[C][B][H][W]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub c: usize,
    pub b: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    pub fn plane(&self) -> usize {
        self.h * self.w
    }

    pub fn per_channel(&self) -> usize {
        self.b * self.h * self.w
    }

    pub fn len(&self) -> usize {
        self.c * self.per_channel()
    }
}

/// An elementwise activation fused into the op that precedes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu,
    Relu6,
}

impl Activation {
    #[inline(always)]
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Self::None => v,
            Self::Relu => v.max(0.0),
            Self::Relu6 => v.clamp(0.0, 6.0),
        }
    }

    // The gradient passes where the *output* y says the input was in the linear range. From
    // the output alone this is exact: ReLU's output is > 0 iff its input is, ReLU6's is in
    // (0, 6) iff its input is, which is PyTorch's convention at the kinks too
    // (threshold/hardtanh backward pass nothing at exactly 0 or 6).

    /// `g *= act'(y)`, in place. One loop per activation, written as selects, so it
    /// vectorises (a `match` inside the loop kept it scalar: 18% of an EfficientNet step).
    pub fn mask_gradient(self, g: &mut [f32], y: &[f32]) {
        match self {
            Self::None => {}
            Self::Relu => for_chunks(g, y, |g, y| {
                for (g, &y) in g.iter_mut().zip(y) {
                    *g = if y > 0.0 { *g } else { 0.0 };
                }
            }),
            Self::Relu6 => for_chunks(g, y, |g, y| {
                for (g, &y) in g.iter_mut().zip(y) {
                    *g = if y > 0.0 && y < 6.0 { *g } else { 0.0 };
                }
            }),
        }
    }

    /// `v = act(v + bias)` over one channel, one loop per activation (see `mask_gradient`).
    fn add_bias_apply(self, v: &mut [f32], bias: f32) {
        match self {
            Self::None => v.iter_mut().for_each(|v| *v += bias),
            Self::Relu => v.iter_mut().for_each(|v| *v = (*v + bias).max(0.0)),
            Self::Relu6 => v.iter_mut().for_each(|v| *v = (*v + bias).clamp(0.0, 6.0)),
        }
    }
}

/// Runs `f` over matching chunks of `a` and `b`, in parallel when they are large.
fn for_chunks(a: &mut [f32], b: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync + Send) {
    if sequential(a.len()) {
        f(a, b);
    } else {
        a.par_chunks_mut(PARALLEL_MIN)
            .zip(b.par_chunks(PARALLEL_MIN))
            .for_each(|(a, b)| f(a, b));
    }
}

/// Runs `f(channel, slice)` over the `per_channel`-long channel slices of `data`.
pub(super) fn for_channels(
    data: &mut [f32],
    per_channel: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if per_channel == 0 {
        return;
    }
    if sequential(data.len()) {
        data.chunks_mut(per_channel)
            .enumerate()
            .for_each(|(c, s)| f(c, s));
    } else {
        data.par_chunks_mut(per_channel)
            .enumerate()
            .for_each(|(c, s)| f(c, s));
    }
}

/// `dst += src`, in parallel when large.
pub(crate) fn add_assign(dst: &mut [f32], src: &[f32]) {
    for_chunks(dst, src, |d, s| {
        for (d, &s) in d.iter_mut().zip(s) {
            *d += s;
        }
    });
}

/// `y = act(a + b)`.
pub(crate) fn add_forward(a: &[f32], b: &[f32], y: &mut [f32], act: Activation) {
    let n = y.len();
    let work = |off: usize, y: &mut [f32]| {
        let (a, b) = (&a[off..off + y.len()], &b[off..off + y.len()]);
        for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
            *y = act.apply(a + b);
        }
    };
    if sequential(n) {
        work(0, y);
    } else {
        y.par_chunks_mut(PARALLEL_MIN)
            .enumerate()
            .for_each(|(i, y)| work(i * PARALLEL_MIN, y));
    }
}

/// `y = act(x · scale[c] + shift[c])` per channel (an unfolded inference batch norm).
pub(crate) fn affine_forward(
    x: &[f32],
    d: Dims,
    scale: &[f32],
    shift: &[f32],
    y: &mut [f32],
    act: Activation,
) {
    let per = d.per_channel();
    for_channels(y, per, |c, y| {
        let x = &x[c * per..(c + 1) * per];
        let (s, t) = (scale[c], shift[c]);
        for (y, &x) in y.iter_mut().zip(x) {
            *y = act.apply(x * s + t);
        }
    });
}

/// `g *= scale[c]`, in place (the VJP of `affine_forward` once the mask is applied).
pub(crate) fn scale_channels(g: &mut [f32], d: Dims, scale: &[f32]) {
    for_channels(g, d.per_channel(), |c, g| {
        let s = scale[c];
        g.iter_mut().for_each(|g| *g *= s);
    });
}

/// A convolution's weights in the layouts its forward and VJP multiply by.
#[derive(Clone, Debug)]
pub(crate) struct ConvWeights {
    pub out_c: usize,
    pub in_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: Padding,
    /// One k x k filter per channel (groups == channels) instead of a dense [out, in] mix.
    pub depthwise: bool,
    /// `[out][in·kh·kw]` (`[C][kh·kw]` when depthwise).
    pub weight: Vec<f32>,
    /// `[in·kh·kw][out]`: the VJP's left operand, stored transposed once so the GEMM reads it
    /// row by row. Empty when depthwise.
    pub weight_t: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

/// Where a convolution's window lands for one input size.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub top: usize,
    pub left: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvWeights {
    fn geometry(&self, h: usize, w: usize) -> Geometry {
        let (top, bottom) = self.padding.amounts(h, self.kh, self.stride);
        let (left, right) = self.padding.amounts(w, self.kw, self.stride);
        Geometry {
            kh: self.kh,
            kw: self.kw,
            stride: self.stride,
            top,
            left,
            ho: (h + top + bottom - self.kh) / self.stride + 1,
            wo: (w + left + right - self.kw) / self.stride + 1,
        }
    }

    pub fn output_dims(&self, x: Dims) -> Dims {
        let g = self.geometry(x.h, x.w);
        Dims {
            c: self.out_c,
            b: x.b,
            h: g.ho,
            w: g.wo,
        }
    }

    /// A 1x1, stride-1, unpadded conv: a plain GEMM over the activation as it lies.
    fn is_pointwise(&self, g: &Geometry) -> bool {
        !self.depthwise && g.kh == 1 && g.kw == 1 && g.stride == 1 && g.top == 0 && g.left == 0
    }

    /// `y = act(conv(x) + bias)`. `col` is scratch for the im2col chunks.
    pub fn forward(&self, x: &[f32], xd: Dims, y: &mut [f32], col: &mut Vec<f32>, act: Activation) {
        let g = self.geometry(xd.h, xd.w);
        let yd = self.output_dims(xd);
        let n = yd.per_channel();
        if self.depthwise {
            depthwise_forward(&self.weight, x, xd, y, yd, &g);
        } else if self.is_pointwise(&g) {
            matmul(
                self.out_c,
                n,
                self.in_c,
                y,
                n,
                false,
                View::rows(&self.weight, self.in_c),
                View::rows(x, n),
            );
        } else {
            let k = self.in_c * g.kh * g.kw;
            let rows = yd.b * g.ho;
            let chunk = chunk_rows(k, g.wo);
            let mut r0 = 0;
            while r0 < rows {
                let r1 = (r0 + chunk).min(rows);
                let nc = (r1 - r0) * g.wo;
                col.resize(k * nc, 0.0);
                im2col(x, xd, &g, r0, r1, &mut col[..k * nc]);
                matmul(
                    self.out_c,
                    nc,
                    k,
                    &mut y[r0 * g.wo..],
                    n,
                    false,
                    View::rows(&self.weight, k),
                    View::rows(&col[..k * nc], nc),
                );
                r0 = r1;
            }
        }
        let bias = self.bias.as_deref();
        if bias.is_some() || act != Activation::None {
            for_channels(y, n, |c, y| {
                act.add_bias_apply(y, bias.map_or(0.0, |b| b[c]))
            });
        }
    }

    /// `dx (+)= conv^T(dy)`: the VJP with respect to the input. `dx` must be zeroed or hold
    /// earlier contributions when `accumulate`; a fresh `dx` may hold anything otherwise.
    pub fn input_vjp(
        &self,
        dy: &[f32],
        xd: Dims,
        dx: &mut [f32],
        accumulate: bool,
        col: &mut Vec<f32>,
    ) {
        let g = self.geometry(xd.h, xd.w);
        let yd = self.output_dims(xd);
        let n = yd.per_channel();
        if self.is_pointwise(&g) {
            matmul(
                self.in_c,
                n,
                self.out_c,
                dx,
                n,
                accumulate,
                View::rows(&self.weight_t, self.out_c),
                View::rows(dy, n),
            );
            return;
        }
        if !accumulate {
            dx.fill(0.0);
        }
        if self.depthwise {
            depthwise_vjp(&self.weight, dy, yd, dx, xd, &g);
            return;
        }
        let k = self.in_c * g.kh * g.kw;
        let rows = yd.b * g.ho;
        let chunk = chunk_rows(k, g.wo);
        let mut r0 = 0;
        while r0 < rows {
            let r1 = (r0 + chunk).min(rows);
            let nc = (r1 - r0) * g.wo;
            col.resize(k * nc, 0.0);
            matmul(
                k,
                nc,
                self.out_c,
                &mut col[..k * nc],
                nc,
                false,
                View::rows(&self.weight_t, self.out_c),
                View::rows(&dy[r0 * g.wo..], n),
            );
            col2im(&col[..k * nc], &g, r0, r1, dx, xd);
            r0 = r1;
        }
    }
}

/// The output columns `lo..hi` whose input column `ox·s + kx − left` lies inside `0..w`.
#[inline]
pub(super) fn valid_columns(g: &Geometry, kx: usize, w: usize) -> (usize, usize) {
    let s = g.stride;
    // ox·s + kx ≥ left  and  ox·s + kx < left + w
    let lo = g.left.saturating_sub(kx).div_ceil(s);
    let hi = (g.left + w).saturating_sub(kx).div_ceil(s).min(g.wo);
    (lo.min(hi), hi)
}

/// `dst[t] = src[t·n]`: a copy for `n` = 1, otherwise the first float of each `n`-chunk (a
/// form that vectorises; indexing by `t·n` did not).
#[inline(always)]
pub(super) fn every_nth(dst: &mut [f32], src: &[f32], n: usize) {
    if n == 1 {
        dst.copy_from_slice(&src[..dst.len()]);
        return;
    }
    let chunks = src.chunks_exact(n);
    let whole = chunks.len().min(dst.len());
    for (d, chunk) in dst.iter_mut().zip(chunks) {
        *d = chunk[0];
    }
    if let (Some(d), Some(&v)) = (dst.get_mut(whole), src.get(whole * n)) {
        *d = v;
    }
}

/// The input row of output row `oy` and kernel row `ky`, when it is not padding.
#[inline]
pub(super) fn input_row(g: &Geometry, oy: usize, ky: usize, h: usize) -> Option<usize> {
    (oy * g.stride + ky).checked_sub(g.top).filter(|&iy| iy < h)
}

/// Columns for output rows `r0..r1` of the flattened (b, oy) row index: row
/// `(ci·kh + ky)·kw + kx` of `col` holds, for each of those output pixels, the input pixel
/// that kernel tap (ky, kx) of channel ci reads (0 in the padding).
fn im2col(x: &[f32], xd: Dims, g: &Geometry, r0: usize, r1: usize, col: &mut [f32]) {
    let nc = (r1 - r0) * g.wo;
    let taps = g.kh * g.kw;
    // Stride 1 with "same" width (every 3x3/pad-1 conv): a tap's column row is the input plane
    // shifted by a constant, so each run of rows within one image is one memcpy, after which
    // the few padding columns are zeroed. Row-by-row copies of 8-32 floats cost ResNet-20 a
    // quarter of its time.
    let shifted_planes = g.stride == 1 && g.wo == xd.w;
    let fill = |krow: usize, dst: &mut [f32]| {
        let (ci, tap) = (krow / taps, krow % taps);
        let (ky, kx) = (tap / g.kw, tap % g.kw);
        let (lo, hi) = valid_columns(g, kx, xd.w);
        if shifted_planes {
            let mut r = r0;
            while r < r1 {
                let (b, oy0) = (r / g.ho, r % g.ho);
                let run = (g.ho - oy0).min(r1 - r);
                let out = &mut dst[(r - r0) * g.wo..(r - r0 + run) * g.wo];
                // Output rows oy0..oy0+run whose input row exists.
                let first = (oy0..oy0 + run).find(|&oy| input_row(g, oy, ky, xd.h).is_some());
                let last = (oy0..oy0 + run)
                    .rev()
                    .find(|&oy| input_row(g, oy, ky, xd.h).is_some());
                match (first, last) {
                    (Some(a), Some(z)) if lo < hi => {
                        let (da, dz) = ((a - oy0) * g.wo, (z - oy0) * g.wo);
                        out[..da].fill(0.0);
                        out[dz + g.wo..].fill(0.0);
                        let iy = a + ky - g.top;
                        let plane = &x[(ci * xd.b + b) * xd.plane()..][..xd.plane()];
                        let len = dz - da + hi - lo;
                        let src_start = iy * xd.w + lo + kx - g.left;
                        out[da + lo..da + lo + len]
                            .copy_from_slice(&plane[src_start..src_start + len]);
                        for row in out[da..dz + g.wo].chunks_mut(g.wo) {
                            row[..lo].fill(0.0);
                            row[hi..].fill(0.0);
                        }
                    }
                    _ => out.fill(0.0),
                }
                r += run;
            }
            return;
        }
        for r in r0..r1 {
            let (b, oy) = (r / g.ho, r % g.ho);
            let dst = &mut dst[(r - r0) * g.wo..(r - r0 + 1) * g.wo];
            let Some(iy) = input_row(g, oy, ky, xd.h) else {
                dst.fill(0.0);
                continue;
            };
            let src = &x[((ci * xd.b + b) * xd.h + iy) * xd.w..][..xd.w];
            dst[..lo].fill(0.0);
            dst[hi..].fill(0.0);
            if g.stride == 1 {
                let start = lo + kx - g.left;
                dst[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
            } else if lo < hi {
                // Every stride-th input from `start` (the 7×7/2 stem's columns).
                let start = lo * g.stride + kx - g.left;
                every_nth(&mut dst[lo..hi], &src[start..], g.stride);
            }
        }
    };
    let fill = |k: usize, d: &mut [f32]| simd::dispatch(|| fill(k, d));
    if sequential(col.len()) {
        col.chunks_mut(nc).enumerate().for_each(|(k, d)| fill(k, d));
    } else {
        col.par_chunks_mut(nc)
            .enumerate()
            .for_each(|(k, d)| fill(k, d));
    }
}

/// The adjoint of `im2col`: adds every column entry back onto the input pixel it came from.
fn col2im(col: &[f32], g: &Geometry, r0: usize, r1: usize, dx: &mut [f32], xd: Dims) {
    let nc = (r1 - r0) * g.wo;
    let taps = g.kh * g.kw;
    for_channels(dx, xd.per_channel(), |ci, dxc| {
        for tap in 0..taps {
            let (ky, kx) = (tap / g.kw, tap % g.kw);
            let (lo, hi) = valid_columns(g, kx, xd.w);
            let row = &col[(ci * taps + tap) * nc..][..nc];
            for r in r0..r1 {
                let (b, oy) = (r / g.ho, r % g.ho);
                let Some(iy) = input_row(g, oy, ky, xd.h) else {
                    continue;
                };
                let dst = &mut dxc[(b * xd.h + iy) * xd.w..][..xd.w];
                let src = &row[(r - r0) * g.wo..(r - r0 + 1) * g.wo];
                if g.stride == 1 {
                    let start = lo + kx - g.left;
                    for (d, &s) in dst[start..start + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                        *d += s;
                    }
                } else {
                    for (ox, &s) in src.iter().enumerate().take(hi).skip(lo) {
                        dst[ox * g.stride + kx - g.left] += s;
                    }
                }
            }
        }
    });
}

/// The CIFAR option-A shortcut: `x[:, :, ::2, ::2]` with `pad` zero channels on each side.
pub(crate) fn option_a_forward(x: &[f32], xd: Dims, pad: usize, y: &mut [f32]) -> Dims {
    let yd = Dims {
        c: xd.c + 2 * pad,
        b: xd.b,
        h: xd.h.div_ceil(2),
        w: xd.w.div_ceil(2),
    };
    for_channels(y, yd.per_channel(), |c, yc| {
        let Some(ci) = c.checked_sub(pad).filter(|&ci| ci < xd.c) else {
            yc.fill(0.0);
            return;
        };
        for b in 0..xd.b {
            let xp = &x[(ci * xd.b + b) * xd.plane()..][..xd.plane()];
            for oy in 0..yd.h {
                for ox in 0..yd.w {
                    yc[(b * yd.h + oy) * yd.w + ox] = xp[2 * oy * xd.w + 2 * ox];
                }
            }
        }
    });
    yd
}

/// The adjoint of `option_a_forward`, accumulated into `dx`.
pub(crate) fn option_a_vjp(dy: &[f32], yd: Dims, pad: usize, dx: &mut [f32], xd: Dims) {
    for_channels(dx, xd.per_channel(), |ci, dxc| {
        let c = ci + pad;
        for b in 0..xd.b {
            let src = &dy[(c * yd.b + b) * yd.plane()..][..yd.plane()];
            for oy in 0..yd.h {
                for ox in 0..yd.w {
                    dxc[(b * xd.h + 2 * oy) * xd.w + 2 * ox] += src[oy * yd.w + ox];
                }
            }
        }
    });
}

/// `y[K][B] = W[K][C] · x[C][B] + bias`.
pub(crate) fn linear_forward(
    weight: &[f32],
    bias: Option<&[f32]>,
    (out, inp, batch): (usize, usize, usize),
    x: &[f32],
    y: &mut [f32],
) {
    matmul(
        out,
        batch,
        inp,
        y,
        batch,
        false,
        View::rows(weight, inp),
        View::rows(x, batch),
    );
    if let Some(bias) = bias {
        for (row, &b) in y.chunks_mut(batch).zip(bias) {
            row.iter_mut().for_each(|v| *v += b);
        }
    }
}

/// `dx[C][B] (+)= Wᵀ · dy`.
pub(crate) fn linear_vjp(
    weight: &[f32],
    (out, inp, batch): (usize, usize, usize),
    dy: &[f32],
    dx: &mut [f32],
    accumulate: bool,
) {
    matmul(
        inp,
        batch,
        out,
        dx,
        batch,
        accumulate,
        View::transposed(weight, inp),
        View::rows(dy, batch),
    );
}

#[cfg(test)]
pub(super) mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    pub(in super::super) fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// NCHW -> [C][B][H][W]
    fn to_cnhw(x: &[f32], d: Dims) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        for b in 0..d.b {
            for c in 0..d.c {
                let src = &x[(b * d.c + c) * d.plane()..][..d.plane()];
                out[(c * d.b + b) * d.plane()..][..d.plane()].copy_from_slice(src);
            }
        }
        out
    }

    fn conv(
        out_c: usize,
        in_c: usize,
        k: usize,
        stride: usize,
        padding: Padding,
        depthwise: bool,
    ) -> ConvWeights {
        let per = if depthwise { 1 } else { in_c };
        let weight = pseudo_random(out_c * per * k * k, 3);
        let kk = per * k * k;
        let mut weight_t = vec![0.0; weight.len()];
        if !depthwise {
            for o in 0..out_c {
                for i in 0..kk {
                    weight_t[i * out_c + o] = weight[o * kk + i];
                }
            }
        }
        ConvWeights {
            out_c,
            in_c,
            kh: k,
            kw: k,
            stride,
            padding,
            depthwise,
            weight,
            weight_t: if depthwise { Vec::new() } else { weight_t },
            bias: Some(pseudo_random(out_c, 5)),
        }
    }

    /// The forward pass against candle's conv2d, and the VJP against the adjoint identity
    /// <conv(x), g> = <x, conv^T(g)> (linear without bias and activation).
    fn check(cw: &ConvWeights, xd: Dims) {
        let x = pseudo_random(xd.len(), 11);
        let yd = cw.output_dims(xd);
        let mut y = vec![0.0; yd.len()];
        let mut col = Vec::new();
        let x_cnhw = to_cnhw(&x, xd);
        cw.forward(&x_cnhw, xd, &mut y, &mut col, Activation::None);

        let dev = Device::Cpu;
        let (t, bottom) = cw.padding.amounts(xd.h, cw.kh, cw.stride);
        let (l, r) = cw.padding.amounts(xd.w, cw.kw, cw.stride);
        let xt = Tensor::from_vec(x.clone(), (xd.b, xd.c, xd.h, xd.w), &dev)
            .unwrap()
            .pad_with_zeros(2, t, bottom)
            .unwrap()
            .pad_with_zeros(3, l, r)
            .unwrap();
        let per = if cw.depthwise { 1 } else { cw.in_c };
        let groups = if cw.depthwise { cw.out_c } else { 1 };
        let wt = Tensor::from_vec(cw.weight.clone(), (cw.out_c, per, cw.kh, cw.kw), &dev).unwrap();
        let bias = Tensor::from_vec(cw.bias.clone().unwrap(), (1, cw.out_c, 1, 1), &dev).unwrap();
        let expected = xt
            .conv2d(&wt, 0, cw.stride, 1, groups)
            .unwrap()
            .broadcast_add(&bias)
            .unwrap();
        let (eb, ec, eh, ew) = expected.dims4().unwrap();
        assert_eq!((ec, eb, eh, ew), (yd.c, yd.b, yd.h, yd.w));
        let expected = to_cnhw(
            &expected.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            yd,
        );
        let max_err = y
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max_err < 1e-4, "forward off by {max_err} for {xd:?}");

        // Adjoint identity, on the linear part.
        let linear = ConvWeights {
            bias: None,
            ..cw.clone()
        };
        linear.forward(&x_cnhw, xd, &mut y, &mut col, Activation::None);
        let g = pseudo_random(yd.len(), 17);
        let mut dx = vec![f32::NAN; xd.len()];
        linear.input_vjp(&g, xd, &mut dx, false, &mut col);
        let lhs: f64 = y.iter().zip(&g).map(|(a, b)| f64::from(a * b)).sum();
        let rhs: f64 = x_cnhw.iter().zip(&dx).map(|(a, b)| f64::from(a * b)).sum();
        assert!(
            (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
            "adjoint {lhs} vs {rhs} for {xd:?}"
        );
        // Accumulating adds onto what is there.
        let mut twice = dx.clone();
        linear.input_vjp(&g, xd, &mut twice, true, &mut col);
        for (t, d) in twice.iter().zip(&dx) {
            assert!((t - 2.0 * d).abs() <= 1e-5 * d.abs().max(1.0));
        }
    }

    #[test]
    fn convolutions_match_candle_and_their_vjps_are_adjoint() {
        use Padding::{Symmetric, TfSame};
        let d = |c, b, h, w| Dims { c, b, h, w };
        // (out, in, k, stride, padding, depthwise), input dims. The last five are depthwise
        // on plane layouts: strided with symmetric padding on odd sizes, a 5×5 on a plane
        // smaller than its padded window, stride 3, no padding, and EfficientNet's 3×3/2.
        let cases = [
            ((8, 3, 3, 1, Symmetric(1), false), d(3, 2, 9, 7)),
            ((6, 4, 3, 2, Symmetric(1), false), d(4, 3, 8, 9)),
            ((5, 3, 7, 2, Symmetric(3), false), d(3, 2, 15, 16)),
            ((7, 5, 1, 1, Symmetric(0), false), d(5, 2, 6, 5)),
            ((7, 5, 1, 2, Symmetric(0), false), d(5, 2, 7, 6)),
            ((4, 3, 3, 2, TfSame, false), d(3, 2, 10, 11)),
            ((6, 6, 3, 1, TfSame, true), d(6, 2, 9, 8)),
            ((6, 6, 5, 2, TfSame, true), d(6, 3, 12, 11)),
            ((4, 4, 5, 1, TfSame, true), d(4, 1, 4, 4)),
            ((3, 3, 3, 2, Symmetric(1), true), d(3, 2, 7, 9)),
            ((3, 3, 5, 1, Symmetric(2), true), d(3, 2, 3, 3)),
            ((2, 2, 3, 3, Symmetric(1), true), d(2, 2, 10, 8)),
            ((2, 2, 3, 2, Symmetric(0), true), d(2, 1, 8, 9)),
            ((4, 4, 3, 2, TfSame, true), d(4, 2, 14, 14)),
        ];
        for ((out_c, in_c, k, stride, padding, depthwise), dims) in cases {
            check(&conv(out_c, in_c, k, stride, padding, depthwise), dims);
        }
    }

    #[test]
    fn activation_masks_follow_pytorch_at_the_kinks() {
        let y = [0.0, 1.0, 6.0, 3.0];
        let mut g = [1.0; 4];
        Activation::Relu6.mask_gradient(&mut g, &y);
        assert_eq!(g, [0.0, 1.0, 0.0, 1.0]);
        let mut g = [1.0; 4];
        Activation::Relu.mask_gradient(&mut g, &y);
        assert_eq!(g, [0.0, 1.0, 1.0, 1.0]);
    }
}
