//! The app's Frequency tab, driven through egui_kittest: the margin plot of the demo model fills
//! subspace by subspace and its margins are those `measure_margins` gives on the same samples;
//! a second model is overlaid and named in the legend and table; clicking a point shows its
//! perturbation; the record export is the folder `blindspot margins-plot` reads; cancel stops
//! within a batch; bad inputs give notices that name the problem.

#![cfg(feature = "app")]

mod common;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;

use blindspot::analysis::frequency::margins::significant;
use blindspot::analysis::frequency::{
    DeepFoolConfig, MarginOptions, SubspacePlan, TransformedModel, measure_margins, select_samples,
};
use blindspot::app::frequency_state::{Ended, Selection};
use blindspot::app::panels::frequency::{CANCEL, START};
use blindspot::app::panels::frequency_plot::DETAIL_HEADING;
use blindspot::app::state::Action;
use blindspot::app::worker::ModelSource;
use blindspot::demo::DemoModel;
use blindspot::models::LoadOptions;
use blindspot::run::InputImage;
use candle_core::{Device, Tensor};
use common::app::{App, files_in, start, wait, wait_for_export};
use common::{blindspot, shared};
use egui_kittest::kittest::Queryable;

/// Opens the Frequency tab with a small, quick measurement on the gallery.
fn frequency_tab(h: &mut App, samples: usize, max_iter: usize, batch: usize) {
    {
        let f = &mut h.state_mut().state.frequency;
        f.samples = samples;
        f.max_iter = max_iter;
        f.batch = batch;
    }
    h.get_by_label("Frequency").click();
    h.run_ok();
}

fn notice(h: &App) -> String {
    h.state()
        .state
        .notices
        .last()
        .map(|n| format!("{} {}", n.title, n.detail))
        .unwrap_or_default()
}

/// Clicks at a point of the screen (the plot has no widget per point).
fn click_at(h: &mut App, pos: egui::Pos2) {
    h.event(egui::Event::PointerMoved(pos));
    h.step();
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::default(),
        });
        h.step();
    }
    h.run_ok();
}

/// The same samples measured directly, as the CLI does.
fn direct_margins(
    demo: DemoModel,
    samples: usize,
    seed: u64,
    options: &MarginOptions,
) -> Vec<Vec<f32>> {
    let model = demo.load(&LoadOptions::default()).unwrap();
    let gallery = blindspot::demo::gallery();
    let images: Vec<Tensor> = select_samples(seed, gallery.len(), samples)
        .into_iter()
        .map(|i| {
            let path = format!("gallery:{}", gallery[i].0);
            InputImage::load(Path::new(&path), &model).unwrap().pixels
        })
        .collect();
    let images = Tensor::stack(&images, 0).unwrap();
    let spec = model.spec();
    let plan =
        SubspacePlan::for_input(spec.channels, spec.input_size[0], spec.input_size[1]).unwrap();
    let d = measure_margins(
        &TransformedModel::plain(&model),
        &images,
        &plan,
        options,
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    d.subspaces.into_iter().map(|s| s.margins).collect()
}

#[test]
fn the_margin_plot_fills_live_and_equals_measure_margins_and_a_click_shows_the_perturbation() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    let (samples, max_iter, batch) = (3, 30, 2);
    frequency_tab(&mut h, samples, max_iter, batch);
    h.get_by_label(START).click();
    h.step();
    assert!(h.state().state.frequency.is_running());

    // While it runs, the plot and table show the subspaces done so far.
    wait(&mut h, "the first subspace", |a| {
        a.state
            .frequency
            .measured
            .first()
            .is_some_and(|m| !m.distribution.subspaces.is_empty())
    });
    let f = &h.state().state.frequency;
    let plan = f.plan.unwrap();
    assert_eq!(plan.count, 13, "the 32 px preset");
    let partial = f.measured[0].distribution.subspaces.len();
    assert!(
        partial < 13 && f.is_running(),
        "finished before a frame showed it"
    );
    h.get_by_label(CANCEL);
    assert!(h.query_all_by_label_contains("sample-subspaces").count() >= 1);
    assert!(
        !h.state().panels.frequency.plot.hits.is_empty(),
        "points drawn while running"
    );

    wait(&mut h, "the whole measurement", |a| !a.state.is_busy());
    let st = &h.state().state;
    assert!(st.notices.is_empty(), "{:?}", st.notices);
    let f = &st.frequency;
    assert_eq!(f.ended, Some(Ended::Complete));
    assert!(f.complete());
    let got: Vec<Vec<f32>> = f.measured[0]
        .distribution
        .subspaces
        .iter()
        .map(|s| s.margins.clone())
        .collect();
    let options = MarginOptions {
        deepfool: DeepFoolConfig {
            max_iter,
            ..DeepFoolConfig::default()
        },
        batch,
        keep_perturbations: false,
    };
    let want = direct_margins(DemoModel::Standard, samples, 0, &options);
    assert_eq!(got.len(), want.len());
    for (s, (g, w)) in got.iter().zip(&want).enumerate() {
        for (a, b) in g.iter().zip(w) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1e-3),
                "s = {s}: app {a}, direct {b}"
            );
        }
    }
    // The table shows every subspace's median; the legend and table name the model.
    h.get_by_label("Margin table");
    let first = &f.measured[0].distribution.subspaces[0].summary;
    let median = significant(first.median);
    assert!(h.query_all_by_label(&median).count() >= 1, "{median}");
    assert!(
        h.query_all_by_label("demo-standard").count() >= 2,
        "legend and table"
    );
    h.get_by_label_contains("Complete: demo-standard");

    // Click a point: its sample, perturbation and spectrum are shown.
    let (pos, sel) = h
        .state()
        .panels
        .frequency
        .plot
        .hits
        .iter()
        .copied()
        .find(|(p, _)| p.y > 0.0 && p.y < 780.0)
        .expect("a point on screen");
    click_at(&mut h, pos);
    let picked = h
        .state()
        .state
        .frequency
        .selected
        .expect("the click selected a point");
    assert_eq!(
        (picked.model, picked.s),
        (sel.model, sel.s),
        "{picked:?} vs {sel:?}"
    );
    h.get_by_label(DETAIL_HEADING).scroll_to_me();
    h.run_ok();
    h.get_by_label("Minimal perturbation");
    h.get_by_label("log|DCT2| of the perturbation");
    let detail = h.state().state.frequency.detail(picked).unwrap();
    let norm = detail
        .perturbation
        .iter()
        .map(|v| v * v)
        .sum::<f32>()
        .sqrt();
    assert!(
        (norm - detail.margin).abs() <= 1e-4 * detail.margin.max(1.0),
        "{norm} vs {}",
        detail.margin
    );
    h.get_by_label_contains(&format!("L2 norm {:.4}", detail.margin));
    h.get_by_label_contains("new label:");
}

