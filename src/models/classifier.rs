//! The classifier API every analysis uses: logits for a batch of pixel-space images, and the
//! gradient of a scalar objective with respect to those pixels.
//!
//! How the gradient is computed is private to this module. f32 networks on the CPU that
//! compile to an `engine::Program` run on our own kernels (`models::engine`: no weight
//! gradients, GEMM convolutions, buffers reused between calls); everything else (f64, CUDA,
//! networks without a program) goes through candle's autograd, which also serves as the
//! reference the engine is tested against. Both run on the compute pool (`models::threads`).

use std::sync::Mutex;

use candle_core::{D, DType, Device, Tensor, Var};

use super::engine::{Normalize, Program, Workspace};
use super::error::{ModelError, Result};
use super::spec::ModelSpec;
use super::threads;

/// (batch, channels, height, width).
type Shape4 = (usize, usize, usize, usize);

/// A network body: logits for an already normalised NCHW batch.
///
/// Implementations must be built only from candle operations that carry gradients
/// (see `models::layers`), so that the input gradient exists.
pub trait Network: Send + Sync {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor>;

    /// The same network compiled for the engine, when it has one (f32 CPU weights); the
    /// classifier then runs it instead of `forward` + autograd.
    fn program(&self) -> Option<&Program> {
        None
    }
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
    /// Σ over the listed (row, class) pairs of logits_row[class]: the seed gradient is 1 at
    /// each chosen logit, so one backward pass gives the gradients of several logits when the
    /// input is replicated once per logit (DeepFool's Kc candidates). Rows may be listed any
    /// number of times, or not at all (their gradient is zero).
    SelectedLogits(Vec<(usize, u32)>),
    /// Σ_b (logsumexp(p_b) − p_b[y_b]) with p_b = softmax(logits_b): cross-entropy applied to
    /// probabilities as if they were logits. Only the semantic OIR_W `reference` variant uses it
    /// (ALGORITHMS.md §3.4), to reproduce the reference implementation's gradient.
    ProbabilityCrossEntropy(Vec<u32>),
}

impl Objective {
    /// One label per row, for the objectives that have them.
    fn labels(&self) -> &[u32] {
        match self {
            Self::CrossEntropy(l)
            | Self::Probability(l)
            | Self::Logit(l)
            | Self::ProbabilityCrossEntropy(l) => l,
            Self::SelectedLogits(_) => &[],
        }
    }

    fn check_labels(&self, batch: usize, classes: usize) -> candle_core::Result<()> {
        if let Self::SelectedLogits(selection) = self {
            return check_selection(selection, batch, classes);
        }
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
        Ok(())
    }

