//! Differentiable building blocks shared by the architectures.
//!
//! Everything here is made of candle operations that have a backward pass, because the whole
//! point of a model in blindspot is its input gradient. Where candle's own op would break the
//! graph or be slow, this says why:
//! - candle's `max_pool2d` has a backward only when kernel == stride (not ResNet's 3x3/2), so max
//!   pooling is a running `maximum` over strided views.
//! - candle's grouped conv runs one conv per group, so a depthwise conv with 1152 channels
//!   would be 1152 tiny convs; it is a sum of k*k strided views times per-channel weights.
//! - candle-nn's fused softmax and layer norm have no backward; ours are composed of primitives.

use candle_core::{D, DType, Module, Result, Tensor};

/// Spatial padding of a convolution or pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// The same number of pixels on every side (PyTorch).
    Symmetric(usize),
    /// TensorFlow "SAME": total = max((ceil(i/s)-1)*s + k - i, 0), the extra pixel right/bottom.
    TfSame,
}

impl Padding {
    /// (before, after) padding for one spatial dimension.
    pub fn amounts(self, input: usize, kernel: usize, stride: usize) -> (usize, usize) {
        match self {
            Self::Symmetric(p) => (p, p),
            Self::TfSame => {
                let out = input.div_ceil(stride);
                let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(input);
                (total / 2, total - total / 2)
            }
        }
    }
}

/// Pads the two spatial dims of an NCHW tensor with `value`.
fn pad_spatial(
    x: &Tensor,
    (top, bottom): (usize, usize),
    (left, right): (usize, usize),
    value: f64,
) -> Result<Tensor> {
    if top + bottom + left + right == 0 {
        return Ok(x.clone());
    }
    if value == 0.0 {
        return x
            .pad_with_zeros(2, top, bottom)?
            .pad_with_zeros(3, left, right);
    }
    let (b, c, h, w) = x.dims4()?;
    let mut rows = Vec::with_capacity(3);
    if top > 0 {
        rows.push(Tensor::full(value, (b, c, top, w), x.device())?.to_dtype(x.dtype())?);
    }
    rows.push(x.clone());
    if bottom > 0 {
        rows.push(Tensor::full(value, (b, c, bottom, w), x.device())?.to_dtype(x.dtype())?);
    }
    let x = Tensor::cat(&rows, 2)?;
    let h = h + top + bottom;
    let (device, dtype) = (x.device().clone(), x.dtype());
    let mut cols = Vec::with_capacity(3);
    if left > 0 {
        cols.push(Tensor::full(value, (b, c, h, left), &device)?.to_dtype(dtype)?);
    }
    cols.push(x);
    if right > 0 {
        cols.push(Tensor::full(value, (b, c, h, right), &device)?.to_dtype(dtype)?);
    }
    Tensor::cat(&cols, 3)
}

/// Elements `offset, offset + stride, ...` (`count` of them) along `dim`, as a differentiable
/// view: narrow, pad the tail to a multiple of the stride, split the dim and keep phase 0.
pub fn strided(
    x: &Tensor,
    dim: usize,
    offset: usize,
    stride: usize,
    count: usize,
) -> Result<Tensor> {
    if stride == 1 {
        return x.narrow(dim, offset, count);
    }
    let len = x.dim(dim)?;
    let available = len.saturating_sub(offset).min(stride * count);
    let view = x.narrow(dim, offset, available)?;
    let view = if available < stride * count {
        view.pad_with_zeros(dim, 0, stride * count - available)?
    } else {
        view
    };
    let mut shape = view.dims().to_vec();
    shape[dim] = count;
    shape.insert(dim + 1, stride);
    view.contiguous()?
        .reshape(shape)?
        .narrow(dim + 1, 0, 1)?
        .squeeze(dim + 1)
}

/// The CIFAR ResNet option-A shortcut: `x[:, :, ::2, ::2]` zero-padded by `pad` channels on
/// each side (He et al. 2016, §4.2), with no parameters.
pub fn option_a_shortcut(x: &Tensor, pad: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let sub = strided(&strided(x, 2, 0, 2, h.div_ceil(2))?, 3, 0, 2, w.div_ceil(2))?;
    sub.pad_with_zeros(1, pad, pad)
}

fn output_size(padded: usize, kernel: usize, stride: usize) -> usize {
    (padded - kernel) / stride + 1
}

