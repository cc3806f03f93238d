//! The desktop app, driven by label through egui_kittest on a real wgpu renderer (Mesa's
//! lavapipe in CI): start on the demo model, pick images, run, scrub, build the hull, export;
//! responsiveness and cancel; bad input; snapshots of the main views, with the heatmap's
//! pixels checked against the colour map of the computed confidences.

#![cfg(feature = "app")]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use blindspot::analysis::{Method, PairStatus};
use blindspot::app::BlindspotApp;
use blindspot::app::panels::width_compare::run_label;
use blindspot::app::panels::widths::NO_COMPARISON;
use blindspot::app::state::Tab;
use blindspot::app::worker::{ImageSource, Slot};
use blindspot::figures::{Colormap, lattice_field};
use common::app::{App, files_in, options, start, type_into, wait, wait_for_export};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

/// Short runs keep the suite quick on 2 cores; the behaviour is that of any length.
fn quick(h: &mut App, iterations: usize) {
    let c = &mut h.state_mut().state.config;
    c.iterations = iterations;
    c.log_step = 5;
}

#[test]
fn starts_on_the_demo_model_with_a_pair_preselected() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .wgpu()
        .build_eframe({
            let options = options(dir.path());
            move |cc| BlindspotApp::new(cc, options)
        });
    let started = Instant::now();
    while h.state().state.slot(Slot::Target).preview.is_none() {
        assert!(started.elapsed() < Duration::from_secs(120), "no previews");
        h.step();
    }
    h.run_ok();
    // The window title names the model (sent as a viewport command when it changes).
    let title = h.state().title().to_string();
    assert!(
        title.contains("demo standard") && title.contains("cifar_resnet8"),
        "{title}"
    );
    let state = &h.state().state;
    assert_eq!(
        state.slot(Slot::Source).source,
        ImageSource::Gallery("circle_1".into())
    );
    assert_eq!(
        state.slot(Slot::Target).source,
        ImageSource::Gallery("star_1".into())
    );
    // The images as the model sees them, with their top-3 predictions.
    for slot in [Slot::Source, Slot::Target] {
        let preview = state.slot(slot).preview.clone().unwrap();
        assert_eq!(preview.shape, [3, 32, 32]);
        assert_eq!(preview.top.len(), 3);
        let (_, name, p) = &preview.top[0];
        h.get_by_label(&format!("{name} {p:.2}"));
    }
    let top = |slot| state.slot(slot).preview.as_ref().unwrap().top[0].1.clone();
    assert_eq!(
        (top(Slot::Source), top(Slot::Target)),
        ("circle".into(), "star".into())
    );
    h.get_by_label("cifar_resnet8");
    // One click on Run shows a blind spot.
    h.get_by_label("▶ Run");
    h.snapshot("app_start");
}

