//! Our own forward pass and input-gradient pass for the convolutional classifiers, f32 on the
//! CPU, used by `Classifier` in place of candle's autograd wherever a network provides a
//! `Program`.
//!
//! Why not candle's autograd: its conv2d backward is a direct transposed-convolution loop with
//! no GEMM, it always computes the weight gradient (which blindspot never needs), its
//! depthwise conv is one small conv per channel, and every step allocates its whole graph
//! afresh. Here a network is compiled once into a list of ops (`Program`); the forward pass
//! keeps exactly what the reverse pass needs (the outputs of activations, whose sign gives
//! the mask, and the max-pool winners), and the reverse pass walks the ops backwards with
//! vector-Jacobian products for the input only: a convolution's VJP is one GEMM with the
//! transposed weights plus col2im, a 1x1 convolution's a plain GEMM. Buffers come from a
//! `BufferPool` kept between calls, so a long run allocates nothing per step.
//!
//! Candle tensors stay at the boundary: `Classifier` hands in the pixels and gets logits and
//! the gradient back as tensors. f64, CUDA and networks without a program keep the autograd
//! path, which the tests compare this one against.

mod attention;
mod buffers;
mod builder;
mod depthwise;
mod fast_math;
mod flatten;
mod gemm;
mod huge_pages;
mod kernels;
mod ops;
mod packed;
mod parallel;
mod pooling;
mod simd;
mod token_linear;
mod tokens;

use candle_core::{Result, bail};
use rayon::prelude::*;

use self::buffers::{BufferPool, saved_buffer};
pub use self::builder::ProgramBuilder;
pub use self::gemm::peak_gemm_gflops;
pub use self::kernels::Activation;
use self::kernels::Dims;
pub use self::ops::Value;
use self::ops::{Op, Plan};
use self::packed::Epilogue;

/// Per-value buffers of one call; `None` once a value is released (or never computed).
type Values = Vec<Option<Vec<f32>>>;

/// One value of a forward pass as `Program::with_features` hands it out: `data` is laid out
/// `[channels][batch][height][width]`, the engine's own layout (channel-major, so a
/// per-pixel reduction over channels strides by `batch * height * width`).
#[derive(Clone, Copy, Debug)]
pub struct FeatureMap<'a> {
    pub data: &'a [f32],
    pub channels: usize,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
}

impl FeatureMap<'_> {
    /// `batch * height * width`: the stride between channels.
    pub fn per_channel(&self) -> usize {
        self.batch * self.height * self.width
    }
}

/// A compiled network: ops over values, shape-polymorphic in the batch and image size.
#[derive(Debug)]
pub struct Program {
    ops: Vec<Op>,
}

/// Everything a call needs besides the program, kept between calls. One per classifier.
#[derive(Default)]
pub(crate) struct Workspace {
    plan: Option<Plan>,
    pool: BufferPool,
    col: Vec<f32>,
    /// Max-pool winners, per op.
    argmax: Vec<Vec<u32>>,
    /// Per op, what its reverse pass reads besides values: attention's probabilities
    /// `[B][H][M][N]`, an MLP's GELU derivative `[B][N][hidden]`, layer norm's per-token mean
    /// and reciprocal standard deviation.
    saved: Vec<Vec<f32>>,
    /// One workspace per batch shard (`parallel`), kept like everything else.
    shards: Vec<Workspace>,
}

impl Workspace {
    /// Bytes held between calls (pooled buffers and scratch), for allocation-growth tests.
    pub(crate) fn held_bytes(&self) -> usize {
        self.pool.bytes()
            + 4 * self.col.capacity()
            + self.argmax.iter().map(|a| 4 * a.capacity()).sum::<usize>()
            + self.saved.iter().map(|p| 4 * p.capacity()).sum::<usize>()
            + self.shards.iter().map(Workspace::held_bytes).sum::<usize>()
    }
}

