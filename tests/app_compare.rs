//! Compare mode and the stale-state rules of the app, driven by label: model B runs the same
//! pair and the same triangle right after model A, the traversal curves overlay, both hulls sit
//! side by side with a Table 2 column each (computed on the model that made their runs), and a
//! shown result names what made it and says when it no longer matches the current settings.

#![cfg(feature = "app")]

mod common;

use std::ops::ControlFlow;

use blindspot::app::panels::compare::SECOND_MODEL;
use blindspot::app::state::Tab;
use blindspot::app::worker::{ImageSource, ModelSource, Slot};
use blindspot::demo::DemoModel;
use blindspot::run::HullInputs;
use common::app::{App, start, wait};
use egui_kittest::kittest::Queryable;

fn quick(h: &mut App, iterations: usize) {
    let c = &mut h.state_mut().state.config;
    c.iterations = iterations;
    c.log_step = 4;
}

/// Picks model B in the side panel's picker, as a user does.
fn pick_model_b(h: &mut App, demo: DemoModel) {
    h.get_by(|n| {
        n.label().as_deref() == Some(SECOND_MODEL) && n.role() == egui::accesskit::Role::ComboBox
    })
    .click();
    h.run_ok();
    h.get_by_label(demo.label()).click();
    h.run_ok();
}

fn no_notices(h: &App) {
    assert!(
        h.state().state.notices.is_empty(),
        "{:?}",
        h.state().state.notices
    );
}

#[test]
fn model_b_runs_the_same_pair_and_triangle_and_both_show_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    quick(&mut h, 12);
    pick_model_b(&mut h, DemoModel::Robust);
    assert_eq!(
        h.state().state.compare.model_b,
        Some(ModelSource::Demo(DemoModel::Robust))
    );
    h.get_by_label_contains("Next run: circle_1 → star_1");
    h.get_by_label_contains("and demo robust");

    // One Run walks the pair on both models.
    h.get_by_label("▶ Run").click();
    wait(&mut h, "the pair on both models", |a| {
        !a.state.is_busy() && a.state.runs.len() == 2
    });
    no_notices(&h);
    let (a, b) = {
        let runs = &h.state().state.runs;
        (runs[0].clone(), runs[1].clone())
    };
    assert_eq!(a.record.source.sha256, b.record.source.sha256);
    assert_eq!(a.record.target.sha256, b.record.target.sha256);
    assert_eq!(a.record.model.short_name(), "demo-standard");
    assert_eq!(b.record.model.short_name(), "demo-robust");
    assert_eq!(b.record.steps.len(), 12);
    // The loaded model's run stays shown, named by its model, with B's curves overlaid; B's
    // run is not stale (it was made with the second model on purpose).
    assert!(std::sync::Arc::ptr_eq(
        h.state().state.shown_finished().unwrap(),
        &a
    ));
    h.get_by_label("x* (output)");
    h.get_by_label_contains("· demo-standard · LST");
    h.get_by_label_contains("dotted: demo-robust");
    h.state_mut().state.shown_run = Some(1);
    h.run_ok();
    assert!(h.query_by_label_contains("Stale").is_none());
    h.get_by_label_contains("dotted: demo-standard");
    h.state_mut().state.shown_run = Some(0);
    h.run_ok();
    // The pick can be turned off, and back to auto.
    h.get_by_label("Compare with").click();
    h.run_ok();
    h.get_by_label(blindspot::app::panels::compare::NO_COMPARISON)
        .click();
    h.run_ok();
    assert!(h.query_by_label_contains("dotted: demo-robust").is_none());
    h.get_by_label("Compare with").click();
    h.run_ok();
    h.get_by_label(blindspot::app::panels::compare::AUTO_COMPARISON)
        .click();
    h.run_ok();
    h.get_by_label_contains("dotted: demo-robust");
    // The run menus tell the two runs apart by model.
    assert_ne!(a.title(), b.title());

    // One click makes both triangles and both hulls.
    h.get_by_label("Hull").click();
    h.run_ok();
    h.get_by_label("Run both + hull").click();
    wait(&mut h, "both hulls", |a| {
        !a.state.is_busy()
            && common::app::refined(&a.state.hull.main)
            && common::app::refined(&a.state.hull.compare)
    });
    no_notices(&h);
    let st = &h.state().state;
    assert_eq!(st.runs.len(), 6);
    assert_eq!(st.hull.main.model_name().as_deref(), Some("demo-standard"));
    assert_eq!(st.hull.compare.model_name().as_deref(), Some("demo-robust"));
    // Each hull was computed on the model that made its runs: B's equals a direct computation
    // with the robust model, and differs from what the standard model gives on its triangle.
    let robust = DemoModel::Robust.load(&Default::default()).unwrap();
    let [b1, b2] = st.hull.compare.runs.clone().unwrap();
    let inputs =
        HullInputs::from_runs(&robust, (&b1.record, &b1.pixels), (&b2.record, &b2.pixels)).unwrap();
    let direct = inputs
        .report(&robust, 10, |_, _| ControlFlow::Continue(()))
        .unwrap()
        .unwrap();
    let shown = st.hull.compare.report.as_ref().unwrap();
    let worst = direct
        .confidences
        .iter()
        .zip(&shown.confidences)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-6,
        "B's hull differs from a direct computation by {worst}"
    );
    assert_eq!(direct.metrics, shown.metrics);
    // Table 2 has a column per model; both heatmaps were drawn.
    h.get_by_label("Table 2 (n = 10)");
    h.get_by_label("A: demo-standard");
    h.get_by_label("B: demo-robust");
    h.get_by_label_contains("Both hulls on one colour scale");
    let app = h.state();
    let (one, two) = (
        app.panels.hull.drawn.unwrap(),
        app.panels.hull.drawn_compare.unwrap(),
    );
    assert!(
        one.rect.max.x <= two.rect.min.x,
        "side by side: {one:?} {two:?}"
    );
    assert!((one.rect.width() - two.rect.width()).abs() < 1.0);

    // Widths: the auto pick shows the pair on the other model beside the shown one.
    h.get_by_label("Traversal").click();
    h.run_ok();
    let shown = h.state().state.shown_finished().cloned().unwrap();
    let other = h.state().state.comparison_for(&shown).unwrap();
    assert_ne!(
        shown.record.model.weights_sha256,
        other.record.model.weights_sha256
    );
}

