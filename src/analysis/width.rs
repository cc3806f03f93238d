//! Path width of the level set around an LST iterate (ALGORITHMS.md §1.5).
//!
//! At a logged iterate x with projected direction nd, random unit directions orthogonal to
//! d̂ = nd/‖nd‖ probe how far the source confidence survives: for each radius r, the 5% and 95%
//! quantiles of p(clamp(x + r·z_k, 0, 1))[y] over the directions z_k.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::confidence::{DEFAULT_CHUNK, batch_confidences};
use super::error::{Result, invalid};
use super::rng::{Normals, StreamRng, WIDTH_DIRS, stream};
use super::stats::quantiles_f32;
use crate::models::Classifier;

/// The two quantiles of each width row: (Q_0.05, Q_0.95).
pub const WIDTH_QUANTILES: [f64; 2] = [0.05, 0.95];

/// Path-width settings (off by default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WidthConfig {
    pub enabled: bool,
    /// Radii R_w (L2, pixel space).
    pub radii: Vec<f32>,
    /// Random directions per measurement (256).
    pub directions: usize,
    /// Images per forward pass; bounds the memory of the 256·|R_w| probes.
    pub chunk: usize,
}

impl WidthConfig {
    pub fn imagenet() -> Self {
        Self {
            enabled: false,
            radii: vec![0.5, 1.0, 1.5, 2.0],
            directions: 256,
            chunk: DEFAULT_CHUNK,
        }
    }

