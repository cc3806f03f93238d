//! Flatten between the convolutional body and a linear head, as PyTorch's `x.flatten(1)` /
//! `x.view(B, -1)` on NCHW: feature `f = (c·H + y)·W + x`.
//!
//! The engine keeps activations channel-major, `[C][B][H][W]`, and a linear layer reads
//! `[F][B]` (one row per feature), so this is a real transpose of each image's `H·W` plane
//! into a column, not a reinterpretation of the buffer.

use super::kernels::{Activation, Dims};

/// `y = act(y)` in place: the activation of a hidden linear layer (the GEMM and bias are
/// `kernels::linear_forward`'s).
pub(crate) fn activate(y: &mut [f32], act: Activation) {
    if act != Activation::None {
        y.iter_mut().for_each(|v| *v = act.apply(*v));
    }
}

/// `y[(c·HW + p)·B + b] = x[(c·B + b)·HW + p]`: `[C][B][H][W]` to `[C·H·W][B]`.
pub(crate) fn flatten_forward(x: &[f32], xd: Dims, y: &mut [f32]) {
    let (plane, b) = (xd.plane(), xd.b);
    for c in 0..xd.c {
        for bi in 0..b {
            let src = &x[(c * b + bi) * plane..][..plane];
            for (p, &v) in src.iter().enumerate() {
                y[(c * plane + p) * b + bi] = v;
            }
        }
    }
}

/// The reverse gather, `dx[(c·B + b)·HW + p] (+)= dy[(c·HW + p)·B + b]`.
pub(crate) fn flatten_vjp(dy: &[f32], xd: Dims, dx: &mut [f32], accumulate: bool) {
    let (plane, b) = (xd.plane(), xd.b);
    for c in 0..xd.c {
        for bi in 0..b {
            let dst = &mut dx[(c * b + bi) * plane..][..plane];
            for (p, d) in dst.iter_mut().enumerate() {
                let g = dy[(c * plane + p) * b + bi];
                *d = if accumulate { *d + g } else { g };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_matches_nchw_order_and_its_vjp_is_the_transpose() {
        let xd = Dims {
            c: 3,
            b: 2,
            h: 2,
            w: 3,
        };
        // x in [C][B][H][W] holding the value 1000·b + NCHW-feature index.
        let mut x = vec![0f32; xd.len()];
        for c in 0..xd.c {
            for b in 0..xd.b {
                for p in 0..xd.plane() {
                    x[(c * xd.b + b) * xd.plane() + p] = (1000 * b + c * xd.plane() + p) as f32;
                }
            }
        }
        let mut y = vec![0f32; xd.len()];
        flatten_forward(&x, xd, &mut y);
        let f = xd.c * xd.plane();
        for feature in 0..f {
            for b in 0..xd.b {
                assert_eq!(y[feature * xd.b + b], (1000 * b + feature) as f32);
            }
        }
        // <flatten(x), g> = <x, flatten_vjp(g)> for any g.
        let g: Vec<f32> = (0..y.len()).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut dx = vec![0f32; x.len()];
        flatten_vjp(&g, xd, &mut dx, false);
        let lhs: f64 = y.iter().zip(&g).map(|(a, b)| f64::from(a * b)).sum();
        let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| f64::from(a * b)).sum();
        assert!((lhs - rhs).abs() < 1e-6 * lhs.abs().max(1.0));
        flatten_vjp(&g, xd, &mut dx, true);
        let mut twice = vec![0f32; x.len()];
        flatten_vjp(&g, xd, &mut twice, false);
        twice.iter_mut().for_each(|v| *v *= 2.0);
        assert_eq!(dx, twice);
    }
}
