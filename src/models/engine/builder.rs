//! `ProgramBuilder`: a network records itself as engine ops, its weights copied into the
//! layouts the kernels want.

use candle_core::{Result, bail};

use super::Program;
use super::kernels::{Activation, ConvWeights};
use super::ops::{Op, Value};
use super::token_linear::{Mlp, TokenLinear};
use crate::models::layers::{Conv2d, ConvBn, LayerNorm, Linear};

fn f32_data(t: &candle_core::Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Records a network as ops on values; value `k + 1` is the output of op `k`.
#[derive(Debug, Default)]
pub struct ProgramBuilder {
    ops: Vec<Op>,
}

impl ProgramBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The normalised network input.
    pub fn input(&self) -> Value {
        Value(0)
    }

    fn push(&mut self, op: Op) -> Value {
        self.ops.push(op);
        Value(self.ops.len())
    }

    /// `act(conv(x) + bias)`. Weights must be f32 (the engine is f32 only).
    pub fn conv(&mut self, x: Value, conv: &Conv2d, act: Activation) -> Result<Value> {
        let parts = conv.parts();
        let (out_c, in_per_group, kh, kw) = parts.weight.dims4()?;
        let weight = f32_data(parts.weight)?;
        let (in_c, weight_t) = if parts.depthwise {
            (out_c, Vec::new())
        } else {
            let k = in_per_group * kh * kw;
            let mut t = vec![0f32; weight.len()];
            for o in 0..out_c {
                for i in 0..k {
                    t[i * out_c + o] = weight[o * k + i];
                }
            }
            (in_per_group, t)
        };
        let bias = parts.bias.map(f32_data).transpose()?;
        let conv = ConvWeights {
            out_c,
            in_c,
            kh,
            kw,
            stride: parts.stride,
            padding: parts.padding,
            depthwise: parts.depthwise,
            weight,
            weight_t,
            bias,
        };
        Ok(self.push(Op::Conv {
            x: x.0,
            conv: Box::new(conv),
            act,
        }))
    }

    /// A conv and its batch norm, folded or not as the layer was built.
    pub fn conv_bn(&mut self, x: Value, layer: &ConvBn, act: Activation) -> Result<Value> {
        match layer {
            ConvBn::Folded(conv) => self.conv(x, conv, act),
            ConvBn::Separate(conv, bn) => {
                let y = self.conv(x, conv, Activation::None)?;
                let (scale, shift) = bn.scale_shift()?;
                Ok(self.push(Op::Affine {
                    x: y.0,
                    scale: f32_data(&scale)?,
                    shift: f32_data(&shift)?,
                    act,
                }))
            }
        }
    }

    /// `act(a + b)`.
    pub fn add(&mut self, a: Value, b: Value, act: Activation) -> Value {
        self.push(Op::Add {
            a: a.0,
            b: b.0,
            act,
        })
    }

    pub fn max_pool(&mut self, x: Value, kernel: usize, stride: usize, pad: usize) -> Value {
        self.push(Op::MaxPool {
            x: x.0,
            kernel,
            stride,
            pad,
        })
    }

    pub fn option_a_shortcut(&mut self, x: Value, pad: usize) -> Value {
        self.push(Op::OptionA { x: x.0, pad })
    }

    pub fn global_avg_pool(&mut self, x: Value) -> Value {
        self.push(Op::GlobalAvgPool { x: x.0 })
    }

    /// NCHW flatten of `x` to one feature vector per image, for a linear head.
    pub fn flatten(&mut self, x: Value) -> Value {
        self.push(Op::Flatten { x: x.0 })
    }

    pub fn linear(&mut self, x: Value, linear: &Linear) -> Result<Value> {
        self.linear_act(x, linear, Activation::None)
    }

    /// `act(linear(x))`: a hidden layer of an MLP head.
    pub fn linear_act(&mut self, x: Value, linear: &Linear, act: Activation) -> Result<Value> {
        let (weight_t, bias) = linear.parts();
        let (inp, out) = weight_t.dims2()?;
        let weight = f32_data(&weight_t.t()?.contiguous()?)?;
        let bias = bias.map(f32_data).transpose()?;
        Ok(self.push(Op::Linear {
            x: x.0,
            weight,
            bias,
            out,
            inp,
            act,
        }))
    }

    /// Patch embeddings `x` (a conv's output) to tokens: `prefix` `[1, P, D]` (class and
    /// distillation tokens) first, then the patches, plus `pos` `[1, P + patches, D]`.
    pub fn tokens(
        &mut self,
        x: Value,
        prefix: &candle_core::Tensor,
        pos: &candle_core::Tensor,
    ) -> Result<Value> {
        Ok(self.push(Op::Tokens {
            x: x.0,
            prefix: f32_data(prefix)?,
            pos: f32_data(pos)?,
        }))
    }

    /// Layer norm over each token's channels.
    pub fn layer_norm(&mut self, x: Value, norm: &LayerNorm) -> Result<Value> {
        Ok(self.push(Op::LayerNorm {
            x: x.0,
            gamma: f32_data(&norm.weight)?,
            beta: f32_data(&norm.bias)?,
            eps: norm.eps as f32,
        }))
    }

    /// A linear layer on every token, its outputs times `out_scale` when given (LayerScale's
    /// gamma, folded into the weights and bias here), plus `residual` when given (a residual
    /// connection: `residual + out_scale·linear(x)`).
    pub fn token_linear(
        &mut self,
        x: Value,
        linear: &Linear,
        out_scale: Option<&candle_core::Tensor>,
        residual: Option<Value>,
    ) -> Result<Value> {
        let linear = token_linear(linear, out_scale)?;
        Ok(self.push(Op::TokenLinear {
            x: x.0,
            linear,
            residual: residual.map(|r| r.0),
        }))
    }

    /// A transformer block's MLP on every token, `fc2(GELU(fc1(x)))` with exact (erf) GELU,
    /// its outputs times `out_scale` and plus `residual` when given (as `token_linear`).
    pub fn mlp(
        &mut self,
        x: Value,
        (fc1, fc2): (&Linear, &Linear),
        out_scale: Option<&candle_core::Tensor>,
        residual: Option<Value>,
    ) -> Result<Value> {
        let mlp = Mlp {
            fc1: token_linear(fc1, None)?,
            fc2: token_linear(fc2, out_scale)?,
        };
        if mlp.fc2.inp != mlp.hidden() {
            bail!(
                "an MLP of {} hidden units cannot feed a layer of {} inputs",
                mlp.hidden(),
                mlp.fc2.inp
            );
        }
        Ok(self.push(Op::Mlp {
            x: x.0,
            mlp: Box::new(mlp),
            residual: residual.map(|r| r.0),
        }))
    }

    /// Multi-head self-attention over fused `qkv` tokens (before the output projection).
    /// With `queries`, only the first that many tokens attend and come out: every token is
    /// still a key and a value, so this is exact for whatever reads only those tokens.
    pub fn attention(&mut self, qkv: Value, heads: usize, queries: Option<usize>) -> Value {
        self.push(Op::Attention {
            qkv: qkv.0,
            heads,
            queries,
        })
    }

    /// Tokens `start..start + count` of each image, or their mean when `mean`.
    pub fn select_tokens(&mut self, x: Value, start: usize, count: usize, mean: bool) -> Value {
        self.push(Op::SelectTokens {
            x: x.0,
            start,
            count,
            mean,
        })
    }

    /// Tokens to one feature vector per image (the tokens concatenated), for a linear head.
    pub fn tokens_to_features(&mut self, x: Value) -> Value {
        self.push(Op::TokensToFeatures { x: x.0 })
    }

    /// The mean of several linear heads, head `i` reading the `i`-th block of `x`'s features:
    /// distilled DeiT's `(head(cls) + head_dist(dist)) / 2` as one product.
    pub fn mean_of_heads(&mut self, x: Value, heads: &[&Linear]) -> Result<Value> {
        let mut parts = Vec::with_capacity(heads.len());
        for head in heads {
            let (weight_t, bias) = head.parts();
            let (inp, out) = weight_t.dims2()?;
            parts.push((
                inp,
                out,
                f32_data(&weight_t.t()?.contiguous()?)?,
                bias.map(f32_data).transpose()?,
            ));
        }
        let Some(&(inp, out, ..)) = parts.first() else {
            bail!("mean_of_heads needs at least one head");
        };
        if parts.iter().any(|p| p.0 != inp || p.1 != out) {
            bail!("heads of different shapes cannot be averaged");
        }
        let k = parts.len();
        let share = 1.0 / k as f32;
        let mut weight = vec![0f32; out * k * inp];
        let mut bias = vec![0f32; out];
        for (h, (_, _, w, b)) in parts.iter().enumerate() {
            for o in 0..out {
                let dst = &mut weight[o * k * inp + h * inp..][..inp];
                dst.iter_mut()
                    .zip(&w[o * inp..(o + 1) * inp])
                    .for_each(|(d, &v)| *d = v * share);
            }
            if let Some(b) = b {
                bias.iter_mut().zip(b).for_each(|(d, &v)| *d += v * share);
            }
        }
        Ok(self.push(Op::Linear {
            x: x.0,
            weight,
            bias: Some(bias),
            out,
            inp: k * inp,
            act: Activation::None,
        }))
    }

    /// The program whose output is the last value recorded (the logits).
    pub fn finish(self) -> Result<Program> {
        if !matches!(self.ops.last(), Some(Op::Linear { .. })) {
            bail!("a program must end in the classifier's linear layer");
        }
        Ok(Program { ops: self.ops })
    }

    /// A feature extractor with no classifier head (LPIPS's backbone): its values are read
    /// with `Program::with_features`, never as logits.
    pub fn finish_features(self) -> Result<Program> {
        if self.ops.is_empty() {
            bail!("a feature program needs at least one op");
        }
        Ok(Program { ops: self.ops })
    }
}

/// A linear layer's weights for the token ops, its outputs times `out_scale` when given.
fn token_linear(linear: &Linear, out_scale: Option<&candle_core::Tensor>) -> Result<TokenLinear> {
    let (weight_t, bias) = linear.parts();
    let (inp, out) = weight_t.dims2()?;
    let mut weight_t = f32_data(weight_t)?;
    let mut bias = bias.map(f32_data).transpose()?;
    if let Some(scale) = out_scale {
        let scale = f32_data(scale)?;
        if scale.len() != out {
            bail!("{} scales for a linear layer of {out} outputs", scale.len());
        }
        for row in weight_t.chunks_mut(out) {
            row.iter_mut().zip(&scale).for_each(|(w, &s)| *w *= s);
        }
        if let Some(b) = bias.as_mut() {
            b.iter_mut().zip(&scale).for_each(|(b, &s)| *b *= s);
        }
    }
    Ok(TokenLinear::new(weight_t, bias, out, inp))
}
