//! Run controls (run, pause, resume, cancel) and the status bar with progress, rate and ETA.

use egui::{RichText, Ui};

use crate::app::state::{Action, AppState, JobKind};

/// The run buttons of the side panel.
pub fn run_controls(ui: &mut Ui, state: &mut AppState) {
    let ready = state.spec().is_some()
        && state
            .slot(crate::app::worker::Slot::Source)
            .preview
            .is_some()
        && state
            .slot(crate::app::worker::Slot::Target)
            .preview
            .is_some()
        && state.walk_config().validate().is_ok();
    ui.horizontal(|ui| match &state.job {
        None => {
            let run = ui.add_enabled(
                ready,
                egui::Button::new(RichText::new("▶ Run").strong()).min_size(egui::vec2(90.0, 28.0)),
            );
            if run
                .on_hover_text("Traverse from the source toward the target (Space)")
                .on_disabled_hover_text("Needs a model, a source and a target")
                .clicked()
            {
                state.act(Action::Run);
            }
        }
        Some(job) => {
            let paused = job.is_paused();
            let label = if paused { "▶ Resume" } else { "❚❚ Pause" };
            if ui
                .add(egui::Button::new(label).min_size(egui::vec2(90.0, 28.0)))
                .on_hover_text("Pause or resume between two steps (Space)")
                .clicked()
            {
                state.act(Action::PauseResume);
            }
            if ui
                .add(egui::Button::new("■ Cancel").min_size(egui::vec2(80.0, 28.0)))
                .on_hover_text("Stop at the next step; what was computed is kept (Esc)")
                .clicked()
            {
                state.act(Action::Cancel);
            }
        }
    });
}

/// The bottom bar: what runs, how far, how fast.
pub fn status_bar(ui: &mut Ui, state: &mut AppState) {
    ui.horizontal(|ui| {
        match &state.job {
            Some(job) => {
                let (done, total) = job.progress;
                let unit = match job.kind {
                    JobKind::Traverse | JobKind::Grid => "step",
                    JobKind::Hull => "point",
                    JobKind::Reach => "pair",
                    JobKind::Semantic => "point",
                    JobKind::Frequency => "sample-subspace",
                };
                let fraction = if total > 0 {
                    done as f32 / total as f32
                } else {
                    0.0
                };
                ui.add(egui::ProgressBar::new(fraction).desired_width(180.0));
                // One count, the job's own progress, said once: the bar, the label and the rate
                // all read `job.progress`, so they cannot disagree with each other.
                let paused = job.is_paused();
                let count = progress_text(unit, done, total, paused);
                ui.label(if paused {
                    RichText::new(count).strong()
                } else {
                    RichText::new(count)
                });
                ui.label(&job.what);
                ui.label(format!("{} elapsed", seconds(job.busy_seconds())))
                    .on_hover_text("Time spent working, pauses left out");
                if let Some(rate) = job.rate() {
                    ui.label(format!("{rate:.1} {unit}s/s"));
                }
                if !paused && let Some(eta) = job.eta() {
                    ui.label(format!("ETA {}", seconds(eta)));
                }
            }
            None => {
                ui.label(RichText::new("Ready").weak());
            }
        }
        if let Some(last) = &state.export.last {
            ui.separator();
            ui.label(RichText::new(last).small());
        }
    });
}

/// "step 12 of 40" while running, "paused at step 12 of 40" while paused.
pub fn progress_text(unit: &str, done: usize, total: usize, paused: bool) -> String {
    if paused {
        format!("paused at {unit} {done} of {total}")
    } else {
        format!("{unit} {done} of {total}")
    }
}

/// "3.2 s", "1 min 20 s".
pub fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}