#[test]
fn two_models_are_overlaid_and_exported_as_the_cli_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    frequency_tab(&mut h, 2, 15, 2);
    h.state_mut().panels.frequency.model_b.source = Some(ModelSource::Demo(DemoModel::Robust));
    h.run_ok();
    h.get_by_label(START).click();
    h.step();
    wait(&mut h, "both models", |a| !a.state.is_busy());
    let st = &h.state().state;
    assert!(st.notices.is_empty(), "{:?}", st.notices);
    let f = &st.frequency;
    assert_eq!(f.ended, Some(Ended::Complete));
    let labels: Vec<&str> = f.measured.iter().map(|m| m.model.label.as_str()).collect();
    assert_eq!(labels, ["demo-standard", "demo-robust"]);
    // The legend entry and the table rows of each.
    for label in labels {
        assert!(h.query_all_by_label(label).count() >= 2, "{label}");
    }
    h.state_mut().state.export.dir_text = "/tmp/blindspot-exports".into();
    // Fixed run times, so the snapshot does not show this machine's speed.
    for m in &mut h.state_mut().state.frequency.measured {
        m.seconds = Some(1.0);
    }
    h.state_mut().state.frequency.selected = Some(Selection {
        model: 1,
        s: 2,
        sample: 0,
    });
    h.run_ok();
    h.snapshot_options(
        "frequency_view",
        &egui_kittest::SnapshotOptions::new().max_failed_pixels(200),
    );

    // The record export is the CLI's folder: margins-plot redraws it.
    let exports = dir.path().join("exports");
    h.state_mut().state.export.dir_text = exports.display().to_string();
    h.state_mut().state.act(Action::Export(
        blindspot::app::state::ExportKind::FrequencyRecord,
    ));
    h.step();
    wait_for_export(&mut h);
    // Named like every export: margins_<models>_<time>.
    let folders = files_in(&exports);
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].starts_with("margins_"), "{folders:?}");
    let out = exports.join(&folders[0]);
    let names = files_in(&out);
    for f in [
        "config.json",
        "margins.safetensors",
        "margin_table.csv",
        "margin_table.md",
        "margin_plot.png",
        "flip.svg",
    ] {
        assert!(
            names.iter().any(|n| n == f),
            "{f}: {names:?} {:?}",
            h.state().state.notices
        );
    }
    assert!(out.join("also_1").join("margins.safetensors").is_file());
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(out.join("margins.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(tensors["margins"].dims(), [13, 2]);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["models"][1]["label"], "demo-robust");
    assert_eq!(config["models"][0]["source"], "demo:standard");
    let (ok, stdout, stderr) = blindspot(&[
        "margins-plot",
        "--run",
        out.to_str().unwrap(),
        "--log-scale",
    ]);
    assert!(ok, "{stdout}{stderr}");
}

#[test]
fn cancel_stops_within_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    frequency_tab(&mut h, 4, 50, 1);
    h.get_by_label(START).click();
    h.step();
    wait(&mut h, "a few batches", |a| {
        a.state.frequency.progress().0 >= 2
    });
    let at_cancel = h.state().state.frequency.progress().0;
    h.get_by_label(CANCEL).click();
    h.run_ok();
    wait(&mut h, "the stopped measurement", |a| !a.state.is_busy());
    let f = &h.state().state.frequency;
    assert_eq!(
        f.ended,
        Some(Ended::Stopped),
        "{:?}",
        h.state().state.notices
    );
    let (done, total) = f.progress();
    assert!(done < total);
    // One batch (1 sample) may finish after the cancel; one more may have been in the channel.
    assert!(
        done <= at_cancel + 2,
        "{done} done, cancel came at {at_cancel}"
    );
    h.get_by_label_contains("Stopped at");
    assert!(h.state().state.notices.is_empty());
}

