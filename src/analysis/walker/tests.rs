//! The §1.10 oracles of LST, through the shared walker.

use candle_core::Device;

use super::super::confidence::batch_confidences;
use super::super::lst::LstConfig;
use super::super::plans::{evaluation_pairs, examples_pairs, path_strip_frames};
use super::super::rng::{Normals, stream as rng_stream};
use super::super::tables::table1;
use super::super::test_models::{
    constant_classifier, image_tensor, linear_classifier, random_image,
};
use super::super::width::{WidthConfig, WidthStatus};
use super::*;

pub(super) const SHAPE: [usize; 3] = [3, 8, 8];
pub(super) const DIM: usize = 192;

pub(super) fn predicted(classifier: &Classifier, image: &[f32]) -> u32 {
    let t = image_tensor(image.to_vec(), SHAPE)
        .unsqueeze(0)
        .expect("batch");
    let rows = logits_rows(&classifier.forward(&t).expect("forward")).expect("rows");
    argmax(&rows[0]).expect("finite") as u32
}

/// A pair whose source label is the model's prediction.
pub(super) fn pair(classifier: &Classifier, s: u64, t: u64, pair_id: u64) -> WalkPair {
    let (xs, xt) = (random_image(s, SHAPE), random_image(t, SHAPE));
    WalkPair {
        label: predicted(classifier, &xs),
        target_label: predicted(classifier, &xt),
        source: image_tensor(xs, SHAPE),
        target: image_tensor(xt, SHAPE),
        pair_id,
    }
}

fn small_config() -> LstConfig {
    LstConfig {
        step_size: 0.1,
        iterations: 12,
        pthresh: 0.05,
        adversarial: true,
        adv_step: 0.01,
        init_noise: 2.0 / 255.0,
        log_step: 1,
        ..LstConfig::cifar()
    }
}

fn run(
    classifier: &Classifier,
    config: &LstConfig,
    pairs: &[WalkPair],
) -> (Vec<PairOutput>, Vec<StepEvent>) {
    let mut events = Vec::new();
    let out = run_walk(classifier, config, pairs, |e| {
        events.push(e.clone());
        ControlFlow::Continue(())
    })
    .expect("run");
    (out, events)
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .expect("flat")
        .to_vec1::<f32>()
        .expect("vec")
}

fn assert_no_nan(out: &[PairOutput], events: &[StepEvent]) {
    for o in out {
        assert!(o.p0.is_finite());
        if let Some(r) = &o.result {
            assert!(r.x_star.iter().all(|v| v.is_finite()));
            assert!(r.confs.iter().flatten().all(|v| v.is_finite()));
            assert!(r.distances.l2.is_finite() && r.distances.linf.is_finite());
            for w in r.widths.iter().flatten() {
                assert!(w.rows.iter().flatten().all(|v| v.is_finite()));
            }
        }
    }
    for e in events {
        for s in &e.samples {
            assert!(
                [s.source_conf, s.target_conf, s.l2, s.linf]
                    .iter()
                    .all(|v| v.is_finite())
            );
        }
    }
}

