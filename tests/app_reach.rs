//! The app's Reach tab, driven by label through egui_kittest: a small reach evaluation of the
//! demo model on our synthetic shapes fills its hit-rate matrix while it runs and writes the
//! folder `blindspot reach-table` reads; cancel stops within a batch and Start resumes; bad
//! inputs give errors that name the problem.

#![cfg(feature = "app")]

mod common;

use std::path::{Path, PathBuf};

use blindspot::app::panels::reach::{CANCEL, START};
use blindspot::app::panels::reach_matrix::cell_label;
use blindspot::app::reach_state::Ended;
use common::app::{App, files_in, start, type_into, wait, wait_for_export};
use common::{blindspot, shared};
use egui_kittest::kittest::Queryable;

const IMAGES_HINT: &str = "ImageFolder, labels.tsv folder or .safetensors";

/// Three shapes per class, as `blindspot demo-data` writes them (ImageFolder + labels.tsv).
fn shapes(dir: &Path) -> PathBuf {
    let out = dir.join("shapes");
    blindspot::demo::generator::write_dataset(&out, 7, 30, 32, |_| {}).unwrap();
    out
}

/// Opens the Reach tab with the images typed in and a short NSPGD walk.
fn reach_tab(h: &mut App, images: &Path, iterations: usize, batch: usize) {
    {
        let st = &mut h.state_mut().state;
        st.nspgd.iterations = iterations;
        st.reach.per_class = 1;
        st.reach.batch = batch;
    }
    h.get_by_label("Reach").click();
    h.run_ok();
    type_into(h, IMAGES_HINT, images.to_str().unwrap());
    assert_eq!(h.state().state.reach.images_text, images.to_str().unwrap());
}

fn pairs_on_disk(out: &Path) -> usize {
    files_in(&out.join("pairs"))
        .iter()
        .filter(|n| n.ends_with(".json"))
        .count()
}

