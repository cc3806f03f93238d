//! Depthwise convolutions (one k×k filter per channel, as in EfficientNet's MBConv blocks),
//! forward and input VJP, as direct per-channel loops: a GEMM would have a depth of `k²`.
//!
//! Each plane is first laid out so that every kernel tap is one multiply-add over one
//! contiguous run: zero-padded, split by the stride into `stride²` phase planes (phase
//! `(ry, rx)` holds padded rows `ry, ry + s, …` and columns `rx, rx + s, …`), and the output
//! computed `wp` columns wide, the phase planes' width, instead of `wo` (the few extra columns
//! are dropped when the output is copied out). Tap `(ky, kx)` then reads phase `(ky mod s,
//! kx mod s)` from a constant offset for the whole plane. EfficientNet's rows are 7 to 112
//! floats: looping taps row by row spent as much on each row's bounds as on its arithmetic,
//! and gathers by `ox·stride` did not vectorise; together they were 55% of an
//! EfficientNet-Lite0 iteration at batch 8.

use super::kernels::{Dims, Geometry, every_nth, for_channels};
use super::simd;

/// One plane in padded phases, and the `ho × wp` output (or output gradient) beside it.
struct PlaneLayout {
    phases: Vec<f32>,
    out: Vec<f32>,
    stride: usize,
    /// Rows and columns of each phase plane.
    hp: usize,
    wp: usize,
    /// Floats per phase plane: `hp · wp` and the slack that the last row's extra output
    /// columns read past it.
    phase_len: usize,
}

impl PlaneLayout {
    fn new(g: &Geometry) -> Self {
        let s = g.stride;
        // Every padded row and column some output reads.
        let (hpad, wpad) = ((g.ho - 1) * s + g.kh, (g.wo - 1) * s + g.kw);
        let (hp, wp) = (hpad.div_ceil(s), wpad.div_ceil(s));
        let phase_len = hp * wp + g.kw;
        Self {
            phases: vec![0.0; s * s * phase_len],
            out: vec![0.0; g.ho * wp],
            stride: s,
            hp,
            wp,
            phase_len,
        }
    }

    /// The run tap `(ky, kx)` reads (forward) or adds onto (VJP), `ho · wp` floats.
    fn tap(&self, g: &Geometry, (ky, kx): (usize, usize)) -> std::ops::Range<usize> {
        let s = self.stride;
        let start = ((ky % s) * s + kx % s) * self.phase_len + (ky / s) * self.wp + kx / s;
        start..start + g.ho * self.wp
    }

    /// For input row `iy` and column phase `rx`: the first input column in that phase, where
    /// it goes in `phases`, and how many of the row's columns go there (those some output
    /// reads). `None` when there are none.
    fn row_phase(
        &self,
        g: &Geometry,
        w: usize,
        iy: usize,
        rx: usize,
    ) -> Option<(usize, usize, usize)> {
        let s = self.stride;
        let (py, ix0) = (iy + g.top, (rx + s - g.left % s) % s);
        let q0 = (ix0 + g.left) / s;
        if ix0 >= w || py / s >= self.hp || q0 >= self.wp {
            return None;
        }
        let n = (w - ix0).div_ceil(s).min(self.wp - q0);
        let plane = (py % s) * s + rx;
        Some((ix0, plane * self.phase_len + (py / s) * self.wp + q0, n))
    }

    /// Lays out input plane `[h][w]` (padding zero).
    fn fill_phases(&mut self, plane: &[f32], g: &Geometry, w: usize) {
        self.phases.fill(0.0);
        for (iy, row) in plane.chunks_exact(w).enumerate() {
            for rx in 0..self.stride {
                if let Some((ix0, at, n)) = self.row_phase(g, w, iy, rx) {
                    every_nth(&mut self.phases[at..at + n], &row[ix0..], self.stride);
                }
            }
        }
    }

