//! Rough edges a new user hit (issue #13): export file names, the checkpoint dialog with no portal, the model panel's path box after a pick from
//! the Recent list, and the status bar of a paused job.

#![cfg(feature = "app")]

mod common;

use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;

mod export_names {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use blindspot::app::export::{export_stem, name_part, reserve_stem, timestamp};

    /// 2026-12-06 06:49:06 UTC.
    fn when() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_539_746)
    }

    #[test]
    fn parts_are_file_name_safe() {
        assert_eq!(name_part("demo standard"), "demo-standard");
        assert_eq!(name_part("/data/my model.v2/../x"), "data-my-model-v2-x");
        assert_eq!(name_part("x* → star"), "x-star");
        assert_eq!(name_part("a_b:c\\d"), "a-b-c-d");
        assert_eq!(name_part("star+square"), "star+square");
        assert_eq!(name_part("→ ✓ ."), "unnamed");
        assert_eq!(name_part(""), "unnamed");
        assert!(name_part(&"long".repeat(30)).len() <= 40);
    }

    #[test]
    fn stems_read_what_pair_model_and_time() {
        assert_eq!(timestamp(when()), "2026-12-06_064906Z");
        assert_eq!(
            export_stem(
                "path-strip",
                Some(("circle", "star")),
                "demo_standard",
                when()
            ),
            "path-strip_circle-to-star_demo-standard_2026-12-06_064906Z"
        );
        assert_eq!(
            export_stem("grid", None, "resnet20", when()),
            "grid_resnet20_2026-12-06_064906Z"
        );
    }

    #[test]
    fn a_taken_name_gets_a_number_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let stem = "hull-n40_circle-to-star+square_m_2026-12-06_064906Z";
        assert_eq!(reserve_stem(d, stem, &["png", "svg"]).unwrap(), stem);
        // The name is claimed at once: a second export in the same second gets `-2`.
        assert!(d.join(format!("{stem}.png")).is_file());
        assert_eq!(
            reserve_stem(d, stem, &["png", "svg"]).unwrap(),
            format!("{stem}-2")
        );
        // Either file of a pair taken makes the whole name taken.
        std::fs::write(d.join(format!("{stem}-3.svg")), b"mine").unwrap();
        assert_eq!(
            reserve_stem(d, stem, &["png", "svg"]).unwrap(),
            format!("{stem}-4")
        );
        assert_eq!(
            std::fs::read(d.join(format!("{stem}-3.svg"))).unwrap(),
            b"mine"
        );
        assert!(
            !d.join(format!("{stem}-3.png")).exists(),
            "a half claim was left"
        );
        // Folders (no extensions) the same way.
        assert_eq!(reserve_stem(d, "run_x", &[]).unwrap(), "run_x");
        assert!(d.join("run_x").is_dir());
        assert_eq!(reserve_stem(d, "run_x", &[]).unwrap(), "run_x-2");
    }
}

mod dialogs {
    use std::path::PathBuf;
    use std::time::Duration;

    use blindspot::app::background::{DialogPurpose, Done, QUICKEST_CANCEL, dialog_done};

    #[test]
    fn an_empty_answer_at_once_is_no_dialog_and_a_later_one_a_cancel() {
        let model = DialogPurpose::Model;
        assert!(matches!(
            dialog_done(model, vec![], Duration::from_millis(4)),
            Done::NoDialog(DialogPurpose::Model)
        ));
        assert!(matches!(
            dialog_done(model, vec![], QUICKEST_CANCEL * 8),
            Done::Dialog { paths, .. } if paths.is_empty()
        ));
        let picked = PathBuf::from("/data/model.safetensors");
        assert!(matches!(
            dialog_done(model, vec![picked.clone()], Duration::from_millis(4)),
            Done::Dialog { paths, .. } if paths == [picked]
        ));
    }
}

/// Steps until `done` holds, failing after `limit` (shorter than the shared helper's, so a
/// missing notice fails quickly).
fn wait_up_to(
    h: &mut common::app::App,
    limit: Duration,
    what: &str,
    done: impl Fn(&blindspot::app::BlindspotApp) -> bool,
) {
    let started = Instant::now();
    while !done(h.state()) {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..3 {
        h.step();
    }
}

/// Whether rfd can show nothing here: no session bus for the portal and no zenity. Elsewhere a
/// real dialog would open and wait for a person.
fn no_dialog_possible() -> bool {
    let zenity = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join("zenity").is_file()));
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() && !zenity
}

