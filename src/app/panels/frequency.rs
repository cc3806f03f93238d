//! The Frequency tab: decision-boundary margins in DCT frequency subspaces (§4, "Hold me
//! tight"). Model A is the loaded model; models B and C (optional) are overlaid on the same
//! samples, each with an optional input transform. The margin plot fills subspace by subspace
//! while DeepFool runs; the margin table is below it, and a clicked point shows its sample and
//! minimal perturbation. Exports write the folder `blindspot margins` writes.

use egui::{RichText, Ui};

use crate::analysis::frequency::margins::significant;
use crate::app::background::ImagesFor;
use crate::app::frequency_state::{Ended, FrequencyState};
use crate::app::state::{Action, AppState, ExportKind};
use crate::app::textures::Textures;

use super::frequency_plot::{MODEL_COLOURS, MarginPlot, PointView};
use super::model_choice::ModelChoice;
use super::{JobButtons, export_bar, job_buttons, job_progress, labelled_images_buttons};

pub const START: &str = "▶ Start margins";
pub const CANCEL: &str = "■ Cancel margins";
pub const FOLDER_HINT: &str = "ImageFolder, labels.tsv folder or .safetensors";
pub const TRANSFORM_HINT: &str = "none, flip, lowpass:16, …";
pub const TABLE_HEADING: &str = "Margin table";
pub const LOG_SCALE: &str = "Log scale";

/// One labelled row of the settings grid; the widget is named by its label.
fn row(ui: &mut Ui, name: &str, tip: &str, add: impl FnOnce(&mut Ui) -> egui::Response) {
    let label = ui.label(name).on_hover_text(tip);
    add(ui).labelled_by(label.id).on_hover_text(tip);
    ui.end_row();
}

/// A transform field, named for tests and screen readers ("Transform A").
fn transform_field(ui: &mut Ui, name: &str, text: &mut String) {
    let label = ui.label(name);
    ui.add(
        egui::TextEdit::singleline(text)
            .desired_width(170.0)
            .hint_text(TRANSFORM_HINT),
    )
    .labelled_by(label.id)
    .on_hover_text(
        "A frequency transform in front of this model (§4.3): flip swaps low and high \
         frequencies; lowpass:B / highpass:B keep a B×B corner of the DCT; cutlow:B zeroes \
         the low B×B. Empty: none.",
    );
}

#[derive(Default)]
pub struct FrequencyPanel {
    pub model_b: ModelChoice,
    pub model_c: ModelChoice,
    pub plot: MarginPlot,
    pub point: PointView,
}

impl FrequencyPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState, textures: &mut Textures) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.label(RichText::new("Frequency margins (§4, \"Hold me tight\")").heading());
            ui.label(
                RichText::new(
                    "How far each sample is from the decision boundary when the perturbation \
                     may only use one K×K block of DCT frequencies, swept from low to high: \
                     subspace DeepFool on Ns seeded samples. Large margins in a band mean the \
                     model is nearly invariant to it.",
                )
                .weak(),
            );
            ui.add_space(4.0);
            let busy = state.is_busy();
            ui.add_enabled_ui(!busy, |ui| self.settings(ui, state));
            controls(ui, state);
            progress(ui, &state.frequency);
            let f = &mut state.frequency;
            if f.plan.is_some() {
                ui.checkbox(&mut f.log_scale, LOG_SCALE)
                    .on_hover_text("Log-scale y axis (also used by the exported plot)");
                let height = (ui.available_height() * 0.55).clamp(260.0, 420.0);
                self.plot.ui(ui, f, height);
                ui.add_space(4.0);
                self.point.ui(ui, f, textures);
                ui.add_space(6.0);
                table(ui, f);
                ui.add_space(6.0);
                export_bar(
                    ui,
                    state,
                    &[
                        (ExportKind::FrequencyRecord, "Margin record"),
                        (ExportKind::FrequencyPlot, "Margin plot"),
                    ],
                );
            }
        });
    }

    fn settings(&mut self, ui: &mut Ui, state: &mut AppState) {
        let model_a = state
            .spec()
            .map_or_else(|| "no model loaded".to_string(), |s| s.short_name());
        ui.horizontal(|ui| {
            ui.label(format!("Model A (loaded): {model_a}"));
            transform_field(ui, "Transform A", &mut state.frequency.transform_text[0]);
        });
        // The pickers read the recent checkpoints from the state, so they hold their own copy
        // of the choice and hand it over afterwards.
        for (k, (choice, name)) in [
            (&mut self.model_b, "Model B"),
            (&mut self.model_c, "Model C"),
        ]
        .into_iter()
        .enumerate()
        {
            ui.horizontal(|ui| {
                choice.ui(ui, name, state);
                let transform = if k == 0 { "Transform B" } else { "Transform C" };
                transform_field(ui, transform, &mut state.frequency.transform_text[k + 1]);
            });
            state.frequency.extra[k] = choice.source.clone();
        }
        let mut dialog = None;
        let f = &mut state.frequency;
        egui::Grid::new("frequency settings")
            .num_columns(2)
            .spacing([8.0, 3.0])
            .show(ui, |ui| {
                let label = ui.label("Images").on_hover_text(
                    "The embedded gallery of demo shapes, or a labelled set: an ImageFolder \
                     tree (DIR/<class>/*.png), a folder with labels.tsv, or a .safetensors \
                     file with `images` U8 [N,H,W,C] and `labels` (as blindspot margins).",
                );
                ui.horizontal(|ui| {
                    ui.radio_value(&mut f.use_gallery, true, "Gallery")
                        .labelled_by(label.id);
                    ui.radio_value(&mut f.use_gallery, false, "Folder");
                    let field = ui.add_enabled(
                        !f.use_gallery,
                        egui::TextEdit::singleline(&mut f.folder_text)
                            .desired_width(300.0)
                            .hint_text(FOLDER_HINT),
                    );
                    if field.changed() {
                        f.use_gallery = false;
                    }
                    dialog = labelled_images_buttons(ui, ImagesFor::Frequency);
                });
                ui.end_row();
                row(
                    ui,
                    "Samples",
                    "Ns: images drawn without replacement (the first Ns of a seeded \
                     permutation), the same for every model",
                    |ui| ui.add(egui::DragValue::new(&mut f.samples).range(1..=10_000)),
                );
                row(
                    ui,
                    "Seed",
                    "Seed of the sample draw and the plot jitter",
                    |ui| ui.add(egui::DragValue::new(&mut f.seed)),
                );
                row(
                    ui,
                    "Overshoot",
                    "DeepFool overshoot os: the label check uses x + (1+os)·r, and the margin \
                     is ‖(1+os)·r‖",
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut f.overshoot)
                                .range(0.0..=1.0)
                                .speed(0.005),
                        )
                    },
                );
                row(
                    ui,
                    "Max iterations",
                    "DeepFool iterations before a sample counts as MaxIter (drawn hollow)",
                    |ui| ui.add(egui::DragValue::new(&mut f.max_iter).range(1..=10_000)),
                );
                row(
                    ui,
                    "Batch",
                    "Samples per DeepFool batch; cancel lands at the next batch",
                    |ui| ui.add(egui::DragValue::new(&mut f.batch).range(1..=1024)),
                );
            });
        if let Some(d) = dialog {
            state.act(Action::Dialog(d));
        }
    }
}

