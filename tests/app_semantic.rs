//! The app's Semantic view, driven by label through egui_kittest: a small rot × scale map of
//! the demo model fills batch by batch and equals `compute_map` called directly, model B's map
//! comes beside it; a click grows regions whose boxes and records match the CLI's; cancel
//! stops within a batch; bad settings give notices that name the problem; the GPU map's pixels
//! are the colour map of the values.

#![cfg(feature = "app")]

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use blindspot::analysis::semantic::{
    ParamSpace, RegionConfig, RegionMethod, RegionResult, SemanticObjective, SemanticParam,
    compute_map, grow_region,
};
use blindspot::app::panels::semantic::{CANCEL, EXPORT, START};
use blindspot::app::semantic_heatmap::{COLORMAP, square_field};
use blindspot::app::semantic_state::{Ended, MethodChoice, SemanticAction, SemanticState};
use blindspot::app::state::Action;
use blindspot::app::worker::ImageSource;
use blindspot::demo::DemoModel;
use blindspot::models::LoadOptions;
use blindspot::run::InputImage;
use blindspot::semantic::{ClassChoice, MapRecord, RegionsRecord};
use common::app::{App, files_in, start, wait};
use egui_kittest::kittest::Queryable;

/// The Semantic tab with a `points` × `points` rot × scale map in batches of `batch`.
fn semantic_tab(h: &mut App, points: usize, batch: usize) {
    {
        let s = &mut h.state_mut().state.semantic;
        s.points_2d = points;
        s.batch = batch;
    }
    h.get_by_label("Semantic").click();
    h.run_ok();
}

/// The demo model's map computed directly, as `blindspot semantic map` computes it.
fn direct_map(demo: DemoModel, class: Option<u32>, points: usize, batch: usize) -> (u32, Vec<f64>) {
    let model = demo.load(&LoadOptions::default()).unwrap();
    let image =
        InputImage::load(&ImageSource::Gallery("circle_1".into()).as_path(), &model).unwrap();
    let choice = ClassChoice::new(&model, &image.pixels, class).unwrap();
    let space = ParamSpace::new(&[SemanticParam::Rot, SemanticParam::Scale], &[], 3).unwrap();
    let objective =
        SemanticObjective::new(&model, &image.pixels, choice.class, space, batch).unwrap();
    let map = compute_map(&objective, points, |_| ControlFlow::Continue(())).unwrap();
    (choice.class, map.values)
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= 1e-6, "{what} at {k}: {a} vs {b}");
    }
}

/// Clicks a button by its label once the frame shows the state set before.
fn press(h: &mut App, label: &str) {
    h.run_ok();
    h.get_by_label(label).click();
    h.step();
}

/// A click of the primary button at `pos`.
fn click_at(h: &mut App, pos: egui::Pos2) {
    h.hover_at(pos);
    h.step();
    h.drag_at(pos);
    h.step();
    h.drop_at(pos);
    h.step();
    h.step();
}

