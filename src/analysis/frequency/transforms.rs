//! Frequency-domain input transforms (ALGORITHMS.md §4.3) and a model wrapper that applies one
//! in front of any classifier.
//!
//! Every transform here is a linear map T on pixel space that is self-adjoint: flip is Dᵀ·F·D
//! with F a symmetric permutation (an involution), and the band filters are Dᵀ·M·D with M a
//! 0/1 diagonal mask. So the input gradient of f(T x) is Tᵀ ∇f(T x) = T ∇f(T x): the wrapper
//! takes the classifier's own gradient (engine or autograd) and transforms it once more.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor};

use super::dct::Dct2;
use super::error::FrequencyError;
use crate::analysis::Result;
use crate::models::{Classifier, Objective};

/// Default low-/high-pass bandwidth.
pub const DEFAULT_PASS_BANDWIDTH: usize = 16;
/// Default cut-low bandwidth (the MNIST-like setting).
pub const DEFAULT_CUT_LOW_BANDWIDTH: usize = 14;

/// One §4.3 transform, applied per channel to N×N images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrequencyTransform {
    /// Coefficient (c, u, v) ↦ (c, N−1−u, N−1−v): low and high frequencies swap.
    Flip,
    /// Keep [0, b)².
    LowPass(usize),
    /// Keep [N − b, N)².
    HighPass(usize),
    /// Zero [0, b)².
    CutLow(usize),
}

impl FromStr for FrequencyTransform {
    type Err = FrequencyError;

    /// `flip`, `lowpass[:B]`, `highpass[:B]`, `cutlow[:B]`.
    fn from_str(text: &str) -> Result<Self, FrequencyError> {
        let unknown = || FrequencyError::UnknownTransform(text.to_string());
        let (name, bandwidth) = match text.split_once(':') {
            Some((name, b)) => (
                name,
                Some(b.trim().parse::<usize>().map_err(|_| unknown())?),
            ),
            None => (text, None),
        };
        match (name.trim().to_ascii_lowercase().as_str(), bandwidth) {
            ("flip", None) => Ok(Self::Flip),
            ("lowpass", b) => Ok(Self::LowPass(b.unwrap_or(DEFAULT_PASS_BANDWIDTH))),
            ("highpass", b) => Ok(Self::HighPass(b.unwrap_or(DEFAULT_PASS_BANDWIDTH))),
            ("cutlow", b) => Ok(Self::CutLow(b.unwrap_or(DEFAULT_CUT_LOW_BANDWIDTH))),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for FrequencyTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flip => write!(f, "flip"),
            Self::LowPass(b) => write!(f, "lowpass:{b}"),
            Self::HighPass(b) => write!(f, "highpass:{b}"),
            Self::CutLow(b) => write!(f, "cutlow:{b}"),
        }
    }
}

impl FrequencyTransform {
    /// Checks that the transform fits N×N images.
    pub fn check(&self, size: usize) -> Result<(), FrequencyError> {
        match *self {
            Self::Flip => Ok(()),
            Self::LowPass(b) | Self::HighPass(b) | Self::CutLow(b) if b == 0 || b > size => {
                Err(FrequencyError::BandwidthOutOfRange {
                    transform: self.to_string(),
                    bandwidth: b,
                    size,
                })
            }
            _ => Ok(()),
        }
    }

    /// The 0/1 coefficient mask [N, N] of a band filter (`None` for flip).
    fn mask(&self, size: usize) -> Option<Vec<f32>> {
        let inside = |lo: usize, hi: usize, u: usize, v: usize| {
            (lo..hi).contains(&u) && (lo..hi).contains(&v)
        };
        let keep: Box<dyn Fn(usize, usize) -> bool> = match *self {
            Self::Flip => return None,
            Self::LowPass(b) => Box::new(move |u, v| inside(0, b, u, v)),
            Self::HighPass(b) => Box::new(move |u, v| inside(size - b, size, u, v)),
            Self::CutLow(b) => Box::new(move |u, v| !inside(0, b, u, v)),
        };
        Some(
            (0..size * size)
                .map(|k| f32::from(u8::from(keep(k / size, k % size))))
                .collect(),
        )
    }

    /// The transform of `x` [..., N, N], computed as IDCT2(op(DCT2(x))) with `dct`.
    pub fn apply(&self, dct: &Dct2, x: &Tensor) -> Result<Tensor> {
        let n = dct.size();
        self.check(n)?;
        let coefficients = dct.forward(x)?;
        let rank = coefficients.rank();
        let changed = match self.mask(n) {
            None => coefficients.flip(&[rank - 2, rank - 1])?,
            Some(mask) => {
                let mask = Tensor::from_vec(mask, (n, n), x.device())?.to_dtype(x.dtype())?;
                coefficients.broadcast_mul(&mask)?
            }
        };
        Ok(dct.inverse(&changed)?)
    }

