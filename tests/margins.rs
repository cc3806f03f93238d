//! Frequency margins (ALGORITHMS.md §4): the `Objective::SelectedLogits` gradients that
//! subspace DeepFool takes in one backward pass (engine against candle autograd, and f64
//! finite differences), and `blindspot margins` end to end on ResNet-20 and CIFAR-10 with its
//! bad-input errors.

mod common;

use std::collections::HashMap;
use std::path::Path;

use blindspot::models::{LoadOptions, Objective, load_classifier};
use candle_core::{DType, Device, Tensor};
use common::{arg as s, blindspot, cifar_png as cifar, max_abs, max_abs_diff, resnet20, shared};

/// Deterministic images in (0.1, 0.9).
fn images(batch: usize, dtype: DType, seed: u64) -> Tensor {
    let n = batch * 3 * 32 * 32;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<f64> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            0.1 + 0.8 * (state >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    Tensor::from_vec(data, (batch, 3, 32, 32), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Two samples replicated three times each, as subspace DeepFool batches them, with a
/// different logit selected in every copy (and one row left out, one row selected twice).
fn replicated_batch(dtype: DType) -> (Tensor, Objective) {
    let x = images(2, dtype, 3);
    let rows: Vec<Tensor> = (0..6).map(|r| x.get(r / 3).unwrap()).collect();
    let batch = Tensor::stack(&rows, 0).unwrap();
    let selection = vec![(0, 3), (1, 0), (2, 9), (3, 5), (3, 1), (5, 7)];
    (batch, Objective::SelectedLogits(selection))
}

#[test]
fn selected_logits_gradient_engine_matches_autograd() {
    let model = load_classifier(Path::new(&resnet20()), &LoadOptions::default()).unwrap();
    assert!(model.uses_native_kernels());
    let (x, objective) = replicated_batch(DType::F32);
    let (logits, grad) = model.input_gradient(&x, &objective).unwrap();
    let reference = load_classifier(Path::new(&resnet20()), &LoadOptions::default())
        .unwrap()
        .with_autograd();
    let (ref_logits, ref_grad) = reference.input_gradient(&x, &objective).unwrap();
    assert!(max_abs_diff(&logits, &ref_logits) <= 1e-4);
    let scale = max_abs(&ref_grad);
    assert!(scale > 0.0);
    assert!(
        max_abs_diff(&grad, &ref_grad) <= 1e-4 * scale,
        "engine vs autograd: {} (scale {scale})",
        max_abs_diff(&grad, &ref_grad)
    );
    // Row 4 selects nothing: its gradient is exactly zero; row 3 holds two logits' sum.
    assert_eq!(max_abs(&grad.get(4).unwrap()), 0.0);
    let one = |row: usize, class: u32| {
        let (_, g) = model
            .input_gradient(
                &x.narrow(0, row, 1).unwrap(),
                &Objective::SelectedLogits(vec![(0, class)]),
            )
            .unwrap();
        g.get(0).unwrap()
    };
    let sum = (one(3, 5) + one(3, 1)).unwrap();
    assert!(max_abs_diff(&grad.get(3).unwrap(), &sum) <= 1e-5 * max_abs(&sum).max(1e-6));
    // Bad selections are errors, not panics.
    let bad = Objective::SelectedLogits(vec![(6, 0)]);
    assert!(model.input_gradient(&x, &bad).is_err());
    let bad = Objective::SelectedLogits(vec![(0, 10)]);
    assert!(reference.input_gradient(&x, &bad).is_err());
}

#[test]
fn selected_logits_gradient_matches_f64_finite_differences() {
    let opts = LoadOptions {
        dtype: DType::F64,
        ..LoadOptions::default()
    };
    let model = load_classifier(Path::new(&resnet20()), &opts).unwrap();
    let (x, objective) = replicated_batch(DType::F64);
    let (_, grad) = model.input_gradient(&x, &objective).unwrap();
    let value = |x: &Tensor| -> f64 {
        objective
            .evaluate(&model.forward(x).unwrap())
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    for k in 0..3 {
        let direction = images(6, DType::F64, 50 + k).affine(1.0, -0.5).unwrap();
        let norm = direction
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            .sqrt();
        let direction = direction.affine(1.0 / norm, 0.0).unwrap();
        let h = 1e-7;
        let plus = value(&(&x + direction.affine(h, 0.0).unwrap()).unwrap());
        let minus = value(&(&x - direction.affine(h, 0.0).unwrap()).unwrap());
        let numeric = (plus - minus) / (2.0 * h);
        let analytic = (&grad * &direction)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let roundoff = 4.0 * f64::EPSILON * plus.abs().max(minus.abs()) / h;
        assert!(
            (analytic - numeric).abs() <= 1e-5 * analytic.abs().max(numeric.abs()) + roundoff,
            "direction {k}: analytic {analytic} vs finite difference {numeric}"
        );
    }
}

#[test]
fn margins_cli_writes_tables_tensors_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("margins");
    let twin = shared("weights/resnet20_pgd_cifar10.safetensors");
    let (ok, stdout, stderr) = blindspot(&[
        "margins",
        "-w",
        &resnet20(),
        "--images",
        &cifar(),
        "--samples",
        "2",
        "--also",
        s(&twin),
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let last = stdout.lines().last().unwrap();
    let json: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(json["samples"], 2);
    assert_eq!(json["dim"], 192);
    let rows = json["subspaces"].as_array().unwrap();
    assert_eq!(rows.len(), 13, "CIFAR preset: 13 subspaces");
    for (k, row) in rows.iter().enumerate() {
        for key in ["s", "i0", "median", "q1", "q3", "max_iter", "degenerate"] {
            assert!(row.get(key).is_some(), "{key} missing in {row}");
        }
        assert_eq!(row["s"], k);
        assert_eq!(row["i0"], 2 * k);
        let (q1, median, q3) = (
            row["q1"].as_f64().unwrap(),
            row["median"].as_f64().unwrap(),
            row["q3"].as_f64().unwrap(),
        );
        assert!(0.0 < q1 && q1 <= median && median <= q3, "{row}");
    }
    for name in [
        "config.json",
        "margins.safetensors",
        "margin_table.csv",
        "margin_table.md",
        "margin_plot.png",
        "margin_plot.svg",
        "flip.png",
        "flip.svg",
        "also_1/margins.safetensors",
        "also_1/margin_table.csv",
    ] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(out.join("margins.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(tensors["margins"].dims(), [13, 2]);
    assert_eq!(tensors["status"].dtype(), DType::U8);
    assert_eq!(tensors["iterations"].dtype(), DType::U32);
    // The table's medians are the tensor's.
    let margins = tensors["margins"].to_vec2::<f32>().unwrap();
    for (row, m) in rows.iter().zip(&margins) {
        let median = f64::from(m[0] + m[1]) / 2.0;
        assert!((row["median"].as_f64().unwrap() - median).abs() <= 1e-6 * median);
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["sample_files"].as_array().unwrap().len(), 2);
    assert_eq!(config["models"].as_array().unwrap().len(), 2);
    let csv = std::fs::read_to_string(out.join("margin_table.csv")).unwrap();
    assert_eq!(csv.lines().count(), 14);
    assert!(csv.starts_with("s,i0,median,q1,q3,max_iter,degenerate"));

    // The plot redrawn from the record, on a log scale, with both models.
    let replot = dir.path().join("log.png");
    let (ok, _, stderr) = blindspot(&[
        "margins-plot",
        "--run",
        s(&out),
        "--log-scale",
        "--out",
        s(&replot),
    ]);
    assert!(ok, "{stderr}");
    let svg = std::fs::read_to_string(replot.with_extension("svg")).unwrap();
    assert!(svg.contains("resnet20_pgd_cifar10") && svg.contains("log scale"));
}

/// The CLI fails, and its error names the problem.
fn fails_with(args: &[&str], needles: &[&str]) {
    let (ok, _, stderr) = blindspot(args);
    assert!(!ok, "{args:?} should fail");
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    }
}

#[test]
fn margins_cli_rejects_bad_inputs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (w, d) = (resnet20(), cifar());
    let base = ["margins", "-w", w.as_str(), "--images", d.as_str()];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|a| a.to_string())
            .chain(["--out".into(), s(&out).into()])
            .collect()
    };
    let run = |extra: &[&str], needles: &[&str]| {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&args, needles);
    };

    // A band larger than the image, and a transform bandwidth that does not fit.
    run(&["--band", "40"], &["40×40", "larger than the 32×32 image"]);
    run(
        &["--input-transform", "lowpass:40"],
        &["lowpass:40", "32×32"],
    );
    run(
        &["--input-transform", "blur"],
        &["unknown input transform `blur`"],
    );

    // A non-square input (the same network told to take 32×28 images by a sidecar).
    let sidecar = dir.path().join("wide.json");
    std::fs::write(&sidecar, r#"{"input_size": [32, 28]}"#).unwrap();
    run(&["--sidecar", s(&sidecar)], &["square", "32×28"]);

    // A 1-class model: ResNet-20 with only the first row of its classifier.
    let single = common::one_class_resnet20(dir.path());
    let args = [
        "margins",
        "-w",
        s(&single),
        "--images",
        d.as_str(),
        "--out",
        s(&out),
    ];
    fails_with(&args, &["at least 2 classes", "has 1"]);
}
