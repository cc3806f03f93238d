//! The §2.5 oracles of NSPGD, through the shared walker.

use candle_core::Device;

use super::super::nspgd::NspgdConfig;
use super::super::rng::{self, Normals, stream as rng_stream};
use super::super::test_models::{
    Linear, constant_classifier, image_tensor, linear_classifier, random_image, with_network,
};
use super::super::width::WidthConfig;
use super::tests::{DIM, SHAPE, pair, predicted};
use super::*;

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .expect("flat")
        .to_vec1::<f32>()
        .expect("vec")
}

fn rows(v: Vec<f32>, b: usize) -> Tensor {
    Tensor::from_vec(v, (b, DIM), &Device::Cpu).expect("tensor")
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

fn config() -> NspgdConfig {
    NspgdConfig {
        iterations: 40,
        step_size: 0.1,
        log_step: 1,
        ..NspgdConfig::default()
    }
}

fn run(classifier: &Classifier, config: &NspgdConfig, pairs: &[WalkPair]) -> Vec<PairOutput> {
    run_walk(classifier, config, pairs, |_| ControlFlow::Continue(())).expect("run")
}

#[test]
fn nspgd_defaults() {
    let c = NspgdConfig::default();
    assert_eq!((c.step_size, c.iterations, c.tau), (5e-2, 100, 0.05));
    assert_eq!(c.width.radii, vec![5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
    assert_eq!(c.width.directions, 256);
    let w = WalkConfig::from(&c);
    assert_eq!(w.sidedness(), Sidedness::OneSided);
    assert!(!w.clamps_iterate() && w.initial_noise().is_none() && w.accumulator().is_none());
    let json = serde_json::to_string(&w).expect("json");
    assert!(json.contains("\"method\":\"nspgd\""));
    assert_eq!(serde_json::from_str::<WalkConfig>(&json).expect("parse"), w);
    let widths = NspgdConfig {
        width: WidthConfig {
            enabled: true,
            ..c.width.clone()
        },
        ..c.clone()
    };
    let due: Vec<usize> = (0..100)
        .filter(|&i| widths.width_index(i).is_some())
        .collect();
    assert_eq!(due, vec![0, 6, 12, 18, 24, 30, 36, 42, 48, 54]);
    assert!(
        NspgdConfig {
            tau: f32::NAN,
            ..c.clone()
        }
        .validate()
        .is_err()
    );
    assert!(NspgdConfig { iterations: 0, ..c }.validate().is_err());
}

#[test]
fn one_sided_projection() {
    let mut normals = Normals::new(rng_stream(2, 51, 0, 0));
    let mut v = vec![0f32; 3 * DIM];
    let mut j = vec![0f32; 3 * DIM];
    normals.fill(&mut v);
    normals.fill(&mut j);
    // Row 0: ⟨J, v⟩ > 0; row 1: ⟨J, v⟩ < 0; row 2: J = 0 (gg tiny).
    let (v0, rest) = v.split_at(DIM);
    if dot(v0, &j[..DIM]) < 0.0 {
        j[..DIM].iter_mut().for_each(|x| *x = -*x);
    }
    if dot(&rest[..DIM], &j[DIM..2 * DIM]) > 0.0 {
        j[DIM..2 * DIM].iter_mut().for_each(|x| *x = -*x);
    }
    j[2 * DIM..].iter_mut().for_each(|x| *x = 0.0);
    let p = project(
        &rows(v.clone(), 3),
        &rows(j.clone(), 3),
        Sidedness::OneSided,
    )
    .expect("p");
    let nd = flat(&p.nd);
    assert_eq!(nd[..DIM], v[..DIM], "⟨J, v⟩ > 0 keeps v bit for bit");
    assert_eq!(nd[2 * DIM..], v[2 * DIM..], "gg tiny keeps v");
    let (vn, jn) = (
        dot(&v[DIM..2 * DIM], &v[DIM..2 * DIM]).sqrt(),
        dot(&j[DIM..2 * DIM], &j[DIM..2 * DIM]).sqrt(),
    );
    assert!(dot(&nd[DIM..2 * DIM], &j[DIM..2 * DIM]).abs() <= 1e-5 * vn * jn);
    // Two-sided removes the component of row 0 as well.
    let two = project(&rows(v.clone(), 3), &rows(j, 3), Sidedness::TwoSided).expect("p");
    assert_ne!(flat(&two.nd)[..DIM], v[..DIM]);
}

#[test]
fn the_step_is_not_clamped_and_the_model_sees_the_clamp() {
    let classifier = linear_classifier(SHAPE, 3, 4);
    // v = 0.2 everywhere and η = 5: x' = 1.8 unclamped after one accepted step (J is ignored
    // by the one-sided rule only if ⟨J, v⟩ > 0, so use τ = 2 to accept whatever happens and a
    // constant direction check on the clamp instead).
    let (constant, _) = constant_classifier(SHAPE);
    let p = WalkPair {
        source: image_tensor(vec![0.8; DIM], SHAPE),
        label: 0,
        target: image_tensor(vec![1.0; DIM], SHAPE),
        target_label: 0,
        pair_id: 0,
    };
    let cfg = NspgdConfig {
        iterations: 1,
        step_size: 5.0,
        ..config()
    };
    let out = run(&constant, &cfg, std::slice::from_ref(&p));
    let r = out[0].result.as_ref().expect("ran");
    assert_eq!(out[0].status, PairStatus::Completed);
    assert!(
        r.x_star.iter().all(|&x| (x - 1.8).abs() < 1e-6),
        "stored unclamped"
    );
    // With a model that depends on x, the final confidence is p(clamp(x'))[y].
    let src = random_image(9, SHAPE)
        .iter()
        .map(|v| 0.5 + 0.4 * v)
        .collect::<Vec<_>>();
    let label = predicted(&classifier, &src);
    let p = WalkPair {
        source: image_tensor(src, SHAPE),
        label,
        target: image_tensor(vec![1.0; DIM], SHAPE),
        target_label: label,
        pair_id: 0,
    };
    let cfg = NspgdConfig { tau: 2.0, ..cfg };
    let out = run(&classifier, &cfg, std::slice::from_ref(&p));
    let r = out[0].result.as_ref().expect("ran");
    assert!(r.x_star.iter().any(|&x| x > 1.0), "the step left [0, 1]");
    let clamped: Vec<f32> = r.x_star.iter().map(|x| x.clamp(0.0, 1.0)).collect();
    let probs = classifier
        .probabilities(&image_tensor(clamped, SHAPE).unsqueeze(0).expect("b"))
        .expect("p")
        .to_vec2::<f32>()
        .expect("rows");
    let last = r.confs.last().expect("final row");
    assert!((last[0] - probs[0][label as usize]).abs() < 1e-6);
}

#[test]
fn the_gradient_is_taken_through_the_clamp_in_f64() {
    // The network of `with_network`: logits = Wᵀx with W from stream(0, 77), scale 0.3, no bias.
    let classes = 3;
    let classifier = with_network(SHAPE, classes, |l: Linear| Box::new(l));
    let mut normals = Normals::new(rng::stream(0, 77, 0, 0));
    let mut w = vec![0f32; DIM * classes];
    normals.fill(&mut w);
    let w: Vec<f64> = w.iter().map(|&v| f64::from(v * 0.3)).collect();
    let p_of = |x: &[f64], y: usize| -> f64 {
        let logits: Vec<f64> = (0..classes)
            .map(|k| {
                (0..DIM)
                    .map(|d| w[d * classes + k] * x[d].clamp(0.0, 1.0))
                    .sum()
            })
            .collect();
        let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
        e[y] / e.iter().sum::<f64>()
    };
    // An iterate partly outside [0, 1].
    let x: Vec<f32> = random_image(5, SHAPE)
        .iter()
        .map(|v| 1.6 * v - 0.3)
        .collect();
    assert!(x.iter().any(|&v| v > 1.0) && x.iter().any(|&v| v < 0.0));
    let y = 1usize;
    let cfg = WalkConfig::from(NspgdConfig::default());
    let (_, grad) =
        gradient_at(&classifier, &cfg, SHAPE, &rows(x.clone(), 1), &[y as u32]).expect("gradient");
    let grad = flat(&grad);
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let h = 1e-6;
    let mut worst = 0f64;
    for d in 0..DIM {
        let (mut up, mut down) = (x64.clone(), x64.clone());
        up[d] += h;
        down[d] -= h;
        let fd = (p_of(&up, y) - p_of(&down, y)) / (2.0 * h);
        if !(0.0..=1.0).contains(&x[d]) {
            assert_eq!(grad[d], 0.0, "outside [0, 1] the clamp has no derivative");
        }
        worst = worst.max((fd - f64::from(grad[d])).abs());
    }
    assert!(worst < 1e-6, "J vs f64 central differences: {worst}");
}

#[test]
fn finishing_early_changes_nothing() {
    let classifier = linear_classifier(SHAPE, 3, 3);
    let pairs: Vec<WalkPair> = (0..6)
        .map(|k| pair(&classifier, 10 + k, 20 + k, k))
        .collect();
    // Large steps, so that the one-sided walk overshoots and some pairs finish early.
    let cfg = NspgdConfig {
        step_size: 0.9,
        tau: 0.01,
        ..config()
    };
    let early = run(&classifier, &cfg, &pairs);
    let full = run(
        &classifier,
        &NspgdConfig {
            early_finish: false,
            ..cfg.clone()
        },
        &pairs,
    );
    assert!(
        early
            .iter()
            .any(|o| matches!(o.status, PairStatus::Finished { .. })),
        "some pair must finish early for this test to mean anything"
    );
    for (a, b) in early.iter().zip(&full) {
        assert_eq!(a.status, b.status);
        let (ra, rb) = (a.result.as_ref(), b.result.as_ref());
        assert_eq!(
            ra.map(|r| &r.x_star),
            rb.map(|r| &r.x_star),
            "bit-identical"
        );
        assert_eq!(ra.map(|r| r.accepted_steps), rb.map(|r| r.accepted_steps));
    }
    // A finished pair is alone in its batch as well as in the others'.
    for (k, p) in pairs.iter().enumerate() {
        let alone = run(&classifier, &cfg, std::slice::from_ref(p));
        let (a, b) = (
            &alone[0].result.as_ref().expect("ran").x_star,
            &early[k].result.as_ref().expect("ran").x_star,
        );
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-5, "pair {k}: batch dependence {worst}");
    }
}

#[test]
fn a_drop_of_exactly_tau_is_rejected() {
    // A constant model: every drop is exactly 0.
    let (constant, _) = constant_classifier(SHAPE);
    let p = WalkPair {
        source: image_tensor(random_image(1, SHAPE), SHAPE),
        label: 0,
        target: image_tensor(random_image(2, SHAPE), SHAPE),
        target_label: 0,
        pair_id: 0,
    };
    let strict = NspgdConfig {
        tau: 0.0,
        ..config()
    };
    let out = run(&constant, &strict, std::slice::from_ref(&p));
    assert_eq!(out[0].status, PairStatus::Finished { steps: 0 });
    let r = out[0].result.as_ref().expect("ran");
    assert_eq!(r.x_star, random_image(1, SHAPE), "unchanged");
    assert_eq!(r.accepted_steps, 0);
    let loose = NspgdConfig {
        tau: f32::MIN_POSITIVE,
        ..config()
    };
    let out = run(&constant, &loose, std::slice::from_ref(&p));
    assert_eq!(out[0].status, PairStatus::Completed);
}

#[test]
fn misclassified_sources_are_invalid_and_widths_stop_with_the_walk() {
    let classifier = linear_classifier(SHAPE, 3, 3);
    let mut pairs: Vec<WalkPair> = (0..4)
        .map(|k| pair(&classifier, 30 + k, 40 + k, k))
        .collect();
    pairs[1].label = (pairs[1].label + 1) % 3;
    let cfg = NspgdConfig {
        iterations: 70,
        log_step: 6,
        width: WidthConfig {
            enabled: true,
            directions: 16,
            ..WidthConfig::cifar()
        },
        ..config()
    };
    let out = run(&classifier, &cfg, &pairs);
    assert_eq!(
        out[1].status,
        PairStatus::Invalid(SkipReason::MisclassifiedSource)
    );
    assert!(out[1].result.is_none() && out[1].status.is_skipped());
    for o in out.iter().filter(|o| o.result.is_some()) {
        let r = o.result.as_ref().expect("ran");
        let widths = r.widths.as_ref().expect("widths on");
        let last_step = match o.status {
            PairStatus::Finished { steps } => steps,
            _ => cfg.iterations - 1,
        };
        let expected = (0..=last_step.min(59)).filter(|i| i % 6 == 0).count();
        assert_eq!(widths.len(), expected, "{:?}", o.status);
        assert!(widths.len() <= 10);
        for w in widths {
            assert_eq!(w.rows.len(), 7);
            assert!(w.rows.iter().flatten().all(|v| v.is_finite()));
            assert!(w.rows.iter().all(|r| r[0] <= r[1]));
        }
    }
}