#[test]
fn open_checkpoint_without_any_file_dialog_says_what_to_do_instead() {
    if !no_dialog_possible() {
        eprintln!("skipped: a file dialog could open here and wait for a person");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut h = common::app::start(dir.path());
    h.get_by_label("Open checkpoint…").click();
    wait_up_to(
        &mut h,
        Duration::from_secs(20),
        "the no-dialog notice",
        |a| {
            a.state
                .notices
                .iter()
                .any(|n| n.title == "No file dialog is available")
        },
    );
    let notice = h
        .state()
        .state
        .notices
        .iter()
        .find(|n| n.title == "No file dialog is available")
        .unwrap();
    assert!(
        notice.detail.contains("no xdg-desktop-portal or zenity")
            && notice.detail.contains("\"checkpoint path\" field")
            && notice.detail.contains("drop the file on the window"),
        "{}",
        notice.detail
    );
}

/// The Frequency view's labelled images have the Reach view's Folder… and File… buttons:
/// without a dialog, a click says which field to type into instead.
#[test]
fn the_frequency_views_folder_button_without_any_dialog_says_what_to_do() {
    if !no_dialog_possible() {
        eprintln!("skipped: a file dialog could open here and wait for a person");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut h = common::app::start(dir.path());
    h.get_by_label("Frequency").click();
    h.run_ok();
    h.get_by_label("File…");
    h.get_by_label("Folder…").click();
    let title = "No file dialog is available";
    wait_up_to(
        &mut h,
        Duration::from_secs(20),
        "the no-dialog notice",
        |a| a.state.notices.iter().any(|n| n.title == title),
    );
    let state = &h.state().state;
    let notice = state.notices.iter().find(|n| n.title == title).unwrap();
    assert!(
        notice
            .detail
            .contains("type or paste the path of the labelled images into their field"),
        "{}",
        notice.detail
    );
}

#[test]
fn a_pick_from_recent_shows_its_path_in_the_path_box() {
    use common::app::field;

    let dir = tempfile::tempdir().unwrap();
    let mut h = common::app::start(dir.path());
    let picked = dir.path().join("picked.safetensors").display().to_string();
    h.state_mut().state.recent_models = vec![picked.clone().into()];
    h.run_ok();
    // A path typed earlier and never loaded.
    field(&h, "checkpoint path").focus();
    h.step();
    h.get_by(|n| n.is_focused()).type_text("/somewhere/old.pth");
    h.step();
    field(&h, "/somewhere/old.pth");
    h.get_by_label("Recent checkpoints").click();
    h.run_ok();
    h.get_by_label(&picked).click();
    h.step();
    wait_up_to(&mut h, Duration::from_secs(60), "the load to end", |a| {
        !a.state.is_busy() && a.state.model.loading.is_none()
    });
    // The box shows the picked path, so Load loads what the user last chose.
    field(&h, &picked);
    assert!(
        h.query_by(|n| n.value().as_deref() == Some("/somewhere/old.pth"))
            .is_none(),
        "the path box still shows the old path"
    );
}

#[test]
fn a_paused_traversal_says_paused_at_its_step_with_the_busy_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = common::app::start(dir.path());
    {
        let c = &mut h.state_mut().state.config;
        c.iterations = 5000;
        c.log_step = 5;
    }
    h.get_by_label("▶ Run").click();
    wait_up_to(&mut h, Duration::from_secs(60), "a few steps", |a| {
        a.state.job.as_ref().is_some_and(|j| j.progress.0 >= 3)
    });
    h.get_by_label("❚❚ Pause").click();
    // The step in flight when the pause landed may still report; wait until the worker holds
    // and that step has reached the UI.
    wait_up_to(&mut h, Duration::from_secs(60), "the held worker", |a| {
        a.state
            .job
            .as_ref()
            .is_some_and(|j| j.control.is_holding() && j.progress.0 == j.control.steps_done())
    });
    let (done, total) = h
        .state()
        .state
        .job
        .as_ref()
        .map(|j| j.progress)
        .expect("the job is still there while paused");
    assert_eq!(total, 5000);
    h.get_by_label(&format!("paused at step {done} of {total}"));
    assert!(
        h.query_by_label(&format!("step {done} of {total}"))
            .is_none(),
        "a second, running count is shown"
    );
    h.get_by_label("a job is paused: the model is locked until it ends");
    assert!(
        h.query_by_label("a job is running: the model is locked")
            .is_none()
    );
    assert!(
        h.query_by_label_contains(" s elapsed").is_some(),
        "no elapsed time"
    );
    h.get_by_label("■ Cancel").click();
    wait_up_to(&mut h, Duration::from_secs(60), "the cancel", |a| {
        !a.state.is_busy()
    });
}
