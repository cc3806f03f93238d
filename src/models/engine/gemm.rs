//! Matrix products through the `gemm` crate (candle's own CPU matmul), row-major views with
//! explicit strides so transposes cost nothing.
//!
//! The crate's AVX-512 kernels sit behind its `x86-v4` feature, which candle does not enable:
//! without it this 2-core Zen machine gets ~105 GFLOP/s per core instead of ~170-200. The
//! feature is on in our Cargo.toml (it is detected at run time, so older CPUs still work).

use gemm::Parallelism;

/// A row-major matrix view: element (i, j) at `offset + i * row_stride + j * col_stride`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    pub fn rows(data: &'a [f32], row_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `row_stride`.
    pub fn transposed(data: &'a [f32], row_stride: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: row_stride,
        }
    }

    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "gemm operand out of bounds");
        }
    }
}

fn parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]`, `dst` row-major with
/// `dst_row_stride`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_row_stride: usize,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                dst[i * dst_row_stride..i * dst_row_stride + n].fill(0.0);
            }
        }
        return;
    }
    View::rows(dst, dst_row_stride).check(m, n);
    lhs.check(m, k);
    rhs.check(k, n);
    // SAFETY: the three bounds checks above keep every index the kernel touches inside its
    // slice; `dst` is borrowed mutably, so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_with_transposed_views_and_accumulation() {
        // a = [[1, 2, 3], [4, 5, 6]], b = [[1, 0], [0, 1], [1, 1]]
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut c = [0.0f32; 4];
        matmul(
            2,
            2,
            3,
            &mut c,
            2,
            false,
            View::rows(&a, 3),
            View::rows(&b, 2),
        );
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        // a^T (3x2) times [[1], [1]]: column sums of a's rows... accumulated onto 1s.
        let mut d = [1.0f32; 3];
        let ones = [1.0, 1.0];
        matmul(
            3,
            1,
            2,
            &mut d,
            1,
            true,
            View::transposed(&a, 3),
            View::rows(&ones, 1),
        );
        assert_eq!(d, [6.0, 8.0, 10.0]);
    }
}
