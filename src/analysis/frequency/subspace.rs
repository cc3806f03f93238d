//! DCT subspaces (ALGORITHMS.md §4.1): diagonal K×K blocks of DCT coefficients swept from low
//! to high frequency, and the projections onto them without a basis matrix.
//!
//! Subspace s holds the coefficients (c, u, v) with i0 ≤ u, v < i0 + K, i0 = s·step, for every
//! channel c. Because the DCT is orthonormal, the coordinates of w in that subspace are the
//! block R·W·Rᵀ of DCT2(w) (R = rows i0..i0+K of D), so ‖Sᵀw‖ = ‖M_s ⊙ DCT2(w)‖ and
//! S Sᵀ w = IDCT2(M_s ⊙ DCT2(w)) = Rᵀ·(R·W·Rᵀ)·R. Only the K rows of D that the mask keeps
//! are multiplied; the dense (C·N²) × (C·K²) basis is never built.

use candle_core::{DType, Device, Tensor};

use super::dct::{dct_rows, sandwich};
use super::error::FrequencyError;

/// Below this size the CIFAR/MNIST-like rule applies (K = 8), from it the ImageNet-like one.
const LARGE_INPUT: usize = 112;

/// Which subspaces a square input gets: S blocks of K×K starting at 0, step, 2·step, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubspacePlan {
    pub channels: usize,
    /// N: the image is N×N.
    pub size: usize,
    /// K: each subspace is a K×K block per channel.
    pub band: usize,
    pub step: usize,
    /// S = ⌊(N − K)/step⌋ + 1.
    pub count: usize,
}

impl SubspacePlan {
    /// The §4.1 rule for a C×H×W input: K = 8 and step max(1, ⌊(N − K)/12⌋) below 112 px,
    /// else K = 16 and step K. Reproduces the MNIST (21), CIFAR (13) and ImageNet (14) presets.
    pub fn for_input(channels: usize, height: usize, width: usize) -> Result<Self, FrequencyError> {
        Self::new(channels, height, width, None, None)
    }

    /// The §4.1 rule with the band K and/or the step overridden.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        band: Option<usize>,
        step: Option<usize>,
    ) -> Result<Self, FrequencyError> {
        if height != width {
            return Err(FrequencyError::NotSquare { height, width });
        }
        let size = height;
        let large = size >= LARGE_INPUT;
        let band = band.unwrap_or(if large { 16 } else { 8 });
        if band == 0 {
            return Err(FrequencyError::Zero { what: "band" });
        }
        if band > size {
            return Err(FrequencyError::BandTooLarge { band, size });
        }
        let step = match step {
            Some(0) => return Err(FrequencyError::Zero { what: "step" }),
            Some(step) => step,
            None if large => band,
            None => ((size - band) / 12).max(1),
        };
        Ok(Self {
            channels,
            size,
            band,
            step,
            count: (size - band) / step + 1,
        })
    }

    /// Block start i0 of subspace s.
    pub fn start(&self, s: usize) -> usize {
        s * self.step
    }

    pub fn starts(&self) -> Vec<usize> {
        (0..self.count).map(|s| self.start(s)).collect()
    }

    /// dim S = C·K².
    pub fn dim(&self) -> usize {
        self.channels * self.band * self.band
    }

    /// Subspace s, with its DCT rows in `dtype` on `device`.
    pub fn subspace(
        &self,
        s: usize,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Subspace> {
        if s >= self.count {
            candle_core::bail!("subspace {s} of {}", self.count);
        }
        Subspace::new(self.size, self.start(s), self.band, dtype, device)
    }

    /// Checks that images [B, C, N, N] fit this plan.
    pub fn check_images(&self, dims: &[usize]) -> Result<(), FrequencyError> {
        let expected = [self.channels, self.size, self.size];
        match dims {
            [_, rest @ ..] if rest == expected => Ok(()),
            [_, _, h, w] if h != w => Err(FrequencyError::NotSquare {
                height: *h,
                width: *w,
            }),
            _ => Err(FrequencyError::ShapeMismatch {
                found: dims.to_vec(),
                expected: [0].into_iter().chain(expected).collect(),
            }),
        }
    }
}

/// One K×K block of DCT coefficients at (i0, i0), the same in every channel.
#[derive(Clone, Debug)]
pub struct Subspace {
    size: usize,
    start: usize,
    band: usize,
    /// R = D_N[i0..i0+K, :], [K, N].
    rows: Tensor,
    /// Rᵀ, [N, K].
    rows_t: Tensor,
}