#[test]
fn presets_and_config() {
    let i = LstConfig::imagenet();
    assert_eq!(
        (
            i.step_size,
            i.iterations,
            i.pthresh,
            i.adversarial,
            i.adv_step,
            i.log_step
        ),
        (1e-2, 400, 0.2, true, 2e-3, 20)
    );
    assert_eq!(i.init_noise, 2.0 / 255.0);
    assert_eq!(i.width.radii, vec![0.5, 1.0, 1.5, 2.0]);
    assert_eq!(i.width.directions, 256);
    assert!(!i.width.enabled);
    assert_eq!(
        (i.hull_resolution, i.pool_min_confidence, i.rounds),
        (10, 0.6, 5)
    );
    assert_eq!(i.num_logs(), 20);
    let c = LstConfig::cifar();
    assert_eq!(
        (
            c.step_size,
            c.iterations,
            c.pthresh,
            c.adversarial,
            c.adv_step,
            c.log_step
        ),
        (5e-2, 100, 0.05, true, 1.0 / 255.0, 10)
    );
    assert_eq!(c.width.radii, vec![5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
    assert_eq!(c.num_logs(), 10);
    assert_eq!(LstConfig::for_input(224, 224), i);
    assert_eq!(LstConfig::for_input(128, 300), i);
    assert_eq!(LstConfig::for_input(127, 300), c);
    assert_eq!(LstConfig::for_input(32, 32), c);
    assert_eq!(
        LstConfig {
            iterations: 7,
            log_step: 3,
            ..c.clone()
        }
        .num_logs(),
        3
    );
    let json = serde_json::to_string(&i).expect("json");
    assert_eq!(serde_json::from_str::<LstConfig>(&json).expect("parse"), i);
    assert!(
        LstConfig {
            log_step: 0,
            ..c.clone()
        }
        .validate()
        .is_err()
    );
    assert!(
        LstConfig {
            step_size: f32::NAN,
            ..c.clone()
        }
        .validate()
        .is_err()
    );
    assert!(
        LstConfig {
            adv_step: -1.0,
            ..c.clone()
        }
        .validate()
        .is_err()
    );
    assert!(i.validate().is_ok() && c.validate().is_ok());
}

#[test]
fn projection_is_orthogonal_and_reconstructs() {
    let rows = 5;
    let mut normals = Normals::new(rng_stream(1, 50, 0, 0));
    let mut v = vec![0f32; rows * DIM];
    let mut j = vec![0f32; rows * DIM];
    normals.fill(&mut v);
    normals.fill(&mut j);
    // Row 3: v ∥ J. Row 4: J = 0.
    for k in 0..DIM {
        v[3 * DIM + k] = 3.0 * j[3 * DIM + k];
        j[4 * DIM + k] = 0.0;
    }
    let vt = Tensor::from_slice(&v, (rows, DIM), &Device::Cpu).expect("v");
    let jt = Tensor::from_slice(&j, (rows, DIM), &Device::Cpu).expect("j");
    let p = project_orthogonal(&vt, &jt).expect("projection");
    let nd = p.nd.to_vec2::<f32>().expect("nd");
    for r in 0..rows {
        let (vr, jr) = (&v[r * DIM..(r + 1) * DIM], &j[r * DIM..(r + 1) * DIM]);
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum::<f64>()
        };
        let (nv, nj) = (dot(vr, vr).sqrt(), dot(jr, jr).sqrt());
        assert!(dot(&nd[r], jr).abs() <= 1e-5 * nv * nj, "row {r}");
        let coef = f64::from(p.coef[r]);
        let err = nd[r]
            .iter()
            .zip(jr)
            .zip(vr)
            .map(|((&n, &g), &x)| (f64::from(n) + coef * f64::from(g) - f64::from(x)).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(err <= 1e-6 * nv, "row {r}: {err}");
    }
    assert!((p.coef[3] - 3.0).abs() < 1e-6);
    assert_eq!(p.coef[4], 0.0);
    assert_eq!(nd[4], v[4 * DIM..5 * DIM].to_vec());
    // A non-finite gradient row is zeroed: nd = v, no NaN.
    let mut bad = j.clone();
    bad[2 * DIM + 7] = f32::NAN;
    let bt = Tensor::from_slice(&bad, (rows, DIM), &Device::Cpu).expect("j");
    let p = project_orthogonal(&vt, &bt).expect("projection");
    let nd = p.nd.to_vec2::<f32>().expect("nd");
    assert_eq!(nd[2], v[2 * DIM..3 * DIM].to_vec());
    assert!(
        p.grad.to_vec2::<f32>().expect("g")[2]
            .iter()
            .all(|&g| g == 0.0)
    );
    assert!(nd.iter().flatten().all(|x| x.is_finite()));
}

#[test]
fn zero_gradient_reaches_the_target() {
    let (classifier, _) = constant_classifier(SHAPE);
    let (xs, xt) = (random_image(1, SHAPE), random_image(2, SHAPE));
    let pairs = [WalkPair {
        source: image_tensor(xs.clone(), SHAPE),
        label: 0,
        target: image_tensor(xt.clone(), SHAPE),
        target_label: 0,
        pair_id: 4,
    }];
    let config = LstConfig {
        step_size: 1.0,
        iterations: 1,
        adversarial: false,
        ..small_config()
    };
    let mut traversal = Traversal::new(&classifier, &config, &pairs).expect("new");
    let x0 = flat(traversal.iterates().expect("running"));
    let event = traversal.step().expect("step").expect("event");
    assert!(event.samples[0].accepted);
    // J = 0 exactly, so A stays 0 and nd = v.
    assert!(
        flat(traversal.accumulators().expect("running"))
            .iter()
            .all(|&a| a == 0.0)
    );
    let out = traversal.finish().expect("finish");
    let x_star = &out[0].result.as_ref().expect("ran").x_star;
    // x + (x_t − x) rounds twice: within one ulp of the [0, 1] range.
    for ((a, b), x) in x_star.iter().zip(&xt).zip(&x0) {
        assert!((a - b).abs() <= f32::EPSILON, "{a} vs {b}");
        assert_eq!(*a, (x + (b - x)).clamp(0.0, 1.0));
    }
    assert_eq!(out[0].status, PairStatus::Done);
    // Adv on with a zero gradient: the same path, many steps, no NaN.
    let config = LstConfig {
        adversarial: true,
        iterations: 6,
        step_size: 0.3,
        ..config
    };
    let (out, events) = run(&classifier, &config, &pairs);
    assert_no_nan(&out, &events);
    assert!(events.iter().all(|e| e.samples[0].accepted));
}

#[test]
fn rejecting_everything_keeps_the_noised_start() {
    let classifier = linear_classifier(SHAPE, 3, 1);
    let pairs = [pair(&classifier, 1, 2, 9), pair(&classifier, 3, 4, 10)];
    let config = LstConfig {
        pthresh: -1.0,
        iterations: 8,
        ..small_config()
    };
    let (out, events) = run(&classifier, &config, &pairs);
    assert!(events.iter().flat_map(|e| &e.samples).all(|s| !s.accepted));
    for (o, p) in out.iter().zip(&pairs) {
        let xi = initial_noise(config.seed, p.pair_id, config.init_noise, DIM);
        let start: Vec<f32> = flat(&p.source)
            .iter()
            .zip(&xi)
            .map(|(a, b)| (a + b).clamp(0.0, 1.0))
            .collect();
        let r = o.result.as_ref().expect("ran");
        assert_eq!(r.x_star, start);
        assert_eq!(r.accepted_steps, 0);
        assert!(
            r.images
                .as_ref()
                .expect("images")
                .iter()
                .all(|img| *img == start)
        );
    }
    // δ = 2 accepts every step.
    let config = LstConfig {
        pthresh: 2.0,
        ..config
    };
    let (out, events) = run(&classifier, &config, &pairs);
    assert!(events.iter().flat_map(|e| &e.samples).all(|s| s.accepted));
    assert!(
        out.iter()
            .all(|o| o.result.as_ref().expect("ran").accepted_steps == 8)
    );
}

#[test]
fn accumulator_is_bounded_and_has_the_closed_form() {
    let classifier = linear_classifier(SHAPE, 3, 2);
    let pairs = [pair(&classifier, 5, 6, 0)];
    let eps = 0.05f32;
    let config = LstConfig {
        pthresh: -1.0,
        adv_step: eps,
        iterations: 40,
        ..small_config()
    };
    let mut traversal = Traversal::new(&classifier, &config, &pairs).expect("new");
    // Every step is rejected, so x and J stay those of the noised start.
    let x0 = traversal
        .iterates()
        .expect("running")
        .reshape((1, 3, 8, 8))
        .expect("r");
    let (_, j) = classifier
        .input_gradient(&x0, &Objective::CrossEntropy(vec![pairs[0].label]))
        .expect("gradient");
    let j = flat(&j);
    let mut saturated = 0;
    for k in 1..=40 {
        traversal.step().expect("step");
        let a = flat(traversal.accumulators().expect("running"));
        for (&ak, &jk) in a.iter().zip(&j) {
            assert!(ak.abs() <= eps);
            let expected = (k as f64 * f64::from(eps) / 2.0 * f64::from(jk))
                .clamp(-f64::from(eps), f64::from(eps));
            assert!((f64::from(ak) - expected).abs() <= 1e-7 + 1e-5 * expected.abs());
            saturated += usize::from(ak.abs() == eps);
        }
    }
    assert!(saturated > 0, "the test should reach the clamp");
    // The bound also holds along an ordinary run.
    let config = LstConfig {
        pthresh: 0.3,
        adv_step: 0.01,
        ..config
    };
    let mut traversal = Traversal::new(&classifier, &config, &pairs).expect("new");
    while traversal.step().expect("step").is_some() {
        let a = flat(traversal.accumulators().expect("running"));
        assert!(a.iter().all(|v| v.abs() <= 0.01));
    }
}

/// Pairs on which a small δ gives both accepted and rejected steps.
fn mixed_pairs(classifier: &Classifier) -> Vec<WalkPair> {
    (0..6)
        .map(|k| pair(classifier, 20 + k, 40 + k, k))
        .collect()
}

fn mixed_config() -> LstConfig {
    LstConfig {
        step_size: 0.3,
        iterations: 25,
        pthresh: 0.01,
        adv_step: 0.002,
        ..small_config()
    }
}

#[test]
fn adv_off_stays_stuck_after_the_first_rejection() {
    let classifier = linear_classifier(SHAPE, 3, 3);
    let pairs = mixed_pairs(&classifier);
    let config = LstConfig {
        adversarial: false,
        pthresh: 0.03,
        ..mixed_config()
    };
    let (out, events) = run(&classifier, &config, &pairs);
    let mut meaningful = 0;
    for (k, o) in out.iter().enumerate() {
        let r = o.result.as_ref().expect("ran");
        let flags: Vec<bool> = events
            .iter()
            .map(|e| {
                e.samples
                    .iter()
                    .find(|s| s.pair_index == k)
                    .expect("sample")
                    .accepted
            })
            .collect();
        let images = r.images.as_ref().expect("images");
        if let Some(first) = flags.iter().position(|a| !a) {
            assert!(flags[first..].iter().all(|a| !a), "pair {k}: {flags:?}");
            for img in &images[first..] {
                assert_eq!(img, &r.x_star);
            }
            meaningful += usize::from(first > 0);
        }
    }
    assert!(meaningful > 0, "some pair should move, then get stuck");
}

#[test]
fn iterates_stay_in_range_and_above_the_threshold() {
    let classifier = linear_classifier(SHAPE, 3, 3);
    let pairs = mixed_pairs(&classifier);
    let config = mixed_config();
    let (out, events) = run(&classifier, &config, &pairs);
    assert_no_nan(&out, &events);
    let (mut acc, mut rej) = (0, 0);
    for e in &events {
        for s in &e.samples {
            if s.accepted { acc += 1 } else { rej += 1 }
        }
    }
    assert!(acc > 0 && rej > 0, "accepted {acc}, rejected {rej}");
    for o in &out {
        let r = o.result.as_ref().expect("ran");
        for img in r.images.as_ref().expect("images").iter().chain([&r.x_star]) {
            assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        let t = image_tensor(r.x_star.clone(), SHAPE)
            .unsqueeze(0)
            .expect("b");
        let p = batch_confidences(&classifier, &t, &[o.label], 1).expect("conf")[0];
        assert!((r.confs.last().expect("row")[0] - p).abs() < 1e-6);
        if r.accepted_steps > 0 {
            assert!(o.p0 - p < config.pthresh);
        }
        assert_eq!(r.confs.len(), config.num_logs() + 1);
        assert_eq!(r.logged_steps, (0..25).collect::<Vec<_>>());
    }
    // The last event describes x*.
    let last = events.last().expect("events");
    for s in &last.samples {
        let r = out[s.pair_index].result.as_ref().expect("ran");
        assert!((s.l2 - r.distances.l2).abs() < 1e-6);
        assert!((s.linf - r.distances.linf).abs() < 1e-6);
        assert_eq!(s.source_conf, r.confs.last().expect("row")[0]);
    }
}

#[test]
fn noise_is_bounded_and_reproducible() {
    let nu = 2.0 / 255.0;
    let a = initial_noise(0, 3, nu, 5000);
    assert!(a.iter().all(|v| (-nu..=nu).contains(v)));
    assert!(a.iter().any(|&v| v > nu * 0.9) && a.iter().any(|&v| v < -nu * 0.9));
    assert_eq!(a, initial_noise(0, 3, nu, 5000));
    assert_ne!(a, initial_noise(1, 3, nu, 5000));
    assert_ne!(a, initial_noise(0, 4, nu, 5000));

    let classifier = linear_classifier(SHAPE, 3, 3);
    let pairs = mixed_pairs(&classifier);
    let config = mixed_config();
    let (out1, ev1) = run(&classifier, &config, &pairs);
    let (out2, ev2) = run(&classifier, &config, &pairs);
    assert_eq!(out1, out2);
    assert_eq!(ev1, ev2);
    // The first logged iterate is clamp(x_s + ξ).
    for (o, p) in out1.iter().zip(&pairs) {
        let xi = initial_noise(config.seed, p.pair_id, config.init_noise, DIM);
        let start: Vec<f32> = flat(&p.source)
            .iter()
            .zip(&xi)
            .map(|(a, b)| (a + b).clamp(0.0, 1.0))
            .collect();
        assert_eq!(
            o.result.as_ref().expect("ran").images.as_ref().expect("i")[0],
            start
        );
    }
    let (out3, _) = run(&classifier, &LstConfig { seed: 1, ..config }, &pairs);
    assert_ne!(
        out1[0].result.as_ref().expect("ran").x_star,
        out3[0].result.as_ref().expect("ran").x_star
    );
}

#[test]
fn a_sample_does_not_depend_on_its_batch() {
    let classifier = linear_classifier(SHAPE, 3, 3);
    let pairs: Vec<WalkPair> = (0..7)
        .map(|k| pair(&classifier, 60 + k, 80 + k, 100 + k))
        .collect();
    let config = LstConfig {
        width: WidthConfig {
            enabled: true,
            radii: vec![0.5, 2.0],
            directions: 32,
            chunk: 16,
        },
        ..mixed_config()
    };
    let (batch, _) = run(&classifier, &config, &pairs);
    for k in [0, 3, 6] {
        let (alone, _) = run(&classifier, &config, &pairs[k..=k]);
        let (a, b) = (
            alone[0].result.as_ref().expect("ran"),
            batch[k].result.as_ref().expect("ran"),
        );
        assert_eq!(alone[0].pair_id, batch[k].pair_id);
        assert_eq!(a.accepted_steps, b.accepted_steps);
        let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() <= 1e-5);
        assert!(close(&a.x_star, &b.x_star));
        assert!(close(a.confs.as_flattened(), b.confs.as_flattened()));
        assert!((a.distances.l2 - b.distances.l2).abs() <= 1e-5);
        for (wa, wb) in a.widths.iter().flatten().zip(b.widths.iter().flatten()) {
            assert_eq!(wa.status, wb.status);
            assert!(close(wa.rows.as_flattened(), wb.rows.as_flattened()));
        }
    }
}

#[test]
fn misclassified_sources_are_reported_as_skipped() {
    let classifier = linear_classifier(SHAPE, 3, 3);
    let mut pairs = mixed_pairs(&classifier)[..3].to_vec();
    pairs[1].label = (pairs[1].label + 1) % 3;
    let (out, events) = run(&classifier, &small_config(), &pairs);
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[1].status,
        PairStatus::Skipped(SkipReason::MisclassifiedSource)
    );
    assert!(out[1].result.is_none());
    assert_eq!(out[1].pair_id, pairs[1].pair_id);
    assert!(out[1].p0 > 0.0 && out[1].p0 < 1.0);
    assert_eq!(
        (out[0].status, out[2].status),
        (PairStatus::Done, PairStatus::Done)
    );
    assert!(
        events
            .iter()
            .all(|e| e.samples.len() == 2 && e.samples.iter().all(|s| s.pair_index != 1))
    );
    let t = Traversal::new(&classifier, &small_config(), &pairs).expect("new");
    assert_eq!(t.starts()[1].skipped, Some(SkipReason::MisclassifiedSource));
    assert_eq!(t.starts()[0].predicted, Some(pairs[0].label));
    // Nothing to run.
    let only = [pairs[1].clone()];
    let mut t = Traversal::new(&classifier, &small_config(), &only).expect("new");
    assert!(t.is_finished());
    assert!(t.step().expect("step").is_none());
    let out = t.finish().expect("finish");
    assert_eq!(
        out[0].status,
        PairStatus::Skipped(SkipReason::MisclassifiedSource)
    );
    assert!(
        run_walk(
            &classifier,
            &small_config(),
            &[],
            |_| ControlFlow::Continue(())
        )
        .expect("empty")
        .is_empty()
    );
    // Bad inputs are errors, not skips.
    let mut bad = pairs[0].clone();
    bad.label = 7;
    assert!(Traversal::new(&classifier, &small_config(), &[bad]).is_err());
    let mut bad = pairs[0].clone();
    bad.target = (bad.target.clone() * 2.0).expect("scale");
    assert!(Traversal::new(&classifier, &small_config(), &[bad]).is_err());
}

/// The loop of §1.2 written plainly for one sample on the host: a forward+backward at x and
/// a forward at x' per iteration.
fn reference_lst(classifier: &Classifier, cfg: &LstConfig, p: &WalkPair) -> (Vec<f32>, Vec<bool>) {
    let conf = |x: &[f32]| {
        let t = image_tensor(x.to_vec(), SHAPE).unsqueeze(0).expect("b");
        let rows = logits_rows(&classifier.forward(&t).expect("f")).expect("rows");
        softmax_at(&rows[0], p.label as usize)
    };
    let (xs, xt) = (flat(&p.source), flat(&p.target));
    let p0 = conf(&xs);
    let xi = initial_noise(cfg.seed, p.pair_id, cfg.init_noise, DIM);
    let mut x: Vec<f32> = xs
        .iter()
        .zip(&xi)
        .map(|(a, b)| (a + b).clamp(0.0, 1.0))
        .collect();
    let mut acc = vec![0f32; DIM];
    let eps = cfg.adv_step;
    let mut flags = Vec::new();
    for _ in 0..cfg.iterations {
        let t = image_tensor(x.clone(), SHAPE).unsqueeze(0).expect("b");
        let (_, j) = classifier
            .input_gradient(&t, &Objective::CrossEntropy(vec![p.label]))
            .expect("grad");
        let j = flat(&j);
        let v: Vec<f32> = xt.iter().zip(&x).map(|(a, b)| a - b).collect();
        let gg: f64 = j.iter().map(|&g| f64::from(g).powi(2)).sum();
        let jv: f64 = j
            .iter()
            .zip(&v)
            .map(|(&g, &w)| f64::from(g) * f64::from(w))
            .sum();
        let c = if gg > f64::from(f32::MIN_POSITIVE) {
            (jv / gg) as f32
        } else {
            0.0
        };
        let nd: Vec<f32> = v.iter().zip(&j).map(|(&w, &g)| w - c * g).collect();
        for (a, &g) in acc.iter_mut().zip(&j) {
            *a = (*a + g * (eps / 2.0)).clamp(-eps, eps);
        }
        let prop: Vec<f32> = x
            .iter()
            .zip(&nd)
            .zip(&acc)
            .map(|((&a, &n), &m)| {
                let y = a + n * cfg.step_size;
                (if cfg.adversarial { y - m } else { y }).clamp(0.0, 1.0)
            })
            .collect();
        let ok = p0 - conf(&prop) < cfg.pthresh;
        if ok {
            x = prop;
        }
        flags.push(ok);
    }
    (x, flags)
}

#[test]
fn cached_gradient_matches_the_plain_loop() {
    let classifier = linear_classifier(SHAPE, 3, 3);
    let pairs = mixed_pairs(&classifier);
    let config = mixed_config();
    let (out, events) = run(&classifier, &config, &pairs);
    for (k, p) in pairs.iter().enumerate() {
        let (x, flags) = reference_lst(&classifier, &config, p);
        let got: Vec<bool> = events.iter().map(|e| e.samples[k].accepted).collect();
        assert_eq!(got, flags, "pair {k}");
        let r = out[k].result.as_ref().expect("ran");
        for (a, b) in r.x_star.iter().zip(&x) {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
        }
    }
}

#[test]
fn a_caller_can_stop_between_steps() {
    let classifier = linear_classifier(SHAPE, 3, 3);
    let pairs = mixed_pairs(&classifier);
    let config = LstConfig {
        log_step: 2,
        ..mixed_config()
    };
    let mut seen = 0;
    let out = run_walk(&classifier, &config, &pairs, |e| {
        seen += 1;
        if e.step == 4 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .expect("run");
    assert_eq!(seen, 5);
    for o in &out {
        assert_eq!(o.status, PairStatus::Stopped { steps: 5 });
        let r = o.result.as_ref().expect("ran");
        assert_eq!(r.logged_steps, vec![0, 2, 4]);
        assert_eq!(r.confs.len(), 4);
        assert_eq!(r.steps, 5);
    }
    // Stepping by hand gives the same iterate as the callback run.
    let mut t = Traversal::new(&classifier, &config, &pairs).expect("new");
    for _ in 0..5 {
        t.step().expect("step");
    }
    assert_eq!(t.steps_done(), 5);
    assert!(!t.is_finished());
    assert_eq!(t.finish().expect("finish"), out);
}

#[test]
fn logs_events_and_widths() {
    let classifier = linear_classifier(SHAPE, 3, 3);
    let pairs = mixed_pairs(&classifier)[..2].to_vec();
    let width = WidthConfig {
        enabled: true,
        radii: vec![0.5, 1.0, 4.0],
        directions: 64,
        chunk: 32,
    };
    let config = LstConfig {
        iterations: 7,
        log_step: 3,
        width,
        ..mixed_config()
    };
    let (out, events) = run(&classifier, &config, &pairs);
    assert_no_nan(&out, &events);
    assert_eq!(events.len(), 7);
    for e in &events {
        for s in &e.samples {
            match &s.logged {
                Some(l) => {
                    assert_eq!(e.step % 3, 0);
                    assert_eq!((l.step, l.log_index), (e.step, e.step / 3));
                    assert_eq!(l.image.len(), DIM);
                    let w = l.width.as_ref().expect("widths on");
                    assert_eq!(w.rows.len(), 4);
                }
                None => assert_ne!(e.step % 3, 0),
            }
        }
    }
    for o in &out {
        let r = o.result.as_ref().expect("ran");
        assert_eq!(r.logged_steps, vec![0, 3, 6]);
        assert_eq!(r.confs.len(), 4);
        assert_eq!(r.images.as_ref().expect("images").len(), 3);
        let widths = r.widths.as_ref().expect("widths");
        assert_eq!(widths.len(), 3);
        for (w, c) in widths.iter().zip(&r.confs) {
            if w.status == WidthStatus::Measured {
                assert_eq!(w.rows[0], [c[0], c[0]]);
                assert!(w.rows.iter().all(|q| q[0] <= q[1]));
            } else {
                assert!(w.rows.iter().flatten().all(|v| *v == 0.0));
            }
        }
        assert_eq!(r.distances.ssim, None); // 8×8 is below the SSIM window
    }
    // Constant model: every width entry is c0; above-threshold c is measured.
    let (cst, c) = constant_classifier(SHAPE);
    let cpairs = [WalkPair {
        label: 0,
        target_label: 1,
        ..pairs[0].clone()
    }];
    let (out, _) = run(
        &cst,
        &LstConfig {
            pthresh: 0.1,
            ..config.clone()
        },
        &cpairs,
    );
    for w in out[0]
        .result
        .as_ref()
        .expect("ran")
        .widths
        .as_ref()
        .expect("w")
    {
        assert_eq!(w.status, WidthStatus::Measured);
        assert!(w.rows.iter().flatten().all(|&v| v == c));
    }
    // pthresh above c: every measurement is skipped, zeros.
    let (out, _) = run(
        &cst,
        &LstConfig {
            pthresh: c + 0.01,
            ..config.clone()
        },
        &cpairs,
    );
    let r = out[0].result.as_ref().expect("ran");
    for w in r.widths.as_ref().expect("w") {
        assert_eq!(w.status, WidthStatus::Skipped);
        assert!(w.rows.iter().flatten().all(|&v| v == 0.0));
    }
    // No images kept on request; SSIM on 12×12 inputs.
    let shape = [3, 12, 12];
    let big = linear_classifier(shape, 3, 4);
    let (xs, xt) = (random_image(1, shape), random_image(2, shape));
    let t = Tensor::from_vec(xs.clone(), (1, 3, 12, 12), &Device::Cpu).expect("t");
    let label =
        argmax(&logits_rows(&big.forward(&t).expect("f")).expect("r")[0]).expect("a") as u32;
    let bp = [WalkPair {
        source: Tensor::from_vec(xs, (3, 12, 12), &Device::Cpu).expect("t"),
        label,
        target: Tensor::from_vec(xt, (3, 12, 12), &Device::Cpu).expect("t"),
        target_label: 0,
        pair_id: 0,
    }];
    let cfg = LstConfig {
        record_images: false,
        width: WidthConfig::cifar(),
        ..config
    };
    let (out, events) = run(&big, &cfg, &bp);
    let r = out[0].result.as_ref().expect("ran");
    assert!(r.images.is_none() && r.widths.is_none());
    assert!(r.distances.ssim.is_some_and(|s| s.is_finite() && s <= 1.0));
    assert!(
        events[0].samples[0]
            .logged
            .as_ref()
            .is_some_and(|l| l.image.len() == 432 && l.width.is_none())
    );
}

/// logits = W·x + b + 0·√(t − mean(x)): NaN logits and NaN gradients once mean(x) > t.
struct NanAbove {
    inner: super::super::test_models::Linear,
    threshold: f64,
    zero: Tensor,
}

impl crate::models::Network for NanAbove {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mean = x.flatten_from(1)?.mean_keepdim(1)?;
        let guard = mean
            .affine(-1.0, self.threshold)?
            .sqrt()?
            .broadcast_mul(&self.zero)?;
        self.inner.forward(x)?.broadcast_add(&guard)
    }
}

#[test]
fn nan_logits_are_rejected_and_never_propagate() {
    let shape = SHAPE;
    let classifier = super::super::test_models::with_network(shape, 3, |inner| {
        Box::new(NanAbove {
            inner,
            threshold: 0.5,
            zero: Tensor::zeros((1, 1), DType::F32, &Device::Cpu).expect("zero"),
        })
    });
    // A dark source, a bright target: the path crosses mean(x) = 0.5.
    let xs: Vec<f32> = random_image(1, shape).iter().map(|v| v * 0.6).collect();
    let xt: Vec<f32> = random_image(2, shape)
        .iter()
        .map(|v| 0.4 + 0.6 * v)
        .collect();
    let label = predicted(&classifier, &xs);
    let pairs = [WalkPair {
        source: image_tensor(xs, shape),
        label,
        target: image_tensor(xt.clone(), shape),
        target_label: 0,
        pair_id: 0,
    }];
    let config = LstConfig {
        pthresh: 2.0,
        step_size: 0.2,
        iterations: 15,
        ..small_config()
    };
    let (out, events) = run(&classifier, &config, &pairs);
    assert_no_nan(&out, &events);
    assert!(
        events.iter().any(|e| !e.samples[0].accepted),
        "some proposal must be NaN"
    );
    let r = out[0].result.as_ref().expect("ran");
    let mean = r.x_star.iter().map(|&v| f64::from(v)).sum::<f64>() / DIM as f64;
    assert!(mean < 0.5);
    // A NaN source is skipped, not run.
    let bright = [WalkPair {
        source: image_tensor(xt, shape),
        ..pairs[0].clone()
    }];
    let t = Traversal::new(&classifier, &config, &bright).expect("new");
    assert_eq!(
        t.starts()[0].skipped,
        Some(SkipReason::NonFiniteSourceLogits)
    );
    assert_eq!(t.starts()[0].p0, 0.0);
}

#[test]
fn run_modes_and_tables() {
    let ex = examples_pairs(5);
    assert_eq!(ex.len(), 20);
    assert!(
        ex.iter()
            .all(|p| p.source != p.target && p.pair_id == (p.source * 5 + p.target) as u64)
    );
    let ev = evaluation_pairs(6, 5, 0).expect("n >= 2");
    assert_eq!(ev.len(), 30);
    for p in &ev {
        assert_ne!(p.source, p.target);
        assert_eq!(p.pair_id, (p.round * 6 + p.source) as u64);
    }
    for r in 0..5 {
        let mut targets: Vec<usize> = ev
            .iter()
            .filter(|p| p.round == r)
            .map(|p| p.target)
            .collect();
        targets.sort_unstable();
        assert_eq!(targets, (0..6).collect::<Vec<_>>());
    }
    assert_eq!(evaluation_pairs(1, 5, 0), None);
    assert_eq!(path_strip_frames(20), vec![3, 6, 10, 13, 16, 19]);
    assert_eq!(path_strip_frames(10), vec![2, 3, 5, 6, 8, 9]);
    assert_eq!(path_strip_frames(4), vec![0, 1, 2, 3]);

    let classifier = linear_classifier(SHAPE, 3, 3);
    let mut pairs = mixed_pairs(&classifier)[..3].to_vec();
    pairs[2].label = (pairs[2].label + 1) % 3;
    let (out, _) = run(
        &classifier,
        &LstConfig {
            iterations: 3,
            ..small_config()
        },
        &pairs,
    );
    let t = table1(&out);
    assert_eq!((t.pairs, t.skipped_pairs), (2, 1));
    let l2: Vec<f32> = out[..2]
        .iter()
        .map(|o| o.result.as_ref().expect("ran").distances.l2)
        .collect();
    let l2s = t.l2.expect("two pairs");
    assert!((l2s.mean - (f64::from(l2[0]) + f64::from(l2[1])) / 2.0).abs() < 1e-9);
    assert!(t.ssim.is_none() && t.lpips.is_none());
}
