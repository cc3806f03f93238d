//! Products with a constant matrix packed once, for a transformer's per-token linear layers.
//!
//! The `gemm` crate packs its left operand into 64-row panels on every call. For a linear
//! layer that operand is the weight matrix, the same on every call: `perf` put that packing
//! at 11% of a DeiT-S step at batch 1 (each batch shard packs the whole matrix once per 768
//! tokens). The crate has no API for an operand packed in advance, so this module packs the
//! weights once, in the crate's own panel layout, and drives the crate's AVX-512
//! micro-kernels over them itself (the same kernels `gemm::gemm` calls, with the same
//! blocking). Without AVX-512 `PackedMatrix::new` declines and callers use `gemm.rs`.
//!
//! Every product here is `y[j][i] (+)= bias[i] + Σ_p a[i][p] · b[j][p]` for `j < n`, with `a`
//! the packed `m × k` matrix, `b` and `y` row-major with rows of `k` and `m` floats: a linear
//! layer `y = x·Wᵀ + bias` over token rows, or its VJP `dx = gy·W`. An `Epilogue` then
//! finishes each tile while it is still in cache: a transformer MLP's GELU after `fc1`, and
//! the GELU derivative its VJP multiplies by after `fc2`'s, never take a separate pass over
//! the hidden activations (4× the width, so larger than L2 at any batch).

use std::ops::Range;

use rayon::prelude::*;

use super::fast_math;
use super::gemm::{Dst, View, threads_for};
use super::kernels::sequential;
use super::simd;

/// What a product does to each tile of `y` once the tile is final (all depth added).
pub(crate) enum Epilogue<'a> {
    None,
    /// `y = GELU(y)`; with `derivative` (laid out as `y`), also `GELU'` of the same inputs
    /// there.
    Gelu {
        derivative: Option<&'a mut [f32]>,
    },
    /// `y *= factor`, elementwise (`factor` laid out as `y`).
    Scale(&'a [f32]),
    /// `y += residual`, elementwise (a residual connection, laid out as `y`).
    Add(&'a [f32]),
}

impl Epilogue<'_> {
    /// The form the jobs of one product share: the derivative as a pointer, since each job
    /// writes only the elements of its own tiles.
    fn shared(&mut self, len: usize) -> TileEpilogue<'_> {
        match self {
            Self::None => TileEpilogue::None,
            Self::Gelu { derivative } => TileEpilogue::Gelu(derivative.as_deref_mut().map(|d| {
                assert!(
                    d.len() >= len,
                    "epilogue: derivative of {} < {len}",
                    d.len()
                );
                Dst(d.as_mut_ptr())
            })),
            Self::Scale(factor) => {
                assert!(
                    factor.len() >= len,
                    "epilogue: factor of {} < {len}",
                    factor.len()
                );
                TileEpilogue::Scale(factor)
            }
            Self::Add(residual) => {
                let n = residual.len();
                assert!(n >= len, "epilogue: residual of {n} < {len}");
                TileEpilogue::Add(residual)
            }
        }
    }

    /// Finishes all of `y` at once, in parallel chunks (a product made some other way: the
    /// `gemm` crate's path without AVX-512).
    pub fn finish(mut self, y: &mut [f32]) {
        const CHUNK: usize = 1 << 14;
        let epilogue = self.shared(y.len());
        let run = |(c, y): (usize, &mut [f32])| {
            // SAFETY: each chunk is its own part of `y` (borrowed mutably) and of the
            // derivative, whose length `shared` checked.
            simd::dispatch(
                #[inline(always)]
                || unsafe { epilogue.finish(y, c * CHUNK) },
            );
        };
        if sequential(y.len()) {
            y.chunks_mut(CHUNK).enumerate().for_each(run);
        } else {
            y.par_chunks_mut(CHUNK).enumerate().for_each(run);
        }
    }
}