#[test]
fn a_map_fills_live_equals_compute_map_and_model_b_comes_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    semantic_tab(&mut h, 9, 8);
    // Model B through its picker, as a user picks it.
    h.get_by(|n| {
        n.label().as_deref() == Some("Model B") && n.role() == egui::accesskit::Role::ComboBox
    })
    .click();
    h.run_ok();
    h.get_by_label(DemoModel::Robust.label()).click();
    h.run_ok();
    assert_eq!(
        h.state().state.semantic.model_b,
        Some(blindspot::app::worker::ModelSource::Demo(DemoModel::Robust))
    );
    press(&mut h, START);
    h.step();
    // Hold the job after its first batch, so the view is seen part-filled whatever the speed.
    h.state()
        .state
        .job
        .as_ref()
        .unwrap()
        .control
        .set_paused(true);
    wait(&mut h, "the first batch", |a| {
        a.state.semantic.maps[0]
            .as_ref()
            .is_some_and(|m| !m.values.is_empty())
    });
    let partial = h.state().state.semantic.maps[0]
        .as_ref()
        .unwrap()
        .values
        .len();
    assert!(partial < 81, "paused after {partial} of 81 points");
    h.get_by_label(CANCEL);
    h.get_by_label_contains(&format!("{partial} of 81 points: mean f"));
    h.state()
        .state
        .job
        .as_ref()
        .unwrap()
        .control
        .set_paused(false);
    wait(&mut h, "both maps", |a| !a.state.is_busy());

    let state = &h.state().state;
    assert!(state.notices.is_empty(), "{:?}", state.notices);
    let s = &state.semantic;
    assert_eq!(s.ended, Some(Ended::Complete));
    let a = s.maps[0].as_ref().unwrap();
    let b = s.maps[1].as_ref().unwrap();
    assert!(a.is_complete() && b.is_complete());
    let (class, want_a) = direct_map(DemoModel::Standard, None, 9, 8);
    assert_eq!(a.class.class, class);
    assert_close(&a.values, &want_a, "model A");
    // Model B is mapped for model A's class, so both maps show one probability.
    let (_, want_b) = direct_map(DemoModel::Robust, Some(class), 9, 8);
    assert_eq!(b.class.class, class);
    assert_close(&b.values, &want_b, "model B");
    assert_ne!(a.values, b.values, "two models, two maps");
    // Each map is labelled with its model, side by side.
    let (title_a, title_b) = (
        format!("{} · p({} = {class})", a.model, a.class.class_name),
        format!("{} · p({} = {class})", b.model, b.class.class_name),
    );
    h.get_by_label(&title_a);
    h.get_by_label(&title_b);
    let drawn = h.state().panels.semantic.drawn;
    let (da, db) = (drawn[0].unwrap(), drawn[1].unwrap());
    assert!(db.rect.left() > da.rect.right(), "B to the right of A");
    assert_eq!(da.rect.size(), db.rect.size(), "one size, one scale");

    // A click grows the regions on both models from that point, model B's for model A's
    // class: the same boxes `grow_region` gives called directly.
    let model_b_name = b.model.clone();
    h.state_mut().state.semantic.config.iterations = 12;
    // The picker moving on does not change what the shown map B was made with.
    h.state_mut().state.semantic.model_b = None;
    h.get_by_label_contains("grow regions from that point on both models");
    click_at(&mut h, da.position(4.0, 4.0));
    assert!(h.state().state.is_busy(), "the click started the regions");
    wait(&mut h, "regions on both models", |a| !a.state.is_busy());
    let state = &h.state().state;
    assert!(state.notices.is_empty(), "{:?}", state.notices);
    let s = &state.semantic;
    let config = s.config.clone();
    for (slot, demo) in [(0, DemoModel::Standard), (1, DemoModel::Robust)] {
        let want = direct_regions(demo, class, &config);
        let got: Vec<_> = s.regions[slot]
            .iter()
            .map(|r| r.result.clone().expect("finished"))
            .collect();
        assert_eq!(got.len(), 3, "slot {slot}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.trace.len(), 13, "slot {slot}: every update seen");
            assert_eq!(g.final_box(), w.final_box(), "slot {slot} {:?}", g.method);
        }
    }
    assert_ne!(
        s.regions[0][2].result.as_ref().unwrap().final_box(),
        s.regions[1][2].result.as_ref().unwrap().final_box(),
        "two models, two OIR_W boxes"
    );
    // The table names each region's model once both have regions.
    h.run_ok();
    h.get_by_label("model");
    assert!(
        h.query_all_by_label(&model_b_name).count() >= 3,
        "three rows of model B"
    );

    // The export writes both models' regions records.
    export_view(&mut h, &dir.path().join("exports"));
    let state = &h.state().state;
    assert_eq!(state.semantic.exported.len(), 2);
    for (slot, out) in state.semantic.exported.iter().enumerate() {
        let record: RegionsRecord =
            serde_json::from_slice(&std::fs::read(out.join("semantic.json")).unwrap()).unwrap();
        assert_eq!(record.regions.len(), 3, "{}", out.display());
        assert_eq!(record.class.class, class);
        for (rec, live) in record.regions.iter().zip(&state.semantic.regions[slot]) {
            let (a, b) = live.result.as_ref().unwrap().final_box();
            assert_eq!((rec.a_z.as_slice(), rec.b_z.as_slice()), (a, b));
        }
    }
}