    pub fn cifar() -> Self {
        Self {
            enabled: false,
            radii: vec![5.0, 10.0, 15.0, 20.0, 25.0, 30.0],
            directions: 256,
            chunk: DEFAULT_CHUNK,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(r) = self.radii.iter().find(|r| !(r.is_finite() && **r >= 0.0)) {
            return Err(invalid(format!("width radius {r} must be finite and >= 0")));
        }
        if self.enabled && self.directions == 0 {
            return Err(invalid("width directions must be at least 1"));
        }
        if self.chunk == 0 {
            return Err(invalid("width chunk must be at least 1"));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WidthStatus {
    Measured,
    /// c0 < pthresh, or ‖nd‖ tiny (or every direction was dropped): the block is all zeros.
    Skipped,
}

/// One width measurement: |R_w| + 1 rows of (Q_0.05, Q_0.95); row 0 is (c0, c0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WidthMeasurement {
    pub status: WidthStatus,
    pub rows: Vec<[f32; 2]>,
    /// Directions that survived the projection (256 in practice; 0 when skipped).
    pub directions_used: usize,
}

impl WidthMeasurement {
    /// The all-zero block of a skipped measurement.
    pub fn skipped(radii: usize) -> Self {
        Self {
            status: WidthStatus::Skipped,
            rows: vec![[0.0; 2]; radii + 1],
            directions_used: 0,
        }
    }
}

/// f32::MIN_POSITIVE: a norm at or below it is "tiny" (§0.2).
const TINY: f64 = f32::MIN_POSITIVE as f64;

/// The random directions of one measurement: normals from
/// stream(seed, WIDTH_DIRS, pair_id, log_index), one direction after another (a row-major
/// [directions, C·H·W] fill), each projected off d̂ and normalised in f64.
pub struct WidthDirections {
    normals: Normals<StreamRng>,
    d_hat: Vec<f64>,
    raw: Vec<f32>,
}

impl WidthDirections {
    /// `None` when ‖nd‖ is tiny.
    pub fn new(seed: u64, pair_id: u64, log_index: u64, nd: &[f32]) -> Option<Self> {
        let norm = nd.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        if !(norm > TINY && norm.is_finite()) {
            return None;
        }
        Some(Self {
            normals: Normals::new(stream(seed, WIDTH_DIRS, pair_id, log_index)),
            d_hat: nd.iter().map(|&v| f64::from(v) / norm).collect(),
            raw: vec![0.0; nd.len()],
        })
    }

    /// d̂ = nd/‖nd‖.
    pub fn d_hat(&self) -> &[f64] {
        &self.d_hat
    }

    /// Draws the next direction into `out` (length C·H·W). Returns false when it was dropped
    /// because its projection is tiny; the draws are consumed either way.
    pub fn next_into(&mut self, out: &mut [f32]) -> bool {
        self.normals.fill(&mut self.raw);
        let dot: f64 = self
            .raw
            .iter()
            .zip(&self.d_hat)
            .map(|(&z, d)| f64::from(z) * d)
            .sum();
        let projected = self
            .raw
            .iter()
            .zip(&self.d_hat)
            .map(|(&z, d)| f64::from(z) - dot * d);
        let norm = projected.clone().map(|v| v * v).sum::<f64>().sqrt();
        if norm.is_nan() || norm <= TINY {
            return false;
        }
        for (o, v) in out.iter_mut().zip(projected) {
            *o = (v / norm) as f32;
        }
        true
    }
}

/// One width measurement (§1.5) at the iterate `x` ([C, H, W], any device) with projected
/// direction `nd` (host, C·H·W values) and on-path confidence `c0` = p(x)[label].
///
/// Skipped (all zeros) when c0 < pthresh (absolute, as the reference does) or ‖nd‖ is tiny.
/// The 256·|R_w| probes are forwarded `config.chunk` images at a time. A probe with an undefined
/// (NaN) confidence counts as confidence 0.
#[allow(clippy::too_many_arguments)]
pub fn measure_width(
    classifier: &Classifier,
    x: &Tensor,
    nd: &[f32],
    label: u32,
    c0: f32,
    pthresh: f32,
    config: &WidthConfig,
    seed: u64,
    pair_id: u64,
    log_index: u64,
) -> Result<WidthMeasurement> {
    let radii = &config.radii;
    let skipped = WidthMeasurement::skipped(radii.len());
    let dims = x.dims().to_vec();
    let dim: usize = dims.iter().product();
    if nd.len() != dim {
        return Err(invalid(format!(
            "direction has {} values, the image {dim}",
            nd.len()
        )));
    }
    // An undefined (NaN) c0 is skipped too.
    if c0.is_nan() || c0 < pthresh {
        return Ok(skipped);
    }
    let Some(mut directions) = WidthDirections::new(seed, pair_id, log_index, nd) else {
        return Ok(skipped);
    };
    let device = classifier.device();
    let x_row = x
        .to_device(device)?
        .to_dtype(DType::F32)?
        .reshape((1, dim))?;
    let mut image_shape = vec![0usize];
    image_shape.extend_from_slice(&dims);
    let per_chunk = (config.chunk / radii.len().max(1)).max(1);
    let mut confs: Vec<Vec<f32>> = vec![Vec::with_capacity(config.directions); radii.len()];
    let mut drawn = 0;
    let mut used = 0;
    let mut buffer = vec![0f32; per_chunk * dim];
    while drawn < config.directions && !radii.is_empty() {
        let mut kept = 0;
        while kept < per_chunk && drawn < config.directions {
            drawn += 1;
            if directions.next_into(&mut buffer[kept * dim..(kept + 1) * dim]) {
                kept += 1;
            }
        }
        if kept == 0 {
            continue;
        }
        used += kept;
        let z = Tensor::from_slice(&buffer[..kept * dim], (kept, dim), device)?;
        let probes = radii
            .iter()
            .map(|&r| {
                z.affine(f64::from(r), 0.0)?
                    .broadcast_add(&x_row)?
                    .clamp(0f32, 1f32)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        image_shape[0] = kept * radii.len();
        let batch = Tensor::cat(&probes, 0)?.reshape(image_shape.as_slice())?;
        let labels = vec![label; kept * radii.len()];
        let probs = batch_confidences(classifier, &batch, &labels, config.chunk)?;
        for (r, chunk) in probs.chunks(kept).enumerate() {
            confs[r].extend_from_slice(chunk);
        }
    }
    let mut rows = vec![[c0, c0]];
    for values in &confs {
        match quantiles_f32(values, &WIDTH_QUANTILES).as_deref() {
            Some(&[q05, q95]) => rows.push([q05, q95]),
            _ => return Ok(skipped),
        }
    }
    Ok(WidthMeasurement {
        status: WidthStatus::Measured,
        rows,
        directions_used: used,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_models::{constant_classifier, linear_classifier, random_image};
    use super::*;

    #[test]
    fn directions_are_unit_and_orthogonal() {
        let dim = 3 * 8 * 8;
        let nd = random_image(11, [3, 8, 8]);
        let nd: Vec<f32> = nd.iter().map(|v| v - 0.5).collect();
        let mut dirs = WidthDirections::new(0, 3, 1, &nd).expect("non-zero");
        let d_hat: Vec<f64> = dirs.d_hat().to_vec();
        let mut z = vec![0f32; dim];
        for _ in 0..256 {
            assert!(dirs.next_into(&mut z));
            let dot: f64 = z.iter().zip(&d_hat).map(|(&a, b)| f64::from(a) * b).sum();
            let norm = z.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
            assert!(dot.abs() <= 1e-5, "{dot}");
            assert!((norm - 1.0).abs() <= 1e-5, "{norm}");
        }
        // Same key, same directions; another log index, other directions.
        let mut a = WidthDirections::new(0, 3, 1, &nd).expect("non-zero");
        let mut b = WidthDirections::new(0, 3, 2, &nd).expect("non-zero");
        let (mut za, mut zb, mut za2) = (vec![0f32; dim], vec![0f32; dim], vec![0f32; dim]);
        a.next_into(&mut za);
        b.next_into(&mut zb);
        WidthDirections::new(0, 3, 1, &nd)
            .expect("non-zero")
            .next_into(&mut za2);
        assert_eq!(za, za2);
        assert_ne!(za, zb);
        assert!(WidthDirections::new(0, 0, 0, &vec![0.0; dim]).is_none());
    }

    #[test]
    fn constant_model_widths_equal_c0() {
        let (classifier, c) = constant_classifier([3, 8, 8]);
        let x = Tensor::from_vec(random_image(1, [3, 8, 8]), (3, 8, 8), classifier.device())
            .expect("tensor");
        let nd = random_image(2, [3, 8, 8]);
        let config = WidthConfig {
            enabled: true,
            radii: vec![0.5, 5.0, 50.0],
            directions: 256,
            chunk: 100,
        };
        let m = measure_width(&classifier, &x, &nd, 0, c, 0.05, &config, 0, 0, 0).expect("measure");
        assert_eq!(m.status, WidthStatus::Measured);
        assert_eq!(m.directions_used, 256);
        assert_eq!(m.rows.len(), 4);
        for row in &m.rows {
            assert_eq!(row, &[c, c]);
        }
    }

    #[test]
    fn linear_model_widths_are_ordered_and_reproducible() {
        let shape = [3, 8, 8];
        let classifier = linear_classifier(shape, 3, 5);
        let img = random_image(3, shape);
        let x = Tensor::from_vec(img.clone(), (3, 8, 8), classifier.device()).expect("tensor");
        let c0 = crate::analysis::confidence::batch_confidences(
            &classifier,
            &x.unsqueeze(0).expect("batch"),
            &[1],
            8,
        )
        .expect("conf")[0];
        let nd: Vec<f32> = random_image(4, shape).iter().map(|v| v - 0.5).collect();
        let config = WidthConfig {
            enabled: true,
            radii: vec![1.0, 3.0, 10.0],
            directions: 256,
            chunk: 50,
        };
        let m = measure_width(&classifier, &x, &nd, 1, c0, 0.0, &config, 7, 2, 3).expect("w");
        assert_eq!(m.status, WidthStatus::Measured);
        assert_eq!(m.rows[0], [c0, c0]);
        for row in &m.rows {
            assert!(
                row[0] <= row[1] && row.iter().all(|v| v.is_finite()),
                "{row:?}"
            );
            assert!(row.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        // Spread grows with the radius on a linear model.
        assert!(m.rows[3][1] - m.rows[3][0] > m.rows[1][1] - m.rows[1][0]);
        // The chunking does not change the values.
        let other = WidthConfig {
            chunk: 7,
            ..config.clone()
        };
        let m2 = measure_width(&classifier, &x, &nd, 1, c0, 0.0, &other, 7, 2, 3).expect("w");
        for (a, b) in m.rows.iter().zip(&m2.rows) {
            assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6);
        }
        // The quantiles are those of the 256 probe confidences at positions 12.75 and 242.25.
        let mut dirs = WidthDirections::new(7, 2, 3, &nd).expect("non-zero");
        let mut z = vec![0f32; img.len()];
        let mut probes = Vec::new();
        for _ in 0..256 {
            assert!(dirs.next_into(&mut z));
            probes.extend(
                img.iter()
                    .zip(&z)
                    .map(|(&a, &b)| (a + 10.0 * b).clamp(0.0, 1.0)),
            );
        }
        let batch = Tensor::from_vec(probes, (256, 3, 8, 8), classifier.device()).expect("t");
        let mut p =
            crate::analysis::confidence::batch_confidences(&classifier, &batch, &[1; 256], 64)
                .expect("conf");
        p.sort_by(f32::total_cmp);
        let q = |pos: f64| {
            let lo = pos.floor() as usize;
            f64::from(p[lo]) + (pos - lo as f64) * (f64::from(p[lo + 1]) - f64::from(p[lo]))
        };
        assert!((f64::from(m.rows[3][0]) - q(12.75)).abs() < 1e-6);
        assert!((f64::from(m.rows[3][1]) - q(242.25)).abs() < 1e-6);
    }

    #[test]
    fn skipped_measurements_are_zeros() {
        let (classifier, c) = constant_classifier([3, 8, 8]);
        let x = Tensor::from_vec(random_image(1, [3, 8, 8]), (3, 8, 8), classifier.device())
            .expect("tensor");
        let config = WidthConfig {
            enabled: true,
            radii: vec![1.0, 2.0],
            directions: 16,
            chunk: 64,
        };
        let nd = random_image(2, [3, 8, 8]);
        // c0 below pthresh.
        let m =
            measure_width(&classifier, &x, &nd, 0, c, c + 0.01, &config, 0, 0, 0).expect("measure");
        assert_eq!(m, WidthMeasurement::skipped(2));
        assert_eq!(m.rows, vec![[0.0; 2]; 3]);
        // Zero direction.
        let zero = vec![0f32; nd.len()];
        let m = measure_width(&classifier, &x, &zero, 0, c, 0.0, &config, 0, 0, 0).expect("m");
        assert_eq!(m.status, WidthStatus::Skipped);
        // Undefined confidence.
        let m = measure_width(&classifier, &x, &nd, 0, f32::NAN, 0.0, &config, 0, 0, 0).expect("m");
        assert_eq!(m.status, WidthStatus::Skipped);
        assert!(m.rows.iter().flatten().all(|v| *v == 0.0));
    }
}