fn controls(ui: &mut Ui, state: &mut AppState) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let running = state.frequency.is_running();
        job_buttons(
            ui,
            state,
            JobButtons {
                running,
                start: START,
                cancel: CANCEL,
                start_tip: "Measure the margins of every chosen model on the same samples",
                cancel_tip: "Stop after the current batch; finished subspaces stay shown",
                start_action: Action::Frequency,
            },
        );
    });
}

fn progress(ui: &mut Ui, f: &FrequencyState) {
    let (done, total) = f.progress();
    if f.is_running() {
        job_progress(
            ui,
            (done, total),
            "sample-subspaces",
            "loading the models and samples",
            320.0,
        );
    }
    let plan = f.plan.map(|p| {
        format!(
            "{} subspaces of {}×{} DCT coefficients at step {} ({}×{} input)",
            p.count, p.band, p.band, p.step, p.size, p.size
        )
    });
    if let Some(plan) = plan {
        let n = f.sample_data.as_ref().map_or(0, |s| s.pixels.len());
        ui.label(RichText::new(format!("{plan}, {n} samples")).weak());
    }
    match f.ended {
        Some(Ended::Complete) => {
            let times: Vec<String> = f
                .measured
                .iter()
                .filter_map(|m| m.seconds.map(|s| format!("{} {s:.1} s", m.model.label)))
                .collect();
            ui.label(format!("Complete: {}", times.join(", ")));
        }
        Some(Ended::Stopped) => {
            ui.label(format!(
                "Stopped at {done} of {total} sample-subspaces; the finished subspaces are shown"
            ));
        }
        Some(Ended::Failed) | None => {}
    }
}

/// The margin table of every model: median, quartiles and status counts per subspace.
fn table(ui: &mut Ui, f: &FrequencyState) {
    ui.label(RichText::new(TABLE_HEADING).strong());
    egui::Grid::new("frequency table")
        .striped(true)
        .num_columns(8)
        .spacing([14.0, 2.0])
        .show(ui, |ui| {
            for h in [
                "model",
                "s",
                "i0",
                "median",
                "Q1",
                "Q3",
                "#MaxIter",
                "#Degenerate",
            ] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for (m, measured) in f.measured.iter().enumerate() {
                let colour = MODEL_COLOURS[m % MODEL_COLOURS.len()];
                for sub in &measured.distribution.subspaces {
                    let r = &sub.summary;
                    ui.label(RichText::new(&measured.model.label).color(colour));
                    ui.label(r.s.to_string());
                    ui.label(r.i0.to_string());
                    ui.label(significant(r.median));
                    ui.label(significant(r.q1));
                    ui.label(significant(r.q3));
                    ui.label(r.max_iter.to_string());
                    ui.label(r.degenerate.to_string());
                    ui.end_row();
                }
            }
        });
}