/// Exports the view into `exports` and waits for it to succeed. The button sits below the
/// map, outside the test window's view; egui does not click what it does not show, so its
/// action is sent as the button sends it.
fn export_view(h: &mut App, exports: &Path) {
    h.state_mut().state.export.dir_text = exports.display().to_string();
    h.get_by_label(EXPORT);
    h.state_mut()
        .state
        .act(Action::Semantic(SemanticAction::Export));
    wait(h, "the export", |a| {
        (!a.state.semantic.exported.is_empty() || !a.state.notices.is_empty()) && !a.state.is_busy()
    });
    let state = &h.state().state;
    assert!(state.notices.is_empty(), "{:?}", state.notices);
}

/// The three regions grown directly from rot = 0, scale = 1 on the demo model, for `class`,
/// as `blindspot semantic regions` grows them.
fn direct_regions(demo: DemoModel, class: u32, config: &RegionConfig) -> Vec<RegionResult> {
    let model = demo.load(&LoadOptions::default()).unwrap();
    let image =
        InputImage::load(&ImageSource::Gallery("circle_1".into()).as_path(), &model).unwrap();
    let space = ParamSpace::new(&[SemanticParam::Rot, SemanticParam::Scale], &[], 3).unwrap();
    let start = space.to_z(&[0.0, 1.0]);
    let mut objective = SemanticObjective::new(&model, &image.pixels, class, space, 8)
        .unwrap()
        .with_gradient(config.oir_w_gradient);
    RegionMethod::ALL
        .iter()
        .map(|&m| {
            grow_region(&mut objective, m, config, &start, |_| {
                ControlFlow::Continue(())
            })
            .unwrap()
        })
        .collect()
}