    /// d objective / d logits for host logits `[B][K]` (row-major), computed in f64.
    pub(crate) fn logit_gradient(
        &self,
        logits: &[f32],
        classes: usize,
    ) -> candle_core::Result<Vec<f32>> {
        let batch = logits.len() / classes.max(1);
        self.check_labels(batch, classes)?;
        let mut grad = vec![0f32; logits.len()];
        if let Self::SelectedLogits(selection) = self {
            for &(row, class) in selection {
                grad[row * classes + class as usize] += 1.0;
            }
            return Ok(grad);
        }
        for ((row, out), &y) in logits
            .chunks(classes)
            .zip(grad.chunks_mut(classes))
            .zip(self.labels())
        {
            let y = y as usize;
            if let Self::Logit(_) = self {
                out[y] = 1.0;
                continue;
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f64> = row.iter().map(|&v| f64::from(v - max).exp()).collect();
            let sum: f64 = exp.iter().sum();
            let p: Vec<f64> = exp.iter().map(|e| e / sum).collect();
            match self {
                // softmax − one-hot
                Self::CrossEntropy(_) => {
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = (p[k] - f64::from(u8::from(k == y))) as f32;
                    }
                }
                // p_y (one-hot − softmax)
                Self::Probability(_) => {
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = (p[y] * (f64::from(u8::from(k == y)) - p[k])) as f32;
                    }
                }
                // v = softmax(p) − one-hot, chained through p = softmax(logits):
                // ∂/∂logit_j = p_j (v_j − Σ_i v_i p_i).
                Self::ProbabilityCrossEntropy(_) => {
                    let max_p = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let exp_p: Vec<f64> = p.iter().map(|v| (v - max_p).exp()).collect();
                    let sum_p: f64 = exp_p.iter().sum();
                    let v: Vec<f64> = exp_p
                        .iter()
                        .enumerate()
                        .map(|(k, e)| e / sum_p - f64::from(u8::from(k == y)))
                        .collect();
                    let vp: f64 = v.iter().zip(&p).map(|(a, b)| a * b).sum();
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = (p[k] * (v[k] - vp)) as f32;
                    }
                }
                Self::Logit(_) | Self::SelectedLogits(_) => {}
            }
        }
        Ok(grad)
    }

    /// The scalar objective for a batch of logits [B, K].
    pub fn evaluate(&self, logits: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, classes) = logits.dims2()?;
        self.check_labels(batch, classes)?;
        if let Self::SelectedLogits(selection) = self {
            let weights = selection_weights(selection, batch, classes, logits.device())?;
            return (logits * weights.to_dtype(logits.dtype())?)?.sum_all();
        }
        let labels = self.labels();
        let one_hot = one_hot(labels, classes, logits.device())?.to_dtype(logits.dtype())?;
        match self {
            Self::Logit(_) => (logits * &one_hot)?.sum_all(),
            Self::CrossEntropy(_) => {
                let picked = (logits * &one_hot)?.sum(D::Minus1)?;
                (log_sum_exp(logits)? - picked)?.sum_all()
            }
            Self::Probability(_) => (softmax(logits)? * &one_hot)?.sum_all(),
            Self::SelectedLogits(_) => candle_core::bail!("selected logits are handled above"),
            Self::ProbabilityCrossEntropy(_) => {
                let p = softmax(logits)?;
                let picked = (&p * &one_hot)?.sum(D::Minus1)?;
                (log_sum_exp(&p)? - picked)?.sum_all()
            }
        }
    }
}

fn check_selection(
    selection: &[(usize, u32)],
    batch: usize,
    classes: usize,
) -> candle_core::Result<()> {
    if let Some((row, class)) = selection
        .iter()
        .find(|&&(row, class)| row >= batch || class as usize >= classes)
    {
        candle_core::bail!(
            "selected logit ({row}, {class}) is outside the logits of {batch} rows × {classes} classes"
        );
    }
    Ok(())
}