/// A 2-D convolution with optional bias, any padding, and groups either 1 or depthwise.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: Padding,
    /// For depthwise convs: the k*k per-channel weight columns, each shaped [1, C, 1, 1].
    depthwise_taps: Option<Vec<Tensor>>,
}

impl Conv2d {
    /// `weight` is [out, in/groups, kh, kw]; `groups` must be 1 or equal to the channel count.
    pub fn new(
        weight: Tensor,
        bias: Option<Tensor>,
        stride: usize,
        padding: Padding,
        groups: usize,
    ) -> Result<Self> {
        let (out_c, in_per_group, kh, kw) = weight.dims4()?;
        let depthwise_taps = if groups == 1 {
            None
        } else if in_per_group == 1 && groups == out_c {
            let mut taps = Vec::with_capacity(kh * kw);
            for dy in 0..kh {
                for dx in 0..kw {
                    let tap = weight
                        .narrow(2, dy, 1)?
                        .narrow(3, dx, 1)?
                        .reshape((1, out_c, 1, 1))?;
                    taps.push(tap.contiguous()?);
                }
            }
            Some(taps)
        } else {
            candle_core::bail!(
                "only groups = 1 or depthwise convolutions are supported, got groups {groups} for weight {:?}",
                weight.dims()
            )
        };
        Ok(Self {
            weight,
            bias,
            stride,
            padding,
            depthwise_taps,
        })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// What the engine compiles this conv from.
    pub(crate) fn parts(&self) -> ConvParts<'_> {
        ConvParts {
            weight: &self.weight,
            bias: self.bias.as_ref(),
            stride: self.stride,
            padding: self.padding,
            depthwise: self.depthwise_taps.is_some(),
        }
    }

    fn kernel(&self) -> (usize, usize) {
        let dims = self.weight.dims();
        (dims[2], dims[3])
    }

    /// Folds an inference-mode batch norm that follows this conv into its weight and bias.
    pub fn fold_batch_norm(self, bn: &BatchNorm) -> Result<Self> {
        let (scale, shift) = bn.scale_shift()?;
        let out_c = self.weight.dim(0)?;
        let weight = self
            .weight
            .broadcast_mul(&scale.reshape((out_c, 1, 1, 1))?)?;
        let bias = match &self.bias {
            Some(b) => ((b * &scale)? + &shift)?,
            None => shift,
        };
        let groups = if self.depthwise_taps.is_some() {
            out_c
        } else {
            1
        };
        Self::new(weight, Some(bias), self.stride, self.padding, groups)
    }

    fn forward_depthwise(&self, x: &Tensor, taps: &[Tensor]) -> Result<Tensor> {
        let (kh, kw) = self.kernel();
        let (_, _, h, w) = x.dims4()?;
        let x = pad_spatial(
            x,
            self.padding.amounts(h, kh, self.stride),
            self.padding.amounts(w, kw, self.stride),
            0.0,
        )?;
        let (_, _, hp, wp) = x.dims4()?;
        let (ho, wo) = (
            output_size(hp, kh, self.stride),
            output_size(wp, kw, self.stride),
        );
        let mut acc: Option<Tensor> = None;
        for dy in 0..kh {
            let rows = strided(&x, 2, dy, self.stride, ho)?;
            for dx in 0..kw {
                let view = strided(&rows, 3, dx, self.stride, wo)?;
                let term = view.broadcast_mul(&taps[dy * kw + dx])?;
                acc = Some(match acc {
                    Some(a) => (a + term)?,
                    None => term,
                });
            }
        }
        match acc {
            Some(a) => Ok(a),
            None => candle_core::bail!("depthwise conv with an empty kernel"),
        }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.depthwise_taps {
            Some(taps) => self.forward_depthwise(x, taps)?,
            None => {
                let (kh, kw) = self.kernel();
                let (_, _, h, w) = x.dims4()?;
                let (top, bottom) = self.padding.amounts(h, kh, self.stride);
                let (left, right) = self.padding.amounts(w, kw, self.stride);
                if top == bottom && left == right && top == left {
                    x.conv2d(&self.weight, top, self.stride, 1, 1)?
                } else {
                    let x = pad_spatial(x, (top, bottom), (left, right), 0.0)?;
                    x.conv2d(&self.weight, 0, self.stride, 1, 1)?
                }
            }
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
            None => Ok(y),
        }
    }
}

