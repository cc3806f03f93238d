//! The transform oracles of ALGORITHMS.md §3.9, and ∂f/∂u (through the classifier) against
//! f64 central differences.

use super::*;
use crate::analysis::semantic::objective::SemanticObjective;
use crate::analysis::semantic::params::{ParamSpace, identity_params};
use crate::analysis::test_models::{image_tensor, linear_classifier_f64, random_image};

fn image(seed: u64, shape: [usize; 3]) -> SemanticTransform {
    let pixels = random_image(seed, shape)
        .into_iter()
        .map(f64::from)
        .collect();
    SemanticTransform::from_host(pixels, shape, 3.0).unwrap()
}

fn with(param: SemanticParam, value: f64) -> FullParams {
    let mut u = identity_params();
    u[param.index()] = value;
    u
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn identities_reproduce_the_image() {
    let t = image(1, [3, 9, 7]);
    let x = &t.pixels;
    assert!(max_diff(&t.apply(&identity_params(), &[]).pixels, x) <= 1e-6);
    // With every derivative requested the warp and colour steps run, and still give x.
    let all = SemanticParam::ALL;
    assert!(max_diff(&t.apply(&identity_params(), &all).pixels, x) <= 1e-6);
    assert!(max_diff(&t.apply(&with(SemanticParam::Hue, 360.0), &[]).pixels, x) <= 1e-5);
    for (param, value) in [
        (SemanticParam::Bright, 0.0),
        (SemanticParam::Contrast, 1.0),
        (SemanticParam::Blur, 0.049),
        (SemanticParam::Blur, -1.0),
    ] {
        assert_eq!(
            &t.apply(&with(param, value), &[]).pixels,
            x,
            "{param} = {value}"
        );
    }
}

#[test]
fn rot_90_is_a_counter_clockwise_quarter_turn() {
    let n = 6;
    let t = image(2, [1, n, n]);
    let out = t.apply(&with(SemanticParam::Rot, 90.0), &[]).pixels;
    for i in 0..n {
        for j in 0..n {
            let want = t.pixels[j * n + (n - 1 - i)];
            assert!((out[i * n + j] - want).abs() <= 1e-5, "({i}, {j})");
        }
    }
}

#[test]
fn whole_pixel_translation_shifts_with_zero_fill() {
    let (h, w) = (5, 8);
    let t = image(3, [3, h, w]);
    for k in [-3i64, 2] {
        let out = t
            .apply(&with(SemanticParam::Tx, k as f64 / w as f64), &[])
            .pixels;
        for c in 0..3 {
            for i in 0..h {
                for j in 0..w {
                    let src = j as i64 - k;
                    let want = if (0..w as i64).contains(&src) {
                        t.pixels[c * h * w + i * w + src as usize]
                    } else {
                        0.0
                    };
                    assert!((out[c * h * w + i * w + j] - want).abs() <= 1e-6);
                }
            }
        }
    }
}

#[test]
fn hue_120_cycles_rgb_and_every_hue_keeps_the_pixel_mean() {
    let (h, w) = (4, 5);
    let plane = h * w;
    let t = image(4, [3, h, w]);
    let out = t.apply(&with(SemanticParam::Hue, 120.0), &[]).pixels;
    for p in 0..plane {
        let [r, g, b] = [0, 1, 2].map(|c| t.pixels[c * plane + p]);
        let [r2, g2, b2] = [0, 1, 2].map(|c| out[c * plane + p]);
        assert!((r2 - b).abs() <= 1e-6 && (g2 - r).abs() <= 1e-6 && (b2 - g).abs() <= 1e-6);
    }
    // Mid-grey pixels keep every rotation inside [0, 1], so the clamp does not interfere.
    let grey: Vec<f64> = t.pixels.iter().map(|v| 0.35 + 0.3 * v).collect();
    let t = SemanticTransform::from_host(grey, [3, h, w], 3.0).unwrap();
    for hue in [17.0, -95.0, 200.0] {
        let out = t.apply(&with(SemanticParam::Hue, hue), &[]).pixels;
        for p in 0..plane {
            let mean = |v: &[f64]| (0..3).map(|c| v[c * plane + p]).sum::<f64>() / 3.0;
            assert!((mean(&out) - mean(&t.pixels)).abs() <= 1e-6);
        }
    }
}

#[test]
fn the_blur_kernel_sums_to_one_and_keeps_a_constant_image() {
    for sigma in [0.05, 0.7, 3.0] {
        let (w, dw) = gaussian_weights(sigma, 9);
        assert!((w.iter().sum::<f64>() - 1.0).abs() <= 1e-6);
        assert!(
            dw.iter().sum::<f64>().abs() <= 1e-9,
            "weights stay normalised"
        );
    }
    let t = SemanticTransform::from_host(vec![0.37; 3 * 6 * 6], [3, 6, 6], 3.0).unwrap();
    assert_eq!(t.blur_radius(), 9);
    let out = t.apply(&with(SemanticParam::Blur, 1.3), &[]).pixels;
    assert!(out.iter().all(|v| (v - 0.37).abs() <= 1e-6));
}

/// ∂f/∂u from the classifier's input gradient chained through T, against central differences
/// of f in f64 (step 1e-3 in u-units), for every parameter at generic points.
#[test]
fn df_du_matches_central_differences_in_f64() {
    let shape = [3, 10, 10];
    let model = linear_classifier_f64(shape, 5, 11, 0.5);
    // A smooth image in the middle of [0, 1]: bilinear interpolation has kinks where a
    // sample crosses a pixel line, and on a smooth image the slope barely changes there.
    let [c, h, w] = shape;
    let pixels: Vec<f32> = (0..c * h * w)
        .map(|k| {
            let (ch, i, j) = (k / (h * w), (k / w) % h, k % w);
            let (i, j, ch) = (i as f32, j as f32, ch as f32);
            0.5 + 0.2 * (0.45 * i + 0.8 * ch).sin() * (0.35 * j - 0.3 * ch).cos() + 0.01 * j
        })
        .collect();
    let x = image_tensor(pixels, shape);
    let space = ParamSpace::new(&SemanticParam::ALL, &[], 3).unwrap();
    let objective = SemanticObjective::new(&model, &x, 2, space, 4).unwrap();
    // (point, step): generic points at the spec's step 1e-3, and a zoomed-out, rotated point
    // where zero fill enters. There a border sample crosses a pixel line within 1e-3 (a kink
    // of the bilinear warp, where the slope jumps from the image to the zero fill), so it is
    // checked at step 1e-6.
    let cases = [
        (
            vec![23.3, 1.13, 0.061, -0.043, 0.052, 1.17, 31.0, 0.83],
            1e-3,
        ),
        (
            vec![-7.7, 1.21, -0.018, 0.034, -0.031, 0.79, -12.5, 1.91],
            1e-3,
        ),
        (
            vec![-71.7, 0.87, -0.118, 0.094, -0.031, 0.79, -12.5, 1.91],
            1e-6,
        ),
    ];
    let points: Vec<Vec<f64>> = cases.iter().map(|(p, _)| p.clone()).collect();
    let (_, grads) = objective.gradient_u(&points).unwrap();
    let mut checked = 0;
    for ((point, step), grad) in cases.iter().zip(&grads) {
        let step = *step;
        for (k, param) in SemanticParam::ALL.iter().enumerate() {
            let shifted = |d: f64| {
                let mut p = point.clone();
                p[k] += d;
                p
            };
            let f = objective
                .values_u(&[shifted(step), shifted(-step)])
                .unwrap();
            let numeric = (f[0] - f[1]) / (2.0 * step);
            // f64 differences of f are good to ~1e-13 here; hue per degree is ~1e-7.
            assert!(
                numeric.abs() > 1e-9,
                "{param}: a gradient too small to test"
            );
            let error = (grad[k] - numeric).abs() / numeric.abs();
            assert!(
                error <= 0.02,
                "{param}: analytic {} vs numeric {numeric}",
                grad[k]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 24);
}

/// The reference variant of OIR_W's g is ∇[logsumexp(p) − p_c], roughly −∇f.
#[test]
fn the_reference_gradient_points_against_f() {
    use crate::analysis::semantic::objective::OirWGradient;
    use crate::analysis::semantic::regions::RegionFunction;
    let shape = [3, 8, 8];
    let model = linear_classifier_f64(shape, 4, 3, 0.5);
    let x = image_tensor(random_image(9, shape), shape);
    let space = ParamSpace::new(&[SemanticParam::Rot, SemanticParam::Scale], &[], 3).unwrap();
    let z = vec![vec![41.0, 57.0]];
    let mut exact = SemanticObjective::new(&model, &x, 1, space.clone(), 2).unwrap();
    let mut reference = SemanticObjective::new(&model, &x, 1, space, 2)
        .unwrap()
        .with_gradient(OirWGradient::Reference);
    let (_, g) = exact.values_and_gradients(&z).unwrap();
    let (_, r) = reference.values_and_gradients(&z).unwrap();
    let dot: f64 = g[0].iter().zip(&r[0]).map(|(a, b)| a * b).sum();
    assert!(dot < 0.0, "{:?} vs {:?}", g[0], r[0]);
}
