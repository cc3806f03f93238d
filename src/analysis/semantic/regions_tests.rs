//! The region oracles of ALGORITHMS.md §3.9, on synthetic functions (no model).

use std::ops::ControlFlow;

use super::*;

/// f and g = ∇f from closures.
struct Synthetic<F, G> {
    f: F,
    g: G,
}

impl<F: Fn(&[f64]) -> f64, G: Fn(&[f64]) -> Vec<f64>> RegionFunction for Synthetic<F, G> {
    fn values(&mut self, z: &[Vec<f64>]) -> Result<Vec<f64>> {
        Ok(z.iter().map(|p| (self.f)(p)).collect())
    }

    fn values_and_gradients(&mut self, z: &[Vec<f64>]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        Ok((
            z.iter().map(|p| (self.f)(p)).collect(),
            z.iter().map(|p| (self.g)(p)).collect(),
        ))
    }
}

fn constant(value: f64, n: usize) -> impl RegionFunction {
    Synthetic {
        f: move |_: &[f64]| value,
        g: move |_: &[f64]| vec![0.0; n],
    }
}

fn grow(
    f: &mut dyn RegionFunction,
    method: RegionMethod,
    config: &RegionConfig,
    start: &[f64],
) -> RegionResult {
    grow_region(f, method, config, start, |_| ControlFlow::Continue(())).unwrap()
}

/// An affine f(z) = c₀ + Σ c_i z_i and its corner values on [a, b].
fn affine(c0: f64, c: &[f64]) -> impl Fn(&[f64]) -> f64 + '_ {
    move |z: &[f64]| c0 + z.iter().zip(c).map(|(z, c)| z * c).sum::<f64>()
}

fn corner_values(f: &dyn Fn(&[f64]) -> f64, a: &[f64], b: &[f64]) -> Vec<f64> {
    corners(a, b).iter().map(|p| f(p)).collect()
}

#[test]
fn naive_1d_with_f_one_converges_to_one_over_lambda() {
    let config = RegionConfig::default();
    let result = grow(&mut constant(1.0, 1), RegionMethod::Naive, &config, &[50.0]);
    assert_eq!(result.trace.len(), 601, "start + T boxes");
    let (a, b) = result.final_box();
    let r = b[0] - a[0];
    assert!((r - 10.0).abs() < 1e-4, "r = {r}");
    assert!((result.volume_ratio - 0.1).abs() < 1e-6);
}

#[test]
fn naive_2d_with_f_one_fills_omega_within_100_iterations_and_stays() {
    let config = RegionConfig::default();
    let result = grow(
        &mut constant(1.0, 2),
        RegionMethod::Naive,
        &config,
        &[50.0, 50.0],
    );
    let full = |t: &[Vec<f64>; 2]| t[0] == [0.0, 0.0] && t[1] == [100.0, 100.0];
    let first = result.trace.iter().position(full).unwrap();
    assert_eq!(first, 94, "f64 fills Ω after 94 updates (§3.5)");
    assert!(result.trace[first..].iter().all(full), "FIX keeps it there");
    assert_eq!(result.volume_ratio, 1.0);
}

#[test]
fn oir_b_1d_finds_the_plateau_edges() {
    let config = RegionConfig::default();
    let mut plateau = Synthetic {
        f: |z: &[f64]| f64::from(u8::from((40.0..=60.0).contains(&z[0]))),
        g: |_: &[f64]| vec![0.0],
    };
    let result = grow(&mut plateau, RegionMethod::OirB, &config, &[50.0]);
    let (a, b) = result.final_box();
    assert!((39.75..=40.05).contains(&a[0]), "a = {}", a[0]);
    assert!((59.95..=60.25).contains(&b[0]), "b = {}", b[0]);
}

#[test]
fn the_n_d_rules_at_n_1_are_the_1_d_rules() {
    let config = RegionConfig {
        lambda: 0.3,
        alpha: 0.07,
        beta: 0.2,
        ..RegionConfig::default()
    };
    for (a, b, fa, fb, fla, flb, ga, gb) in [
        (12.0, 31.5, 0.9, 0.4, 0.7, 0.1, 0.03, -0.02),
        (0.0, 100.0, 1.0, 1.0, 0.2, 0.3, 0.0, 0.5),
        (49.9, 50.1, 0.33, 0.77, 0.21, 0.01, -1.5, 2.0),
    ] {
        let r: f64 = b - a;
        let (alpha, beta, lambda) = (config.alpha, config.beta, config.lambda);
        let values = CornerValues {
            inner: &[fa, fb],
            outer: Some(&[fla, flb]),
            gradients: Some(&[vec![ga], vec![gb]]),
        };
        let run = |m| direction(m, &config, &[a], &[b], &values).unwrap();
        let (da, db) = run(RegionMethod::Naive);
        assert_eq!((da[0], db[0]), (fa - lambda * r, -fb + lambda * r));
        let (da, db) = run(RegionMethod::OirB);
        assert_eq!(
            (da[0], db[0]),
            (
                2.0 * fa - (1.0 + alpha / 2.0) * fla - (alpha / 2.0) * flb,
                -2.0 * fb + (1.0 + alpha / 2.0) * flb + (alpha / 2.0) * fla
            )
        );
        let (da, db) = run(RegionMethod::OirW);
        let want_a = 0.5 * ((2.0 - beta) * fa - beta * fb) + beta * r / 2.0 * ga;
        let want_b = -0.5 * ((2.0 - beta) * fb - beta * fa) + beta * r / 2.0 * gb;
        // (r/2)·(X/r) against X/2: equal up to rounding.
        assert!((da[0] - want_a).abs() <= 1e-14 * want_a.abs().max(1.0));
        assert!((db[0] - want_b).abs() <= 1e-14 * want_b.abs().max(1.0));
    }
}

