//! The app's test harness, shared by the app test files: start on the demo model, step until
//! something holds, and find and fill fields by their placeholder or text.

use std::path::Path;
use std::time::{Duration, Instant};

use blindspot::app::worker::Slot;
use blindspot::app::{AppOptions, BlindspotApp};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use super::shared;

pub type App = Harness<'static, BlindspotApp>;

pub fn options(dir: &Path) -> AppOptions {
    AppOptions {
        history_dir: Some(dir.join("history")),
        export_dir: Some(dir.join("exports")),
        persist: false,
        // Table 1's LPIPS column from the real weights, whatever this machine's data folder holds.
        lpips: Some(shared("weights/lpips_alex.safetensors")),
        ..AppOptions::default()
    }
}

pub fn start(dir: &Path) -> App {
    let options = options(dir);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .wgpu()
        .build_eframe(move |cc| BlindspotApp::new(cc, options));
    wait(&mut h, "the demo model and both previews", |a| {
        a.state.spec().is_some()
            && a.state.slot(Slot::Source).preview.is_some()
            && a.state.slot(Slot::Target).preview.is_some()
            && a.state.slot(Slot::SecondTarget).preview.is_some()
    });
    h
}

/// Steps the UI until `done` holds (the worker runs on its own thread meanwhile).
pub fn wait(h: &mut App, what: &str, done: impl Fn(&BlindspotApp) -> bool) {
    let started = Instant::now();
    while !done(h.state()) {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(2));
    }
    // Let the frame that shows the result settle.
    for _ in 0..3 {
        h.step();
    }
}

/// A text field by its placeholder (while empty) or by its current text.
pub fn field<'a>(h: &'a App, placeholder_or_text: &'a str) -> egui_kittest::Node<'a> {
    h.query_by(move |n| {
        n.placeholder() == Some(placeholder_or_text)
            || (n.role() == egui::accesskit::Role::TextInput
                && n.value().as_deref() == Some(placeholder_or_text))
    })
    .unwrap_or_else(|| panic!("no text field shows `{placeholder_or_text}`"))
}

/// Replaces the text of a field and presses Enter.
pub fn type_into(h: &mut App, placeholder_or_text: &str, text: &str) {
    field(h, placeholder_or_text).focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by(|n| n.is_focused()).type_text(text);
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    h.step();
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub fn wait_for_export(h: &mut App) {
    wait(h, "the export", |a| a.state.export.in_flight == 0);
}

/// Whether a hull has been refined to its finest lattice (n = 40).
pub fn refined(hull: &blindspot::app::state::HullResult) -> bool {
    hull.refined.as_ref().is_some_and(|r| r.n == 40)
}
