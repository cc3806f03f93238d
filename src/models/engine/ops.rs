//! The ops a program is made of, and the shapes they give each value for one input shape.

use candle_core::{Result, bail};

use super::Program;
use super::attention::AttentionShape;
use super::kernels::{Activation, ConvWeights, Dims};
use super::token_linear::{Mlp, TokenLinear};

/// A value of a program: the network input (after normalisation) or the output of an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value(pub(super) usize);

#[derive(Debug)]
pub(super) enum Op {
    Conv {
        x: usize,
        conv: Box<ConvWeights>,
        act: Activation,
    },
    /// A per-channel scale and shift: batch norm left unfolded (the benchmark baseline).
    Affine {
        x: usize,
        scale: Vec<f32>,
        shift: Vec<f32>,
        act: Activation,
    },
    Add {
        a: usize,
        b: usize,
        act: Activation,
    },
    MaxPool {
        x: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    },
    OptionA {
        x: usize,
        pad: usize,
    },
    GlobalAvgPool {
        x: usize,
    },
    /// `[C][B][H][W]` to `[C·H·W][B]` in PyTorch's NCHW feature order (`flatten`).
    Flatten {
        x: usize,
    },
    Linear {
        x: usize,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        out: usize,
        inp: usize,
        act: Activation,
    },
    // Vision-transformer ops (`tokens`). Their values are `[B][N][D]` token rows, described
    // as `Dims { c: D, b: B, h: N, w: 1 }`.
    /// Patch embeddings (a conv's `[D][B][gh][gw]`) to tokens, prefix tokens first, plus the
    /// position embeddings.
    Tokens {
        x: usize,
        /// `[P][D]`: the class token (and distillation token).
        prefix: Vec<f32>,
        /// `[P + gh·gw][D]`.
        pos: Vec<f32>,
    },
    LayerNorm {
        x: usize,
        gamma: Vec<f32>,
        beta: Vec<f32>,
        eps: f32,
    },
    /// A linear layer applied to every token, plus the value `residual` where given (a
    /// residual connection, added in the product's epilogue).
    TokenLinear {
        x: usize,
        linear: TokenLinear,
        residual: Option<usize>,
    },
    /// A transformer block's MLP, `fc2(GELU(fc1(x)))` on every token, plus `residual` where
    /// given, as one op: GELU and the residual run in the products' epilogues
    /// (`token_linear`).
    Mlp {
        x: usize,
        mlp: Box<Mlp>,
        residual: Option<usize>,
    },
    /// Multi-head self-attention over fused `qkv` tokens `[B][N][3D]`, before the output
    /// projection; with `queries`, only the first that many tokens attend and come out.
    Attention {
        qkv: usize,
        heads: usize,
        queries: Option<usize>,
    },
    /// Tokens `start..start + count`, or their mean as one token.
    SelectTokens {
        x: usize,
        start: usize,
        count: usize,
        mean: bool,
    },
    /// Tokens `[B][N][D]` to features `[N·D][B]`, for the linear head.
    TokensToFeatures {
        x: usize,
    },
}

impl Op {
    pub(super) fn inputs(&self) -> [Option<usize>; 2] {
        match *self {
            Self::Conv { x, .. }
            | Self::Affine { x, .. }
            | Self::MaxPool { x, .. }
            | Self::OptionA { x, .. }
            | Self::GlobalAvgPool { x }
            | Self::Flatten { x }
            | Self::Linear { x, .. }
            | Self::Tokens { x, .. }
            | Self::LayerNorm { x, .. }
            | Self::SelectTokens { x, .. }
            | Self::TokensToFeatures { x } => [Some(x), None],
            Self::Attention { qkv, .. } => [Some(qkv), None],
            Self::TokenLinear { x, residual, .. } | Self::Mlp { x, residual, .. } => {
                [Some(x), residual]
            }
            Self::Add { a, b, .. } => [Some(a), Some(b)],
        }
    }

    /// Whether the reverse pass reads this op's output (to mask by its activation).
    pub(super) fn output_needed_backward(&self) -> bool {
        match self {
            Self::Conv { act, .. }
            | Self::Affine { act, .. }
            | Self::Add { act, .. }
            | Self::Linear { act, .. } => *act != Activation::None,
            _ => false,
        }
    }