/// [B, K] with the number of times each (row, class) is selected.
fn selection_weights(
    selection: &[(usize, u32)],
    batch: usize,
    classes: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let mut data = vec![0f32; batch * classes];
    for &(row, class) in selection {
        data[row * classes + class as usize] += 1.0;
    }
    Tensor::from_vec(data, (batch, classes), device)
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
    /// Whether calls run on the engine (the network has a program and the classifier is f32
    /// on the CPU).
    native: bool,
    mean_host: Vec<f32>,
    inv_std_host: Vec<f32>,
    /// Buffers kept between engine calls; a concurrent call that finds it busy uses its own.
    workspace: Mutex<Workspace>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("spec", &self.spec)
            .field("device", &self.device)
            .field("dtype", &self.dtype)
            .field("native_kernels", &self.native)
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
        let inv_std_host: Vec<f32> = norm.std.iter().map(|s| 1.0 / s).collect();
        let inv_std = Tensor::from_slice(&inv_std_host, shape, &device)?.to_dtype(dtype)?;
        let native = network.program().is_some() && device.is_cpu() && dtype == DType::F32;
        Ok(Self {
            mean_host: norm.mean.clone(),
            inv_std_host,
            spec,
            network,
            device,
            dtype,
            mean,
            inv_std,
            native,
            workspace: Mutex::new(Workspace::default()),
        })
    }

    /// The same classifier on candle's autograd path only: the reference the engine is tested
    /// and benchmarked against.
    pub fn with_autograd(mut self) -> Self {
        self.native = false;
        self
    }

    /// Whether forward passes and input gradients run on the engine (`models::engine`).
    pub fn uses_native_kernels(&self) -> bool {
        self.native
    }

    /// FLOPs of one forward pass over a batch (convolutions and linear layers), when the
    /// network runs on the engine.
    pub fn forward_flops(&self, batch: usize) -> Option<f64> {
        let [h, w] = self.spec.input_size;
        let program = self.network.program()?;
        program
            .forward_flops((batch, self.spec.channels, h, w))
            .ok()
    }

    /// Bytes the engine keeps between calls (for allocation-growth checks).
    pub fn workspace_bytes(&self) -> usize {
        self.workspace.lock().map_or(0, |ws| ws.held_bytes())
    }

    /// Runs `f` with the program and a workspace: the kept one, or a fresh one when another
    /// thread holds it.
    fn with_engine<R>(
        &self,
        f: impl FnOnce(&Program, &mut Workspace, &Normalize<'_>) -> candle_core::Result<R> + Send,
    ) -> Result<R>
    where
        R: Send,
    {
        let program = self
            .network
            .program()
            .ok_or_else(|| ModelError::Invalid("network has no engine program".into()))?;
        let norm = Normalize {
            mean: &self.mean_host,
            inv_std: &self.inv_std_host,
        };
        threads::install(|| match self.workspace.try_lock() {
            Ok(mut ws) => f(program, &mut ws, &norm),
            Err(_) => f(program, &mut Workspace::default(), &norm),
        })
        .map_err(ModelError::from)
    }

    /// The pixels as a host f32 NCHW buffer and its shape.
    fn host_pixels(x: &Tensor) -> Result<(Vec<f32>, Shape4)> {
        let shape = x.dims4()?;
        let data = x
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok((data, shape))
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
        if self.native {
            let (pixels, shape) = Self::host_pixels(x)?;
            let logits = self.with_engine(|p, ws, norm| p.forward(ws, &pixels, shape, norm))?;
            let k = logits.len() / shape.0.max(1);
            return Ok(Tensor::from_vec(logits, (shape.0, k), &self.device)?);
        }
        let x = x.to_device(&self.device)?.to_dtype(self.dtype)?.detach();
        Ok(threads::install(|| self.logits(&x))?)
    }

    /// Softmax probabilities [B, K].
    pub fn probabilities(&self, x: &Tensor) -> Result<Tensor> {
        Ok(softmax(&self.forward(x)?)?)
    }

    /// Logits [B, K] and d objective / d x [B, C, H, W], taken through the normalisation.
    pub fn input_gradient(&self, x: &Tensor, objective: &Objective) -> Result<(Tensor, Tensor)> {
        self.check_input(x)?;
        if self.native {
            let (pixels, shape) = Self::host_pixels(x)?;
            let classes = self.spec.num_classes();
            let (logits, grad) = self.with_engine(|p, ws, norm| {
                p.input_gradient(ws, &pixels, shape, norm, |logits| {
                    objective.logit_gradient(logits, classes)
                })
            })?;
            let (b, c, h, w) = shape;
            return Ok((
                Tensor::from_vec(logits, (b, classes), &self.device)?,
                Tensor::from_vec(grad, (b, c, h, w), &self.device)?,
            ));
        }
        let x = Var::from_tensor(&x.to_device(&self.device)?.to_dtype(self.dtype)?)?;
        threads::install(|| {
            let logits = self.logits(x.as_tensor())?;
            let scalar = objective.evaluate(&logits)?;
            let grads = scalar.backward()?;
            let grad = grads
                .get(x.as_tensor())
                .ok_or_else(|| ModelError::GradientMissing(self.spec.architecture.clone()))?
                .clone();
            Ok((logits.detach(), grad))
        })
    }
}