    /// Adds the phases' unpadded positions back onto the plane they came from.
    fn add_phases_to(&self, plane: &mut [f32], g: &Geometry, w: usize) {
        for (iy, row) in plane.chunks_exact_mut(w).enumerate() {
            for rx in 0..self.stride {
                if let Some((ix0, at, n)) = self.row_phase(g, w, iy, rx) {
                    add_every_nth(&mut row[ix0..], &self.phases[at..at + n], self.stride);
                }
            }
        }
    }
}

/// `dst[t·n] += src[t]`, the adjoint of `every_nth`.
#[inline(always)]
fn add_every_nth(dst: &mut [f32], src: &[f32], n: usize) {
    for (d, &v) in dst.iter_mut().step_by(n).zip(src) {
        *d += v;
    }
}

/// Runs `f(layout, filter, c, b, plane)` for every channel `c` and image `b` of `planes`
/// (`[C][B][plane]`, the forward's output or the VJP's input gradient), with `filter` channel
/// `c`'s taps and one `PlaneLayout` per channel, under `simd::dispatch`.
fn for_planes(
    w: &[f32],
    planes: &mut [f32],
    (batch, plane): (usize, usize),
    g: &Geometry,
    f: impl Fn(&mut PlaneLayout, &[f32], (usize, usize), &mut [f32]) + Sync + Send,
) {
    let taps = g.kh * g.kw;
    for_channels(planes, batch * plane, |c, channel| {
        let filter = &w[c * taps..(c + 1) * taps];
        let mut layout = PlaneLayout::new(g);
        simd::dispatch(
            #[inline(always)]
            || {
                for (b, plane) in channel.chunks_exact_mut(plane).enumerate() {
                    f(&mut layout, filter, (c, b), plane);
                }
            },
        );
    });
}

/// `y = depthwise(w, x)`, `w` `[C][kh·kw]`, `x` and `y` `[C][B][H][W]`.
pub(super) fn depthwise_forward(
    w: &[f32],
    x: &[f32],
    xd: Dims,
    y: &mut [f32],
    yd: Dims,
    g: &Geometry,
) {
    let shape = (yd.b, yd.plane());
    for_planes(w, y, shape, g, |layout, filter, (c, b), yp| {
        let xp = &x[(c * xd.b + b) * xd.plane()..][..xd.plane()];
        layout.fill_phases(xp, g, xd.w);
        layout.out.fill(0.0);
        for (tap, &wv) in filter.iter().enumerate() {
            let run = layout.tap(g, (tap / g.kw, tap % g.kw));
            for (d, &v) in layout.out.iter_mut().zip(&layout.phases[run]) {
                *d += wv * v;
            }
        }
        let rows = layout.out.chunks(layout.wp);
        for (dst, src) in yp.chunks_exact_mut(g.wo).zip(rows) {
            dst.copy_from_slice(&src[..g.wo]);
        }
    });
}

/// The adjoint of `depthwise_forward`, added onto `dx`.
pub(super) fn depthwise_vjp(
    w: &[f32],
    dy: &[f32],
    yd: Dims,
    dx: &mut [f32],
    xd: Dims,
    g: &Geometry,
) {
    let shape = (xd.b, xd.plane());
    for_planes(w, dx, shape, g, |layout, filter, (c, b), dxp| {
        // The output gradient `wp` wide, its extra columns zero: they add nothing.
        let dyp = &dy[(c * yd.b + b) * yd.plane()..][..yd.plane()];
        let rows = layout.out.chunks_exact_mut(layout.wp);
        for (dst, src) in rows.zip(dyp.chunks_exact(g.wo)) {
            dst[..g.wo].copy_from_slice(src);
            dst[g.wo..].fill(0.0);
        }
        layout.phases.fill(0.0);
        for (tap, &wv) in filter.iter().enumerate() {
            let run = layout.tap(g, (tap / g.kw, tap % g.kw));
            for (d, &v) in layout.phases[run].iter_mut().zip(&layout.out) {
                *d += wv * v;
            }
        }
        layout.add_phases_to(dxp, g, xd.w);
    });
}