    /// Whether the reverse pass reads this op's input (layer norm's statistics and
    /// attention's Q, K and V are functions of it; the MLP keeps its GELU derivative itself).
    pub(super) fn input_needed_backward(&self) -> bool {
        matches!(self, Self::LayerNorm { .. } | Self::Attention { .. })
    }
}

/// Per-input-shape facts about a program.
pub(super) struct Plan {
    pub input: Dims,
    pub dims: Vec<Dims>,
    /// The last op that reads each value in the forward pass.
    pub last_use: Vec<usize>,
    /// Whether a recording forward pass keeps each value for the reverse pass.
    pub kept_backward: Vec<bool>,
}

impl Program {
    pub(super) fn plan(&self, input: Dims) -> Result<Plan> {
        let mut dims = Vec::with_capacity(self.ops.len() + 1);
        dims.push(input);
        let mut last_use = vec![0; self.ops.len() + 1];
        let mut kept_backward = vec![false; self.ops.len() + 1];
        for (i, op) in self.ops.iter().enumerate() {
            kept_backward[i + 1] = op.output_needed_backward();
            for x in op.inputs().into_iter().flatten() {
                last_use[x] = i;
                kept_backward[x] |= op.input_needed_backward();
            }
            let d = match op {
                Op::Conv { x, conv, .. } => {
                    let xd = dims[*x];
                    let (kh, kw, s) = (conv.kh, conv.kw, conv.stride);
                    let (t, b) = conv.padding.amounts(xd.h, kh, s);
                    let (l, r) = conv.padding.amounts(xd.w, kw, s);
                    if xd.c != conv.in_c || xd.h + t + b < kh || xd.w + l + r < kw {
                        bail!(
                            "op {i}: a {kh}x{kw} conv over {} channels cannot take a {}x{}x{} input",
                            conv.in_c,
                            xd.c,
                            xd.h,
                            xd.w
                        );
                    }
                    conv.output_dims(xd)
                }
                Op::Affine { x, scale, .. } => {
                    if dims[*x].c != scale.len() {
                        bail!("op {i}: {} scales for {} channels", scale.len(), dims[*x].c);
                    }
                    dims[*x]
                }
                Op::Add { a, b, .. } => {
                    if dims[*a] != dims[*b] {
                        bail!("op {i}: adding {:?} to {:?}", dims[*a], dims[*b]);
                    }
                    dims[*a]
                }
                Op::MaxPool {
                    x,
                    kernel,
                    stride,
                    pad,
                } => {
                    let xd = dims[*x];
                    if xd.h + 2 * pad < *kernel || xd.w + 2 * pad < *kernel || 2 * pad > *kernel {
                        bail!("op {i}: max pool {kernel}/{stride}/{pad} over {xd:?}");
                    }
                    Dims {
                        h: (xd.h + 2 * pad - kernel) / stride + 1,
                        w: (xd.w + 2 * pad - kernel) / stride + 1,
                        ..xd
                    }
                }
                Op::OptionA { x, pad } => {
                    let xd = dims[*x];
                    Dims {
                        c: xd.c + 2 * pad,
                        h: xd.h.div_ceil(2),
                        w: xd.w.div_ceil(2),
                        ..xd
                    }
                }
                Op::GlobalAvgPool { x } => Dims {
                    h: 1,
                    w: 1,
                    ..dims[*x]
                },
                Op::Flatten { x } => Dims {
                    c: dims[*x].c * dims[*x].plane(),
                    h: 1,
                    w: 1,
                    ..dims[*x]
                },
                Op::Linear { x, out, inp, .. } => {
                    let xd = dims[*x];
                    if xd.c != *inp || xd.plane() != 1 {
                        bail!("op {i}: linear {inp} -> {out} over {xd:?}");
                    }
                    Dims { c: *out, ..xd }
                }
                Op::Tokens { x, prefix, pos } => {
                    let xd = dims[*x];
                    let tokens = prefix.len() / xd.c.max(1) + xd.plane();
                    if xd.c == 0 || prefix.len() % xd.c != 0 || pos.len() != tokens * xd.c {
                        bail!(
                            "op {i}: {} position embeddings for {tokens} tokens of width {} \
                             (patch grid {}x{}: the image size the model was built for?)",
                            pos.len() / xd.c.max(1),
                            xd.c,
                            xd.h,
                            xd.w
                        );
                    }
                    Dims {
                        h: tokens,
                        w: 1,
                        ..xd
                    }
                }
                Op::LayerNorm { x, gamma, .. } => {
                    let xd = dims[*x];
                    if xd.c != gamma.len() || xd.w != 1 {
                        bail!("op {i}: layer norm of width {} over {xd:?}", gamma.len());
                    }
                    xd
                }
                Op::TokenLinear {
                    x,
                    linear,
                    residual,
                } => {
                    let (xd, inp, out) = (dims[*x], linear.inp, linear.out);
                    if xd.c != inp || xd.w != 1 {
                        bail!("op {i}: token linear {inp} -> {out} over {xd:?}");
                    }
                    residual_dims(i, &dims, *residual, Dims { c: out, ..xd })?
                }
                Op::Mlp { x, mlp, residual } => {
                    let xd = dims[*x];
                    let (inp, hidden, out) = (mlp.fc1.inp, mlp.hidden(), mlp.fc2.out);
                    if xd.c != inp || xd.w != 1 || mlp.fc2.inp != hidden {
                        bail!(
                            "op {i}: MLP {inp} -> {hidden} -> {} -> {out} over {xd:?}",
                            mlp.fc2.inp
                        );
                    }
                    residual_dims(i, &dims, *residual, Dims { c: out, ..xd })?
                }
                Op::Attention {
                    qkv,
                    heads,
                    queries,
                } => {
                    let xd = dims[*qkv];
                    if xd.w != 1 || xd.c % 3 != 0 || *heads == 0 || (xd.c / 3) % heads != 0 {
                        bail!("op {i}: {heads}-head attention over fused qkv {xd:?}");
                    }
                    let queries = queries.unwrap_or(xd.h);
                    if queries == 0 || queries > xd.h {
                        bail!("op {i}: {queries} queries among {} tokens", xd.h);
                    }
                    Dims {
                        c: xd.c / 3,
                        h: queries,
                        ..xd
                    }
                }
                Op::SelectTokens {
                    x,
                    start,
                    count,
                    mean,
                } => {
                    let xd = dims[*x];
                    if xd.w != 1 || *count == 0 || start + count > xd.h {
                        bail!("op {i}: tokens {start}..{} of {xd:?}", start + count);
                    }
                    Dims {
                        h: if *mean { 1 } else { *count },
                        ..xd
                    }
                }
                Op::TokensToFeatures { x } => {
                    let xd = dims[*x];
                    Dims {
                        c: xd.c * xd.plane(),
                        h: 1,
                        w: 1,
                        ..xd
                    }
                }
            };
            dims.push(d);
        }
        Ok(Plan {
            input,
            dims,
            last_use,
            kept_backward,
        })
    }