#[test]
fn a_reach_evaluation_fills_its_matrix_live_and_writes_what_reach_table_reads() {
    let dir = tempfile::tempdir().unwrap();
    let images = shapes(dir.path());
    let mut h = start(dir.path());
    reach_tab(&mut h, &images, 60, 20);
    // LPIPS weights are loaded and the demo model takes 32×32 RGB: the LPIPS hit test.
    h.get_by_label_contains("Hit: LPIPS < 0.03");
    h.get_by_label(START).click();
    h.step();
    assert!(h.state().state.reach.is_running());

    // While it runs, the matrix shows the pairs done so far.
    let mut seen_partial = false;
    wait(&mut h, "the first batch of pairs", |a| {
        a.state.reach.progress().0 > 0
    });
    let (done, total) = h.state().state.reach.progress();
    assert_eq!(total, 100, "10 sources × 10 targets");
    if done < total {
        seen_partial = true;
        h.get_by_label(CANCEL);
        assert!(
            h.query_all_by_label_contains(&format!("of {total} pairs"))
                .count()
                >= 1
        );
        h.get_by_label_contains("so far");
        let summary = h.state().state.reach.summary.clone().unwrap();
        let names = &summary.class_names;
        // Some off-diagonal cell has a value already.
        let filled = (0..10)
            .flat_map(|s| (0..10).map(move |t| (s, t)))
            .filter(|(s, t)| s != t)
            .find_map(|(s, t)| summary.hit_matrix[s][t].map(|v| (s, t, v)));
        let (s, t, v) = filled.expect("a filled cell while running");
        h.get_by_label(&cell_label(&names[s], &names[t], Some(v)));
    }
    assert!(
        seen_partial,
        "the evaluation finished before a frame showed it"
    );
    wait(&mut h, "the whole evaluation", |a| !a.state.is_busy());

    let state = &h.state().state;
    assert!(state.notices.is_empty(), "{:?}", state.notices);
    let r = &state.reach;
    assert_eq!(r.ended, Some(Ended::Complete));
    let summary = r.summary.clone().unwrap();
    assert!(summary.complete());
    let names = summary.class_names.clone();
    assert_eq!(names.len(), 10);
    // Class names on both axes; every cell labelled, the diagonal n/a.
    for name in &names {
        assert!(h.get_all_by_label(name).count() >= 2, "{name} on both axes");
    }
    for s in 0..10 {
        for t in 0..10 {
            let value = if s == t {
                None
            } else {
                summary.hit_matrix[s][t]
            };
            h.get_by_label(&cell_label(&names[s], &names[t], value));
        }
    }
    // The reach table numbers.
    let table = &summary.table;
    h.get_by_label("Reach table");
    h.get_by_label("reach @0.03");
    h.get_by_label("median LPIPS");
    let reach = format!("{:.3}", table.reach_003.unwrap());
    assert!(h.query_all_by_label(&reach).count() >= 1, "{reach}");
    assert!(table.median_lpips.is_some());

    // The folder is the CLI's: reach-table reads it, and it sits in runs/reach, which the
    // history does not list as a broken run.
    let out = r.out.clone().unwrap();
    assert!(
        out.starts_with(dir.path().join("history").join("reach")),
        "{out:?}"
    );
    for f in [
        "plan.json",
        "reach.json",
        "summary.md",
        "hit_matrix.png",
        "examples_grid.svg",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert_eq!(pairs_on_disk(&out), 100);
    let (ok, stdout, stderr) = blindspot(&["reach-table", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("demo-standard"), "{stdout}");
    let history = blindspot::history::History::open(dir.path().join("history")).unwrap();
    let (_, problems) = history.list().unwrap();
    assert!(problems.is_empty(), "{problems:?}");

    if let Ok(p) = std::env::var("SHOT") {
        h.render().unwrap().save(p).unwrap();
    }
    // Export the figures into the export folder.
    // The tab scrolls; bring the button into view first.
    h.get_by_label("Reach figures").scroll_to_me();
    h.run_ok();
    h.get_by_label("Reach figures").click();
    h.step();
    wait_for_export(&mut h);
    let exported = files_in(&dir.path().join("exports"));
    for (prefix, ext) in [
        ("reach-hit-matrix_", ".png"),
        ("reach-hit-matrix_", ".svg"),
        ("reach-examples-grid_", ".png"),
    ] {
        assert!(
            exported
                .iter()
                .any(|n| n.starts_with(prefix) && n.ends_with(ext)),
            "{prefix}…{ext}: {exported:?} {:?}",
            h.state().state.notices
        );
    }
    h.get_by_label("Open folder");
}

#[test]
fn cancel_stops_within_a_batch_and_start_resumes_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let images = shapes(dir.path());
    let mut h = start(dir.path());
    let batch = 10;
    reach_tab(&mut h, &images, 60, batch);
    h.get_by_label(START).click();
    h.step();
    wait(&mut h, "the first pairs and the next batch walking", |a| {
        a.state.reach.progress().0 >= batch && a.state.reach.step.is_some()
    });
    let at_cancel = h.state().state.reach.progress().0;
    h.get_by_label(CANCEL).click();
    h.run_ok();
    let control = h.state().state.job.as_ref().map(|j| j.control.clone());
    assert!(control.is_none_or(|c| c.is_cancelled()));
    wait(&mut h, "the stopped evaluation", |a| !a.state.is_busy());
    let r = &h.state().state.reach;
    assert_eq!(
        r.ended,
        Some(Ended::Stopped),
        "{:?}",
        h.state().state.notices
    );
    let (done, total) = r.progress();
    assert!(done < total);
    assert!(
        done <= at_cancel + batch,
        "{done} pairs done, cancel came at {at_cancel}"
    );
    // What is done is on disk; the outputs wait for the last pair.
    let out = r.out.clone().unwrap();
    assert_eq!(pairs_on_disk(&out), done);
    assert!(out.join("plan.json").is_file());
    assert!(!out.join("reach.json").exists());
    h.get_by_label_contains("Stopped at");

    // Start again: the same settings land in the same folder and resume it.
    h.get_by_label(START).click();
    h.step();
    assert!(h.state().state.reach.is_running());
    wait(&mut h, "the resumed evaluation", |a| !a.state.is_busy());
    let r = &h.state().state.reach;
    assert!(
        h.state().state.notices.is_empty(),
        "{:?}",
        h.state().state.notices
    );
    assert_eq!(r.resumed, done);
    assert_eq!(r.out.as_ref(), Some(&out));
    assert_eq!(r.ended, Some(Ended::Complete));
    assert_eq!(pairs_on_disk(&out), total);
    assert!(out.join("reach.json").is_file());
    h.get_by_label(&format!("Resumed: {done} pairs were already in the folder"));
}

#[test]
fn bad_reach_inputs_name_the_problem_and_the_app_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path());
    h.get_by_label("Reach").click();
    h.run_ok();
    let notice = |h: &App| {
        h.state()
            .state
            .notices
            .last()
            .map(|n| format!("{} {}", n.title, n.detail))
            .unwrap_or_default()
    };
    let dismiss = |h: &mut App| {
        h.get_by_label("Dismiss").click();
        h.run_ok();
    };

    // No images chosen.
    h.get_by_label(START).click();
    h.run_ok();
    assert!(notice(&h).contains("choose the images"), "{}", notice(&h));
    dismiss(&mut h);

    // A folder of images without class folders.
    let flat = shared("data/cifar10_test_png/cat");
    type_into(&mut h, IMAGES_HINT, flat.to_str().unwrap());
    h.get_by_label(START).click();
    wait(&mut h, "the refusal", |a| {
        !a.state.is_busy() && !a.state.notices.is_empty()
    });
    let text = notice(&h);
    assert!(
        text.contains("The reach evaluation did not run") && text.contains(flat.to_str().unwrap()),
        "{text}"
    );
    h.get_by_label_contains(flat.to_str().unwrap());
    dismiss(&mut h);

    // More classes than the model has.
    let images = shapes(dir.path());
    h.state_mut().state.reach.images_text = images.display().to_string();
    h.state_mut().state.reach.classes_text = "0,1,2,3,4,5,6,7,8,9,10".into();
    h.get_by_label(START).click();
    wait(&mut h, "the refusal", |a| {
        !a.state.is_busy() && !a.state.notices.is_empty()
    });
    let text = notice(&h);
    assert!(
        text.contains("has 10 classes")
            && text.contains("class 10")
            && text.contains("Classes field"),
        "{text}"
    );
    assert!(!text.contains("--"), "CLI flags in an app message: {text}");
    dismiss(&mut h);
    let reach_dir = dir.path().join("history").join("reach");
    assert!(
        files_in(&reach_dir)
            .iter()
            .all(|d| !reach_dir.join(d).join("plan.json").exists()),
        "nothing is written for a refused plan"
    );

    // A class index that is not a number is refused before anything runs.
    h.state_mut().state.reach.classes_text = "0,1,x".into();
    h.get_by_label(START).click();
    h.run_ok();
    assert!(notice(&h).contains("`x`"), "{}", notice(&h));
    dismiss(&mut h);

    // The app still works: a traversal runs.
    h.state_mut().state.reach.classes_text.clear();
    h.state_mut().state.config.iterations = 3;
    h.get_by_label("▶ Run").click();
    wait(&mut h, "a traversal", |a| {
        !a.state.is_busy() && a.state.runs.len() == 1
    });
}