    /// The transform of `x` [..., N, N] with a DCT built for the call.
    pub fn apply_once(&self, x: &Tensor) -> Result<Tensor> {
        let n = *x
            .dims()
            .last()
            .ok_or_else(|| crate::analysis::error::invalid("a transform needs an image"))?;
        let dct = Dct2::new(n, x.dtype(), x.device())?;
        self.apply(&dct, x)
    }
}

/// A classifier seen through an optional input transform: x ↦ logits(T x), so any analysis
/// can treat a model trained on transformed images (e.g. flipped ones) as a classifier of plain
/// images. The margins measure such a model on T(x) instead (`transform_samples`, see
/// `measure_margins`).
pub struct TransformedModel<'a> {
    classifier: &'a Classifier,
    transform: Option<(FrequencyTransform, Dct2)>,
}

impl<'a> TransformedModel<'a> {
    pub fn new(classifier: &'a Classifier, transform: Option<FrequencyTransform>) -> Result<Self> {
        let transform = match transform {
            None => None,
            Some(t) => {
                let [h, w] = classifier.spec().input_size;
                if h != w {
                    return Err(FrequencyError::NotSquare {
                        height: h,
                        width: w,
                    }
                    .into());
                }
                t.check(h)?;
                Some((t, Dct2::new(h, classifier.dtype(), classifier.device())?))
            }
        };
        Ok(Self {
            classifier,
            transform,
        })
    }

    /// The model without a transform.
    pub fn plain(classifier: &'a Classifier) -> Self {
        Self {
            classifier,
            transform: None,
        }
    }

    pub fn classifier(&self) -> &Classifier {
        self.classifier
    }

    pub fn transform(&self) -> Option<FrequencyTransform> {
        self.transform.as_ref().map(|(t, _)| *t)
    }

    pub fn dtype(&self) -> DType {
        self.classifier.dtype()
    }

    pub fn device(&self) -> &Device {
        self.classifier.device()
    }

    /// The samples as the network sees them when it was trained on transformed data: T(x)
    /// [B, C, N, N] in the model's dtype and device (x itself without a transform).
    pub fn transform_samples(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_device(self.device())?.to_dtype(self.dtype())?;
        self.transformed(&x)
    }

    fn transformed(&self, x: &Tensor) -> Result<Tensor> {
        match &self.transform {
            None => Ok(x.clone()),
            Some((t, dct)) => t.apply(dct, &x.to_dtype(self.dtype())?),
        }
    }

