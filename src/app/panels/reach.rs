//! The Reach tab: the NSPGD reach evaluation of §2.3 with the loaded model. Its settings, Start
//! and Cancel, progress in pairs, the hit-rate matrix as it fills, and the reach table; the run
//! writes the same folder as `blindspot reach` (so `reach-table` reads it), and its figures can
//! be opened or exported.

use egui::{RichText, Ui};

use crate::analysis::metrics::lpips_applies;
use crate::analysis::reach::HitCriterion;
use crate::app::background::{DialogPurpose, ImagesFor};
use crate::app::reach_state::{Ended, ReachState};
use crate::app::state::{Action, AppState, ExportKind};
use crate::app::worker::LpipsStatus;

use super::reach_matrix::hit_matrix;
use super::{JobButtons, export_bar, job_buttons, job_progress, labelled_images_buttons};

pub const START: &str = "▶ Start reach";
pub const CANCEL: &str = "■ Cancel reach";

/// One labelled row of the settings grid; the widget is named by its label.
fn row(ui: &mut Ui, name: &str, tip: &str, add: impl FnOnce(&mut Ui) -> egui::Response) {
    let label = ui.label(name).on_hover_text(tip);
    add(ui).labelled_by(label.id).on_hover_text(tip);
    ui.end_row();
}

fn fraction(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.3}"))
}

#[derive(Default)]
pub struct ReachPanel;

impl ReachPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.label(RichText::new("NSPGD reach evaluation (§2.3)").heading());
            ui.label(
                RichText::new(
                    "Every source walks toward one fixed target per class; a walk is a hit \
                     when it ends perceptually at the target. Pairs are saved as they finish, \
                     so a cancelled evaluation resumes when started again.",
                )
                .weak(),
            );
            ui.add_space(4.0);
            let busy = state.is_busy();
            ui.add_enabled_ui(!busy, |ui| settings(ui, state));
            walk_line(ui, state);
            controls(ui, state);
            progress(ui, &state.reach);
            results(ui, state);
        });
    }
}

fn settings(ui: &mut Ui, state: &mut AppState) {
    let r = &mut state.reach;
    let mut dialog = None;
    egui::Grid::new("reach settings")
        .num_columns(2)
        .spacing([8.0, 3.0])
        .show(ui, |ui| {
            let label = ui.label("Images").on_hover_text(
                "A labelled set: an ImageFolder tree (DIR/<class>/*.png), a folder with \
                 labels.tsv, or a .safetensors file with `images` U8 [N,H,W,C] and `labels`",
            );
            ui.horizontal(|ui| {
                ui.add(
                    egui::TextEdit::singleline(&mut r.images_text)
                        .desired_width(320.0)
                        .hint_text("ImageFolder, labels.tsv folder or .safetensors"),
                )
                .labelled_by(label.id);
                dialog = dialog.or(labelled_images_buttons(ui, ImagesFor::Reach));
            });
            ui.end_row();
            row(
                ui,
                "Sources per class",
                "The first N images of each class, in data-set order, are the sources; 0 takes \
                 every image (10 000 CIFAR-10 test images make 100 000 pairs).",
                |ui| ui.add(egui::DragValue::new(&mut r.per_class).range(0..=100_000)),
            );
            row(
                ui,
                "Batch",
                "Pairs walked together; cancel lands at the next iteration, and the pairs of \
                 finished batches are on disk.",
                |ui| ui.add(egui::DragValue::new(&mut r.batch).range(1..=1024)),
            );
            row(
                ui,
                "Width sources",
                "The first N sources of each class also measure path widths at iterations 0, \
                 6, …, 54 (256 directions × 6 radii each: costly), for the width summary.",
                |ui| ui.add(egui::DragValue::new(&mut r.width_sources).range(0..=100_000)),
            );
            row(
                ui,
                "Classes",
                "The classes with a fixed target, comma-separated (empty: 0, 1, …, 9). The \
                 model needs at least as many outputs.",
                |ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut r.classes_text)
                            .desired_width(160.0)
                            .hint_text("0,1,…,9"),
                    )
                },
            );
            row(
                ui,
                "Pool model",
                "Another model of a comparison: each target must be classified correctly with \
                 confidence > 0.6 by it too, so both evaluations walk toward the same targets. \
                 Empty, demo:standard, demo:robust, or a checkpoint path.",
                |ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut r.pool_text)
                            .desired_width(220.0)
                            .hint_text("none · demo:robust · checkpoint"),
                    )
                },
            );
            let label = ui.label("Output folder").on_hover_text(
                "Where plan.json, pairs/, reach.json, summary.md and the figures go. Empty: a \
                 folder in the runs folder named after the model, the images and the \
                 settings. A folder that holds this evaluation already is resumed.",
            );
            ui.horizontal(|ui| {
                ui.add(
                    egui::TextEdit::singleline(&mut r.out_text)
                        .desired_width(320.0)
                        .hint_text("automatic, in the runs folder"),
                )
                .labelled_by(label.id);
                if ui
                    .button("Browse…")
                    .on_hover_text("Pick the folder")
                    .clicked()
                {
                    dialog = Some(DialogPurpose::ReachOut);
                }
            });
            ui.end_row();
        });
    if let Some(d) = dialog {
        state.act(Action::Dialog(d));
    }
}