#[test]
fn pick_run_scrub_hull_and_export_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    quick(&mut h, 40);

    // Pick the target from the gallery menu, then a file image as the second target.
    h.get_all_by_label("Gallery ▾").nth(1).unwrap().click();
    h.run_ok();
    h.get_by_label("star_2").click();
    wait(&mut h, "the star_2 preview", |a| {
        a.state
            .slot(Slot::Target)
            .preview
            .as_ref()
            .is_some_and(|p| p.source == ImageSource::Gallery("star_2".into()))
    });
    // Swap twice is the identity; once is a swap.
    h.get_by_label("⇄ Swap").click();
    h.run_ok();
    assert_eq!(
        h.state().state.slot(Slot::Source).source,
        ImageSource::Gallery("star_2".into())
    );
    h.get_by_label("⇄ Swap").click();
    h.run_ok();

    h.get_by_label("▶ Run").click();
    wait(&mut h, "the traversal", |a| {
        !a.state.is_busy() && a.state.runs.len() == 1
    });
    let run = h.state().state.runs[0].clone();
    assert_eq!(run.record.status, PairStatus::Done);
    assert_eq!(run.record.steps.len(), 40);
    assert_eq!(run.record.source.class_name, "circle");
    // Saved in the history at once.
    let saved = run.dir.clone().expect("saved to the history");
    assert!(saved.join("run.json").is_file(), "{}", saved.display());

    // Scrub: the view starts on x*; Left goes to the last kept frame, Home to the first.
    let frames = run.record.frames.len();
    assert_eq!(h.state().state.scrub, frames);
    h.key_press(egui::Key::ArrowLeft);
    h.run_ok();
    assert_eq!(h.state().state.scrub, frames - 1);
    h.get_by_label(&format!("step {}", run.record.frames[frames - 1].step));
    h.key_press(egui::Key::Home);
    h.run_ok();
    assert_eq!(h.state().state.scrub, 0);
    h.get_by_label("step 0");
    h.key_press(egui::Key::End);
    h.run_ok();
    h.get_by_label("x* (output)");

    // Exports of the traversal view.
    let exports = dir.path().join("exports");
    h.get_by_label("Path strip").click();
    h.run_ok();
    wait_for_export(&mut h);
    h.get_by_label("Run record").click();
    h.run_ok();
    wait_for_export(&mut h);
    let names = files_in(&exports);
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("path-strip_circle-to-star_") && n.ends_with(".png"))
            && names
                .iter()
                .any(|n| n.starts_with("path-strip_circle-to-star_") && n.ends_with(".svg")),
        "{names:?}"
    );
    let run_dir = exports.join(
        names
            .iter()
            .find(|n| n.starts_with("run_circle-to-star_"))
            .unwrap_or_else(|| panic!("no run record in {names:?}")),
    );
    assert!(
        run_dir.join("run.json").is_file(),
        "{names:?} {:?} {:?}",
        files_in(&run_dir),
        h.state().state.notices
    );
    assert!(run_dir.join("path_strip.png").is_file());
    // The exported record reads back as the same run.
    let (again, pixels) = blindspot::record::RunRecord::load_with_pixels(&run_dir).unwrap();
    assert_eq!(again, run.record);
    assert_eq!(pixels, run.pixels);

    // Hull: run both traversals and the hull with one button.
    h.get_by_label("Hull").click();
    h.run_ok();
    assert_eq!(h.state().state.tab, Tab::Hull);
    h.get_by_label("Run both + hull").click();
    wait(&mut h, "both traversals and the refined hull", |a| {
        !a.state.is_busy() && common::app::refined(&a.state.hull.main)
    });
    let st = &h.state().state;
    let report = st.hull.main.report.as_ref().unwrap();
    assert_eq!(report.n, 10);
    assert_eq!(report.confidences.len(), 66);
    assert_eq!(
        st.hull.main.refined.as_ref().unwrap().confidences.len(),
        861
    );
    assert_eq!(st.runs.len(), 3);
    // Table 2 is shown beside the heatmap.
    h.get_by_label("frac > p_src−0.1");
    h.get_by_label("Table 2 (n = 10)");

    h.get_by_label("Hull figure").click();
    h.run_ok();
    wait_for_export(&mut h);
    h.get_by_label("Heatmap render").click();
    h.run_ok();
    wait_for_export(&mut h);
    let names = files_in(&exports);
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("hull-n40_circle-to-") && n.ends_with(".svg")),
        "{names:?} {:?}",
        h.state().state.notices
    );
    let render = names
        .iter()
        .find(|n| n.starts_with("heatmap-n40-2048px_circle-to-"))
        .unwrap_or_else(|| panic!("no heatmap render in {names:?}"));
    let img = image::open(exports.join(render)).unwrap();
    assert_eq!((img.width(), img.height()), (2048, 2048));
    assert!(
        h.state().state.notices.is_empty(),
        "{:?}",
        h.state().state.notices
    );

    // The history lists the three runs; one opens again.
    h.get_by_label("History").click();
    wait(&mut h, "the history listing", |a| {
        a.state.history.entries.len() == 3
    });
    h.get_all_by_label("Open").next().unwrap().click();
    wait(&mut h, "the reopened run", |a| a.state.runs.len() == 4);
    assert_eq!(h.state().state.tab, Tab::Traversal);
}

