//! Top-1 / top-5 accuracy of a classifier over labelled samples, in batches.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::models::{Classifier, ModelError};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    /// Top-1 hits.
    pub correct: usize,
    pub top5_correct: usize,
    pub total: usize,
    pub top1: f64,
    pub top5: f64,
}

/// Rank of `label` among `logits` (0 = predicted): how many classes score strictly higher.
pub fn label_rank(logits: &[f32], label: usize) -> usize {
    let score = logits[label];
    logits.iter().filter(|&&l| l > score).count()
}

/// Evaluates `count` samples; `load(i)` gives sample i as ([C, H, W] pixels, label).
/// `progress` is told how many samples are done after each batch.
pub fn accuracy<E: From<ModelError>>(
    model: &Classifier,
    count: usize,
    batch_size: usize,
    mut load: impl FnMut(usize) -> Result<(Tensor, u32), E>,
    mut progress: impl FnMut(usize),
) -> Result<AccuracyReport, E> {
    let (mut correct, mut top5_correct) = (0, 0);
    let mut start = 0;
    while start < count {
        let end = (start + batch_size.max(1)).min(count);
        let mut images = Vec::with_capacity(end - start);
        let mut labels = Vec::with_capacity(end - start);
        for i in start..end {
            let (image, label) = load(i)?;
            images.push(image);
            labels.push(label as usize);
        }
        let batch = Tensor::stack(&images, 0).map_err(ModelError::from)?;
        let logits = model.forward(&batch)?;
        let rows = logits
            .to_dtype(candle_core::DType::F32)
            .and_then(|l| l.to_vec2::<f32>())
            .map_err(ModelError::from)?;
        for (row, &label) in rows.iter().zip(&labels) {
            if label >= row.len() {
                return Err(ModelError::Invalid(format!(
                    "label {label} is out of range for a model with {} classes",
                    row.len()
                ))
                .into());
            }
            let rank = label_rank(row, label);
            correct += usize::from(rank == 0);
            top5_correct += usize::from(rank < 5);
        }
        start = end;
        progress(start);
    }
    let frac = |k: usize| {
        if count == 0 {
            0.0
        } else {
            k as f64 / count as f64
        }
    };
    Ok(AccuracyReport {
        correct,
        top5_correct,
        total: count,
        top1: frac(correct),
        top5: frac(top5_correct),
    })
}