/// What the walk and the hit test will be.
fn walk_line(ui: &mut Ui, state: &AppState) {
    let c = &state.nspgd;
    ui.label(
        RichText::new(format!(
            "Walk: NSPGD, η = {}, {} iterations, τ = {}, seed {} (Parameters, at the left)",
            c.step_size, c.iterations, c.tau, c.seed
        ))
        .weak(),
    );
    let criterion = match &state.reach.plan {
        Some(plan) => plan.criterion,
        None => {
            let lpips = matches!(state.model.lpips, Some(LpipsStatus::Loaded(_)));
            let fits = state
                .spec()
                .is_some_and(|s| lpips_applies([s.channels, s.input_size[0], s.input_size[1]]));
            if lpips && fits {
                HitCriterion::Lpips
            } else {
                HitCriterion::RelativeL2
            }
        }
    };
    let why = match criterion {
        HitCriterion::Lpips => "LPIPS-Alex to the target",
        HitCriterion::RelativeL2 => {
            "no LPIPS weights, or an input LPIPS-Alex does not take: not comparable with \
             LPIPS numbers"
        }
    };
    ui.label(RichText::new(format!("Hit: {} ({why})", criterion.label())).weak());
}

fn controls(ui: &mut Ui, state: &mut AppState) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let running = state.reach.is_running();
        job_buttons(
            ui,
            state,
            JobButtons {
                running,
                start: START,
                cancel: CANCEL,
                start_tip: "Start the evaluation, or resume it in its folder",
                cancel_tip: "Stop at the next iteration; finished pairs are kept and Start resumes",
                start_action: Action::Reach,
            },
        );
        if let Some(out) = state.reach.out.clone()
            && ui
                .button("Open folder")
                .on_hover_text(format!("Show {} in the file manager", out.display()))
                .clicked()
        {
            state.act(Action::OpenFolder(out));
        }
    });
}

fn progress(ui: &mut Ui, r: &ReachState) {
    let (done, total) = r.progress();
    if r.is_running() {
        job_progress(
            ui,
            (done, total),
            "pairs",
            "planning: choosing the targets",
            320.0,
        );
        if let Some((step, iterations, walking)) = r.step {
            ui.label(
                RichText::new(format!(
                    "batch of {walking} pairs: iteration {}/{iterations}",
                    step + 1
                ))
                .weak(),
            );
        }
    }
    if r.resumed > 0 {
        ui.label(
            RichText::new(format!(
                "Resumed: {} pairs were already in the folder",
                r.resumed
            ))
            .weak(),
        );
    }
    let out = r
        .out
        .as_ref()
        .map_or(String::new(), |o| o.display().to_string());
    match r.ended {
        Some(Ended::Complete) => {
            ui.label(format!("Complete: {done} pairs, written to {out}"));
        }
        Some(Ended::Stopped) => {
            ui.label(format!(
                "Stopped at {done} of {total} pairs; Start resumes it from {out}"
            ));
        }
        None => {}
    }
    if let Some(plan) = &r.plan
        && !plan.classes_without_target.is_empty()
    {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "No target for classes {:?} (no image classified correctly with confidence > \
                 0.6): their sources are left out",
                plan.classes_without_target
            ),
        );
    }
}

fn results(ui: &mut Ui, state: &mut AppState) {
    let Some(summary) = state.reach.summary.clone() else {
        return;
    };
    ui.separator();
    ui.label(
        RichText::new(format!(
            "Hit rate ({}), {}",
            summary.criterion.label(),
            summary.model.label()
        ))
        .strong(),
    );
    ui.label(
        RichText::new("row = source class, column = target class")
            .weak()
            .small(),
    );
    let counts = state.reach.valid_counts();
    hit_matrix(ui, &summary, &counts);
    ui.add_space(6.0);
    let t = &summary.table;
    let so_far = if summary.complete() {
        String::new()
    } else {
        format!(
            " (so far: {} of {} pairs)",
            summary.pairs_done, summary.pairs_total
        )
    };
    ui.label(RichText::new(format!("Reach table{so_far}")).strong());
    let at = |th: &str| match summary.criterion {
        HitCriterion::Lpips => format!("reach @{th}"),
        HitCriterion::RelativeL2 => format!("reach @{th} (n/a: relative L2 ≤ 0.05)"),
    };
    egui::Grid::new("reach table")
        .num_columns(2)
        .striped(true)
        .spacing([16.0, 2.0])
        .show(ui, |ui| {
            let rows = [
                ("valid pairs".to_string(), t.valid_pairs.to_string()),
                (
                    "off-diagonal pairs".to_string(),
                    t.off_diagonal_pairs.to_string(),
                ),
                (
                    match summary.criterion {
                        HitCriterion::Lpips => "reach @0.03".into(),
                        HitCriterion::RelativeL2 => "reach (relative L2 ≤ 0.05)".into(),
                    },
                    fraction(t.reach_003),
                ),
                (at("0.02"), fraction(t.reach_002)),
                ("< 0.02 over all valid".into(), fraction(t.frac_lt_002_all)),
                (
                    "median LPIPS".into(),
                    t.median_lpips.map_or("n/a".into(), |v| format!("{v:.4}")),
                ),
                (
                    "mean LPIPS".into(),
                    t.mean_lpips.map_or("n/a".into(), |v| format!("{v:.4}")),
                ),
            ];
            for (name, value) in rows {
                ui.label(name);
                ui.label(RichText::new(value).monospace());
                ui.end_row();
            }
        });
    if !state.reach.figures().is_empty() {
        ui.add_space(4.0);
        export_bar(ui, state, &[(ExportKind::ReachFigures, "Reach figures")]);
    }
}