/// The integral losses in closed form for affine f: ∫_box f = Vol·f(centre).
fn naive_loss(f: &dyn Fn(&[f64]) -> f64, a: &[f64], b: &[f64], lambda: f64) -> f64 {
    let r: Vec<f64> = a.iter().zip(b).map(|(a, b)| b - a).collect();
    let centre: Vec<f64> = a.iter().zip(b).map(|(a, b)| (a + b) / 2.0).collect();
    let vol: f64 = r.iter().product();
    -vol * f(&centre) + lambda / 2.0 * r.iter().map(|v| v * v).sum::<f64>()
}

fn oir_b_loss(f: &dyn Fn(&[f64]) -> f64, a: &[f64], b: &[f64], alpha: f64) -> f64 {
    let n = a.len() as i32;
    let r: Vec<f64> = a.iter().zip(b).map(|(a, b)| b - a).collect();
    let centre: Vec<f64> = a.iter().zip(b).map(|(a, b)| (a + b) / 2.0).collect();
    let vol: f64 = r.iter().product();
    ((1.0 + alpha).powi(n) - 2.0) * vol * f(&centre)
}

/// Central differences of `loss` in every a_i and b_i.
fn numeric_gradient(loss: &dyn Fn(&[f64], &[f64]) -> f64, a: &[f64], b: &[f64]) -> Vec<f64> {
    let h = 1e-5;
    let mut out = Vec::new();
    for side in 0..2 {
        for i in 0..a.len() {
            let shifted = |d: f64| {
                let (mut a2, mut b2) = (a.to_vec(), b.to_vec());
                if side == 0 {
                    a2[i] += d;
                } else {
                    b2[i] += d;
                }
                loss(&a2, &b2)
            };
            out.push((shifted(h) - shifted(-h)) / (2.0 * h));
        }
    }
    out
}