#[test]
fn the_ui_keeps_drawing_while_the_worker_runs_and_cancel_lands_within_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    quick(&mut h, 100_000);
    h.get_by_label("▶ Run").click();
    wait(&mut h, "the run to start", |a| {
        a.state
            .live
            .as_ref()
            .is_some_and(|l| l.recorder.steps().len() > 3)
    });
    // New steps show up as the worker makes them (waited for, not timed).
    let steps = |a: &BlindspotApp| {
        a.state
            .live
            .as_ref()
            .map_or(0, |l| l.recorder.steps().len())
    };
    let first = steps(h.state());
    wait(&mut h, "new steps on screen", |a| steps(a) >= first + 3);
    // Pause holds the worker between two steps; resume lets it go on.
    h.key_press(egui::Key::Space);
    h.step();
    let control = h.state().state.job.as_ref().unwrap().control.clone();
    assert!(control.is_paused());
    let holding = control.clone();
    wait(&mut h, "the worker to hold", move |_| holding.is_holding());
    // Frames keep coming while the worker is held: no frame waits on the worker (one that
    // did would never return here), and the held worker computes nothing meanwhile.
    let held = control.steps_done();
    for _ in 0..30 {
        h.step();
    }
    assert!(control.is_holding());
    assert_eq!(control.steps_done(), held, "the worker ran on while paused");
    h.get_by_label("▶ Resume").click();
    h.step();
    assert!(!control.is_paused());
    let going = control.clone();
    wait(&mut h, "the worker to go on", move |_| {
        going.steps_done() > held
    });
    // Cancel (Esc): the worker stops at the next step boundary.
    h.key_press(egui::Key::Escape);
    h.step();
    assert!(control.is_cancelled());
    let at_cancel = control.steps_done();
    wait(&mut h, "the stopped run", |a| {
        !a.state.is_busy() && a.state.runs.len() == 1
    });
    let record = &h.state().state.runs[0].record;
    let PairStatus::Stopped { steps } = record.status else {
        panic!("status {:?}", record.status);
    };
    assert!(
        steps <= at_cancel + 1,
        "stopped after {steps} steps, cancel came after {at_cancel}"
    );
    assert_eq!(record.steps.len(), steps);
    // A stopped run is kept like any other.
    assert!(
        h.state().state.runs[0]
            .dir
            .as_ref()
            .unwrap()
            .join("run.json")
            .is_file()
    );
}