#[test]
fn shown_results_name_what_made_them_and_say_when_they_are_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    quick(&mut h, 10);
    h.get_by_label("▶ Run").click();
    wait(&mut h, "the run", |a| {
        !a.state.is_busy() && a.state.runs.len() == 1
    });
    // A finished run opens at x*, with its top classes, and is not stale.
    h.get_by_label("x* (output)");
    h.get_by_label_contains("x* top-5: ");
    assert!(h.query_by_label_contains("Stale").is_none());

    // Another target: the shown run stays, marked with the pair that is picked now.
    h.state_mut()
        .state
        .act(blindspot::app::state::Action::PickImage(
            Slot::Target,
            ImageSource::Gallery("square_1".into()),
        ));
    wait(&mut h, "the square preview", |a| {
        a.state.slot(Slot::Target).preview.is_some()
    });
    h.get_by_label_contains("the picked pair is circle_1 → square_1 now");
    h.get_by_label_contains("circle_1 → star_1");

    // Another model: the run names the model that made it, and says so.
    h.get_by_label("Demo robust").click();
    wait(&mut h, "the robust model", |a| {
        a.state.demo() == Some(DemoModel::Robust) && a.state.slot(Slot::Target).preview.is_some()
    });
    h.get_by_label_contains("made with demo-standard, and demo-robust is loaded now");
    // Its hull cannot be computed on the robust model: a clear error, nothing computed.
    let run = h.state().state.runs[0].clone();
    h.state_mut().state.shown_run = Some(0);
    h.state_mut().state.runs.push(run);
    h.state_mut()
        .state
        .act(blindspot::app::state::Action::HullWithRun(1));
    wait(&mut h, "the refused hull", |a| {
        !a.state.is_busy() && !a.state.notices.is_empty()
    });
    let notice = &h.state().state.notices[0];
    assert!(notice.detail.contains("other weights"), "{notice:?}");
    assert!(h.state().state.hull.main.report.is_none());

    // A paused run says so everywhere: no "running", no "(live)".
    h.state_mut().state.notices.clear();
    quick(&mut h, 400);
    h.get_by_label("▶ Run").click();
    wait(&mut h, "a few steps", |a| {
        a.state.job.as_ref().is_some_and(|j| j.progress.0 >= 3)
    });
    h.key_press(egui::Key::Space);
    wait(&mut h, "the pause", |a| {
        a.state.job.as_ref().is_some_and(|j| j.is_paused())
    });
    // The worker stops at the next step boundary: wait until it holds there and its last
    // iterate has reached the UI.
    wait(&mut h, "the held worker's last step on screen", |a| {
        a.state
            .job
            .as_ref()
            .is_some_and(|j| j.control.is_holding() && j.progress.0 == j.control.steps_done())
    });
    assert!(h.get_all_by_label("paused").count() >= 1);
    h.get_by_label_contains("Paused: LST circle_1 → square_1");
    assert!(h.query_by_label("running").is_none());
    assert!(h.query_by_label_contains("(live)").is_none());
    h.key_press(egui::Key::Escape);
    wait(&mut h, "the cancel", |a| !a.state.is_busy());
}

