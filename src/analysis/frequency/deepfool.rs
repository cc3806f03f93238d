//! Subspace-constrained DeepFool on logits (ALGORITHMS.md §4.2): the distance from a sample to
//! the decision boundary when the perturbation may only use the coefficients of one DCT
//! subspace.
//!
//! All Kc candidate gradients of a sample come from one backward pass: the iterate is
//! replicated Kc times in the batch and the objective selects logit I_k of copy k
//! (`Objective::SelectedLogits`). Samples are batched too, with an active mask, because they
//! finish at different iterations; a sample's result does not depend on its batch.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::error::FrequencyError;
use super::subspace::{Subspace, row_norms};
use super::transforms::TransformedModel;
use crate::analysis::Result;
use crate::models::Objective;

pub const DEFAULT_OVERSHOOT: f64 = 0.02;
pub const DEFAULT_MAX_ITER: usize = 100;
/// Kc = min(10, #classes).
pub const DEFAULT_CANDIDATES: usize = 10;
/// The smallest step length: r_i = max(best, 1e-4)·w/‖w‖.
pub const STEP_FLOOR: f64 = 1e-4;
/// §0.2: a norm at or below this is zero.
const TINY: f64 = f32::MIN_POSITIVE as f64;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeepFoolConfig {
    /// os: enters the label check x + (1+os)·r and the returned margin only.
    pub overshoot: f64,
    pub max_iter: usize,
    /// Kc is min(this, #classes).
    pub candidates: usize,
}

impl Default for DeepFoolConfig {
    fn default() -> Self {
        Self {
            overshoot: DEFAULT_OVERSHOOT,
            max_iter: DEFAULT_MAX_ITER,
            candidates: DEFAULT_CANDIDATES,
        }
    }
}

impl DeepFoolConfig {
    pub fn validate(&self) -> Result<(), FrequencyError> {
        if !(self.overshoot.is_finite() && self.overshoot >= 0.0) {
            return Err(FrequencyError::Invalid(format!(
                "overshoot {} must be finite and ≥ 0",
                self.overshoot
            )));
        }
        if self.candidates < 2 {
            return Err(FrequencyError::Invalid(format!(
                "DeepFool needs at least 2 candidate classes, got {}",
                self.candidates
            )));
        }
        Ok(())
    }
}

/// How a sample's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeepFoolStatus {
    /// argmax logits(x + (1+os)·r) left the original label.
    Converged,
    /// max_iter steps without crossing.
    MaxIter,
    /// No candidate's gradient difference has a component in the subspace.
    Degenerate,
}

impl DeepFoolStatus {
    /// The code stored in the status tensor: 0 converged, 1 max-iter, 2 degenerate.
    pub fn code(self) -> u8 {
        match self {
            Self::Converged => 0,
            Self::MaxIter => 1,
            Self::Degenerate => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Converged),
            1 => Some(Self::MaxIter),
            2 => Some(Self::Degenerate),
            _ => None,
        }
    }
}

/// One sample's result in one subspace.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepFoolOutcome {
    /// ‖(1+os)·r‖₂, for every status.
    pub margin: f32,
    pub status: DeepFoolStatus,
    pub iterations: u32,
    /// l0 = argmax of the logits at x.
    pub original_label: u32,
    /// argmax at x + (1+os)·r (the original label unless converged).
    pub final_label: u32,
    /// (1+os)·r, [C, N, N] flattened, in f32.
    pub perturbation: Vec<f32>,
}

/// The Kc largest logits of a row, descending, ties to the lower index.
pub fn top_candidates(row: &[f64], count: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..row.len() as u32).collect();
    // A stable sort keeps equal logits in index order.
    order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
    order.truncate(count);
    order
}

/// argmax with ties to the lower index.
fn argmax(row: &[f64]) -> u32 {
    top_candidates(row, 1)[0]
}

fn host_rows(logits: &Tensor) -> Result<Vec<Vec<f64>>> {
    Ok(logits.to_dtype(DType::F64)?.to_vec2::<f64>()?)
}

/// Per-sample state of the loop.
struct Sample {
    x: Tensor,
    /// r, the accumulated perturbation (model dtype).
    r: Tensor,
    /// x_i = x + r, where gradients are taken.
    iterate: Tensor,
    candidates: Vec<u32>,
    iterations: usize,
    status: DeepFoolStatus,
    final_label: u32,
    active: bool,
}

/// Subspace DeepFool for every image of `images` [B, C, N, N] in pixel space, as one batch.
/// Callers split large sets into batches; results do not depend on how.
pub fn subspace_deepfool(
    model: &TransformedModel<'_>,
    images: &Tensor,
    subspace: &Subspace,
    config: &DeepFoolConfig,
) -> Result<Vec<DeepFoolOutcome>> {
    config.validate()?;
    let classes = model.classifier().spec().num_classes();
    if classes < 2 {
        return Err(FrequencyError::TooFewClasses { classes }.into());
    }
    let kc = config.candidates.min(classes);
    let x0 = images.to_device(model.device())?.to_dtype(model.dtype())?;
    let batch = x0.dim(0)?;
    if batch == 0 {
        return Ok(Vec::new());
    }
    let clean = host_rows(&model.forward(&x0)?)?;
    let mut samples = Vec::with_capacity(batch);
    for (b, row) in clean.iter().enumerate() {
        let x = x0.get(b)?;
        let candidates = top_candidates(row, kc);
        samples.push(Sample {
            r: x.zeros_like()?,
            iterate: x.clone(),
            x,
            final_label: candidates[0],
            candidates,
            iterations: 0,
            status: DeepFoolStatus::MaxIter,
            active: true,
        });
    }
    let scale = 1.0 + config.overshoot;
    loop {
        check_labels(model, &mut samples, scale, config.max_iter)?;
        let active: Vec<usize> = (0..batch).filter(|&b| samples[b].active).collect();
        if active.is_empty() {
            break;
        }
        step(model, &mut samples, &active, subspace, kc)?;
    }
    samples
        .into_iter()
        .map(|s| {
            let perturbation = s.r.affine(scale, 0.0)?;
            let margin = row_norms(&perturbation.unsqueeze(0)?)?[0] as f32;
            Ok(DeepFoolOutcome {
                margin,
                status: s.status,
                iterations: s.iterations as u32,
                original_label: s.candidates[0],
                final_label: s.final_label,
                perturbation: perturbation
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            })
        })
        .collect()
}