#[test]
fn bad_files_and_paths_give_visible_errors_and_the_app_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    quick(&mut h, 10);

    // A corrupt checkpoint: the error names the file, the demo model stays.
    let bad = dir.path().join("broken.safetensors");
    std::fs::write(&bad, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all").unwrap();
    type_into(&mut h, "checkpoint path", bad.to_str().unwrap());
    wait(&mut h, "the failed load", |a| {
        a.state.model.loading.is_none() && !a.state.notices.is_empty()
    });
    h.get_by_label_contains("Cannot load model");
    h.get_all_by_label_contains("broken.safetensors")
        .next()
        .unwrap();
    h.get_by_label_contains("still using demo standard");
    assert!(h.state().state.demo().is_some());
    h.get_by_label("Dismiss").click();
    h.run_ok();

    // A file that is not an image.
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "these are notes, not pixels").unwrap();
    type_into(&mut h, "gallery:circle_1", text.to_str().unwrap());
    wait(&mut h, "the image error", |a| {
        a.state.slot(Slot::Source).error.is_some()
    });
    h.get_by_label_contains("Cannot use image notes.png");
    h.get_all_by_label_contains("not a PNG, JPEG or WebP")
        .next()
        .unwrap();
    // The slot keeps the image it had.
    h.get_all_by_label_contains("(still using circle_1)")
        .next()
        .unwrap();
    assert_eq!(
        h.state().state.slot(Slot::Source).source,
        ImageSource::Gallery("circle_1".into())
    );
    assert!(h.state().state.slot(Slot::Source).preview.is_some());
    h.get_by_label("Dismiss").click();
    h.run_ok();

    // An image of the wrong channel count for the model: a colour image for a gray model.
    let gray_model = dir.path().join("gray.safetensors");
    write_gray_model(&gray_model);
    type_into(&mut h, bad.to_str().unwrap(), gray_model.to_str().unwrap());
    wait(&mut h, "the gray model", |a| {
        a.state.spec().is_some_and(|s| s.channels == 1)
    });
    wait(&mut h, "the previews for the gray model", |a| {
        a.state.slot(Slot::Target).error.is_some()
    });
    h.get_all_by_label_contains("1-channel").next().unwrap();
    while h.query_all_by_label("Dismiss").next().is_some() {
        h.get_all_by_label("Dismiss").next().unwrap().click();
        h.run_ok();
    }
    // Back to the demo model with one click.
    h.get_by_label("Demo standard").click();
    wait(&mut h, "the demo model again", |a| {
        a.state.spec().is_some_and(|s| s.channels == 3)
            && a.state.slot(Slot::Target).preview.is_some()
    });
    wait(&mut h, "the source preview", |a| {
        a.state.slot(Slot::Source).preview.is_some()
    });

    // An export folder that cannot be created (below a regular file).
    h.get_by_label("▶ Run").click();
    wait(&mut h, "the run", |a| {
        !a.state.is_busy() && a.state.runs.len() == 1
    });
    let blocker = dir.path().join("a_file");
    std::fs::write(&blocker, "x").unwrap();
    h.state_mut().state.export.dir_text = blocker.join("exports").display().to_string();
    h.get_by_label("Path strip").click();
    h.run_ok();
    wait_for_export(&mut h);
    h.get_by_label_contains("Export failed");
    h.get_by_label_contains("a_file");
    // Still usable: another run goes through.
    while h.query_all_by_label("Dismiss").next().is_some() {
        h.get_all_by_label("Dismiss").next().unwrap().click();
        h.run_ok();
    }
    h.get_by_label("▶ Run").click();
    wait(&mut h, "the second run", |a| {
        !a.state.is_busy() && a.state.runs.len() == 2
    });
    assert_eq!(h.state().state.runs[1].record.status, PairStatus::Done);
}

/// A 1-channel CIFAR ResNet-8 with seeded random weights (conv1 takes one channel).
fn write_gray_model(path: &PathBuf) {
    use candle_core::{DType, Device, Tensor};
    let dev = Device::Cpu;
    let mut tensors = std::collections::HashMap::new();
    let mut seed = 1u64;
    let mut rand = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            })
            .collect();
        Tensor::from_vec(data, shape, &dev).unwrap()
    };
    let bn = |name: &str, c: usize, t: &mut std::collections::HashMap<String, Tensor>| {
        t.insert(
            format!("{name}.weight"),
            Tensor::ones(c, DType::F32, &dev).unwrap(),
        );
        t.insert(
            format!("{name}.bias"),
            Tensor::zeros(c, DType::F32, &dev).unwrap(),
        );
        t.insert(
            format!("{name}.running_mean"),
            Tensor::zeros(c, DType::F32, &dev).unwrap(),
        );
        t.insert(
            format!("{name}.running_var"),
            Tensor::ones(c, DType::F32, &dev).unwrap(),
        );
    };
    tensors.insert("conv1.weight".to_string(), rand(&[16, 1, 3, 3]));
    bn("bn1", 16, &mut tensors);
    let mut cin = 16;
    for (s, cout) in [16usize, 32, 64].into_iter().enumerate() {
        let name = format!("layer{}.0", s + 1);
        tensors.insert(format!("{name}.conv1.weight"), rand(&[cout, cin, 3, 3]));
        bn(&format!("{name}.bn1"), cout, &mut tensors);
        tensors.insert(format!("{name}.conv2.weight"), rand(&[cout, cout, 3, 3]));
        bn(&format!("{name}.bn2"), cout, &mut tensors);
        cin = cout;
    }
    tensors.insert("linear.weight".to_string(), rand(&[10, 64]));
    tensors.insert(
        "linear.bias".to_string(),
        Tensor::zeros(10, DType::F32, &dev).unwrap(),
    );
    candle_core::safetensors::save(&tensors, path).unwrap();
}