    /// Logits [B, K] of T x.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.classifier.forward(&self.transformed(x)?)?)
    }

    /// Logits [B, K] of T x and d objective / d x = T (d objective / d(T x)).
    pub fn input_gradient(&self, x: &Tensor, objective: &Objective) -> Result<(Tensor, Tensor)> {
        let (logits, grad) = self
            .classifier
            .input_gradient(&self.transformed(x)?, objective)?;
        let grad = match &self.transform {
            None => grad,
            Some((t, dct)) => t.apply(dct, &grad.to_dtype(self.dtype())?)?,
        };
        Ok((logits, grad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::rng::{self, Normals};

    fn normals(seed: u64, shape: &[usize]) -> Tensor {
        let mut v = vec![0f32; shape.iter().product()];
        Normals::new(rng::stream(seed, 93, 0, 0)).fill(&mut v);
        Tensor::from_vec(v, shape, &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F64))
            .expect("tensor")
    }

    fn values(t: &Tensor) -> Vec<f64> {
        t.to_dtype(DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f64>())
            .expect("values")
    }

    fn norm(v: &[f64]) -> f64 {
        v.iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    #[test]
    fn parses_and_prints_transforms() {
        for (text, want) in [
            ("flip", FrequencyTransform::Flip),
            ("lowpass:8", FrequencyTransform::LowPass(8)),
            ("lowpass", FrequencyTransform::LowPass(16)),
            ("highpass:4", FrequencyTransform::HighPass(4)),
            ("cutlow", FrequencyTransform::CutLow(14)),
            ("CutLow:3", FrequencyTransform::CutLow(3)),
        ] {
            assert_eq!(text.parse::<FrequencyTransform>(), Ok(want), "{text}");
        }
        assert_eq!(FrequencyTransform::LowPass(8).to_string(), "lowpass:8");
        for bad in ["", "flip:3", "blur", "lowpass:x", "lowpass:-1"] {
            assert!(bad.parse::<FrequencyTransform>().is_err(), "{bad}");
        }
        assert!(FrequencyTransform::LowPass(33).check(32).is_err());
        assert!(FrequencyTransform::CutLow(0).check(32).is_err());
        assert!(FrequencyTransform::HighPass(32).check(32).is_ok());
    }

    #[test]
    fn flip_is_an_orthogonal_involution() {
        for dtype in [DType::F64, DType::F32] {
            let x = normals(1, &[2, 3, 32, 32]).to_dtype(dtype).expect("cast");
            let dct = Dct2::new(32, dtype, &Device::Cpu).expect("dct");
            let once = FrequencyTransform::Flip.apply(&dct, &x).expect("flip");
            let twice = FrequencyTransform::Flip.apply(&dct, &once).expect("flip");
            let (x, once, twice) = (values(&x), values(&once), values(&twice));
            let worst = x
                .iter()
                .zip(&twice)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(worst <= 1e-5, "{dtype:?}: flip(flip(x)) off by {worst}");
            assert!((norm(&x) - norm(&once)).abs() <= 1e-5 * norm(&x));
        }
    }

    #[test]
    fn constant_image_flips_to_the_highest_basis_image() {
        let (n, c) = (8usize, 0.6f64);
        let dct = Dct2::new(n, DType::F64, &Device::Cpu).expect("dct");
        let x = Tensor::full(c, (1, 1, n, n), &Device::Cpu).expect("x");
        let flipped = FrequencyTransform::Flip.apply(&dct, &x).expect("flip");
        // c·N times the basis image of coefficient (N−1, N−1).
        let mut dirac = vec![0f64; n * n];
        dirac[n * n - 1] = c * n as f64;
        let want = dct
            .inverse(&Tensor::from_vec(dirac, (1, 1, n, n), &Device::Cpu).expect("dirac"))
            .expect("basis");
        let worst = values(&flipped)
            .iter()
            .zip(values(&want))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 1e-5, "{worst}");
    }

    #[test]
    fn band_filters_keep_their_blocks() {
        let n = 16;
        let dct = Dct2::new(n, DType::F64, &Device::Cpu).expect("dct");
        let x = normals(2, &[1, 3, n, n]);
        let coefficients = |t: &Tensor| values(&dct.forward(t).expect("dct"));
        let all = coefficients(&x);
        for (t, keep) in [
            (
                FrequencyTransform::LowPass(5),
                Box::new(|u: usize, v: usize| u < 5 && v < 5) as Box<dyn Fn(usize, usize) -> bool>,
            ),
            (
                FrequencyTransform::HighPass(5),
                Box::new(|u, v| u >= 11 && v >= 11),
            ),
            (
                FrequencyTransform::CutLow(5),
                Box::new(|u, v| !(u < 5 && v < 5)),
            ),
        ] {
            let y = coefficients(&t.apply(&dct, &x).expect("apply"));
            for (k, (a, b)) in all.iter().zip(&y).enumerate() {
                let (u, v) = ((k / n) % n, k % n);
                let want = if keep(u, v) { *a } else { 0.0 };
                assert!((b - want).abs() <= 1e-10, "{t} at ({u}, {v})");
            }
            // Low-pass + cut-low = identity.
        }
        let low = values(&FrequencyTransform::LowPass(5).apply(&dct, &x).expect("low"));
        let cut = values(&FrequencyTransform::CutLow(5).apply(&dct, &x).expect("cut"));
        for ((l, c), v) in low.iter().zip(&cut).zip(values(&x)) {
            assert!((l + c - v).abs() <= 1e-10);
        }
    }

    #[test]
    fn wrapped_gradient_matches_f64_finite_differences() {
        use crate::analysis::test_models::biased_linear_f64;
        let shape = [3, 8, 8];
        let classifier = biased_linear_f64(shape, 4, 3);
        let x = normals(5, &[1, 3, 8, 8]).affine(0.1, 0.5).expect("x");
        let direction = normals(6, &[1, 3, 8, 8]);
        for transform in [
            FrequencyTransform::Flip,
            FrequencyTransform::LowPass(3),
            FrequencyTransform::CutLow(2),
        ] {
            let model = TransformedModel::new(&classifier, Some(transform)).expect("model");
            let objective = Objective::SelectedLogits(vec![(0, 2)]);
            let (_, grad) = model.input_gradient(&x, &objective).expect("gradient");
            let value = |t: &Tensor| values(&model.forward(t).expect("forward"))[2];
            let h = 1e-6;
            let plus = value(&(&x + direction.affine(h, 0.0).expect("d")).expect("x+"));
            let minus = value(&(&x - direction.affine(h, 0.0).expect("d")).expect("x-"));
            let numeric = (plus - minus) / (2.0 * h);
            let analytic: f64 = values(&grad)
                .iter()
                .zip(values(&direction))
                .map(|(g, d)| g * d)
                .sum();
            assert!(
                (numeric - analytic).abs() <= 1e-7 * numeric.abs().max(1.0),
                "{transform}: {analytic} vs {numeric}"
            );
        }
    }

    #[test]
    fn wrapper_rejects_transforms_that_do_not_fit() {
        use crate::analysis::test_models::biased_linear_f64;
        let classifier = biased_linear_f64([1, 8, 8], 3, 1);
        let err = TransformedModel::new(&classifier, Some(FrequencyTransform::LowPass(9)))
            .err()
            .expect("bandwidth 9 on 8 px");
        assert!(err.to_string().contains("lowpass:9"), "{err}");
        let wide = biased_linear_f64([1, 8, 6], 3, 1);
        let err = TransformedModel::new(&wide, Some(FrequencyTransform::Flip))
            .err()
            .expect("non-square");
        assert!(err.to_string().contains("square"), "{err}");
    }
}
