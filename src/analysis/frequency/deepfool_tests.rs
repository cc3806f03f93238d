//! §4.5 oracles for subspace DeepFool: the linear model, subspace containment, the
//! degenerate case, and batch independence.

use candle_core::{DType, Device, Tensor};

use super::*;
use crate::analysis::frequency::dct::Dct2;
use crate::analysis::frequency::subspace::SubspacePlan;
use crate::analysis::test_models::{
    Linear, biased_linear_f64, constant_classifier, linear_from_rows, random_image, with_network,
};
use crate::models::{Classifier, Network};

fn images(count: usize, shape: [usize; 3], seed: u64, dtype: DType) -> Tensor {
    let rows: Vec<Tensor> = (0..count as u64)
        .map(|i| {
            Tensor::from_vec(random_image(seed + i, shape), &shape[..], &Device::Cpu)
                .expect("image")
        })
        .collect();
    Tensor::stack(&rows, 0)
        .and_then(|t| t.to_dtype(dtype))
        .expect("batch")
}

fn f64_values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .expect("values")
}

#[test]
fn linear_model_converges_in_one_step_to_the_closed_form_margin() {
    let shape = [3, 32, 32];
    let classifier = biased_linear_f64(shape, 2, 11);
    let model = TransformedModel::plain(&classifier);
    let plan = SubspacePlan::for_input(3, 32, 32).expect("plan");
    let x = images(3, shape, 5, DType::F64);
    // The exact rows w_0, w_1 of W (the logit gradients of a linear model) and the logits.
    let (_, rows) = classifier
        .input_gradient(
            &x.get(0)
                .and_then(|t| t.unsqueeze(0))
                .expect("x0")
                .repeat((2, 1, 1, 1))
                .expect("rep"),
            &Objective::SelectedLogits(vec![(0, 0), (1, 1)]),
        )
        .expect("rows");
    let w_diff = (rows.get(1).expect("w1") - rows.get(0).expect("w0")).expect("diff");
    let logits = f64_values(&classifier.forward(&x).expect("logits"));
    let config = DeepFoolConfig::default();
    let mut checked = 0;
    for s in 0..plan.count {
        let subspace = plan
            .subspace(s, DType::F64, &Device::Cpu)
            .expect("subspace");
        let n = subspace
            .norms(&w_diff.unsqueeze(0).expect("w"))
            .expect("norm")[0];
        let outcomes = subspace_deepfool(&model, &x, &subspace, &config).expect("deepfool");
        for (b, outcome) in outcomes.iter().enumerate() {
            let f = logits[2 * b + 1] - logits[2 * b];
            let want = 1.02 * f.abs() / n;
            assert!(outcome.margin.is_finite());
            if want <= 1.02e-4 {
                continue;
            }
            assert_eq!(outcome.status, DeepFoolStatus::Converged, "s={s} b={b}");
            assert_eq!(outcome.iterations, 1, "s={s} b={b}");
            assert_eq!(outcome.final_label, 1 - outcome.original_label);
            let got = f64::from(outcome.margin);
            assert!(
                (got - want).abs() <= 1e-5 * want,
                "s={s} b={b}: margin {got} vs closed form {want}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} cases above the step floor");
}

/// logits = sin(0.3·W·x): curved along the directions DeepFool steps in, so DeepFool needs several steps.
struct Curved(Linear);

impl Network for Curved {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.0.forward(x)?.affine(0.3, 0.0)?.sin()
    }
}

fn curved_classifier(shape: [usize; 3], classes: usize) -> Classifier {
    with_network(shape, classes, |linear| Box::new(Curved(linear)))
}

#[test]
fn final_perturbation_lies_in_the_subspace() {
    let shape = [3, 16, 16];
    let classifier = curved_classifier(shape, 5);
    let model = TransformedModel::plain(&classifier);
    let plan = SubspacePlan::for_input(3, 16, 16).expect("plan");
    let dct = Dct2::new(16, DType::F32, &Device::Cpu).expect("dct");
    let x = images(4, shape, 21, DType::F32);
    let mut most_iterations = 0;
    for s in [0, plan.count / 2, plan.count - 1] {
        let subspace = plan
            .subspace(s, DType::F32, &Device::Cpu)
            .expect("subspace");
        let mask = subspace.mask();
        let outcomes =
            subspace_deepfool(&model, &x, &subspace, &DeepFoolConfig::default()).expect("run");
        for o in &outcomes {
            most_iterations = most_iterations.max(o.iterations);
            let r = Tensor::from_vec(o.perturbation.clone(), (3, 16, 16), &Device::Cpu).expect("r");
            let coefficients = f64_values(&dct.forward(&r).expect("dct"));
            let norm = f64::from(o.margin);
            for (k, c) in coefficients.iter().enumerate() {
                if mask[k % 256] == 0.0 {
                    assert!(
                        c.abs() <= 1e-5 * norm,
                        "s={s}: coefficient {k} = {c} outside"
                    );
                }
            }
        }
    }
    assert!(
        most_iterations >= 2,
        "the curved model should need several steps, took {most_iterations}"
    );
}

#[test]
fn results_do_not_depend_on_the_batch() {
    let shape = [3, 16, 16];
    let classifier = curved_classifier(shape, 6);
    let model = TransformedModel::plain(&classifier);
    let plan = SubspacePlan::for_input(3, 16, 16).expect("plan");
    let subspace = plan
        .subspace(1, DType::F32, &Device::Cpu)
        .expect("subspace");
    let x = images(5, shape, 31, DType::F32);
    let config = DeepFoolConfig::default();
    let together = subspace_deepfool(&model, &x, &subspace, &config).expect("batch");
    for (b, joint) in together.iter().enumerate() {
        let alone = subspace_deepfool(&model, &x.narrow(0, b, 1).expect("one"), &subspace, &config)
            .expect("alone");
        let alone = &alone[0];
        assert_eq!(
            (alone.status, alone.iterations),
            (joint.status, joint.iterations)
        );
        let rel = (alone.margin - joint.margin).abs() / alone.margin.max(1e-12);
        assert!(
            rel <= 1e-5,
            "sample {b}: {} vs {}",
            alone.margin,
            joint.margin
        );
    }
}

#[test]
fn no_gradient_in_the_subspace_is_degenerate_without_nan() {
    // A constant model: every gradient difference is zero.
    let shape = [3, 8, 8];
    let (constant, _) = constant_classifier(shape);
    let model = TransformedModel::plain(&constant);
    let plan = SubspacePlan::for_input(3, 8, 8).expect("plan");
    let subspace = plan
        .subspace(0, DType::F32, &Device::Cpu)
        .expect("subspace");
    let x = images(2, shape, 3, DType::F32);
    for o in subspace_deepfool(&model, &x, &subspace, &DeepFoolConfig::default()).expect("run") {
        assert_eq!(o.status, DeepFoolStatus::Degenerate);
        assert_eq!((o.iterations, o.margin), (0, 0.0));
        assert!(o.perturbation.iter().all(|v| *v == 0.0));
    }

    // A linear model whose two rows are equal: w₁ − w₀ = 0 exactly, whatever the subspace.
    let (c, n) = (1usize, 16usize);
    let row: Vec<f64> = random_image(4, [c, n, n])
        .iter()
        .map(|&v| f64::from(v) - 0.5)
        .collect();
    let same = linear_from_rows([c, n, n], [row.clone(), row].concat(), vec![0.3, 0.0]);
    let plan = SubspacePlan::for_input(c, n, n).expect("plan");
    let x = images(2, [c, n, n], 9, DType::F64);
    for s in 0..plan.count {
        let subspace = plan
            .subspace(s, DType::F64, &Device::Cpu)
            .expect("subspace");
        let model = TransformedModel::plain(&same);
        for o in subspace_deepfool(&model, &x, &subspace, &DeepFoolConfig::default()).expect("run")
        {
            assert_eq!(o.status, DeepFoolStatus::Degenerate);
            assert_eq!((o.iterations, o.margin), (0, 0.0));
        }
    }

    // A difference that lives outside the low block only up to round-off (coefficients (2, 12)
    // and (10, 3)): its component in S is ~1e-16, not tiny by §0.2, so DeepFool takes a huge
    // step; whatever the status, nothing is NaN.
    let dct = Dct2::new(n, DType::F64, &Device::Cpu).expect("dct");
    let mut coefficients = vec![0f64; n * n];
    coefficients[2 * n + 12] = 1.0;
    coefficients[10 * n + 3] = -0.5;
    let image = dct
        .inverse(&Tensor::from_vec(coefficients, (n, n), &Device::Cpu).expect("y"))
        .expect("image");
    let w = [vec![0.0; c * n * n], f64_values(&image)].concat();
    let outside = linear_from_rows([c, n, n], w, vec![0.3, 0.0]);
    let model = TransformedModel::plain(&outside);
    let low = SubspacePlan::new(c, n, n, Some(4), Some(4))
        .map(|p| p.subspace(0, DType::F64, &Device::Cpu))
        .expect("plan")
        .expect("low");
    for o in subspace_deepfool(&model, &x, &low, &DeepFoolConfig::default()).expect("run") {
        assert!(!o.margin.is_nan() && o.perturbation.iter().all(|v| !v.is_nan()));
    }
}

#[test]
fn stops_at_max_iter_and_rejects_one_class_models() {
    let shape = [3, 16, 16];
    let classifier = curved_classifier(shape, 4);
    let model = TransformedModel::plain(&classifier);
    let plan = SubspacePlan::for_input(3, 16, 16).expect("plan");
    let subspace = plan
        .subspace(0, DType::F32, &Device::Cpu)
        .expect("subspace");
    let x = images(2, shape, 41, DType::F32);
    let config = DeepFoolConfig {
        max_iter: 0,
        ..DeepFoolConfig::default()
    };
    for o in subspace_deepfool(&model, &x, &subspace, &config).expect("run") {
        assert_eq!(
            (o.status, o.iterations, o.margin),
            (DeepFoolStatus::MaxIter, 0, 0.0)
        );
    }
    let single = biased_linear_f64(shape, 1, 1);
    let err = subspace_deepfool(
        &TransformedModel::plain(&single),
        &images(1, shape, 1, DType::F64),
        &plan
            .subspace(0, DType::F64, &Device::Cpu)
            .expect("subspace"),
        &DeepFoolConfig::default(),
    )
    .expect_err("one class");
    assert!(err.to_string().contains("at least 2 classes"), "{err}");
}

#[test]
fn candidates_are_descending_with_ties_to_the_lower_index() {
    assert_eq!(
        top_candidates(&[0.5, 2.0, 2.0, -1.0, 3.0], 3),
        vec![4, 1, 2]
    );
    assert_eq!(top_candidates(&[1.0, 1.0], 10), vec![0, 1]);
    for code in 0..3 {
        let status = DeepFoolStatus::from_code(code).expect("status");
        assert_eq!(status.code(), code);
    }
    assert_eq!(DeepFoolStatus::from_code(3), None);
}