#[test]
fn snapshots_of_the_main_views_and_heatmap_pixels_match_the_colour_map() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    quick(&mut h, 40);
    // A fixed export folder text, so the snapshots do not show the temporary folder.
    h.state_mut().state.export.dir_text = "/tmp/blindspot-exports".into();
    h.get_by_label("Hull").click();
    h.run_ok();
    h.snapshot("app_hull_empty");
    // No contours: every pixel inside the triangle is the colour map of the field.
    h.state_mut().state.hull.contours_text.clear();
    h.get_by_label("Run both + hull").click();
    wait(&mut h, "the refined hull", |a| {
        !a.state.is_busy() && common::app::refined(&a.state.hull.main)
    });
    let image = h.render().expect("render");
    let ppp = h.ctx.pixels_per_point();
    let app = h.state();
    let drawn = app.panels.hull.drawn.expect("the heatmap was drawn");
    let refined = app.state.hull.main.refined.as_ref().unwrap();
    let n = refined.n;
    let mut checked = 0;
    for (w1, w2) in [
        (0.21, 0.33),
        (0.52, 0.11),
        (0.08, 0.63),
        (0.34, 0.36),
        (0.71, 0.17),
        (0.15, 0.12),
    ] {
        let pos = drawn.position(w1, w2);
        let (px, py) = ((pos.x * ppp) as u32, (pos.y * ppp) as u32);
        // The field at the centre of the pixel read back.
        let centre = egui::pos2((px as f32 + 0.5) / ppp, (py as f32 + 0.5) / ppp);
        let ([a, b], inside) = drawn.weights(centre);
        assert!(inside);
        let c = lattice_field(n, &refined.confidences, a * n as f64, b * n as f64);
        let got = image.get_pixel(px, py).0;
        let level = |v: f32| ((v.clamp(0.0, 1.0) * 100.0) as usize).min(99);
        // Within one level of the expected one (GPU and CPU round differently at level edges).
        let ok = [level(c).saturating_sub(1), level(c), (level(c) + 1).min(99)]
            .iter()
            .any(|&k| {
                let e = Colormap::Viridis.levels()[k];
                (0..3).all(|ch| (i32::from(got[ch]) - i32::from(e[ch])).abs() <= 2)
            });
        assert!(
            ok,
            "at w = ({w1}, {w2}) conf {c}: pixel {got:?}, expected ~{:?}",
            Colormap::Viridis.colour(c)
        );
        checked += 1;
    }
    assert_eq!(checked, 6);
    h.state_mut().state.hull.contours_text = "0.5, 0.9".into();
    h.run_ok();
    // These two views draw computed data (curves, the confidence field): a CPU with other
    // SIMD kernels rounds the last float bits differently and moves a few anti-aliased pixels.
    // The colours of the field are checked exactly above; the layout must not move.
    let data_view = egui_kittest::SnapshotOptions::new().max_failed_pixels(48);
    h.snapshot_options("app_hull", &data_view);
    h.get_by_label("Traversal").click();
    h.run_ok();
    h.snapshot_options("app_traversal", &data_view);
}

/// A file as the window system hands it over on a drop.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_file(h: &mut App, path: &Path) {
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(path.to_path_buf())));
    h.step();
}