#[derive(Clone, Copy)]
enum TileEpilogue<'a> {
    None,
    Gelu(Option<Dst>),
    Scale(&'a [f32]),
    Add(&'a [f32]),
}

impl TileEpilogue<'_> {
    /// Finishes `y`, whose first element is element `offset` of the whole product.
    ///
    /// # Safety
    /// A derivative pointer must cover `offset + y.len()` floats, of which nothing else
    /// touches `offset..offset + y.len()` meanwhile.
    #[inline(always)]
    unsafe fn finish(self, y: &mut [f32], offset: usize) {
        match self {
            Self::None => {}
            Self::Gelu(derivative) => {
                let derivative = derivative.map(|d| {
                    // SAFETY: the caller's contract.
                    unsafe { std::slice::from_raw_parts_mut(d.get().add(offset), y.len()) }
                });
                fast_math::gelu_in_place(y, derivative);
            }
            Self::Scale(factor) => fast_math::scale_in_place(y, &factor[offset..][..y.len()]),
            Self::Add(residual) => fast_math::add_in_place(y, &residual[offset..][..y.len()]),
        }
    }
}

/// Rows per panel: the AVX-512 kernels' 4 × 16 floats.
const PANEL: usize = 64;
/// Columns (token rows of `b`) per micro-kernel call.
const NR: usize = 6;
/// The depth of one pass over the panels: the crate's own choice for these shapes (it
/// takes at least 512, and splits a longer `k` into equal blocks).
const KC_MAX: usize = 512;
/// Floats of packed panels one block of rows keeps in L2 while the columns stream past
/// (1 MiB: half of this machine's 2 MiB L2 per core).
const MC_FLOATS: usize = 1 << 18;

/// An `m × k` matrix in 64-row panels: for each depth block `kb` (of `kc` rows of depth,
/// the last one shorter), each panel holds `[depth][64]`, rows past `m` zero.
pub(crate) struct PackedMatrix {
    m: usize,
    k: usize,
    kc: usize,
    data: PanelBuffer,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedMatrix({}×{}, depth blocks of {})",
            self.m, self.k, self.kc
        )
    }
}

impl PackedMatrix {
    /// Packs `a(i, p)` for `i < m`, `p < k`; `None` where the CPU lacks AVX-512F.
    pub fn new(m: usize, k: usize, a: impl Fn(usize, usize) -> f32) -> Option<Self> {
        if !avx512_available() || m == 0 || k == 0 {
            return None;
        }
        let blocks = k.div_ceil(KC_MAX);
        let kc = k.div_ceil(blocks);
        let m_pad = m.next_multiple_of(PANEL);
        let mut buffer = PanelBuffer::zeroed(m_pad * k);
        let data = buffer.as_mut_slice();
        for kb in 0..blocks {
            let (p0, depth) = (kb * kc, kc.min(k - kb * kc));
            for panel in 0..m_pad / PANEL {
                let start = p0 * m_pad + panel * depth * PANEL;
                let dst = &mut data[start..start + depth * PANEL];
                for (p, row) in dst.chunks_mut(PANEL).enumerate() {
                    for (r, v) in row.iter_mut().enumerate() {
                        let i = panel * PANEL + r;
                        if i < m {
                            *v = a(i, p0 + p);
                        }
                    }
                }
            }
        }
        Some(Self {
            m,
            k,
            kc,
            data: buffer,
        })
    }

    /// `y[j][·] (+)= bias + a · b[j][·]` for the `n` rows of `b` (`n × k`) into `y`
    /// (`n × m`); `accumulate` adds onto `y`, otherwise `y` is overwritten. `epilogue` then
    /// applies to each finished tile (to the sum, where accumulating).
    pub fn apply(
        &self,
        n: usize,
        b: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        accumulate: bool,
        mut epilogue: Epilogue<'_>,
    ) {
        let (m, k) = (self.m, self.k);
        assert!(
            b.len() >= n * k,
            "packed product: b holds {} < {n}×{k}",
            b.len()
        );
        assert!(
            y.len() >= n * m,
            "packed product: y holds {} < {n}×{m}",
            y.len()
        );
        if let Some(bias) = bias {
            assert_eq!(
                bias.len(),
                m,
                "packed product: bias of {} for {m} rows",
                bias.len()
            );
        }
        if n == 0 {
            return;
        }
        let epilogue = epilogue.shared(n * m);
        let threads = threads_for(n * m * k);
        if threads <= 1 {
            // SAFETY: the bounds were checked above (the epilogue's by `shared`) and `y` is
            // borrowed mutably.
            unsafe { self.block(0..n, 0..m, b, bias, (y.as_mut_ptr(), epilogue), accumulate) };
            return;
        }
        let y_ptr = Dst(y.as_mut_ptr());
        // One job per thread, along the longer side: blocks of whole tiles or whole panels.
        let jobs: Vec<(Range<usize>, Range<usize>)> = if n >= m {
            let size = n.div_ceil(threads).next_multiple_of(NR);
            (0..n)
                .step_by(size)
                .map(|c| (c..(c + size).min(n), 0..m))
                .collect()
        } else {
            let size = m.div_ceil(threads).next_multiple_of(PANEL);
            (0..m)
                .step_by(size)
                .map(|r| (0..n, r..(r + size).min(m)))
                .collect()
        };
        jobs.into_par_iter().for_each(|(cols, rows)| {
            // SAFETY: the jobs write disjoint rows `cols` or disjoint elements `rows` of each
            // row of `y` (and of the epilogue's derivative), whose bounds were checked above.
            unsafe { self.block(cols, rows, b, bias, (y_ptr.get(), epilogue), accumulate) };
        });
    }

