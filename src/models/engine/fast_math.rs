//! exp and erf for f32 slices, written so a loop over them vectorises.
//!
//! Why not libm or std: `f32::exp` and `libm::erff` are scalar calls with branches, and in a
//! DeiT-S step (softmax over 6·197² scores per block, exact GELU over 197·1536 activations
//! per block, forward and reverse) they took a third of the time, more than every GEMM
//! outside the MLPs. These are branch-free: the loops that call them compile to SIMD, and
//! `simd::dispatch` builds them for AVX-512/AVX2 where the CPU has it.
//!
//! `exp` is Cephes' `expf` (range reduction to `[−ln2/2, ln2/2]`, degree-6 polynomial; within
//! 2 ulp), clamped to `[−87, 88]` so the result is always a normal float: `exp(−87)` is
//! 1.6e-38, nothing next to the softmax's own largest term, 1. GELU's `erf` is Abramowitz &
//! Stegun 7.1.26 (absolute error ≤ 1.5e-7, 5.5e-7 evaluated in f32), the same approximation
//! as PyTorch's own vectorised CPU `erf`, which its exact GELU uses.

/// `a·b + c`, rounded once. Inside `simd::dispatch`, where the engine runs everything here,
/// this is one FMA instruction: LLVM never contracts `a * b + c` by itself, which left every
/// polynomial below a multiply and an add per term. (On a CPU with neither AVX2+FMA nor
/// AVX-512 it is a libm call: correct, slow, and not a machine this engine is tuned for.)
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// 1.5·2²³: adding it to a float of magnitude < 2²² rounds it to an integer held in the low
/// mantissa bits.
const ROUND: f32 = 12_582_912.0;

#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let shifted = fma(x, std::f32::consts::LOG2_E, ROUND);
    let n = shifted - ROUND;
    let r = fma(-n, LN2_LO, fma(-n, LN2_HI, x));
    let mut p = fma(1.987_569_2e-4, r, 1.398_199_9e-3);
    for c in [8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = fma(p, r, c);
    }
    let e = fma(p, r * r, r) + 1.0;
    // n as an integer, from the same bits: |n| ≤ 127, so 2ⁿ is a normal float.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    e * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// `1/x` for `x ≥ 1` (finite), within 1 ulp: a bit-pattern first guess and three Newton
/// steps.
///
/// Why not `1.0 / x`: a 16-lane division issues once per ~10 cycles on this machine (Sapphire
/// Rapids), nearly half of GELU's cost, and GELU runs over a ViT's whole hidden layer. The
/// guess `2²⁵⁴/x` read off the exponent and mantissa bits is within 12.5%, and each Newton
/// step `r·(2 − x·r)` squares the error: 12.5% → 1.6% → 2.4e-4 → 6e-8, six multiply-adds.
#[inline(always)]
fn reciprocal_from_one(x: f32) -> f32 {
    let mut r = f32::from_bits(0x7EF3_11C7u32.wrapping_sub(x.to_bits()));
    for _ in 0..3 {
        r *= fma(-x, r, 2.0);
    }
    r
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π), the standard normal density at 0.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Exact (erf) GELU `x·Φ(x)` and its derivative `Φ(x) + x·φ(x)`, sharing one `exp`: the
/// erf approximation of `Φ` multiplies `exp(−(x/√2)²) = exp(−x²/2)`, which is also
/// `√(2π)·φ(x)`. A caller that drops the derivative pays two multiplies, not an `exp`.
#[inline(always)]
pub(crate) fn gelu_and_derivative(x: f32) -> (f32, f32) {
    let a = (x * FRAC_1_SQRT_2).abs();
    let t = reciprocal_from_one(fma(0.327_591_1, a, 1.0));
    let mut poly = fma(1.061_405_4, t, -1.453_152_1);
    for c in [1.421_413_8, -0.284_496_74, 0.254_829_6] {
        poly = fma(poly, t, c);
    }
    poly *= t;
    let gauss = exp(-a * a);
    let erf = fma(-poly, gauss, 1.0).copysign(x);
    let cdf = fma(0.5, erf, 0.5);
    (x * cdf, fma(x * INV_SQRT_2PI, gauss, cdf))
}

/// `y = GELU(y)` in place; with `derivative` (as long as `y`), also `GELU'` of the same
/// inputs there (what the reverse pass multiplies by).
#[inline(always)]
pub(crate) fn gelu_in_place(y: &mut [f32], derivative: Option<&mut [f32]>) {
    match derivative {
        Some(d) => {
            for (y, d) in y.iter_mut().zip(d) {
                (*y, *d) = gelu_and_derivative(*y);
            }
        }
        None => {
            for y in y.iter_mut() {
                *y = gelu_and_derivative(*y).0;
            }
        }
    }
}

/// `y += addend`, elementwise.
#[inline(always)]
pub(crate) fn add_in_place(y: &mut [f32], addend: &[f32]) {
    for (y, &a) in y.iter_mut().zip(addend) {
        *y += a;
    }
}

/// `y *= factor`, elementwise.
#[inline(always)]
pub(crate) fn scale_in_place(y: &mut [f32], factor: &[f32]) {
    for (y, &f) in y.iter_mut().zip(factor) {
        *y *= f;
    }
}