    /// Multiply-add FLOPs (2 per MAC) of one forward pass over `[b, c, h, w]`: convolutions
    /// and linear layers, the work a GEMM-bound pass cannot avoid.
    pub fn forward_flops(&self, (b, c, h, w): (usize, usize, usize, usize)) -> Result<f64> {
        let plan = self.plan(Dims { c, b, h, w })?;
        let mut flops = 0f64;
        for (i, op) in self.ops.iter().enumerate() {
            let yd = plan.dims[i + 1];
            flops += match op {
                Op::Conv { conv, .. } => {
                    let per_output = if conv.depthwise {
                        conv.kh * conv.kw
                    } else {
                        conv.in_c * conv.kh * conv.kw
                    };
                    2.0 * (yd.len() * per_output) as f64
                }
                Op::Linear { out, inp, .. } => 2.0 * (out * inp * b) as f64,
                Op::TokenLinear { linear, .. } => 2.0 * (linear.out * linear.inp * b * yd.h) as f64,
                Op::Mlp { mlp, .. } => {
                    let macs = mlp.hidden() * (mlp.fc1.inp + mlp.fc2.out);
                    2.0 * (macs * b * yd.h) as f64
                }
                Op::Attention { qkv, heads, .. } => AttentionShape {
                    batch: b,
                    tokens: plan.dims[*qkv].h,
                    queries: yd.h,
                    width: yd.c,
                    heads: *heads,
                }
                .forward_flops(),
                _ => 0.0,
            };
        }
        Ok(flops)
    }
}

/// `out`, after checking that a residual added to op `i`'s output `out` has its shape.
fn residual_dims(i: usize, dims: &[Dims], residual: Option<usize>, out: Dims) -> Result<Dims> {
    if let Some(r) = residual
        && dims[r] != out
    {
        bail!("op {i}: adding a residual {:?} to {out:?}", dims[r]);
    }
    Ok(out)
}
