//! Class confidences p(x)[y] from a classifier, computed on the host (ALGORITHMS.md §0.1).
//!
//! Logits come back from the device as f32; the softmax is evaluated per row in f64 with the
//! row maximum subtracted, then rounded to f32, so the value does not depend on the device.

use candle_core::{DType, Tensor};

use super::error::{Result, invalid};
use crate::models::Classifier;

/// How many images one forward pass may hold in the batched probes (widths, hull, profiles).
pub const DEFAULT_CHUNK: usize = 64;

/// p[y] of one logits row by a stable softmax in f64. NaN if any logit is not finite (the
/// confidence is then undefined; callers decide what that means).
pub fn softmax_at(row: &[f32], y: usize) -> f32 {
    if y >= row.len() || row.iter().any(|v| !v.is_finite()) {
        return f32::NAN;
    }
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    ((f64::from(row[y]) - max).exp() / sum) as f32
}

/// Index of the largest logit (the first one on ties); `None` if any logit is not finite.
pub fn argmax(row: &[f32]) -> Option<usize> {
    if row.is_empty() || row.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut best = 0;
    for (k, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = k;
        }
    }
    Some(best)
}

/// The `k` most probable classes of a logits row, most probable first (lower index first on
/// ties): (class, p). Empty if any logit is not finite.
pub fn top_k(row: &[f32], k: usize) -> Vec<(usize, f32)> {
    if row.iter().any(|v| !v.is_finite()) {
        return Vec::new();
    }
    let mut all: Vec<(usize, f32)> = (0..row.len()).map(|c| (c, softmax_at(row, c))).collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// A reported confidence: an undefined (NaN) confidence is reported as 0, "no confidence".
pub fn or_zero(p: f32) -> f32 {
    if p.is_nan() { 0.0 } else { p }
}

/// Logits [B, K] of a tensor as host rows.
pub fn logits_rows(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(logits.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

/// p(x_b)[label_b] for a batch [N, C, H, W], forwarded `chunk` images at a time.
/// Undefined confidences (non-finite logits) are reported as 0.
pub fn batch_confidences(
    classifier: &Classifier,
    images: &Tensor,
    labels: &[u32],
    chunk: usize,
) -> Result<Vec<f32>> {
    let n = images.dim(0)?;
    if labels.len() != n {
        return Err(invalid(format!(
            "{} labels for a batch of {n} images",
            labels.len()
        )));
    }
    let chunk = chunk.max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let logits = classifier.forward(&images.narrow(0, start, len)?)?;
        for (row, &y) in logits_rows(&logits)?
            .iter()
            .zip(&labels[start..start + len])
        {
            out.push(or_zero(softmax_at(row, y as usize)));
        }
        start += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn top_k_is_most_probable_first_with_ties_by_index() {
        let row = [1.0f32, 3.0, 3.0, -2.0];
        let top = super::top_k(&row, 3);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2, 0]);
        let sum: f32 = super::top_k(&row, 4).iter().map(|t| t.1).sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!((top[0].1 - super::softmax_at(&row, 1)).abs() < 1e-9);
        assert!(super::top_k(&[f32::NAN, 1.0], 2).is_empty());
    }

    use super::*;

    #[test]
    fn softmax_is_stable_and_normalised() {
        let row = [1000.0f32, 999.0, 998.0];
        let total: f32 = (0..3).map(|k| softmax_at(&row, k)).sum();
        assert!((total - 1.0).abs() < 1e-6);
        let e = 1.0 / (1.0 + (-1f64).exp() + (-2f64).exp());
        assert!((f64::from(softmax_at(&row, 0)) - e).abs() < 1e-7);
        assert_eq!(softmax_at(&[0.0, 0.0], 1), 0.5);
        assert!(softmax_at(&[f32::NAN, 0.0], 1).is_nan());
        assert!(softmax_at(&[f32::INFINITY, 0.0], 0).is_nan());
        assert!(softmax_at(&[0.0], 3).is_nan());
        assert_eq!(or_zero(f32::NAN), 0.0);
        assert_eq!(or_zero(0.25), 0.25);
    }

    #[test]
    fn argmax_first_on_ties_and_none_on_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), Some(1));
        assert_eq!(argmax(&[-1.0]), Some(0));
        assert_eq!(argmax(&[1.0, f32::NAN]), None);
        assert_eq!(argmax(&[]), None);
    }
}
