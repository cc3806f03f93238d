//! Every view at three window sizes (1024×700, 1280×800, 2560×1440), with what makes layouts
//! break: a second model beside the first, both hulls, and a long ImageNet-style file name. The
//! snapshots are for looking at; the assertions check that what a user must reach stays inside
//! the window (the |difference| image, History's buttons, both heatmaps).

#![cfg(feature = "app")]

mod common;

use blindspot::app::BlindspotApp;
use blindspot::app::state::{Action, Tab};
use blindspot::app::worker::{ImageSource, ModelSource, Slot};
use blindspot::demo::DemoModel;
use common::app::{App, options, wait};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

const SIZES: [(f32, f32); 3] = [(1024.0, 700.0), (1280.0, 800.0), (2560.0, 1440.0)];

/// A target file named like an ImageNet validation image, with more on the end.
const LONG_NAME: &str = "n01443537_ILSVRC2012_val_00000236_goldfish_a_long_file_name_indeed.png";

fn start_at(dir: &std::path::Path, size: (f32, f32)) -> App {
    let options = options(dir);
    let mut h = Harness::builder()
        .with_size(egui::vec2(size.0, size.1))
        .wgpu()
        .build_eframe(move |cc| BlindspotApp::new(cc, options));
    wait(&mut h, "the demo model and the previews", |a| {
        a.state.spec().is_some()
            && a.state.slot(Slot::Source).preview.is_some()
            && a.state.slot(Slot::Target).preview.is_some()
            && a.state.slot(Slot::SecondTarget).preview.is_some()
    });
    h
}

/// Both models on one pair (with a long target file name), and both hulls.
fn prepare(h: &mut App, dir: &std::path::Path) {
    let star = blindspot::demo::gallery()
        .iter()
        .find(|(n, _)| *n == "star_1")
        .unwrap()
        .1;
    let long = dir.join(LONG_NAME);
    std::fs::write(&long, star).unwrap();
    let st = &mut h.state_mut().state;
    st.config.iterations = 12;
    st.config.log_step = 4;
    st.export.dir_text = "/tmp/blindspot-exports".into();
    st.compare.model_b = Some(ModelSource::Demo(DemoModel::Robust));
    st.act(Action::PickImage(Slot::Target, ImageSource::File(long)));
    wait(h, "the long-named target", |a| {
        a.state.slot(Slot::Target).preview.is_some()
    });
    h.state_mut().state.act(Action::HullRunBoth);
    wait(h, "both hulls", |a| {
        !a.state.is_busy()
            && common::app::refined(&a.state.hull.main)
            && common::app::refined(&a.state.hull.compare)
    });
    // The shown run is model B's last; show model A's run of the long-named pair, with B's
    // beside it.
    let shown = h
        .state()
        .state
        .runs
        .iter()
        .position(|r| r.record.target.path.ends_with(LONG_NAME))
        .unwrap();
    h.state_mut().state.act(Action::ShowRun(shown));
    h.run_ok();
}

fn inside(h: &App, what: &str, rect: egui::Rect, width: f32) {
    assert!(
        rect.max.x <= width + 0.5 && rect.min.x >= -0.5,
        "{what} at {rect:?} is outside the {width} pt wide window ({:?})",
        h.state().state.tab
    );
}

#[test]
fn every_view_fits_at_1024_1280_and_2560_wide() {
    for size in SIZES {
        // A fixed folder, so the paths on screen (history folder, target file) are the same in
        // every run of the test.
        let dir = std::env::temp_dir().join(format!("blindspot-layout-{}", size.0 as u32));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        let mut h = start_at(&dir, size);
        prepare(&mut h, &dir);
        assert!(
            h.state().state.notices.is_empty(),
            "{:?}",
            h.state().state.notices
        );
        // Curves and the confidence field move a few anti-aliased pixels between CPUs, and run
        // times ("0.1 s") differ by a digit; the allowance grows with the window's area. The
        // layout must not move.
        let area = size.0 * size.1 / (1280.0 * 800.0);
        let options =
            egui_kittest::SnapshotOptions::new().max_failed_pixels((240.0 * area) as usize);
        for tab in Tab::ALL {
            h.state_mut().state.tab = tab;
            if tab == Tab::History {
                wait(&mut h, "the history", |a| {
                    a.state.history.entries.len() == 4
                });
                // Runs made within one second list in either order; fix it for the snapshot.
                h.state_mut().state.history.entries.sort_by(|a, b| {
                    let key = |e: &blindspot::history::HistoryEntry| {
                        (e.record.model.short_name(), e.record.target.path.clone())
                    };
                    key(a).cmp(&key(b))
                });
            }
            for _ in 0..4 {
                h.step();
            }
            let name = format!(
                "layout_{}x{}_{}",
                size.0 as u32,
                size.1 as u32,
                tab.label().to_lowercase()
            );
            // Written before the checks, so a failure can be looked at.
            let snapshot = h.try_snapshot_options(&name, &options);
            match tab {
                Tab::Traversal => {
                    let diff = h.get_by_label("|difference|").rect();
                    inside(&h, "the |difference| caption", diff, size.0);
                    let picker = h.get_by_label("Compare with").rect();
                    inside(&h, "the compare picker", picker, size.0);
                }
                Tab::Hull => {
                    let app = h.state();
                    let a = app.panels.hull.drawn.expect("the hull was drawn");
                    let b = app
                        .panels
                        .hull
                        .drawn_compare
                        .expect("the hull beside was drawn");
                    inside(&h, "the hull", a.rect, size.0);
                    inside(&h, "the hull beside", b.rect, size.0);
                }
                Tab::History => {
                    for button in h.get_all_by_label("Delete…") {
                        inside(&h, "a Delete button", button.rect(), size.0);
                    }
                }
                _ => {}
            }
            if let Err(e) = snapshot {
                panic!("{e}");
            }
        }
        drop(h);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