/// A conv's weights and settings, borrowed (see `Conv2d::parts`).
pub(crate) struct ConvParts<'a> {
    pub weight: &'a Tensor,
    pub bias: Option<&'a Tensor>,
    pub stride: usize,
    pub padding: Padding,
    pub depthwise: bool,
}

/// Inference-mode batch norm (running statistics).
#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub eps: f64,
}

impl BatchNorm {
    /// Per-channel (scale, shift) with y = x * scale + shift.
    pub fn scale_shift(&self) -> Result<(Tensor, Tensor)> {
        let scale = self
            .weight
            .broadcast_div(&(&self.running_var + self.eps)?.sqrt()?)?;
        let shift = (&self.bias - (&self.running_mean * &scale)?)?;
        Ok((scale, shift))
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (scale, shift) = self.scale_shift()?;
        let c = scale.dim(0)?;
        x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?
            .broadcast_add(&shift.reshape((1, c, 1, 1))?)
    }
}

/// A conv followed by batch norm: folded into one conv at load time, or kept apart
/// (the no-folding baseline that benchmarks compare against).
#[derive(Clone, Debug)]
pub enum ConvBn {
    Folded(Conv2d),
    Separate(Conv2d, BatchNorm),
}

impl ConvBn {
    pub fn new(conv: Conv2d, bn: BatchNorm, fold: bool) -> Result<Self> {
        Ok(if fold {
            Self::Folded(conv.fold_batch_norm(&bn)?)
        } else {
            Self::Separate(conv, bn)
        })
    }
}

impl ConvBn {
    /// The convolution (with the batch norm folded in, when it is).
    pub fn conv(&self) -> &Conv2d {
        match self {
            Self::Folded(conv) | Self::Separate(conv, _) => conv,
        }
    }
}

impl Module for ConvBn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Folded(conv) => conv.forward(x),
            Self::Separate(conv, bn) => bn.forward(&conv.forward(x)?),
        }
    }
}

/// y = x W^T + b over the last dimension, for inputs of any rank.
#[derive(Clone, Debug)]
pub struct Linear {
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// `weight` is [out, in] as PyTorch stores it.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        Ok(Self {
            weight_t: weight.t()?.contiguous()?,
            bias,
        })
    }

    /// (Wᵀ [in, out], bias), for the engine.
    pub(crate) fn parts(&self) -> (&Tensor, Option<&Tensor>) {
        (&self.weight_t, self.bias.as_ref())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.broadcast_matmul(&self.weight_t)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Max pooling over k x k windows, padding with a very negative value as PyTorch does with -inf.
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    // -3e38 fits f32 and f64; with -inf the masked backward would multiply 0 by inf.
    let x = pad_spatial(x, (padding, padding), (padding, padding), -3.0e38)?;
    let (_, _, hp, wp) = x.dims4()?;
    let (ho, wo) = (
        output_size(hp, kernel, stride),
        output_size(wp, kernel, stride),
    );
    let mut acc: Option<Tensor> = None;
    for dy in 0..kernel {
        let rows = strided(&x, 2, dy, stride, ho)?;
        for dx in 0..kernel {
            let view = strided(&rows, 3, dx, stride, wo)?;
            acc = Some(match acc {
                Some(a) => a.maximum(&view)?,
                None => view,
            });
        }
    }
    match acc {
        Some(a) => Ok(a),
        None => candle_core::bail!("max pool with an empty kernel"),
    }
}

/// Mean over the spatial dims: [B, C, H, W] -> [B, C].
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)?.mean(D::Minus1)
}

/// min(max(x, 0), 6).
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    x.relu()?.minimum(6.0)
}

/// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), composed from `erf` whose backward is exact
/// (candle's fused `gelu_erf` backward uses a 6-digit constant).
pub fn gelu_exact(x: &Tensor) -> Result<Tensor> {
    let cdf = ((x / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5;
    x * cdf?
}

/// Layer norm over the last dimension.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centered.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// Converts a tensor to the model's dtype unless it already is.
pub fn to_dtype(t: Tensor, dtype: DType) -> Result<Tensor> {
    if t.dtype() == dtype {
        Ok(t)
    } else {
        t.to_dtype(dtype)
    }
}
