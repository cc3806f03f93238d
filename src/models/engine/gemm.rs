//! Matrix products through the `gemm` crate (candle's own CPU matmul), row-major views with
//! explicit strides so transposes cost nothing.
//!
//! The crate's AVX-512 kernels sit behind its `x86-v4` feature, which candle does not enable:
//! without it this 2-core Zen machine gets ~105 GFLOP/s per core instead of ~170-200. The
//! feature is on in our Cargo.toml (it is detected at run time, so older CPUs still work).

use gemm::Parallelism;
use rayon::prelude::*;

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

/// Products below this many multiply-adds run on one thread: waking a second one costs more
/// than it saves (ResNet-20's 32-px layers, ~2.4 M each, ran 25% slower split in two).
const PARALLEL_MIN_MACS: usize = 1 << 23;

/// Splits of the long dimension are multiples of this, so no block ends in a ragged
/// micro-tile (the AVX-512 kernels are 64 x 6 and 16 x 6 tiles).
const SPLIT_ALIGN: usize = 64;

/// How many threads a product of `macs` multiply-adds runs on (here and in `packed.rs`).
pub(super) fn threads_for(macs: usize) -> usize {
    if macs < PARALLEL_MIN_MACS || super::parallel::is_serial() {
        1
    } else {
        rayon::current_num_threads().max(1)
    }
}

/// A destination pointer shared by the blocks of one product, which write disjoint elements
/// (here and in `packed.rs`).
#[derive(Clone, Copy)]
pub(super) struct Dst(pub(super) *mut f32);
// SAFETY: each block of `matmul` (and each job of `PackedMatrix::apply`) writes only its own
// elements of the destination.
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

impl Dst {
    /// Through a method, so closures capture the `Send` wrapper, not the raw field.
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]`, `dst` row-major with
/// `dst_row_stride`.
///
/// Large products split into one block per thread along their longer side, each block one
/// single-threaded `gemm` call. The `gemm` crate's own `Parallelism::Rayon` splits inside
/// its packing loops and synchronises several times per product; on ResNet-18 at batch 1
/// that scaled 1.39x on 2 cores where PyTorch scales 1.78x.
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
    matmul_strided(m, n, k, dst, (dst_row_stride, 1), accumulate, lhs, rhs);
}

/// `matmul` into a destination with any `(row, column)` strides: `(1, m)` is column-major,
/// the `gemm` crate's own orientation, where its micro-kernels load and store whole columns
/// of a tile (a transformer's token-major products are written this way: see `tokens`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_strided(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    (dst_row_stride, dst_col_stride): (usize, usize),
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
) {
    if m == 0 || n == 0 {
        return;
    }
    let dst_view = View {
        data: dst,
        row_stride: dst_row_stride,
        col_stride: dst_col_stride,
    };
    dst_view.check(m, n);
    lhs.check(m, k);
    rhs.check(k, n);
    let dst = Dst(dst.as_mut_ptr());
    // SAFETY (both calls below): the bounds checks above keep every element of the whole
    // product inside its slice, and a block is a sub-range of its rows or columns; `dst` was
    // borrowed mutably, so it aliases neither operand, and blocks write disjoint elements.
    let block = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| unsafe {
        let d = dst
            .get()
            .add(rows.start * dst_row_stride + cols.start * dst_col_stride);
        let views = (
            lhs.data.as_ptr().add(rows.start * lhs.row_stride),
            (lhs.row_stride, lhs.col_stride),
            rhs.data.as_ptr().add(cols.start * rhs.col_stride),
            (rhs.row_stride, rhs.col_stride),
        );
        gemm_raw(
            (rows.len(), cols.len(), k),
            d,
            (dst_row_stride, dst_col_stride),
            accumulate,
            views,
        );
    };
    let threads = threads_for(m * n * k);
    let long = m.max(n);
    let size = long.div_ceil(threads).next_multiple_of(SPLIT_ALIGN);
    if threads <= 1 || size >= long {
        block(0..m, 0..n);
        return;
    }
    let blocks = long.div_ceil(size);
    (0..blocks).into_par_iter().for_each(|t| {
        let part = t * size..((t + 1) * size).min(long);
        if n >= m {
            block(0..m, part);
        } else {
            block(part, 0..n);
        }
    });
}

/// `matmul_strided` on this thread into a raw destination: for callers whose threads write
/// disjoint, interleaved parts of one buffer (attention's heads, each a column range of
/// every token row), which no set of `&mut` slices can express.
///
/// # Safety
/// `dst` must be valid for reads and writes at `i * row_stride + j * col_stride` for every
/// `i < m`, `j < n`, and nothing else may access those elements during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul_into(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
) {
    if m == 0 || n == 0 {
        return;
    }
    lhs.check(m, k);
    rhs.check(k, n);
    let views = (
        lhs.data.as_ptr(),
        (lhs.row_stride, lhs.col_stride),
        rhs.data.as_ptr(),
        (rhs.row_stride, rhs.col_stride),
    );
    // SAFETY: the operands' bounds were checked above; the destination is the caller's.
    unsafe { gemm_raw((m, n, k), dst, dst_strides, accumulate, views) };
}

/// Operands as `(pointer, (row stride, column stride))`, left then right.
type RawViews = (*const f32, (usize, usize), *const f32, (usize, usize));

/// One single-threaded `gemm` call (`k == 0` included: the destination is zeroed unless
/// accumulating).
///
/// # Safety
/// Every pointer must be valid for the `m × k`, `k × n` and `m × n` elements its strides
/// reach, and the destination must alias neither operand.
unsafe fn gemm_raw(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    (lhs, (lhs_rs, lhs_cs), rhs, (rhs_rs, rhs_cs)): RawViews,
) {
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: within the destination, by the contract.
                    unsafe { *dst.add(i * dst_rs + j * dst_cs) = 0.0 };
                }
            }
        }
        return;
    }
    // SAFETY: the contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// The fp32 GEMM rate the engine reaches on this machine, GFLOP/s: the best of a few
/// `n x n x n` products on the compute pool. Benchmarks divide by it.
pub fn peak_gemm_gflops(n: usize) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let mut c = vec![0f32; n * n];
    let best = super::super::threads::install(|| {
        (0..5)
            .map(|_| {
                let start = std::time::Instant::now();
                matmul(
                    n,
                    n,
                    n,
                    &mut c,
                    n,
                    false,
                    View::rows(&a, n),
                    View::rows(&a, n),
                );
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    });
    2.0 * (n as f64).powi(3) / best / 1e9
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
