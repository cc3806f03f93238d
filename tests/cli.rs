//! The command line end to end: accuracy counts on the real checkpoints and images in
//! ../shared (published values in ../shared/MANIFEST.md), classify, and its errors.

mod common;

use common::{blindspot, shared};

fn accuracy_json(weights: &str, images: &str) -> serde_json::Value {
    let w = shared(weights);
    let i = shared(images);
    let (ok, stdout, stderr) = blindspot(&[
        "accuracy",
        "--weights",
        w.to_str().unwrap(),
        "--images",
        i.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "accuracy failed: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

fn correct(v: &serde_json::Value) -> i64 {
    let implied = v["total"].as_f64().unwrap() * v["top1"].as_f64().unwrap();
    assert!(
        (implied - v["correct"].as_f64().unwrap()).abs() < 1e-6,
        "{v}"
    );
    v["correct"].as_i64().unwrap()
}

#[test]
fn resnet20_and_resnet56_accuracy_on_cifar10_pngs() {
    let r20 = accuracy_json(
        "weights/resnet20_cifar10.safetensors",
        "data/cifar10_test_png",
    );
    eprintln!("resnet20: {r20}");
    assert_eq!(r20["total"], 1017);
    assert!((correct(&r20) - 932).abs() <= 1, "{r20}");
    let r56 = accuracy_json(
        "weights/resnet56_cifar10.safetensors",
        "data/cifar10_test_png",
    );
    eprintln!("resnet56: {r56}");
    assert!((correct(&r56) - 943).abs() <= 1, "{r56}");
    assert!(r56["top5"].as_f64().unwrap() >= r56["top1"].as_f64().unwrap());
}

#[test]
fn efficientnet_lite0_accuracy_on_pixels_and_on_jpegs() {
    let pixels = accuracy_json(
        "weights/efficientnet_lite0.safetensors",
        "data/imagenet_sample_224.safetensors",
    );
    eprintln!("pixels: {pixels}");
    assert_eq!(pixels["total"], 187);
    assert_eq!(correct(&pixels), 167, "{pixels}");
    let jpegs = accuracy_json(
        "weights/efficientnet_lite0.safetensors",
        "data/imagenet_sample",
    );
    eprintln!("jpegs: {jpegs}");
    assert_eq!(jpegs["total"], 187);
    // The JPEGs decode to the very bytes Pillow gives, so the count is the same as on them.
    assert_eq!(correct(&jpegs), 167, "{jpegs}");
}

#[test]
fn classify_prints_top5_and_json() {
    let w = shared("weights/resnet20_cifar10.safetensors");
    let cat = shared("data/cifar10_test_png/cat/0000.png");
    let (ok, stdout, stderr) = blindspot(&[
        "classify",
        "--weights",
        w.to_str().unwrap(),
        "--json",
        cat.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let top5 = v["images"][0]["top5"].as_array().unwrap();
    assert_eq!(top5.len(), 5);
    assert_eq!(top5[0]["name"], "cat");
    let probs: Vec<f64> = top5
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]) && probs[0] > 0.5);

    let (ok, stdout, _) = blindspot(&[
        "classify",
        "--weights",
        w.to_str().unwrap(),
        cat.to_str().unwrap(),
    ]);
    assert!(ok && stdout.contains("cat") && stdout.contains('%'));
}

#[test]
fn cli_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let w = shared("weights/resnet20_cifar10.safetensors");
    let not_image = dir.path().join("notes.png");
    std::fs::write(&not_image, "hello").unwrap();
    let (ok, _, stderr) = blindspot(&[
        "classify",
        "--weights",
        w.to_str().unwrap(),
        not_image.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("notes.png"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let empty = dir.path().join("empty.pth");
    std::fs::write(&empty, "").unwrap();
    let (ok, _, stderr) = blindspot(&[
        "classify",
        "--weights",
        empty.to_str().unwrap(),
        not_image.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("empty.pth"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bench_prints_one_json_object_per_configuration() {
    let (ok, stdout, stderr) = blindspot(&[
        "bench",
        "--json",
        "--model",
        "resnet20",
        "--batch",
        "2",
        "--seconds",
        "0",
        "--min-iters",
        "2",
    ]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["model"], "resnet20");
    assert_eq!(v["input"], 32);
    assert_eq!(v["batch"], 2);
    let (min, median) = (
        v["lst_iter_ms"]["min"].as_f64().unwrap(),
        v["lst_iter_ms"]["median"].as_f64().unwrap(),
    );
    assert!(min > 0.0 && min <= median, "{v}");
}

/// `blindspot nspgd` on ResNet-20 and a real CIFAR-10 pair: a run record in traverse's layout
/// that names its walk, with an NSPGD status and widths from iteration 0, 6, ….
#[test]
fn nspgd_writes_a_run_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cat_ship");
    let w = shared("weights/resnet20_cifar10.safetensors");
    let d = shared("data/cifar10_test_png");
    let (ok, stdout, stderr) = blindspot(&[
        "nspgd",
        "-w",
        w.to_str().unwrap(),
        "--source",
        d.join("cat/0000.png").to_str().unwrap(),
        "--target",
        d.join("ship/0001.png").to_str().unwrap(),
        "--iterations",
        "13",
        "--widths",
        "--lpips",
        shared("weights/lpips_alex.safetensors").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("cat -> ship"), "{stdout}");
    let record = blindspot::record::RunRecord::load(&out).unwrap();
    assert_eq!(record.config.method(), blindspot::analysis::Method::Nspgd);
    assert!(
        matches!(
            record.status,
            blindspot::analysis::PairStatus::Completed
                | blindspot::analysis::PairStatus::Finished { .. }
        ),
        "{:?}",
        record.status
    );
    let steps: Vec<usize> = record.frames.iter().map(|f| f.step).collect();
    assert_eq!(steps, vec![0, 6, 12]);
    for f in &record.frames {
        let w = f.width.as_ref().expect("widths at 0, 6, 12");
        assert_eq!(w.rows.len(), 7);
        assert!(w.rows.iter().all(|r| r[0] <= r[1]));
    }
    // Source confidence is kept within tau of p0 by every accepted step.
    let last = record.final_output.as_ref().unwrap();
    assert!(record.p0 - last.source_confidence < 0.05);
    // Thirteen small steps leave x* nearly the source, far from the ship in LPIPS.
    let lpips = last.lpips.expect("LPIPS with --lpips");
    assert!(lpips > 0.03 && lpips < 1.0, "{lpips}");
    assert!(out.join("widths.png").is_file() && out.join("path_strip.png").is_file());

    // A bad setting names its flag and its range.
    let (ok, _, stderr) = blindspot(&[
        "nspgd",
        "--source",
        "gallery:circle_1",
        "--target",
        "gallery:star_1",
        "--tau",
        "-1",
        "--out",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("--tau -1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A wrong LPIPS file is refused, naming it and what it is not.
    let (ok, _, stderr) = blindspot(&[
        "nspgd",
        "--source",
        "gallery:circle_1",
        "--target",
        "gallery:star_1",
        "--lpips",
        w.to_str().unwrap(),
        "--out",
        dir.path().join("bad_lpips").to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("resnet20_cifar10.safetensors") && stderr.contains("not LPIPS-Alex"),
        "{stderr}"
    );
}
