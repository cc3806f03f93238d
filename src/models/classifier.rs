//! The classifier API every analysis uses: logits for a batch of pixel-space images, and the
//! gradient of a scalar objective with respect to those pixels.
//!
//! How the gradient is computed is private to this module, so faster input-gradient kernels can
//! replace candle's autograd here without any caller changing.

use candle_core::{D, DType, Device, Tensor, Var};

use super::error::{ModelError, Result};
use super::spec::ModelSpec;

/// A network body: logits for an already normalised NCHW batch.
///
/// Implementations must be built only from candle operations that carry gradients
/// (see `models::layers`), so that the input gradient exists.
pub trait Network: Send + Sync {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor>;
}

/// The scalar whose gradient `input_gradient` returns. Each is summed over the batch, which is
/// only a device for getting every sample's own gradient in one backward pass.
#[derive(Clone, Debug, PartialEq)]
pub enum Objective {
    /// Σ_b CE(logits_b, y_b) = Σ_b (logsumexp(logits_b) − logits_b[y_b]).
    CrossEntropy(Vec<u32>),
    /// Σ_b softmax(logits_b)[y_b].
    Probability(Vec<u32>),
    /// Σ_b logits_b[y_b].
    Logit(Vec<u32>),
}

impl Objective {
    fn labels(&self) -> &[u32] {
        match self {
            Self::CrossEntropy(l) | Self::Probability(l) | Self::Logit(l) => l,
        }
    }

    /// The scalar objective for a batch of logits [B, K].
    pub fn evaluate(&self, logits: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, classes) = logits.dims2()?;
        let labels = self.labels();
        if labels.len() != batch {
            candle_core::bail!(
                "objective has {} labels for a batch of {batch}",
                labels.len()
            );
        }
        if let Some(bad) = labels.iter().find(|&&y| y as usize >= classes) {
            candle_core::bail!("label {bad} is out of range for {classes} classes");
        }
        let one_hot = one_hot(labels, classes, logits.device())?.to_dtype(logits.dtype())?;
        match self {
            Self::Logit(_) => (logits * &one_hot)?.sum_all(),
            Self::CrossEntropy(_) => {
                let picked = (logits * &one_hot)?.sum(D::Minus1)?;
                (log_sum_exp(logits)? - picked)?.sum_all()
            }
            Self::Probability(_) => (softmax(logits)? * &one_hot)?.sum_all(),
        }
    }
}

fn one_hot(labels: &[u32], classes: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mut data = vec![0f32; labels.len() * classes];
    for (row, &y) in labels.iter().enumerate() {
        data[row * classes + y as usize] = 1.0;
    }
    Tensor::from_vec(data, (labels.len(), classes), device)
}

/// Row-wise log-sum-exp over the last dimension, stable and differentiable.
/// The row maximum is detached: subtracting a constant does not change the value's gradient.
pub fn log_sum_exp(logits: &Tensor) -> candle_core::Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let sum = logits.broadcast_sub(&max)?.exp()?.sum_keepdim(D::Minus1)?;
    (sum.log()? + max)?.squeeze(D::Minus1)
}

/// Softmax over the last dimension, built from differentiable primitives. candle-nn's fused
/// softmax has no backward pass, so it must not appear in a gradient path.
pub fn softmax(logits: &Tensor) -> candle_core::Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let exp = logits.broadcast_sub(&max)?.exp()?;
    let sum = exp.sum_keepdim(D::Minus1)?;
    exp.broadcast_div(&sum)
}

/// A loaded model with its normalisation and metadata. Cheap to share across threads.
pub struct Classifier {
    spec: ModelSpec,
    network: Box<dyn Network>,
    device: Device,
    dtype: DType,
    mean: Tensor,
    inv_std: Tensor,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("spec", &self.spec)
            .field("device", &self.device)
            .field("dtype", &self.dtype)
            .finish_non_exhaustive()
    }
}

impl Classifier {
    pub fn new(
        spec: ModelSpec,
        network: Box<dyn Network>,
        device: Device,
        dtype: DType,
    ) -> Result<Self> {
        let norm = &spec.normalization;
        if norm.mean.len() != spec.channels || norm.std.len() != spec.channels {
            return Err(ModelError::Invalid(format!(
                "normalisation has {} means and {} stds for {} channels",
                norm.mean.len(),
                norm.std.len(),
                spec.channels
            )));
        }
        if let Some(s) = norm.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(ModelError::Invalid(format!(
                "normalisation std {s} must be positive"
            )));
        }
        let shape = (1, spec.channels, 1, 1);
        let mean = Tensor::from_slice(&norm.mean, shape, &device)?.to_dtype(dtype)?;
        let inv_std: Vec<f32> = norm.std.iter().map(|s| 1.0 / s).collect();
        let inv_std = Tensor::from_slice(&inv_std, shape, &device)?.to_dtype(dtype)?;
        Ok(Self {
            spec,
            network,
            device,
            dtype,
            mean,
            inv_std,
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Checks that `x` is an NCHW batch of this model's input shape.
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let [h, w] = self.spec.input_size;
        let expected = [self.spec.channels, h, w];
        match x.dims() {
            [_, rest @ ..] if rest == expected => Ok(()),
            dims => Err(ModelError::Invalid(format!(
                "input has shape {dims:?}, model `{}` expects [B, {}, {h}, {w}]",
                self.spec.architecture, self.spec.channels
            ))),
        }
    }

    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let normalized = x.broadcast_sub(&self.mean)?.broadcast_mul(&self.inv_std)?;
        self.network.forward(&normalized)
    }

    /// Logits [B, K] for pixel-space input [B, C, H, W] in [0, 1].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let x = x.to_device(&self.device)?.to_dtype(self.dtype)?.detach();
        Ok(self.logits(&x)?)
    }

    /// Softmax probabilities [B, K].
    pub fn probabilities(&self, x: &Tensor) -> Result<Tensor> {
        Ok(softmax(&self.forward(x)?)?)
    }

    /// Logits [B, K] and d objective / d x [B, C, H, W], taken through the normalisation.
    pub fn input_gradient(&self, x: &Tensor, objective: &Objective) -> Result<(Tensor, Tensor)> {
        self.check_input(x)?;
        let x = Var::from_tensor(&x.to_device(&self.device)?.to_dtype(self.dtype)?)?;
        let logits = self.logits(x.as_tensor())?;
        let scalar = objective.evaluate(&logits)?;
        let grads = scalar.backward()?;
        let grad = grads
            .get(x.as_tensor())
            .ok_or_else(|| ModelError::GradientMissing(self.spec.architecture.clone()))?
            .clone();
        Ok((logits.detach(), grad))
    }
}