#[test]
fn a_click_grows_regions_live_and_the_export_is_the_cli_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    h.state_mut().state.export.dir_text = "/tmp/blindspot-exports".into();
    semantic_tab(&mut h, 9, 81);
    {
        let s = &mut h.state_mut().state.semantic;
        s.method = MethodChoice::All;
        s.config.iterations = 40;
        // The pixels below are checked against the colour map alone.
        s.contour = false;
    }
    press(&mut h, START);
    wait(&mut h, "the map", |a| {
        a.state.semantic.maps[0]
            .as_ref()
            .is_some_and(|m| m.is_complete())
            && !a.state.is_busy()
    });
    // The GPU map's pixels are the colour map of the values (both triangles).
    let image = h.render().expect("render");
    let ppp = h.ctx.pixels_per_point();
    let drawn = h.state().panels.semantic.drawn[0]
        .unwrap_or_else(|| panic!("the map was drawn: {:?}", h.state().state.notices));
    let values = h.state().state.semantic.maps[0]
        .as_ref()
        .unwrap()
        .values
        .clone();
    for (r, c) in [(1.3, 2.2), (6.6, 5.1), (3.7, 7.4), (7.2, 0.6), (0.4, 7.7)] {
        let pos = drawn.position(r, c);
        let (px, py) = ((pos.x * ppp) as u32, (pos.y * ppp) as u32);
        // The field at the centre of the pixel read back.
        let centre = egui::pos2((px as f32 + 0.5) / ppp, (py as f32 + 0.5) / ppp);
        let n = 8.0;
        let cr = f64::from((drawn.rect.bottom() - centre.y) / drawn.rect.height()) * n;
        let cc = f64::from((centre.x - drawn.rect.left()) / drawn.rect.width()) * n;
        let f = square_field(&values, 9, cr, cc);
        let got = image.get_pixel(px, py).0;
        let level = |v: f32| ((v.clamp(0.0, 1.0) * 100.0) as usize).min(99);
        let ok = [level(f).saturating_sub(1), level(f), (level(f) + 1).min(99)]
            .iter()
            .any(|&k| {
                let e = COLORMAP.levels()[k];
                (0..3).all(|ch| (i32::from(got[ch]) - i32::from(e[ch])).abs() <= 2)
            });
        assert!(
            ok,
            "at ({r}, {c}) f {f}: pixel {got:?}, expected ~{:?}",
            COLORMAP.colour(f)
        );
    }

    // Click the grid point rot = 0, scale = 1 (the middle of the map).
    click_at(&mut h, drawn.position(4.0, 4.0));
    assert!(h.state().state.is_busy(), "the click started the regions");
    wait(&mut h, "three regions", |a| !a.state.is_busy());
    let state = &h.state().state;
    assert!(state.notices.is_empty(), "{:?}", state.notices);
    let s = &state.semantic;
    assert_eq!(s.regions[0].len(), 3);
    assert!(s.regions[1].is_empty(), "no model B, no regions of it");
    let methods: Vec<RegionMethod> = s.regions[0].iter().map(|r| r.method).collect();
    assert_eq!(methods, RegionMethod::ALL.to_vec());
    let view = s.maps[0].as_ref().unwrap();
    for r in &s.regions[0] {
        let result = r.result.as_ref().expect("finished");
        assert_eq!(result.trace.len(), 41, "every update seen");
        assert_eq!(view.space.to_u(&result.start), vec![0.0, 1.0]);
        assert!(result.volume_ratio > 0.0);
    }
    h.get_by_label("Regions");
    for m in RegionMethod::ALL {
        h.get_by_label(m.label());
    }
    let volume = format!(
        "{:.2} %",
        100.0 * s.regions[0][0].result.as_ref().unwrap().volume_ratio
    );
    assert!(h.query_all_by_label(&volume).count() >= 1, "{volume}");
    // Hover the middle: the card shows T(x, u) there and f.
    h.hover_at(drawn.position(4.0, 4.0));
    h.run_ok();
    h.get_by_label("T(x, u)");
    let f = format!("f = {:.3}", values[4 * 9 + 4]);
    assert!(h.query_all_by_label_contains(&f).count() >= 1, "{f}");
    h.snapshot_options(
        "semantic_view",
        &egui_kittest::SnapshotOptions::new().max_failed_pixels(48),
    );

    // Export: the record folder of `blindspot semantic regions`.
    let exports = dir.path().join("exports");
    export_view(&mut h, &exports);
    let state = &h.state().state;
    let folders = files_in(&exports);
    assert_eq!(folders.len(), 1, "{folders:?}");
    let out = exports.join(&folders[0]);
    assert!(folders[0].starts_with("semantic-regions-"), "{folders:?}");
    for f in [
        "semantic.json",
        "tensors.safetensors",
        "traces.png",
        "traces.svg",
        "map.png",
        "map.svg",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert_eq!(files_in(&out.join("corners")).len(), 3 * 4);
    let record: RegionsRecord =
        serde_json::from_slice(&std::fs::read(out.join("semantic.json")).unwrap()).unwrap();
    let s = &state.semantic;
    assert_eq!(record.regions.len(), 3);
    for (rec, live) in record.regions.iter().zip(&s.regions[0]) {
        let (a, b) = live.result.as_ref().unwrap().final_box();
        assert_eq!(rec.a_z, a);
        assert_eq!(rec.b_z, b);
        assert_eq!(rec.method, live.method);
    }
    assert_eq!(record.map.unwrap().values, values);
    check_map_record_is_readable(&out);
}

/// `semantic.json` holds the map as a `MapRecord` reads it too (same field names).
fn check_map_record_is_readable(out: &Path) {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("semantic.json")).unwrap()).unwrap();
    assert_eq!(json["kind"], "regions");
    assert_eq!(json["space"]["params"], serde_json::json!(["rot", "scale"]));
    let _ = std::marker::PhantomData::<MapRecord>;
}