#[test]
fn naive_and_oir_b_directions_are_the_exact_derivatives_for_affine_f() {
    let config = RegionConfig::default();
    let coefficients = [0.013, -0.021, 0.008];
    for n in 1..=3 {
        let c = &coefficients[..n];
        let f = affine(0.4, c);
        let a: Vec<f64> = (0..n).map(|i| 20.0 + 7.0 * i as f64).collect();
        let b: Vec<f64> = (0..n).map(|i| 45.0 + 11.0 * i as f64).collect();
        let (qa, qb) = outer_box(&a, &b, config.alpha);
        let inner = corner_values(&f, &a, &b);
        let outer = corner_values(&f, &qa, &qb);
        let values = CornerValues {
            inner: &inner,
            outer: Some(&outer),
            gradients: None,
        };
        for (method, loss) in [
            (
                RegionMethod::Naive,
                &(|a: &[f64], b: &[f64]| naive_loss(&f, a, b, config.lambda))
                    as &dyn Fn(&[f64], &[f64]) -> f64,
            ),
            (RegionMethod::OirB, &|a: &[f64], b: &[f64]| {
                oir_b_loss(&f, a, b, config.alpha)
            }),
        ] {
            let (da, db) = direction(method, &config, &a, &b, &values).unwrap();
            let want = numeric_gradient(loss, &a, &b);
            for (got, want) in da.iter().chain(&db).zip(&want) {
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1e-3),
                    "{method:?} n = {n}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn oir_w_differs_from_oir_b_by_order_beta_squared() {
    let c = [0.013, -0.021];
    let f = affine(0.4, &c);
    let (a, b) = ([20.0, 30.0], [45.0, 70.0]);
    let difference = |beta: f64| {
        let config = RegionConfig {
            alpha: beta,
            beta,
            ..RegionConfig::default()
        };
        let (qa, qb) = outer_box(&a, &b, beta);
        let inner = corner_values(&f, &a, &b);
        let outer = corner_values(&f, &qa, &qb);
        let g = vec![c.to_vec(); 4];
        let values = CornerValues {
            inner: &inner,
            outer: Some(&outer),
            gradients: Some(&g),
        };
        let (wa, wb) = direction(RegionMethod::OirW, &config, &a, &b, &values).unwrap();
        let (ba, bb) = direction(RegionMethod::OirB, &config, &a, &b, &values).unwrap();
        wa.iter()
            .chain(&wb)
            .zip(ba.iter().chain(&bb))
            .map(|(w, o)| (w - o).abs())
            .fold(0.0, f64::max)
    };
    let (d1, d2, d3) = (difference(0.04), difference(0.02), difference(0.01));
    assert!(d1 > 0.0);
    for ratio in [d2 / d1, d3 / d2] {
        assert!((0.22..0.28).contains(&ratio), "halving beta: ratio {ratio}");
    }
}

#[test]
fn oir_w_at_beta_zero_is_naive_without_penalty() {
    let naive = RegionConfig {
        lambda: 0.0,
        ..RegionConfig::default()
    };
    let oir_w = RegionConfig {
        beta: 0.0,
        ..RegionConfig::default()
    };
    let (a, b) = ([10.0, 25.0], [40.0, 90.0]);
    let inner = [0.9, 0.3, 0.5, 0.8];
    let g = vec![vec![0.4, -0.7]; 4];
    let values = CornerValues {
        inner: &inner,
        outer: None,
        gradients: Some(&g),
    };
    let (na, nb) = direction(RegionMethod::Naive, &naive, &a, &b, &values).unwrap();
    let (wa, wb) = direction(RegionMethod::OirW, &oir_w, &a, &b, &values).unwrap();
    for (x, y) in na.iter().chain(&nb).zip(wa.iter().chain(&wb)) {
        assert!((x - y).abs() <= 1e-13 * x.abs().max(1.0), "{x} vs {y}");
    }
}

#[test]
fn fix_keeps_every_box_inside_omega_and_at_least_w_min_wide() {
    let bump = |z: &[f64]| (-z.iter().map(|v| (v - 30.0).powi(2)).sum::<f64>() / 800.0).exp();
    let bump_grad = move |z: &[f64]| {
        let f = bump(z);
        z.iter().map(|v| -f * (v - 30.0) / 400.0).collect()
    };
    let config = RegionConfig {
        iterations: 300,
        eta: 0.5,
        ..RegionConfig::default()
    };
    for method in RegionMethod::ALL {
        for start in [[0.0, 100.0], [30.0, 30.0], [99.999_999, 0.0]] {
            let mut f = Synthetic {
                f: bump,
                g: bump_grad,
            };
            let mut checked = 0;
            grow_region(&mut f, method, &config, &start, |s| {
                for (a, b) in s.a.iter().zip(s.b) {
                    assert!(0.0 <= *a && a < b && *b <= 100.0, "{method:?}: [{a}, {b}]");
                    let ulp = f64::EPSILON * 100.0;
                    assert!(b - a >= config.w_min - ulp, "{method:?}: width {}", b - a);
                }
                checked += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(checked, 300);
        }
    }
    let (mut a, mut b) = ([70.0, -5.0], [60.0, 200.0]);
    fix(&mut a, &mut b, 1e-5);
    assert_eq!((a[1], b[1]), (0.0, 100.0));
    assert!((a[0] - (65.0 - 5e-6)).abs() < 1e-12 && (b[0] - (65.0 + 5e-6)).abs() < 1e-12);
}

#[test]
fn beta_outside_its_bound_is_refused_by_name_and_n_3_warns() {
    let config = RegionConfig {
        beta: 0.7,
        ..RegionConfig::default()
    };
    // 2/(2n − 1) = 2/3 for n = 2.
    let err = config.validate(RegionMethod::OirW, 2).unwrap_err();
    assert!(err.to_string().contains("beta"), "{err}");
    assert!(config.validate(RegionMethod::OirW, 1).is_ok());
    assert!(config.validate(RegionMethod::Naive, 2).is_ok());
    let negative = RegionConfig {
        beta: -0.1,
        ..RegionConfig::default()
    };
    assert!(negative.validate(RegionMethod::OirW, 1).is_err());
    let result = grow_region(
        &mut constant(1.0, 2),
        RegionMethod::OirW,
        &config,
        &[50.0, 50.0],
        |_| ControlFlow::Continue(()),
    );
    assert!(result.is_err());
    assert!(RegionConfig::warnings(2).is_empty());
    assert!(RegionConfig::warnings(3)[0].contains("n = 3"));
}

#[test]
fn the_loss_is_logged_per_update_and_n_a_where_f_vanishes() {
    let config = RegionConfig {
        iterations: 5,
        log_loss: true,
        ..RegionConfig::default()
    };
    let result = grow(
        &mut constant(1.0, 2),
        RegionMethod::OirW,
        &config,
        &[50.0, 50.0],
    );
    let loss = result.loss.unwrap();
    assert_eq!(loss.len(), 5);
    // Constant f: (1+α)²·4/4 − 1.
    let want = 1.05f64.powi(2) - 1.0;
    assert!(loss.iter().all(|l| (l.unwrap() - want).abs() < 1e-12));
    let zero = grow(&mut constant(0.0, 1), RegionMethod::Naive, &config, &[50.0]);
    assert!(zero.loss.unwrap().iter().all(Option::is_none));
}

#[test]
fn the_callback_stops_a_run_with_the_boxes_so_far() {
    let config = RegionConfig::default();
    let result = grow_region(
        &mut constant(1.0, 1),
        RegionMethod::Naive,
        &config,
        &[50.0],
        |s| {
            if s.iteration == 7 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert!(result.stopped);
    assert_eq!(result.trace.len(), 8);
}