#[test]
fn dropped_files_load_images_checkpoints_and_run_folders() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    quick(&mut h, 10);
    // An image dropped outside the source card becomes the target.
    let (_, heart) = blindspot::demo::gallery()
        .iter()
        .find(|(n, _)| *n == "heart_2")
        .unwrap();
    let heart_png = dir.path().join("my heart.png");
    std::fs::write(&heart_png, heart).unwrap();
    drop_file(&mut h, &heart_png);
    wait(&mut h, "the dropped target", |a| {
        a.state
            .slot(Slot::Target)
            .preview
            .as_ref()
            .is_some_and(|p| p.source == ImageSource::File(heart_png.clone()))
    });
    h.get_by_label("my heart.png");
    // A run folder opens in the traversal view.
    h.get_by_label("▶ Run").click();
    wait(&mut h, "the run", |a| {
        !a.state.is_busy() && a.state.runs.len() == 1
    });
    let saved = h.state().state.runs[0].dir.clone().unwrap();
    drop_file(&mut h, &saved);
    wait(&mut h, "the dropped run", |a| a.state.runs.len() == 2);
    assert_eq!(
        h.state().state.runs[1].record,
        h.state().state.runs[0].record
    );
    // A checkpoint loads as the model (here the robust demo model's file).
    let robust = std::fs::canonicalize("weights/demo-robust.safetensors").unwrap();
    drop_file(&mut h, &robust);
    wait(&mut h, "the dropped checkpoint", |a| {
        a.state.model.loading.is_none() && a.state.demo().is_none()
    });
    assert!(
        h.state().title().contains("demo-robust.safetensors"),
        "{}",
        h.state().title()
    );
    assert_eq!(h.state().state.recent_models, vec![robust]);
}

/// NSPGD settings for a short walk: widths at iterations 0 and 6 only (two measurements).
fn quick_nspgd(h: &mut App, iterations: usize) {
    let c = &mut h.state_mut().state.nspgd;
    c.iterations = iterations;
    c.log_step = 3;
}

/// Runs the picked pair and returns the new run.
fn run_and_wait(h: &mut App) -> std::sync::Arc<blindspot::app::worker::FinishedRun> {
    let before = h.state().state.runs.len();
    h.get_by_label("▶ Run").click();
    wait(h, "the run", |a| {
        !a.state.is_busy() && a.state.runs.len() == before + 1
    });
    h.state().state.runs[before].clone()
}

#[test]
fn nspgd_is_picked_by_label_and_its_run_is_recorded_as_nspgd() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    h.get_by_label("NSPGD").click();
    h.run_ok();
    assert_eq!(h.state().state.method, Method::Nspgd);
    // NSPGD's own settings replace LST's; the toolbar names the walk and τ.
    h.get_by_label("τ");
    assert!(h.query_by_label("pthresh δ").is_none());
    assert!(h.query_by_label("Adversarial term").is_none());
    h.get_by_label_contains("NSPGD, 100 iterations, τ = 0.05");
    // The hull and the grid are LST-only while NSPGD is picked.
    h.get_by_label("Hull").click();
    h.run_ok();
    assert!(
        h.get_by_label("Run both + hull")
            .accesskit_node()
            .is_disabled()
    );
    h.get_by_label("Traversal").click();
    h.run_ok();

    // Widths on through the panel's own checkbox.
    quick_nspgd(&mut h, 12);
    // The side panel scrolls; bring the checkbox into view first.
    h.get_by_label("Path widths").scroll_to_me();
    h.run_ok();
    h.get_by_label("Path widths").click();
    h.run_ok();
    assert!(h.state().state.nspgd.width.enabled);
    let run = run_and_wait(&mut h);
    let record = &run.record;
    assert_eq!(record.config.method(), Method::Nspgd);
    assert_eq!(record.config.nspgd().unwrap().iterations, 12);
    let steps = match record.status {
        PairStatus::Completed => 12,
        PairStatus::Finished { steps } => {
            // The rejected step is the last one run, and it was not accepted.
            assert!(!record.steps.last().unwrap().accepted);
            steps + 1
        }
        other => panic!("status {other:?}"),
    };
    assert_eq!(record.steps.len(), steps);
    // The view shows the status the walk ended with.
    h.get_by_label(&record.status.label());
    // Widths at iterations 0 and 6 (those the walk reached), radii 5..30.
    let measured: Vec<usize> = record.measured_widths().iter().map(|(s, _)| *s).collect();
    assert_eq!(measured, [0, 6][..measured.len()].to_vec());
    assert!(!measured.is_empty());
    // Saved at once, with `config.method` = "nspgd", and it reads back as the same run.
    let saved = run.dir.clone().expect("saved to the history");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["config"]["method"], "nspgd");
    let (again, _) = blindspot::record::RunRecord::load_with_pixels(&saved).unwrap();
    assert_eq!(&again, record);
    // The width view draws it; the export writes its figure.
    h.get_by_label("Widths").click();
    h.run_ok();
    h.get_by_label("Width plot").click();
    h.run_ok();
    wait_for_export(&mut h);
    let names = files_in(&dir.path().join("exports"));
    assert!(
        names
            .iter()
            .any(|n| n.ends_with(".png") && n.contains("width")),
        "{names:?} {:?}",
        h.state().state.notices
    );
    // Back to LST: its settings return, and Run makes an LST run again.
    h.get_by_label("LST").click();
    h.run_ok();
    h.get_by_label("pthresh δ");
    quick(&mut h, 3);
    let lst = run_and_wait(&mut h);
    assert_eq!(lst.record.config.method(), Method::Lst);
    assert!(
        h.state().state.notices.is_empty(),
        "{:?}",
        h.state().state.notices
    );
}