#[test]
fn contours_tabs_by_number_and_bad_contour_text_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    // Number keys switch tabs.
    h.key_press(egui::Key::Num2);
    h.run_ok();
    assert_eq!(h.state().state.tab, Tab::Hull);
    h.key_press(egui::Key::Num8);
    h.run_ok();
    assert_eq!(h.state().state.tab, Tab::History);
    h.key_press(egui::Key::Num2);
    h.run_ok();
    // Text that is not a list of levels says why no contour is drawn.
    h.state_mut().state.hull.contours_text = "0.5, high".into();
    h.run_ok();
    h.get_by_label_contains("No contours drawn: “high” is not a number");
    h.state_mut().state.hull.contours_text = "0.5, 1.5".into();
    h.run_ok();
    h.get_by_label_contains("No contours drawn: 1.5 is not between 0 and 1");
    h.state_mut().state.hull.contours_text = "0.9 0.5".into();
    h.run_ok();
    assert!(h.query_by_label_contains("No contours drawn").is_none());
    assert_eq!(h.state().state.hull.drawn_contours(), vec![0.5, 0.9]);
}

#[test]
fn a_target_class_picks_an_image_of_that_class_from_the_gallery_or_a_data_folder() {
    use blindspot::app::panels::target_class::TARGET_CLASS;
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    let choose = |h: &mut App, class: &str| {
        h.get_by(|n| {
            n.label().as_deref() == Some(TARGET_CLASS)
                && n.role() == egui::accesskit::Role::ComboBox
        })
        .click();
        h.run_ok();
        h.get_by_label(class).click();
        h.run_ok();
    };
    let target = |h: &App| h.state().state.slot(Slot::Target).source.clone();
    h.get_by_label("Target by class").click();
    h.run_ok();
    // The demo models draw from the gallery.
    choose(&mut h, "square");
    assert_eq!(target(&h), ImageSource::Gallery("square_1".into()));
    h.get_by_label("Next").click();
    h.run_ok();
    assert_eq!(target(&h), ImageSource::Gallery("square_2".into()));

    // A labelled folder: its images of the class, in its order.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let spec = h.state().state.spec().unwrap().clone();
    let heart = (0..spec.num_classes())
        .find(|&k| spec.class_name(k) == "heart")
        .unwrap();
    let png = |name: &str| {
        blindspot::demo::gallery()
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
    };
    std::fs::write(data.join("b.png"), png("heart_2")).unwrap();
    std::fs::write(data.join("a.png"), png("circle_1")).unwrap();
    std::fs::write(
        data.join("labels.tsv"),
        format!("file\tlabel\nb.png\t{heart}\na.png\t0\n"),
    )
    .unwrap();
    common::app::type_into(
        &mut h,
        "data folder (labelled images)",
        data.to_str().unwrap(),
    );
    wait(&mut h, "the data folder", |a| a.state.data_folder.is_some());
    h.get_by_label_contains("2 labelled images");
    choose(&mut h, "heart");
    wait(&mut h, "the heart preview", |a| {
        a.state.slot(Slot::Target).preview.is_some()
    });
    assert_eq!(target(&h), ImageSource::File(data.join("b.png")));
    // A folder that cannot be read says which and why.
    common::app::type_into(&mut h, data.to_str().unwrap(), "/nonexistent/folder");
    wait(&mut h, "the folder error", |a| !a.state.notices.is_empty());
    let n = &h.state().state.notices[0];
    assert!(n.title.contains("data folder"), "{n:?}");
    assert!(n.detail.contains("/nonexistent/folder"), "{n:?}");
}