/// The normalisation the classifier applies before the network: `(x − mean) · inv_std`.
pub(crate) struct Normalize<'a> {
    pub mean: &'a [f32],
    pub inv_std: &'a [f32],
}

impl Program {
    fn ensure_plan(&self, ws: &mut Workspace, input: Dims) -> Result<()> {
        if ws.plan.as_ref().is_none_or(|p| p.input != input) {
            ws.plan = Some(self.plan(input)?);
        }
        if ws.argmax.len() != self.ops.len() {
            ws.argmax = vec![Vec::new(); self.ops.len()];
        }
        if ws.saved.len() != self.ops.len() {
            ws.saved = vec![Vec::new(); self.ops.len()];
        }
        Ok(())
    }

    /// Runs the ops; returns the logits `[B][K]` and, when `record`, every value the reverse
    /// pass needs (the others go back to the pool as soon as their last reader has run).
    fn run_forward(
        &self,
        ws: &mut Workspace,
        pixels: &[f32],
        shape: (usize, usize, usize, usize),
        norm: &Normalize<'_>,
        record: bool,
    ) -> Result<(Vec<f32>, Values)> {
        let b = shape.0;
        let mut values = self.run_ops(ws, pixels, shape, norm, record, &[])?;
        let last = self.ops.len();
        let Some(out) = values[last].take() else {
            bail!("engine produced no logits");
        };
        let Some(plan) = ws.plan.as_ref() else {
            bail!("engine plan missing");
        };
        let k = plan.dims[last].c;
        // [K][B] -> [B][K]
        let mut logits = vec![0f32; b * k];
        for ki in 0..k {
            for bi in 0..b {
                logits[bi * k + ki] = out[ki * b + bi];
            }
        }
        ws.pool.give(out);
        Ok((logits, values))
    }

