//! The orthonormal DCT-II (ALGORITHMS.md §4.1) and its 2-D form per channel.
//!
//! DCT2(X) = D·X·Dᵀ and IDCT2(Y) = Dᵀ·Y·D for every channel of every image, each as two batched
//! matmuls with the N×N matrix D. Works in the dtype of the tensors it is given (f32 or f64).

use candle_core::{DType, Device, Tensor};

/// D_N[u, x] = α(u)·cos(π(2x+1)u / (2N)), α(0) = √(1/N), α(u > 0) = √(2/N); row-major, in f64.
pub fn dct_matrix_f64(n: usize) -> Vec<f64> {
    let nf = n as f64;
    let mut d = vec![0f64; n * n];
    for u in 0..n {
        let alpha = if u == 0 {
            (1.0 / nf).sqrt()
        } else {
            (2.0 / nf).sqrt()
        };
        for x in 0..n {
            let angle = std::f64::consts::PI * (2 * x + 1) as f64 * u as f64 / (2.0 * nf);
            d[u * n + x] = alpha * angle.cos();
        }
    }
    d
}

/// Rows `rows` of D_N as a [rows.len(), N] tensor of `dtype` (computed in f64, then cast).
pub fn dct_rows(
    n: usize,
    rows: std::ops::Range<usize>,
    dtype: DType,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let full = dct_matrix_f64(n);
    let count = rows.len();
    let picked = full[rows.start * n..rows.end * n].to_vec();
    Tensor::from_vec(picked, (count, n), device)?.to_dtype(dtype)
}

/// The 2-D DCT of N×N images, per channel.
#[derive(Clone, Debug)]
pub struct Dct2 {
    n: usize,
    /// D [N, N].
    matrix: Tensor,
    /// Dᵀ [N, N], kept contiguous for the matmuls.
    transposed: Tensor,
}

impl Dct2 {
    pub fn new(n: usize, dtype: DType, device: &Device) -> candle_core::Result<Self> {
        let matrix = dct_rows(n, 0..n, dtype, device)?;
        let transposed = matrix.t()?.contiguous()?;
        Ok(Self {
            n,
            matrix,
            transposed,
        })
    }

    pub fn size(&self) -> usize {
        self.n
    }

    /// DCT2 of `x` [..., N, N]: D·X·Dᵀ on the last two dimensions.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        sandwich(&self.matrix, x, &self.transposed)
    }

    /// IDCT2 of `y` [..., N, N]: Dᵀ·Y·D on the last two dimensions.
    pub fn inverse(&self, y: &Tensor) -> candle_core::Result<Tensor> {
        sandwich(&self.transposed, y, &self.matrix)
    }
}

/// left·X·right for every trailing matrix X of `x` [..., R, C], as two batched matmuls over
/// the flattened leading dimensions. `left` is [P, R] and `right` is [C, Q]; the result is
/// [..., P, Q].
pub(crate) fn sandwich(left: &Tensor, x: &Tensor, right: &Tensor) -> candle_core::Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 2 {
        candle_core::bail!("expected [..., rows, cols], got {dims:?}");
    }
    let (lead, tail) = dims.split_at(dims.len() - 2);
    let batch: usize = lead.iter().product();
    let flat = x.reshape((batch, tail[0], tail[1]))?;
    let (p, _) = left.dims2()?;
    let (_, q) = right.dims2()?;
    // X·right folds the batch into the rows (one GEMM); left·Y is done as (Yᵀ·leftᵀ)ᵀ for the
    // same reason, instead of copying `left` once per matrix.
    let x_right = flat.broadcast_matmul(right)?;
    let out = x_right
        .transpose(1, 2)?
        .contiguous()?
        .broadcast_matmul(&left.t()?.contiguous()?)?
        .transpose(1, 2)?;
    let mut shape = lead.to_vec();
    shape.extend([p, q]);
    out.reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::rng::{self, Normals};

    fn normals(seed: u64, shape: &[usize]) -> Tensor {
        let mut v = vec![0f32; shape.iter().product()];
        Normals::new(rng::stream(seed, 91, 0, 0)).fill(&mut v);
        Tensor::from_vec(v, shape, &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F64))
            .expect("tensor")
    }

    fn norm(t: &Tensor) -> f64 {
        t.sqr()
            .and_then(|s| s.sum_all())
            .and_then(|s| s.to_scalar::<f64>())
            .expect("norm")
            .sqrt()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_dtype(DType::F64))
            .and_then(|d| d.to_scalar::<f64>())
            .expect("diff")
    }

    #[test]
    fn matrix_is_orthonormal() {
        for n in [1, 5, 8, 28, 32] {
            let d = dct_matrix_f64(n);
            for a in 0..n {
                for b in 0..n {
                    let dot: f64 = (0..n).map(|x| d[a * n + x] * d[b * n + x]).sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-12, "n={n} rows {a},{b}: {dot}");
                }
            }
        }
    }

    #[test]
    fn inverse_undoes_forward_and_keeps_the_norm() {
        for dtype in [DType::F64, DType::F32] {
            for (shape, seed) in [
                (vec![2usize, 3, 32, 32], 1u64),
                (vec![1, 1, 28, 28], 2),
                (vec![3, 8, 8], 3),
            ] {
                let dct = Dct2::new(shape[shape.len() - 1], dtype, &Device::Cpu).expect("dct");
                let x = normals(seed, &shape).to_dtype(dtype).expect("cast");
                let y = dct.forward(&x).expect("forward");
                assert_eq!(y.dims(), x.dims());
                let back = dct.inverse(&y).expect("inverse");
                assert!(max_abs_diff(&back, &x) <= 1e-5, "{dtype:?} {shape:?}");
                let (nx, ny) = (
                    norm(&x.to_dtype(DType::F64).expect("f64")),
                    norm(&y.to_dtype(DType::F64).expect("f64")),
                );
                assert!(
                    (nx - ny).abs() <= 1e-5 * nx,
                    "{dtype:?}: ‖x‖ {nx} vs ‖DCT2 x‖ {ny}"
                );
            }
        }
    }

    #[test]
    fn constant_image_has_only_the_dc_coefficient() {
        for (n, c) in [(8usize, 0.7f64), (28, 0.25), (32, 1.0)] {
            let dct = Dct2::new(n, DType::F64, &Device::Cpu).expect("dct");
            let x = Tensor::full(c, (1, 1, n, n), &Device::Cpu).expect("x");
            let y = dct
                .forward(&x)
                .and_then(|y| y.flatten_all())
                .and_then(|y| y.to_vec1::<f64>())
                .expect("forward");
            assert!(
                (y[0] - c * n as f64).abs() <= 1e-5,
                "DC {} vs {}",
                y[0],
                c * n as f64
            );
            assert!(y[1..].iter().all(|v| v.abs() <= 1e-5), "n={n}: AC leak");
        }
    }

    #[test]
    fn matches_the_definition_on_rectangular_sandwich() {
        // sandwich(left, X, right) = left·X·right for a non-square X.
        let left = normals(4, &[2, 3]);
        let x = normals(5, &[4, 3, 5]);
        let right = normals(6, &[5, 2]);
        let got = sandwich(&left, &x, &right).expect("sandwich");
        for b in 0..4 {
            let xb = x.get(b).expect("row");
            let want = left.matmul(&xb).and_then(|t| t.matmul(&right)).expect("mm");
            assert!(max_abs_diff(&got.get(b).expect("row"), &want) < 1e-12);
        }
    }
}