#[test]
fn the_widths_view_compares_two_models_on_one_pair() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    h.get_by_label("NSPGD").click();
    h.run_ok();
    quick_nspgd(&mut h, 7);
    h.state_mut().state.nspgd.width.enabled = true;
    let standard = run_and_wait(&mut h);

    h.get_by_label("Demo robust").click();
    wait(&mut h, "the robust model", |a| {
        a.state.demo() == Some(blindspot::demo::DemoModel::Robust)
            && a.state.slot(Slot::Target).preview.is_some()
    });
    let robust = run_and_wait(&mut h);
    assert_ne!(
        standard.record.model.weights_sha256,
        robust.record.model.weights_sha256
    );

    // A run without widths, to compare against too.
    h.state_mut().state.nspgd.width.enabled = false;
    let bare = run_and_wait(&mut h);
    h.state_mut().state.shown_run = Some(1);

    h.get_by_label("Widths").click();
    h.run_ok();
    let pick = |h: &mut App, run: &blindspot::app::worker::FinishedRun| {
        h.get_by_label("Compare with").click();
        h.run_ok();
        h.get_by_label(&run_label(run)).click();
        h.run_ok();
    };
    // Robust (shown) beside standard: both figures, each named by its model, and the summary.
    pick(&mut h, &standard);
    h.get_by_label("demo-robust (cifar_resnet8)");
    h.get_by_label("demo-standard (cifar_resnet8)");
    h.get_by_label("Mean over measurements (width summary)");
    h.get_by_label("demo-robust (cifar_resnet8) q95");
    h.get_by_label("demo-standard (cifar_resnet8) q05");
    assert!(h.query_by_label_contains("Different pairs").is_none());
    // The robust model's path is at least as wide at the smallest radius.
    let q95_at_5 = |run: &blindspot::app::worker::FinishedRun| {
        let m = run.record.measured_widths();
        m.iter().map(|(_, w)| w.rows[1][1]).sum::<f32>() / m.len() as f32
    };
    assert!(q95_at_5(&robust) >= q95_at_5(&standard) - 0.05);
    // A run without widths gets a message instead of a plot.
    pick(&mut h, &bare);
    h.get_by_label_contains("has no width measurements");
    assert!(
        h.query_by_label("Mean over measurements (width summary)")
            .is_none()
    );
    // Back to one run.
    h.get_by_label("Compare with").click();
    h.run_ok();
    h.get_by_label(NO_COMPARISON).click();
    h.run_ok();
    assert!(h.query_by_label("demo-standard (cifar_resnet8)").is_none());
    assert!(
        h.state().state.notices.is_empty(),
        "{:?}",
        h.state().state.notices
    );
}