    /// Runs the forward pass over NCHW pixels and hands `read` the values `taps` (for example
    /// the ReLU outputs LPIPS compares), then returns every buffer to the pool. Unsharded: a
    /// layer's own kernels split across threads, which suits the large images LPIPS sees.
    pub(crate) fn with_features<R>(
        &self,
        ws: &mut Workspace,
        pixels: &[f32],
        shape: (usize, usize, usize, usize),
        norm: &Normalize<'_>,
        taps: &[Value],
        read: impl FnOnce(&[FeatureMap<'_>]) -> R,
    ) -> Result<R> {
        let keep: Vec<usize> = taps.iter().map(|v| v.0).collect();
        if let Some(bad) = keep.iter().find(|&&v| v > self.ops.len()) {
            bail!("feature tap {bad} is not a value of this program");
        }
        let values = self.run_ops(ws, pixels, shape, norm, false, &keep)?;
        let result = {
            let Some(plan) = ws.plan.as_ref() else {
                bail!("engine plan missing");
            };
            let mut maps = Vec::with_capacity(keep.len());
            for &v in &keep {
                let Some(data) = values[v].as_deref() else {
                    bail!("feature tap {v} was not kept");
                };
                let d = plan.dims[v];
                maps.push(FeatureMap {
                    data,
                    channels: d.c,
                    batch: d.b,
                    height: d.h,
                    width: d.w,
                });
            }
            read(&maps)
        };
        for v in values.into_iter().flatten() {
            ws.pool.give(v);
        }
        ws.pool.end_call();
        Ok(result)
    }

    /// The ops of a forward pass. Returns the values still held: the last one, the ones
    /// `keep` names, and when `record` every value the reverse pass needs.
    fn run_ops(
        &self,
        ws: &mut Workspace,
        pixels: &[f32],
        (b, c, h, w): (usize, usize, usize, usize),
        norm: &Normalize<'_>,
        record: bool,
        keep: &[usize],
    ) -> Result<Values> {
        if pixels.len() != b * c * h * w || norm.mean.len() != c || norm.inv_std.len() != c {
            bail!(
                "engine input of {} values for [{b}, {c}, {h}, {w}]",
                pixels.len()
            );
        }
        let input = Dims { c, b, h, w };
        self.ensure_plan(ws, input)?;
        let Workspace {
            plan,
            pool,
            col,
            argmax,
            saved,
            ..
        } = ws;
        let Some(plan) = plan.as_ref() else {
            bail!("engine plan missing");
        };
        let mut values: Vec<Option<Vec<f32>>> = (0..=self.ops.len()).map(|_| None).collect();

        // Normalise while turning NCHW into [C][B][H][W].
        let mut x0 = pool.take(input.len());
        let plane = input.plane();
        for bi in 0..b {
            for ci in 0..c {
                let (m, s) = (norm.mean[ci], norm.inv_std[ci]);
                let src = &pixels[(bi * c + ci) * plane..][..plane];
                let dst = &mut x0[(ci * b + bi) * plane..][..plane];
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = (v - m) * s;
                }
            }
        }
        values[0] = Some(x0);

        for (i, op) in self.ops.iter().enumerate() {
            let yd = plan.dims[i + 1];
            let mut y = pool.take(yd.len());
            for x in op.inputs().into_iter().flatten() {
                if values[x].is_none() {
                    bail!("op {i} reads value {x}, which is gone");
                }
            }
            let get = |x: usize| values[x].as_deref().unwrap_or(&[]);
            match op {
                Op::Conv { x, conv, act } => {
                    conv.forward(get(*x), plan.dims[*x], &mut y, col, *act);
                }
                Op::Affine {
                    x,
                    scale,
                    shift,
                    act,
                } => kernels::affine_forward(get(*x), plan.dims[*x], scale, shift, &mut y, *act),
                Op::Add { a, b, act } => kernels::add_forward(get(*a), get(*b), &mut y, *act),
                Op::MaxPool {
                    x,
                    kernel,
                    stride,
                    pad,
                } => {
                    let arg = if record {
                        argmax[i].resize(yd.len(), 0);
                        Some(argmax[i].as_mut_slice())
                    } else {
                        None
                    };
                    pooling::max_pool_forward(
                        get(*x),
                        plan.dims[*x],
                        (*kernel, *stride, *pad),
                        &mut y,
                        arg,
                    );
                }
                Op::OptionA { x, pad } => {
                    kernels::option_a_forward(get(*x), plan.dims[*x], *pad, &mut y);
                }
                Op::GlobalAvgPool { x } => {
                    pooling::global_avg_pool_forward(get(*x), plan.dims[*x], &mut y);
                }
                Op::Flatten { x } => flatten::flatten_forward(get(*x), plan.dims[*x], &mut y),
                Op::Linear {
                    x,
                    weight,
                    bias,
                    out,
                    inp,
                    act,
                } => {
                    kernels::linear_forward(
                        weight,
                        bias.as_deref(),
                        (*out, *inp, b),
                        get(*x),
                        &mut y,
                    );
                    flatten::activate(&mut y, *act);
                }
                Op::Tokens { x, prefix, pos } => {
                    let xd = plan.dims[*x];
                    tokens::tokens_forward(get(*x), (xd.c, b, xd.plane()), prefix, pos, &mut y);
                }
                Op::LayerNorm {
                    x,
                    gamma,
                    beta,
                    eps,
                } => {
                    let stats = if record {
                        Some(saved_buffer(&mut saved[i], 2 * b * yd.h))
                    } else {
                        None
                    };
                    let params = (&gamma[..], &beta[..], *eps);
                    tokens::layer_norm_forward(get(*x), yd.c, params, &mut y, stats);
                }
                Op::TokenLinear {
                    x,
                    linear,
                    residual,
                } => {
                    let finish = residual.map_or(Epilogue::None, |r| Epilogue::Add(get(r)));
                    linear.forward(b * yd.h, get(*x), &mut y, finish);
                }
                Op::Mlp { x, mlp, residual } => {
                    let rows = b * yd.h;
                    let mut hidden = pool.take(rows * mlp.hidden());
                    let derivative = if record {
                        Some(saved_buffer(&mut saved[i], rows * mlp.hidden()))
                    } else {
                        None
                    };
                    let finish = residual.map_or(Epilogue::None, |r| Epilogue::Add(get(r)));
                    mlp.forward(rows, get(*x), &mut hidden, derivative, (&mut y, finish));
                    pool.give(hidden);
                }
                Op::Attention { qkv, heads, .. } => {
                    let shape = attention_shape(plan.dims[*qkv], yd, *heads);
                    let probs = saved_buffer(&mut saved[i], shape.probs_len());
                    attention::attention_forward(get(*qkv), shape, probs, &mut y);
                }
                Op::SelectTokens {
                    x,
                    start,
                    count,
                    mean,
                } => {
                    let xd = plan.dims[*x];
                    tokens::select_tokens_forward(
                        get(*x),
                        (b, xd.h, xd.c),
                        (*start, *count, *mean),
                        &mut y,
                    );
                }
                Op::TokensToFeatures { x } => {
                    tokens::tokens_to_features(get(*x), (b, yd.c), &mut y);
                }
            }
            values[i + 1] = Some(y);
            for x in op.inputs().into_iter().flatten() {
                let needed = (record && plan.kept_backward[x]) || keep.contains(&x);
                if plan.last_use[x] == i
                    && !needed
                    && let Some(buf) = values[x].take()
                {
                    pool.give(buf);
                }
            }
        }
        Ok(values)
    }

    /// Logits `[B][K]` for NCHW pixels `[B][C][H][W]`. A batch runs as one shard per compute
    /// thread (`parallel`).
    pub(crate) fn forward(
        &self,
        ws: &mut Workspace,
        pixels: &[f32],
        shape: (usize, usize, usize, usize),
        norm: &Normalize<'_>,
    ) -> Result<Vec<f32>> {
        let (b, c, h, w) = shape;
        let shards = parallel::shard_count(b);
        if shards <= 1 {
            return self.forward_unsharded(ws, pixels, shape, norm);
        }
        check_pixels(pixels, shape)?;
        let image = c * h * w;
        let ranges = parallel::shard_ranges(b, shards);
        let parts = on_shards(ws, &ranges, vec![(); ranges.len()], |shard, r, ()| {
            let part = &pixels[r.start * image..r.end * image];
            self.forward_unsharded(shard, part, (r.len(), c, h, w), norm)
        });
        let mut logits = Vec::new();
        for part in parts {
            logits.extend(part?);
        }
        Ok(logits)
    }

    fn forward_unsharded(
        &self,
        ws: &mut Workspace,
        pixels: &[f32],
        shape: (usize, usize, usize, usize),
        norm: &Normalize<'_>,
    ) -> Result<Vec<f32>> {
        let (logits, values) = self.run_forward(ws, pixels, shape, norm, false)?;
        for v in values.into_iter().flatten() {
            ws.pool.give(v);
        }
        ws.pool.end_call();
        Ok(logits)
    }

    /// Logits `[B][K]` and d objective / d pixels `[B][C][H][W]`, where `dlogits` turns the
    /// logits into d objective / d logits (both `[B][K]`). A batch runs as one shard per
    /// compute thread: every shard's forward pass, then `dlogits` once over all the logits,
    /// then every shard's reverse pass.
    pub(crate) fn input_gradient(
        &self,
        ws: &mut Workspace,
        pixels: &[f32],
        shape: (usize, usize, usize, usize),
        norm: &Normalize<'_>,
        dlogits: impl FnOnce(&[f32]) -> Result<Vec<f32>>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let (b, c, h, w) = shape;
        let shards = parallel::shard_count(b);
        if shards <= 1 {
            let (logits, values) = self.run_forward(ws, pixels, shape, norm, true)?;
            let seed = dlogits(&logits)?;
            let grad = self.run_backward(ws, values, &seed, shape, norm)?;
            return Ok((logits, grad));
        }
        check_pixels(pixels, shape)?;
        let image = c * h * w;
        let ranges = parallel::shard_ranges(b, shards);
        let forwards = on_shards(ws, &ranges, vec![(); ranges.len()], |shard, r, ()| {
            let part = &pixels[r.start * image..r.end * image];
            self.run_forward(shard, part, (r.len(), c, h, w), norm, true)
        });
        let mut logits = Vec::new();
        let mut values = Vec::with_capacity(forwards.len());
        for f in forwards {
            let (l, v) = f?;
            logits.extend(l);
            values.push(v);
        }
        let seed = dlogits(&logits)?;
        let k = logits.len() / b.max(1);
        if seed.len() != logits.len() {
            bail!("{} logit gradients for [{b}, {k}] logits", seed.len());
        }
        let grads = on_shards(ws, &ranges, values, |shard, r, v| {
            let seed = &seed[r.start * k..r.end * k];
            self.run_backward(shard, v, seed, (r.len(), c, h, w), norm)
        });
        let mut grad = Vec::with_capacity(pixels.len());
        for g in grads {
            grad.extend(g?);
        }
        Ok((logits, grad))
    }

    /// The reverse pass over the values a recording `run_forward` kept: d objective / d
    /// pixels `[B][C][H][W]` for d objective / d logits `seed` `[B][K]`.
    fn run_backward(
        &self,
        ws: &mut Workspace,
        mut values: Values,
        seed: &[f32],
        shape: (usize, usize, usize, usize),
        norm: &Normalize<'_>,
    ) -> Result<Vec<f32>> {
        let (b, c, h, w) = shape;
        let Workspace {
            plan,
            pool,
            col,
            argmax,
            saved,
            ..
        } = ws;
        let Some(plan) = plan.as_ref() else {
            bail!("engine plan missing");
        };
        let last = self.ops.len();
        let k = plan.dims[last].c;
        if seed.len() != b * k {
            bail!("{} logit gradients for [{b}, {k}] logits", seed.len());
        }
        let mut grads: Vec<Option<Vec<f32>>> = (0..=last).map(|_| None).collect();
        let mut g_out = pool.take(b * k);
        for ki in 0..k {
            for bi in 0..b {
                g_out[ki * b + bi] = seed[bi * k + ki];
            }
        }
        grads[last] = Some(g_out);

        for (i, op) in self.ops.iter().enumerate().rev() {
            let y = i + 1;
            let Some(mut gy) = grads[y].take() else {
                // Nothing downstream depends on this value: no contribution.
                if let Some(v) = values[y].take() {
                    pool.give(v);
                }
                continue;
            };
            let yv = values[y].take();
            if let Some(yv) = &yv {
                let act = match op {
                    Op::Conv { act, .. }
                    | Op::Affine { act, .. }
                    | Op::Add { act, .. }
                    | Op::Linear { act, .. } => *act,
                    _ => Activation::None,
                };
                act.mask_gradient(&mut gy, yv);
            }
            let yd = plan.dims[y];
            match op {
                Op::Conv { x, conv, .. } => {
                    let xd = plan.dims[*x];
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, xd.len());
                    conv.input_vjp(&gy, xd, &mut dx, acc, col);
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
                Op::Affine { x, scale, .. } => {
                    kernels::scale_channels(&mut gy, yd, scale);
                    accumulate_or_move(&mut grads[*x], gy, pool);
                }
                Op::Add { a, b: bv, .. } => {
                    match grads[*a].as_mut() {
                        Some(ga) => kernels::add_assign(ga, &gy),
                        None => {
                            let mut copy = pool.take(gy.len());
                            copy.copy_from_slice(&gy);
                            grads[*a] = Some(copy);
                        }
                    }
                    accumulate_or_move(&mut grads[*bv], gy, pool);
                }
                Op::MaxPool { x, .. } => {
                    let xd = plan.dims[*x];
                    let mut dx = grads[*x]
                        .take()
                        .unwrap_or_else(|| pool.take_zeroed(xd.len()));
                    pooling::max_pool_vjp(&gy, yd, &argmax[i], &mut dx, xd);
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
                Op::OptionA { x, pad } => {
                    let xd = plan.dims[*x];
                    let mut dx = grads[*x]
                        .take()
                        .unwrap_or_else(|| pool.take_zeroed(xd.len()));
                    kernels::option_a_vjp(&gy, yd, *pad, &mut dx, xd);
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
                Op::GlobalAvgPool { x } => {
                    let xd = plan.dims[*x];
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, xd.len());
                    pooling::global_avg_pool_vjp(&gy, xd, &mut dx, acc);
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
                Op::Flatten { x } => {
                    let xd = plan.dims[*x];
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, xd.len());
                    flatten::flatten_vjp(&gy, xd, &mut dx, acc);
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
                Op::Linear {
                    x,
                    weight,
                    out,
                    inp,
                    ..
                } => {
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, plan.dims[*x].len());
                    kernels::linear_vjp(weight, (*out, *inp, b), &gy, &mut dx, acc);
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
                Op::Tokens { x, prefix, .. } => {
                    let xd = plan.dims[*x];
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, xd.len());
                    let p = prefix.len() / xd.c.max(1);
                    tokens::tokens_vjp(&gy, (xd.c, b, xd.plane()), p, &mut dx, acc);
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
                Op::LayerNorm { x, gamma, .. } => {
                    let (Some(xv), stats) = (values[*x].as_deref(), &saved[i]) else {
                        bail!("op {i}: layer norm input was not kept");
                    };
                    if stats.len() != 2 * b * yd.h {
                        bail!("op {i}: layer norm statistics were not kept");
                    }
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, yd.len());
                    tokens::layer_norm_vjp((xv, stats), &gy, yd.c, gamma, &mut dx, acc);
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
                Op::TokenLinear {
                    x,
                    linear,
                    residual,
                } => {
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, plan.dims[*x].len());
                    linear.vjp(b * yd.h, &gy, &mut dx, acc, Epilogue::None);
                    grads[*x] = Some(dx);
                    pass_to_residual(&mut grads, *residual, gy, pool);
                }
                Op::Mlp { x, mlp, residual } => {
                    let rows = b * yd.h;
                    let derivative = &saved[i];
                    if derivative.len() != rows * mlp.hidden() {
                        bail!("op {i}: the MLP's GELU derivative was not kept");
                    }
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, plan.dims[*x].len());
                    let mut hidden = pool.take(rows * mlp.hidden());
                    mlp.vjp(rows, &gy, derivative, &mut hidden, &mut dx, acc);
                    grads[*x] = Some(dx);
                    pool.give(hidden);
                    pass_to_residual(&mut grads, *residual, gy, pool);
                }
                Op::Attention { qkv, heads, .. } => {
                    let Some(xv) = values[*qkv].as_deref() else {
                        bail!("op {i}: attention input was not kept");
                    };
                    let shape = attention_shape(plan.dims[*qkv], yd, *heads);
                    let (mut dx, acc) = take_grad(&mut grads[*qkv], pool, shape.qkv_len());
                    let mut scores = pool.take(shape.probs_len());
                    attention::attention_vjp(xv, &saved[i], &gy, shape, &mut scores, &mut dx, acc);
                    for buf in [scores, gy] {
                        pool.give(buf);
                    }
                    grads[*qkv] = Some(dx);
                }
                Op::SelectTokens {
                    x,
                    start,
                    count,
                    mean,
                } => {
                    let xd = plan.dims[*x];
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, xd.len());
                    tokens::select_tokens_vjp(
                        &gy,
                        (b, xd.h, xd.c),
                        (*start, *count, *mean),
                        &mut dx,
                        acc,
                    );
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
                Op::TokensToFeatures { x } => {
                    let (mut dx, acc) = take_grad(&mut grads[*x], pool, plan.dims[*x].len());
                    tokens::tokens_to_features_vjp(&gy, (b, yd.c), &mut dx, acc);
                    grads[*x] = Some(dx);
                    pool.give(gy);
                }
            }
            if let Some(v) = yv {
                pool.give(v);
            }
        }
        for v in values.into_iter().flatten() {
            pool.give(v);
        }

        // Through the normalisation, and back to NCHW.
        let plane = h * w;
        let mut grad = vec![0f32; b * c * plane];
        if let Some(g0) = grads[0].take() {
            for bi in 0..b {
                for ci in 0..c {
                    let s = norm.inv_std[ci];
                    let src = &g0[(ci * b + bi) * plane..][..plane];
                    let dst = &mut grad[(bi * c + ci) * plane..][..plane];
                    for (d, &g) in dst.iter_mut().zip(src) {
                        *d = g * s;
                    }
                }
            }
            pool.give(g0);
        }
        for g in grads.into_iter().flatten() {
            pool.give(g);
        }
        pool.end_call();
        Ok(grad)
    }
}

/// Runs `f(workspace, images, item)` for every shard of a batch (`parallel`), in parallel
/// and each with serial kernels, on the shard's own kept workspace; results in shard order.
fn on_shards<T: Send, R: Send>(
    ws: &mut Workspace,
    ranges: &[std::ops::Range<usize>],
    items: Vec<T>,
    f: impl Fn(&mut Workspace, std::ops::Range<usize>, T) -> R + Sync,
) -> Vec<R> {
    ws.shards.resize_with(ranges.len(), Workspace::default);
    ws.shards
        .par_iter_mut()
        .zip(ranges.par_iter())
        .zip(items.into_par_iter())
        .map(|((shard, r), item)| parallel::serial(|| f(shard, r.clone(), item)))
        .collect()
}

fn check_pixels(pixels: &[f32], (b, c, h, w): (usize, usize, usize, usize)) -> Result<()> {
    if pixels.len() != b * c * h * w {
        bail!(
            "engine input of {} values for [{b}, {c}, {h}, {w}]",
            pixels.len()
        );
    }
    Ok(())
}

/// The gradient buffer of a value: the one already there (to accumulate into), or a fresh
/// one of `len` with unspecified contents (to overwrite).
fn take_grad(slot: &mut Option<Vec<f32>>, pool: &mut BufferPool, len: usize) -> (Vec<f32>, bool) {
    match slot.take() {
        Some(g) => (g, true),
        None => (pool.take(len), false),
    }
}

/// The attention op's shape from its input's and output's dims.
fn attention_shape(xd: Dims, yd: Dims, heads: usize) -> attention::AttentionShape {
    attention::AttentionShape {
        batch: yd.b,
        tokens: xd.h,
        queries: yd.h,
        width: yd.c,
        heads,
    }
}

/// The gradient of an op's output, handed on to the residual added to it (whose gradient it
/// is too), or back to the pool when there is none.
fn pass_to_residual(
    grads: &mut Values,
    residual: Option<usize>,
    gy: Vec<f32>,
    pool: &mut BufferPool,
) {
    match residual {
        Some(r) => accumulate_or_move(&mut grads[r], gy, pool),
        None => pool.give(gy),
    }
}

/// `slot += g`, or `slot = g` when it holds nothing yet (no copy).
fn accumulate_or_move(slot: &mut Option<Vec<f32>>, g: Vec<f32>, pool: &mut BufferPool) {
    match slot.as_mut() {
        Some(s) => {
            kernels::add_assign(s, &g);
            pool.give(g);
        }
        None => *slot = Some(g),
    }
}

/// Whether the engine can run a network whose weights look like `t`: f32 on the CPU.
pub fn supports(t: &candle_core::Tensor) -> bool {
    t.dtype() == candle_core::DType::F32 && t.device().is_cpu()
}