#[test]
fn cancel_stops_within_a_batch_and_bad_settings_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    semantic_tab(&mut h, 61, 4);
    press(&mut h, START);
    wait(&mut h, "some batches", |a| {
        a.state.semantic.maps[0]
            .as_ref()
            .is_some_and(|m| m.values.len() >= 8)
    });
    let control = h.state().state.job.as_ref().unwrap().control.clone();
    h.get_by_label(CANCEL).click();
    h.step();
    assert!(control.is_cancelled());
    // Batches the worker had finished when Cancel landed.
    let batches = control.steps_done();
    wait(&mut h, "the cancel", |a| !a.state.is_busy());
    let s = &h.state().state.semantic;
    assert_eq!(s.ended, Some(Ended::Stopped));
    let done = s.maps[0].as_ref().unwrap().values.len();
    // The batch being computed when Cancel landed finishes; nothing after it.
    assert!(
        done <= (batches + 1) * 4 && done < 61 * 61,
        "{done} points after cancel at {batches} batches"
    );
    h.get_by_label_contains("Stopped at");

    // Bad settings: each gives a notice naming the problem, and nothing runs.
    type Case = (Box<dyn Fn(&mut SemanticState)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            Box::new(|s| s.params = [None, None]),
            "no semantic parameter chosen",
        ),
        (
            Box::new(|s| s.params = [Some(SemanticParam::Rot), Some(SemanticParam::Rot)]),
            "named twice",
        ),
        (
            Box::new(|s| {
                s.params = [Some(SemanticParam::Rot), None];
                s.domains[SemanticParam::Rot.index()].lo = 200.0;
            }),
            "lower bound 200 must be below upper bound 180",
        ),
        (
            Box::new(|s| {
                s.domains[SemanticParam::Rot.index()].lo = -180.0;
                s.points_1d = 1;
            }),
            "a map needs at least 2 points per axis",
        ),
        (
            Box::new(|s| {
                s.points_1d = 5;
                s.class_text = "cat".into();
            }),
            "class `cat`",
        ),
    ];
    for (set, expected) in cases {
        set(&mut h.state_mut().state.semantic);
        h.run_ok();
        press(&mut h, START);
        h.run_ok();
        let state = &h.state().state;
        assert!(!state.is_busy(), "{expected}: nothing runs");
        let notice = state
            .notices
            .last()
            .unwrap_or_else(|| panic!("{expected}: {:?}", state.semantic.params));
        assert!(
            notice.detail.contains(expected),
            "{expected}: {:?}",
            notice.detail
        );
        assert!(
            !notice.detail.contains("--params"),
            "said in the app's words"
        );
        h.state_mut().state.notices.clear();
    }
    // A class the model does not have is refused by the worker, with the same words as the CLI.
    h.state_mut().state.semantic.class_text = "99".into();
    press(&mut h, START);
    wait(&mut h, "the refusal", |a| {
        !a.state.notices.is_empty() && !a.state.is_busy()
    });
    let notice = h
        .state()
        .state
        .notices
        .last()
        .expect("a notice")
        .detail
        .clone();
    assert!(notice.contains("class 99 is out of range"), "{notice}");
    h.state_mut().state.notices.clear();

    // β outside OIR_W's bound: refused at the click, before any work.
    {
        let s = &mut h.state_mut().state.semantic;
        s.class_text.clear();
        s.params = [Some(SemanticParam::Rot), Some(SemanticParam::Scale)];
        s.points_2d = 5;
        s.batch = 25;
    }
    press(&mut h, START);
    wait(&mut h, "a small map", |a| {
        a.state.semantic.maps[0]
            .as_ref()
            .is_some_and(|m| m.is_complete())
            && !a.state.is_busy()
    });
    {
        let s = &mut h.state_mut().state.semantic;
        s.method = MethodChoice::OirW;
        s.config.beta = 0.9;
    }
    let drawn = h.state().panels.semantic.drawn[0].unwrap();
    click_at(&mut h, drawn.position(2.0, 2.0));
    let state = &h.state().state;
    assert!(!state.is_busy());
    let notice = &state.notices.last().expect("a beta notice").detail;
    assert!(
        notice.contains("beta = 0.9") && notice.contains("2/(2n - 1)"),
        "{notice}"
    );

    // Hue needs three channels: the same check the CLI makes, for a 1-channel model.
    let s = SemanticState {
        params: [Some(SemanticParam::Hue), None],
        ..SemanticState::default()
    };
    let e = s
        .setup(&ImageSource::Gallery("circle_1".into()), 1)
        .unwrap_err();
    assert!(e.contains("needs a 3-channel model"), "{e}");
}