/// The loop head for every active sample: converged if argmax logits(x + (1+os)·r) ≠ l0,
/// else stopped at max_iter.
fn check_labels(
    model: &TransformedModel<'_>,
    samples: &mut [Sample],
    scale: f64,
    max_iter: usize,
) -> Result<()> {
    let active: Vec<usize> = (0..samples.len()).filter(|&b| samples[b].active).collect();
    if active.is_empty() {
        return Ok(());
    }
    let probes = active
        .iter()
        .map(|&b| {
            let s = &samples[b];
            &s.x + s.r.affine(scale, 0.0)?
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let rows = host_rows(&model.forward(&Tensor::stack(&probes, 0)?)?)?;
    for (&b, row) in active.iter().zip(&rows) {
        let s = &mut samples[b];
        let label = argmax(row);
        if label != s.candidates[0] {
            s.status = DeepFoolStatus::Converged;
            s.final_label = label;
            s.active = false;
        } else if s.iterations == max_iter {
            s.active = false;
        }
    }
    Ok(())
}

/// One DeepFool step for the `active` samples: Kc gradients each in one backward pass, the
/// closest linearised boundary inside the subspace, and the step toward it.
fn step(
    model: &TransformedModel<'_>,
    samples: &mut [Sample],
    active: &[usize],
    subspace: &Subspace,
    kc: usize,
) -> Result<()> {
    let mut replicas = Vec::with_capacity(active.len() * kc);
    let mut selection = Vec::with_capacity(active.len() * kc);
    for (a, &b) in active.iter().enumerate() {
        for (k, &class) in samples[b].candidates.iter().enumerate() {
            replicas.push(samples[b].iterate.clone());
            selection.push((a * kc + k, class));
        }
    }
    let (logits, grads) = model.input_gradient(
        &Tensor::stack(&replicas, 0)?,
        &Objective::SelectedLogits(selection),
    )?;
    let logits = host_rows(&logits)?;
    let image_dims = samples[active[0]].x.dims().to_vec();
    let mut grouped = vec![active.len(), kc];
    grouped.extend(&image_dims);
    let grads = grads.to_dtype(model.dtype())?.reshape(grouped)?;
    // w_k = G_k − G_0 for k = 1..Kc−1, as [A·(Kc−1), C, N, N].
    let differences = grads
        .narrow(1, 1, kc - 1)?
        .broadcast_sub(&grads.narrow(1, 0, 1)?)?;
    let mut flat = vec![active.len() * (kc - 1)];
    flat.extend(&image_dims);
    let differences = differences.reshape(flat)?;
    let norms = subspace.norms(&differences)?;

    // The closest boundary per sample: strict <, so the lowest k wins ties.
    let mut stepping = Vec::new();
    for (a, &b) in active.iter().enumerate() {
        let s = &samples[b];
        // ℓ at x_i: every replica of the sample has the same logits; take the first.
        let row = &logits[a * kc];
        let l0 = row[s.candidates[0] as usize];
        let mut best = (f64::INFINITY, 0usize);
        for k in 1..kc {
            let f_k = row[s.candidates[k] as usize] - l0;
            let n_k = norms[a * (kc - 1) + k - 1];
            let p_k = if n_k <= TINY {
                f64::INFINITY
            } else {
                f_k.abs() / n_k
            };
            if p_k < best.0 {
                best = (p_k, a * (kc - 1) + k - 1);
            }
        }
        if best.0 == f64::INFINITY {
            let s = &mut samples[b];
            s.status = DeepFoolStatus::Degenerate;
            s.active = false;
        } else {
            stepping.push((b, best.0, best.1 as u32));
        }
    }
    if stepping.is_empty() {
        return Ok(());
    }
    let rows: Vec<u32> = stepping.iter().map(|&(_, _, row)| row).collect();
    let rows = Tensor::from_vec(rows, stepping.len(), differences.device())?;
    let w = subspace.project(&differences.index_select(&rows, 0)?)?;
    let w_norms = row_norms(&w)?;
    for (i, &(b, best, _)) in stepping.iter().enumerate() {
        let s = &mut samples[b];
        // ‖S Sᵀ w‖ = ‖Sᵀ w‖ > tiny in exact arithmetic; guard the rounded value anyway.
        if w_norms[i] <= TINY {
            s.status = DeepFoolStatus::Degenerate;
            s.active = false;
            continue;
        }
        let r_i = w.get(i)?.affine(best.max(STEP_FLOOR) / w_norms[i], 0.0)?;
        s.r = (&s.r + &r_i)?;
        s.iterate = (&s.iterate + &r_i)?;
        s.iterations += 1;
    }
    Ok(())
}

#[cfg(test)]
#[path = "deepfool_tests.rs"]
mod tests;