/// Lanes of the partial sums below: enough independent accumulators for a 512-bit register.
const LANES: usize = 16;

/// The sum of `v`, in `LANES` partial sums (an order the compiler may vectorise).
#[inline(always)]
pub(crate) fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// `Σ a·b` over matching elements, in lanes as `sum`.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let n = a.len().min(b.len());
    let full = n - n % LANES;
    for (a, b) in a[..full]
        .chunks_exact(LANES)
        .zip(b[..full].chunks_exact(LANES))
    {
        for l in 0..LANES {
            acc[l] += a[l] * b[l];
        }
    }
    acc.iter().sum::<f32>()
        + a[full..n]
            .iter()
            .zip(&b[full..n])
            .map(|(&a, &b)| a * b)
            .sum::<f32>()
}

/// `Σ (v − mean)²`, in lanes as `sum`.
#[inline(always)]
pub(crate) fn sum_squared_deviations(v: &[f32], mean: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += (x - mean) * (x - mean);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&x| (x - mean) * (x - mean)).sum::<f32>()
}

/// `(Σ g·w, Σ g·w·(x − mean))` over matching elements, in lanes as `sum`: layer norm's VJP.
#[inline(always)]
pub(crate) fn sums_of_products(g: &[f32], w: &[f32], x: &[f32], mean: f32) -> (f32, f32) {
    let (mut a, mut b) = ([0f32; LANES], [0f32; LANES]);
    let n = g.len().min(w.len()).min(x.len());
    let full = n - n % LANES;
    for start in (0..full).step_by(LANES) {
        let (g, w, x) = (
            &g[start..][..LANES],
            &w[start..][..LANES],
            &x[start..][..LANES],
        );
        for l in 0..LANES {
            let gw = g[l] * w[l];
            a[l] += gw;
            b[l] += gw * (x[l] - mean);
        }
    }
    let (mut sa, mut sb) = (a.iter().sum::<f32>(), b.iter().sum::<f32>());
    for i in full..n {
        let gw = g[i] * w[i];
        sa += gw;
        sb += gw * (x[i] - mean);
    }
    (sa, sb)
}

/// The largest element of `v` (−∞ when empty).
#[inline(always)]
pub(crate) fn max(v: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_within_two_ulp_of_f64_over_its_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            let ulp = (want as f32).abs() as f64 * f32::EPSILON as f64;
            worst = worst.max((got - want).abs() / ulp);
            x += 0.0137;
        }
        assert!(worst <= 2.0, "exp off by {worst} ulp");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(-87.0) > 0.0 && exp(-87.0) < 2e-38);
    }

    #[test]
    fn reciprocal_within_an_ulp_from_one_up() {
        let mut x = 1.0f32;
        while x < 1e6 {
            let (got, want) = (reciprocal_from_one(x), 1.0 / x);
            assert!(
                (got - want).abs() <= want * 1.5 * f32::EPSILON,
                "1/{x}: {got} vs {want}"
            );
            x *= 1.000_37;
        }
    }

    #[test]
    fn gelu_and_its_derivative_match_f64() {
        let (mut worst_y, mut worst_d) = (0f64, 0f64);
        let mut x = -9.0f32;
        while x <= 9.0 {
            let xd = x as f64;
            let cdf = 0.5 * (1.0 + libm::erf(xd / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * xd * xd).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let (y, d) = gelu_and_derivative(x);
            // The erf approximation's 1.5e-7 (5.5e-7 in f32), scaled by |x|/2 in GELU.
            worst_y = worst_y.max((y as f64 - xd * cdf).abs() / xd.abs().max(1.0));
            worst_d = worst_d.max((d as f64 - (cdf + xd * pdf)).abs());
            x += 0.00071;
        }
        assert!(worst_y < 1e-6, "GELU off by {worst_y}");
        assert!(worst_d < 1e-6, "GELU' off by {worst_d}");
        let (y0, d0) = gelu_and_derivative(0.0);
        assert!(y0 == 0.0 && (d0 - 0.5).abs() < 1e-6, "{y0} {d0}");
        assert_eq!(gelu_and_derivative(-30.0).0, 0.0);
        assert_eq!(gelu_and_derivative(30.0), (30.0, 1.0));
        let (mut y, mut d) = (vec![-1.0f32, 0.5, 2.0], vec![0f32; 3]);
        gelu_in_place(&mut y, Some(&mut d));
        for (i, x) in [-1.0f32, 0.5, 2.0].into_iter().enumerate() {
            assert_eq!((y[i], d[i]), gelu_and_derivative(x));
        }
    }

    #[test]
    fn sums_and_maxima_of_any_length() {
        for n in [0usize, 1, 15, 16, 17, 197] {
            let v: Vec<f32> = (0..n).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
            let want: f32 = v.iter().sum();
            assert!((sum(&v) - want).abs() < 1e-4, "{n}");
            let squares: f32 = v.iter().map(|x| x * x).sum();
            assert!((dot(&v, &v) - squares).abs() < 1e-3, "{n}");
            let m = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            assert_eq!(max(&v), m, "{n}");
        }
    }
}