impl Subspace {
    pub fn new(
        size: usize,
        start: usize,
        band: usize,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Self> {
        if band == 0 || start + band > size {
            candle_core::bail!("block {start}..{} does not fit N = {size}", start + band);
        }
        let rows = dct_rows(size, start..start + band, dtype, device)?;
        let rows_t = rows.t()?.contiguous()?;
        Ok(Self {
            size,
            start,
            band,
            rows,
            rows_t,
        })
    }

    pub fn start(&self) -> usize {
        self.start
    }

    pub fn band(&self) -> usize {
        self.band
    }

    /// Sᵀw as K×K blocks: R·W·Rᵀ for every trailing N×N matrix of `w`, [..., K, K].
    pub fn coefficients(&self, w: &Tensor) -> candle_core::Result<Tensor> {
        sandwich(&self.rows, w, &self.rows_t)
    }

    /// ‖Sᵀ w_b‖ for each b of `w` [B, ...], accumulated in f64.
    pub fn norms(&self, w: &Tensor) -> candle_core::Result<Vec<f64>> {
        let coefficients = self.coefficients(w)?;
        row_norms(&coefficients)
    }

    /// S Sᵀ w = IDCT2(M_s ⊙ DCT2(w)) = Rᵀ·(R·W·Rᵀ)·R, same shape as `w`.
    pub fn project(&self, w: &Tensor) -> candle_core::Result<Tensor> {
        let coefficients = self.coefficients(w)?;
        self.expand(&coefficients)
    }

    /// S·c: the image [..., N, N] of coefficient blocks c [..., K, K].
    pub fn expand(&self, coefficients: &Tensor) -> candle_core::Result<Tensor> {
        sandwich(&self.rows_t, coefficients, &self.rows)
    }

    /// M_s as an N×N 0/1 mask, row-major.
    pub fn mask(&self) -> Vec<f32> {
        let n = self.size;
        let inside = |i: usize| (self.start..self.start + self.band).contains(&i);
        (0..n * n)
            .map(|k| f32::from(u8::from(inside(k / n) && inside(k % n))))
            .collect()
    }
}

/// The L2 norm of each b of `t` [B, ...], in f64.
pub(crate) fn row_norms(t: &Tensor) -> candle_core::Result<Vec<f64>> {
    let batch = t.dim(0)?;
    let flat = t.to_dtype(DType::F64)?.reshape((batch, ()))?;
    Ok(flat
        .sqr()?
        .sum(1)?
        .to_vec1::<f64>()?
        .into_iter()
        .map(f64::sqrt)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::frequency::dct::Dct2;
    use crate::analysis::rng::{self, Normals};

    fn normals(seed: u64, shape: &[usize]) -> Tensor {
        let mut v = vec![0f32; shape.iter().product()];
        Normals::new(rng::stream(seed, 92, 0, 0)).fill(&mut v);
        Tensor::from_vec(v, shape, &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F64))
            .expect("tensor")
    }

    #[test]
    fn preset_counts_and_dims() {
        let cases = [
            ((1, 28), (8, 1, 21, 64)),
            ((3, 32), (8, 2, 13, 192)),
            ((3, 224), (16, 16, 14, 768)),
        ];
        for ((c, n), (band, step, count, dim)) in cases {
            let plan = SubspacePlan::for_input(c, n, n).expect("plan");
            assert_eq!(
                (plan.band, plan.step, plan.count, plan.dim()),
                (band, step, count, dim),
                "{c}×{n}×{n}"
            );
            // The last block ends inside the image.
            assert!(plan.start(plan.count - 1) + plan.band <= n);
            assert!(plan.start(plan.count) + plan.band > n);
        }
        // Generic row for another size: N = 64 → K = 8, step ⌊56/12⌋ = 4, S = 15.
        let plan = SubspacePlan::for_input(3, 64, 64).expect("plan");
        assert_eq!((plan.band, plan.step, plan.count), (8, 4, 15));
        // N = 8 (the band fills the image): one subspace, step 1.
        let plan = SubspacePlan::for_input(1, 8, 8).expect("plan");
        assert_eq!((plan.band, plan.step, plan.count), (8, 1, 1));
    }

    #[test]
    fn bad_plans_are_errors() {
        assert_eq!(
            SubspacePlan::for_input(3, 32, 28),
            Err(FrequencyError::NotSquare {
                height: 32,
                width: 28
            })
        );
        assert_eq!(
            SubspacePlan::for_input(1, 6, 6),
            Err(FrequencyError::BandTooLarge { band: 8, size: 6 })
        );
        assert_eq!(
            SubspacePlan::new(3, 32, 32, Some(40), None),
            Err(FrequencyError::BandTooLarge { band: 40, size: 32 })
        );
        assert!(matches!(
            SubspacePlan::new(3, 32, 32, Some(0), None),
            Err(FrequencyError::Zero { .. })
        ));
        assert!(matches!(
            SubspacePlan::new(3, 32, 32, None, Some(0)),
            Err(FrequencyError::Zero { .. })
        ));
        let message = SubspacePlan::for_input(3, 32, 28)
            .expect_err("non-square")
            .to_string();
        assert!(
            message.contains("square") && message.contains("32×28"),
            "{message}"
        );
    }

    /// The explicit basis: column (c, i, j) is the image IDCT2(δ at (c, i0+i, i0+j)).
    fn dense_basis(c: usize, n: usize, start: usize, band: usize) -> Vec<Vec<f64>> {
        let dct = Dct2::new(n, DType::F64, &Device::Cpu).expect("dct");
        let mut columns = Vec::new();
        for ch in 0..c {
            for i in 0..band {
                for j in 0..band {
                    let mut dirac = vec![0f64; c * n * n];
                    dirac[ch * n * n + (start + i) * n + start + j] = 1.0;
                    let t = Tensor::from_vec(dirac, (c, n, n), &Device::Cpu).expect("dirac");
                    let image = dct
                        .inverse(&t)
                        .and_then(|t| t.flatten_all())
                        .and_then(|t| t.to_vec1::<f64>())
                        .expect("basis image");
                    columns.push(image);
                }
            }
        }
        columns
    }

    #[test]
    fn mask_projections_match_the_dense_basis() {
        let (c, n, band) = (3, 8, 4);
        let plan = SubspacePlan::new(c, n, n, Some(band), Some(2)).expect("plan");
        assert_eq!(plan.count, 3);
        let w = normals(3, &[2, c, n, n]);
        let dct = Dct2::new(n, DType::F64, &Device::Cpu).expect("dct");
        for s in 0..plan.count {
            let sub = plan
                .subspace(s, DType::F64, &Device::Cpu)
                .expect("subspace");
            let basis = dense_basis(c, n, plan.start(s), band);
            let fast_norms = sub.norms(&w).expect("norms");
            let fast_projection = sub
                .project(&w)
                .and_then(|p| p.flatten_from(1))
                .and_then(|p| p.to_vec2::<f64>())
                .expect("projection");
            // The literal mask formula: IDCT2(M ⊙ DCT2(w)).
            let mask = Tensor::from_vec(
                sub.mask().iter().map(|&m| f64::from(m)).collect::<Vec<_>>(),
                (n, n),
                &Device::Cpu,
            )
            .expect("mask");
            let masked = dct
                .forward(&w)
                .and_then(|y| y.broadcast_mul(&mask))
                .and_then(|y| dct.inverse(&y))
                .and_then(|p| p.flatten_from(1))
                .and_then(|p| p.to_vec2::<f64>())
                .expect("mask projection");
            let rows = w
                .flatten_from(1)
                .and_then(|t| t.to_vec2::<f64>())
                .expect("w");
            for (b, wb) in rows.iter().enumerate() {
                let coords: Vec<f64> = basis
                    .iter()
                    .map(|col| col.iter().zip(wb).map(|(a, b)| a * b).sum())
                    .collect();
                let dense_norm = coords.iter().map(|v| v * v).sum::<f64>().sqrt();
                assert!((fast_norms[b] - dense_norm).abs() <= 1e-5 * dense_norm.max(1e-12));
                for k in 0..c * n * n {
                    let dense: f64 = basis.iter().zip(&coords).map(|(col, a)| col[k] * a).sum();
                    assert!(
                        (fast_projection[b][k] - dense).abs() <= 1e-5,
                        "s={s} b={b} k={k}"
                    );
                    assert!(
                        (masked[b][k] - dense).abs() <= 1e-5,
                        "mask s={s} b={b} k={k}"
                    );
                }
            }
        }
    }

    #[test]
    fn projection_is_idempotent_in_f32() {
        let plan = SubspacePlan::for_input(3, 32, 32).expect("plan");
        let w = normals(4, &[2, 3, 32, 32])
            .to_dtype(DType::F32)
            .expect("f32");
        let sub = plan
            .subspace(5, DType::F32, &Device::Cpu)
            .expect("subspace");
        let once = sub.project(&w).expect("project");
        let twice = sub.project(&once).expect("project");
        let diff = (&once - &twice)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("diff");
        assert!(diff <= 1e-5, "{diff}");
        // ‖S Sᵀ w‖ = ‖Sᵀ w‖.
        let norms = sub.norms(&w).expect("norms");
        let projected = row_norms(&once).expect("norms");
        for (a, b) in norms.iter().zip(&projected) {
            assert!((a - b).abs() <= 1e-5 * a, "{a} vs {b}");
        }
    }
}