#[test]
fn bad_inputs_name_the_problem_and_nothing_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    frequency_tab(&mut h, 2, 5, 2);
    let dismiss = |h: &mut App| {
        h.get_by_label("Dismiss").click();
        h.run_ok();
    };
    let refused = |h: &mut App, needles: &[&str]| {
        h.get_by_label(START).click();
        wait(h, "the refusal", |a| {
            !a.state.is_busy() && !a.state.notices.is_empty()
        });
        let text = notice(h);
        for n in needles {
            assert!(text.contains(n), "`{n}` not in: {text}");
        }
        h.get_by_label_contains(needles[0]);
    };

    // An unknown transform is refused before anything runs.
    h.get_by(|n| {
        n.role() == egui::accesskit::Role::TextInput && n.label().as_deref() == Some("Transform A")
    })
    .focus();
    h.step();
    h.get_by(|n| n.is_focused()).type_text("blur");
    h.step();
    assert_eq!(h.state().state.frequency.transform_text[0], "blur");
    h.get_by_label(START).click();
    h.run_ok();
    assert!(
        notice(&h).contains("unknown input transform `blur`"),
        "{}",
        notice(&h)
    );
    dismiss(&mut h);

    // A band larger than the image.
    h.state_mut().state.frequency.transform_text[0] = "lowpass:40".into();
    refused(&mut h, &["lowpass:40", "32×32"]);
    dismiss(&mut h);
    h.state_mut().state.frequency.transform_text[0].clear();

    // An empty folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    {
        let f = &mut h.state_mut().state.frequency;
        f.use_gallery = false;
        f.folder_text = empty.display().to_string();
    }
    refused(&mut h, &[empty.to_str().unwrap(), "empty"]);
    dismiss(&mut h);
    h.state_mut().state.frequency.use_gallery = true;

    // A 1-class model as model B: ResNet-20 with only the first row of its classifier.
    let single = common::one_class_resnet20(dir.path());
    h.state_mut().panels.frequency.model_b.source = Some(ModelSource::File(single));
    refused(&mut h, &["at least 2 classes", "has 1"]);
    dismiss(&mut h);
    h.state_mut().panels.frequency.model_b.source = None;

    // A non-square model input (ResNet-20 told to take 32×28 images by its sidecar), loaded.
    let wide = dir.path().join("wide.safetensors");
    std::fs::copy(shared("weights/resnet20_cifar10.safetensors"), &wide).unwrap();
    std::fs::write(dir.path().join("wide.json"), r#"{"input_size": [32, 28]}"#).unwrap();
    h.state_mut()
        .state
        .act(Action::LoadModel(ModelSource::File(wide)));
    wait(&mut h, "the wide model", |a| {
        a.state.spec().is_some_and(|s| s.input_size == [32, 28])
    });
    refused(&mut h, &["square", "32×28"]);
    dismiss(&mut h);

    // The app still works: the demo model measures again.
    h.state_mut()
        .state
        .act(Action::LoadModel(ModelSource::Demo(DemoModel::Standard)));
    wait(&mut h, "the demo model", |a| {
        a.state.spec().is_some_and(|s| s.input_size == [32, 32]) && !a.state.is_busy()
    });
    h.get_by_label(START).click();
    h.step();
    wait(&mut h, "a measurement", |a| !a.state.is_busy());
    assert_eq!(
        h.state().state.frequency.ended,
        Some(Ended::Complete),
        "{:?}",
        h.state().state.notices
    );
}
