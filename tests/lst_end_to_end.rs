//! Level Set Traversal end to end on the real CIFAR-10 ResNet-20 and real CIFAR-10 test images
//! (../shared), CIFAR preset: the blind spot is found, recorded, reloaded and drawn.

mod common;

use std::ops::ControlFlow;
use std::path::PathBuf;

use blindspot::analysis::{LstConfig, PairStatus};
use blindspot::models::{LoadOptions, load_classifier};
use blindspot::record::RunRecord;
use blindspot::run::{InputImage, hull_from_runs, kept_source_class, traverse};
use common::shared;

fn image(class: &str, nth: usize) -> PathBuf {
    let dir = shared(&format!("data/cifar10_test_png/{class}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files[nth].clone()
}

#[test]
fn resnet20_keeps_the_source_class_while_reaching_the_target() {
    let model = load_classifier(
        &shared("weights/resnet20_cifar10.safetensors"),
        &LoadOptions::default(),
    )
    .unwrap();
    let config = LstConfig::cifar();
    let pairs = [
        ("cat", 0, "ship", 0),
        ("automobile", 0, "frog", 1),
        ("airplane", 2, "dog", 0),
        ("horse", 0, "truck", 1),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (k, (src, i, tgt, j)) in pairs.into_iter().enumerate() {
        let source = InputImage::load(&image(src, i), &model).unwrap();
        let target = InputImage::load(&image(tgt, j), &model).unwrap();
        let mut events = 0;
        let (record, pixels) = traverse(
            &model,
            None,
            &config,
            &source,
            &target,
            None,
            k as u64,
            |_, _| {
                events += 1;
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        assert_eq!(events, config.iterations);
        assert_eq!(record.status, PairStatus::Done);
        assert_eq!(
            record.source.class_name, src,
            "the model must classify the source correctly"
        );
        let fin = record.final_output.as_ref().unwrap();
        // The source class is still predicted, and its confidence never fell by pthresh or
        // more at an accepted step.
        assert!(
            kept_source_class(&record),
            "{src} -> {tgt}: predicted {}",
            fin.predicted_name
        );
        for s in record.steps.iter().filter(|s| s.accepted) {
            assert!(
                record.p0 - s.source_confidence < config.pthresh,
                "{src}->{tgt} step {}: {} vs p0 {}",
                s.step,
                s.source_confidence,
                record.p0
            );
        }
        // The output ends far closer to the target than the source started.
        let start_l2 = record.steps[0].l2_normalized;
        eprintln!(
            "{src} -> {tgt}: p0 {:.4}, final p(src) {:.4}, L2 {:.4} -> {:.4}, Linf {:.4}, SSIM {:?}, {}/{} accepted",
            record.p0,
            fin.source_confidence,
            start_l2,
            fin.l2_normalized,
            fin.linf,
            fin.ssim,
            fin.accepted_steps,
            record.steps.len()
        );
        assert!(
            fin.l2_normalized < 0.1 * start_l2,
            "{src} -> {tgt}: L2 {} from {start_l2}",
            fin.l2_normalized
        );

        // Recorded once, loaded back identical, frames kept every log_step.
        let run_dir = dir.path().join(format!("run{k}"));
        record.save(&pixels, &run_dir).unwrap();
        blindspot::report::write_run_figures(&record, &pixels, &run_dir).unwrap();
        let (loaded, loaded_pixels) = RunRecord::load_with_pixels(&run_dir).unwrap();
        assert_eq!(loaded, record);
        assert_eq!(loaded_pixels, pixels);
        // A version-1 record (written before NSPGD: no `method` in its config) opens as LST.
        if k == 0 {
            let path = run_dir.join("run.json");
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            v["version"] = 1.into();
            v["config"].as_object_mut().unwrap().remove("method");
            std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
            assert_eq!(RunRecord::load(&run_dir).unwrap(), record);
            v["version"] = 99.into();
            std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
            let err = RunRecord::load(&run_dir).unwrap_err().to_string();
            assert!(err.contains("version 99"), "{err}");
            record.save(&pixels, &run_dir).unwrap();
        }
        assert_eq!(record.frames.len(), config.num_logs());
        for f in [
            "run.json",
            "final.png",
            "source.png",
            "target.png",
            "frames/step_0090.png",
            "path_strip.png",
            "path_strip.svg",
            "confidence.png",
            "confidence.svg",
        ] {
            assert!(run_dir.join(f).is_file(), "{f} missing");
        }
        // The names scripts rely on.
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
        for key in [
            "step",
            "source_confidence",
            "target_confidence",
            "l2_normalized",
            "linf",
            "accepted",
        ] {
            assert!(json["steps"][0].get(key).is_some(), "steps[].{key}");
        }
        for key in [
            "predicted_class",
            "source_confidence",
            "l2_normalized",
            "linf",
            "ssim",
        ] {
            assert!(json["final"].get(key).is_some(), "final.{key}");
        }
    }
}

#[test]
fn hull_of_two_runs_has_the_source_confidence_at_its_source_vertex() {
    let model = load_classifier(
        &shared("weights/resnet20_cifar10.safetensors"),
        &LoadOptions::default(),
    )
    .unwrap();
    let config = LstConfig {
        iterations: 40,
        ..LstConfig::cifar()
    };
    let source = InputImage::load(&image("dog", 0), &model).unwrap();
    let runs: Vec<_> = [image("ship", 0), image("bird", 0)]
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let target = InputImage::load(t, &model).unwrap();
            traverse(
                &model,
                None,
                &config,
                &source,
                &target,
                None,
                k as u64,
                |_, _| ControlFlow::Continue(()),
            )
            .unwrap()
        })
        .collect();
    let report = hull_from_runs(
        &model,
        (&runs[0].0, &runs[0].1),
        (&runs[1].0, &runs[1].1),
        10,
    )
    .unwrap();
    assert_eq!(report.confidences.len(), 66);
    assert!((report.confidences[0] - runs[0].0.p0).abs() <= 1e-6);
    assert!((report.metrics.p_src - runs[0].0.p0).abs() <= 1e-6);
    assert!(report.profiles.iter().all(|p| p.len() == 21));
    // The straight path to an LST output stays confident (the star-like structure).
    assert!(
        report.profiles[0]
            .iter()
            .all(|&c| c > report.metrics.p_src - 0.3),
        "{:?}",
        report.profiles[0]
    );
}

#[test]
fn stopping_between_steps_records_a_stopped_run() {
    let model = load_classifier(
        &shared("weights/resnet20_cifar10.safetensors"),
        &LoadOptions::default(),
    )
    .unwrap();
    let source = InputImage::load(&image("cat", 0), &model).unwrap();
    let target = InputImage::load(&image("ship", 0), &model).unwrap();
    let (record, _) = traverse(
        &model,
        None,
        &LstConfig::cifar(),
        &source,
        &target,
        None,
        0,
        |step, _| {
            if step == 6 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!(record.steps.len(), 7);
    assert!(
        matches!(record.status, PairStatus::Stopped { steps: 7 }),
        "{:?}",
        record.status
    );
}