    /// Columns `cols` (rows of `b` and `y`) by matrix rows `rows` (a multiple of `PANEL` at
    /// its start), then the epilogue on each finished tile.
    ///
    /// # Safety
    /// `y` must point to `n × m` floats covering `cols`, which nothing else writes meanwhile
    /// in `rows` (nor in the epilogue's derivative, which must be as large); `b` must hold
    /// `cols.end × k` floats.
    unsafe fn block(
        &self,
        cols: Range<usize>,
        rows: Range<usize>,
        b: &[f32],
        bias: Option<&[f32]>,
        (y, epilogue): (*mut f32, TileEpilogue<'_>),
        accumulate: bool,
    ) {
        let (m, k, kc) = (self.m, self.k, self.kc);
        let m_pad = m.next_multiple_of(PANEL);
        // Compiled for AVX-512 (the kernels need it anyway), so the bias copies and the
        // epilogue's loops below are 512-bit vector code.
        simd::dispatch(
            #[inline(always)]
            || {
                for p0 in (0..k).step_by(kc) {
                    let depth = kc.min(k - p0);
                    let (first, last) = (p0 == 0, p0 + depth == k);
                    // Rows in L2-sized groups of panels; every column streams past each group.
                    let group = (MC_FLOATS / (depth * PANEL)).max(1) * PANEL;
                    for g0 in rows.clone().step_by(group) {
                        let g1 = (g0 + group).min(rows.end);
                        for j0 in cols.clone().step_by(NR) {
                            let nr = NR.min(cols.end - j0);
                            for i0 in (g0..g1).step_by(PANEL) {
                                let mr = PANEL.min(g1 - i0);
                                // SAFETY: row `j < n` of `y`, elements `i0..i0 + mr ≤ m`,
                                // within bounds and written by this job only.
                                let tile_row = |j: usize| unsafe {
                                    std::slice::from_raw_parts_mut(y.add(j * m + i0), mr)
                                };
                                // The bias goes in before the first depth block's kernel,
                                // while the tile is in cache; the kernel then adds onto it.
                                let seeded = first && bias.is_some();
                                if let (true, Some(bias)) = (first, bias) {
                                    let bias = &bias[i0..i0 + mr];
                                    for j in j0..j0 + nr {
                                        let tile = tile_row(j);
                                        if accumulate {
                                            fast_math::add_in_place(tile, bias);
                                        } else if let (Ok(t), Ok(b)) = (
                                            <&mut [f32; PANEL]>::try_from(&mut *tile),
                                            <&[f32; PANEL]>::try_from(bias),
                                        ) {
                                            // A fixed-size copy compiles to four vector
                                            // moves; a slice copy is a `memcpy` call.
                                            *t = *b;
                                        } else {
                                            tile.copy_from_slice(bias);
                                        }
                                    }
                                }
                                let onto = accumulate || !first || seeded;
                                let start = p0 * m_pad + (i0 / PANEL) * depth * PANEL;
                                let lhs =
                                    self.data.as_slice()[start..start + depth * PANEL].as_ptr();
                                let rhs = b[j0 * k + p0..].as_ptr();
                                // SAFETY: AVX-512F is present (a `PackedMatrix` exists). The
                                // panel holds `depth` steps of 64 rows (in `lhs`'s slice, 64-byte
                                // aligned: a multiple of `PANEL` into a `PanelBuffer`), rows
                                // `j0..j0 + nr` of `b` hold `depth` floats from `p0` (the
                                // caller's contract), and the `mr × nr` tile of `y` is this job's.
                                unsafe {
                                    tile(
                                        (mr, nr, depth),
                                        (y.add(j0 * m + i0), m),
                                        lhs,
                                        (rhs, (1, k)),
                                        onto,
                                    );
                                }
                                if last {
                                    for j in j0..j0 + nr {
                                        // SAFETY: the tile's own elements, as above; the
                                        // derivative by the caller's contract.
                                        unsafe { epilogue.finish(tile_row(j), j * m + i0) };
                                    }
                                }
                            }
                        }
                    }
                }
            },
        );
    }
}

/// One micro-kernel call: `dst(i, j) (+)= Σ_p panel(i, p) · rhs(p, j)` for the `mr × nr`
/// tile (`mr ≤ 64`, `nr ≤ NR`), `dst(i, j)` at `dst + i + j·dst_cs` and `rhs(p, j)` at
/// `rhs + p·rs + j·cs`, the panel `[depth][64]` as `PackedMatrix` and `Panels` lay it out.
///
/// # Safety
/// AVX-512F must be present; `panel` must be 64-byte aligned and hold `depth · 64` floats;
/// `rhs` must be valid at every `(p, j)` of the tile, and `dst` for reads and writes at every
/// `(i, j)`, which nothing else accesses meanwhile.
#[inline(always)]
unsafe fn tile(
    (mr, nr, depth): (usize, usize, usize),
    (dst, dst_cs): (*mut f32, usize),
    panel: *const f32,
    (rhs, (rs, cs)): (*const f32, (usize, usize)),
    accumulate: bool,
) {
    // SAFETY: the contract. The kernel reads `ceil(mr/16)·16 ≤ 64` rows of each panel step,
    // broadcasts `rhs` one element at a time (any strides), and stores only the `mr × nr`
    // tile (status 1 adds onto it, 0 overwrites).
    unsafe {
        kernels()[mr.div_ceil(16) - 1][nr - 1](
            mr,
            nr,
            depth,
            dst,
            panel,
            rhs,
            dst_cs as isize,
            1,
            PANEL as isize,
            rs as isize,
            cs as isize,
            1.0,
            1.0,
            u8::from(accumulate),
            false,
            false,
            false,
            panel,
        );
    }
}

/// Zeroed floats starting on a 64-byte boundary: the micro-kernels load each panel's 16-float
/// rows as whole `__m512` values, and a plain `Vec<f32>` is only 16-byte aligned.
pub(crate) struct PanelBuffer {
    storage: Vec<f32>,
    start: usize,
    len: usize,
}

impl PanelBuffer {
    pub fn zeroed(len: usize) -> Self {
        let storage = super::huge_pages::zeroed(len + 15);
        let start = storage.as_ptr().align_offset(64).min(15);
        Self {
            storage,
            start,
            len,
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.storage[self.start..self.start + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// A left operand packed per call, in `PANEL`-row panels of one depth block (panel `q` holds
/// rows `q·64..` at each of `depth` steps): for products too small to block over depth, whose
/// operands change on every call (attention's per-head products). A scratch buffer, reused
/// by the next `pack`.
pub(crate) struct Panels {
    buffer: PanelBuffer,
    m: usize,
    depth: usize,
}

impl Panels {
    /// Empty scratch; `None` where the CPU lacks AVX-512F (use `gemm.rs` there).
    pub fn new() -> Option<Self> {
        avx512_available().then(|| Self {
            buffer: PanelBuffer::zeroed(0),
            m: 0,
            depth: 0,
        })
    }

    /// Packs `a(i, p) = src[p·stride + i]` for `i < m`, `p < depth`: each step of depth is a
    /// run of `m` floats (a head's columns of one token row), copied whole.
    pub fn pack_rows(&mut self, (m, depth): (usize, usize), src: &[f32], stride: usize) {
        let data = self.prepare((m, depth), src.len(), (1, stride));
        simd::dispatch(
            #[inline(always)]
            || {
                for (q, panel) in data.chunks_exact_mut(depth * PANEL).enumerate() {
                    let (first, rows) = (q * PANEL, PANEL.min(m - q * PANEL));
                    for (p, step) in panel.chunks_exact_mut(PANEL).enumerate() {
                        let run = &src[first + p * stride..][..rows];
                        if let (Ok(step), Ok(run)) = (
                            <&mut [f32; PANEL]>::try_from(&mut *step),
                            <&[f32; PANEL]>::try_from(run),
                        ) {
                            // A fixed-size copy is four vector moves; a slice copy, a call.
                            *step = *run;
                        } else {
                            step[..rows].copy_from_slice(run);
                        }
                    }
                }
            },
        );
    }

    /// Packs `a(i, p) = src[i·stride + p]` for `i < m`, `p < depth`: a transpose of `m` rows
    /// (a head's columns of token rows), 16 rows at a time so each step's writes are one
    /// vector.
    pub fn pack_transposed(&mut self, (m, depth): (usize, usize), src: &[f32], stride: usize) {
        let data = self.prepare((m, depth), src.len(), (stride, 1));
        simd::dispatch(
            #[inline(always)]
            || {
                for (q, panel) in data.chunks_exact_mut(depth * PANEL).enumerate() {
                    let (first, rows) = (q * PANEL, PANEL.min(m - q * PANEL));
                    for g in (0..rows).step_by(16) {
                        let group = first + g..first + (g + 16).min(rows);
                        for (p, step) in panel.chunks_exact_mut(PANEL).enumerate() {
                            let out = &mut step[g..g + group.len()];
                            for (v, r) in out.iter_mut().zip(group.clone()) {
                                *v = src[r * stride + p];
                            }
                        }
                    }
                }
            },
        );
    }

    /// Sizes the scratch for an `m × depth` operand read from `src_len` floats at `(i, p)`
    /// strides, zeroes the padding rows of its last panel, and returns the panels to fill.
    fn prepare(
        &mut self,
        (m, depth): (usize, usize),
        src_len: usize,
        (i_stride, p_stride): (usize, usize),
    ) -> &mut [f32] {
        if m > 0 && depth > 0 {
            let last = (m - 1) * i_stride + (depth - 1) * p_stride;
            assert!(last < src_len, "panels: source of {src_len} < {}", last + 1);
        }
        let len = m.next_multiple_of(PANEL) * depth;
        if self.buffer.len < len {
            self.buffer = PanelBuffer::zeroed(len);
        }
        (self.m, self.depth) = (m, depth);
        let data = &mut self.buffer.as_mut_slice()[..len];
        // Rows past `m` are read by the kernels (they load whole vectors) but never stored:
        // zeros keep them finite.
        let rows = m % PANEL;
        if rows != 0 {
            let last = data.len() - depth * PANEL;
            for step in data[last..].chunks_exact_mut(PANEL) {
                step[rows..].fill(0.0);
            }
        }
        data
    }

    /// `dst(i, j) (+)= Σ_p a(i, p) · rhs(p, j)` for `i < m`, `j < n`, the packed `a` by
    /// `rhs` (`depth × n`, any strides): `dst(i, j)` at `dst + i + j·dst_cs`, so each column
    /// is `m` contiguous floats (a row of a row-major result).
    ///
    /// # Safety
    /// `dst` must be valid for reads and writes at every `(i, j)`, which nothing else
    /// accesses during the call.
    pub unsafe fn product(
        &self,
        n: usize,
        rhs: View<'_>,
        (dst, dst_cs): (*mut f32, usize),
        accumulate: bool,
    ) {
        let (m, depth) = (self.m, self.depth);
        if n == 0 || m == 0 {
            return;
        }
        if depth > 0 {
            let last = (depth - 1) * rhs.row_stride + (n - 1) * rhs.col_stride;
            assert!(last < rhs.data.len(), "panels: right operand out of bounds");
        }
        if depth == 0 {
            if !accumulate {
                for j in 0..n {
                    // SAFETY: column `j`'s `m` floats, the caller's.
                    unsafe { std::slice::from_raw_parts_mut(dst.add(j * dst_cs), m).fill(0.0) };
                }
            }
            return;
        }
        let data = &self.buffer.as_slice()[..m.next_multiple_of(PANEL) * depth];
        for (q, panel) in data.chunks(depth * PANEL).enumerate() {
            let (i0, mr) = (q * PANEL, PANEL.min(m - q * PANEL));
            for j0 in (0..n).step_by(NR) {
                let nr = NR.min(n - j0);
                // SAFETY: `Panels` exist only with AVX-512F; the panel is a `PANEL`-multiple
                // offset into the aligned buffer and holds `depth · 64` floats; `rhs` was
                // bounds-checked above; `dst` is the caller's.
                unsafe {
                    tile(
                        (mr, nr, depth),
                        (dst.add(i0 + j0 * dst_cs), dst_cs),
                        panel.as_ptr(),
                        (
                            rhs.data.as_ptr().add(j0 * rhs.col_stride),
                            (rhs.row_stride, rhs.col_stride),
                        ),
                        accumulate,
                    );
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn avx512_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512_available() -> bool {
    false
}

type Kernels = [[gemm_common::microkernel::MicroKernelFn<f32>; NR]; PANEL / 16];

/// The crate's AVX-512 micro-kernels, `[rows / 16 − 1][columns − 1]`: each multiplies a
/// panel (`lhs_cs` floats per depth step) by up to 6 columns read in place (`rhs_rs`,
/// `rhs_cs`), writing `dst` (`dst_cs`, `dst_rs`) as `beta·acc` (status 0) or
/// `dst + beta·acc` (status 1). They are only reached through a `PackedMatrix` or `Panels`,
/// which exist only where the CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
fn kernels() -> &'static Kernels {
    &gemm_f32::microkernel::avx512f::f32::UKR
}

#[cfg(not(target_arch = "x86_64"))]
fn kernels() -> &'static Kernels {
    unreachable!("PackedMatrix::new declines without AVX-512")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(40_503));
                (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn packed_products_match_a_plain_loop_on_ragged_shapes() {
        // Ragged in every direction: rows past a panel, columns past a tile, depth past a block.
        for &(m, n, k) in &[(70, 13, 300), (64, 6, 512), (130, 1, 1100), (16, 200, 7)] {
            let a = seeded(m * k, 1);
            let b = seeded(n * k, 2);
            let bias = seeded(m, 3);
            let Some(packed) = PackedMatrix::new(m, k, |i, p| a[i * k + p]) else {
                eprintln!("no AVX-512 here: nothing to check");
                return;
            };
            let expect = |j: usize, i: usize, with_bias: bool| {
                let dot: f64 = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[j * k + p] as f64)
                    .sum();
                dot + if with_bias { bias[i] as f64 } else { 0.0 }
            };
            for (with_bias, accumulate) in [(false, false), (true, false), (true, true)] {
                let start = seeded(n * m, 4);
                let mut y = start.clone();
                packed.apply(
                    n,
                    &b,
                    with_bias.then_some(&bias[..]),
                    &mut y,
                    accumulate,
                    Epilogue::None,
                );
                for j in 0..n {
                    for i in 0..m {
                        let base = if accumulate {
                            start[j * m + i] as f64
                        } else {
                            0.0
                        };
                        let want = base + expect(j, i, with_bias);
                        let got = y[j * m + i] as f64;
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{m}×{n}×{k} bias {with_bias} acc {accumulate}: y[{j}][{i}] {got} vs {want}"
                        );
                    }
                }
            }
            // The epilogues: GELU with its derivative, then a scale by and a sum with it.
            let mut y = vec![0f32; n * m];
            let mut derivative = vec![0f32; n * m];
            let gelu = Epilogue::Gelu {
                derivative: Some(&mut derivative),
            };
            packed.apply(n, &b, Some(&bias), &mut y, false, gelu);
            let mut scaled = vec![0f32; n * m];
            packed.apply(
                n,
                &b,
                None,
                &mut scaled,
                false,
                Epilogue::Scale(&derivative),
            );
            let mut added = vec![0f32; n * m];
            let residual = Epilogue::Add(&derivative);
            packed.apply(n, &b, None, &mut added, false, residual);
            for j in 0..n {
                for i in 0..m {
                    let (want_y, want_d) =
                        fast_math::gelu_and_derivative(expect(j, i, true) as f32);
                    let at = j * m + i;
                    assert!(
                        (y[at] - want_y).abs() < 1e-4,
                        "GELU y[{j}][{i}] {} vs {want_y}",
                        y[at]
                    );
                    assert!((derivative[at] - want_d).abs() < 1e-4, "GELU' [{j}][{i}]");
                    let want = expect(j, i, false) * derivative[at] as f64;
                    assert!((scaled[at] as f64 - want).abs() < 1e-4, "scaled [{j}][{i}]");
                    let want = expect(j, i, false) + derivative[at] as f64;
                    assert!((added[at] as f64 - want).abs() < 1e-4, "added [{j}][{i}]");
                }
            }
        }
    }
}
