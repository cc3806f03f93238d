//! Compare mode's controls: model B in the side panel, and the "Compare with" picker of the
//! traversal and widths views (one pick, shared, so both views compare the same two runs).

use std::sync::Arc;

use egui::{RichText, Ui};

use crate::app::compare::ComparePick;
use crate::app::state::AppState;
use crate::app::worker::FinishedRun;

use super::model_choice::ModelChoice;
use super::width_compare::run_label;

/// The side panel's picker of model B.
pub const SECOND_MODEL: &str = "Second model";
/// The picker's entry for showing the newest run of the same pair on another model.
pub const AUTO_COMPARISON: &str = "same pair, other model (auto)";
/// The picker's entry for showing the shown run alone.
pub const NO_COMPARISON: &str = "none (this run alone)";

/// Model B, in the side panel.
#[derive(Default)]
pub struct ComparePanel {
    model_b: ModelChoice,
}

impl ComparePanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState) {
        // A choice made elsewhere (a test, a restored session) shows here too.
        if self.model_b.source != state.compare.model_b {
            self.model_b = ModelChoice::new(state.compare.model_b.clone());
        }
        // One row under the model: the side panel keeps room for the images and parameters.
        if self.model_b.ui(ui, SECOND_MODEL, state) {
            state.compare.model_b = self.model_b.source.clone();
            state.compare.model_b_sha = None;
        }
        if state.compare.model_b.is_some() {
            ui.label(
                RichText::new(
                    "Run and “Run both + hull” also run on the second model; the views show both.",
                )
                .weak()
                .small(),
            );
        }
    }
}

/// "Compare with": auto (the same pair on another model), none, or any other finished run.
pub fn comparison_picker(ui: &mut Ui, state: &mut AppState, shown: &Arc<FinishedRun>) {
    let current = state.comparison_for(shown);
    ui.horizontal(|ui| {
        let label = ui.label("Compare with");
        let selected = match (&state.compare.pick, &current) {
            (ComparePick::Off, _) => NO_COMPARISON.to_string(),
            (ComparePick::Auto, Some(r)) => format!("auto: {}", run_label(r)),
            (ComparePick::Auto, None) => AUTO_COMPARISON.to_string(),
            (ComparePick::Run(_), Some(r)) => run_label(r),
            (ComparePick::Run(_), None) => NO_COMPARISON.to_string(),
        };
        let mut pick = None;
        egui::ComboBox::from_id_salt("compare with")
            .selected_text(selected)
            .truncate()
            .width((ui.available_width() - 8.0).clamp(160.0, 480.0))
            .show_ui(ui, |ui| {
                let auto = matches!(state.compare.pick, ComparePick::Auto);
                if ui.selectable_label(auto, AUTO_COMPARISON).clicked() {
                    pick = Some(ComparePick::Auto);
                }
                let off = matches!(state.compare.pick, ComparePick::Off);
                if ui.selectable_label(off, NO_COMPARISON).clicked() {
                    pick = Some(ComparePick::Off);
                }
                for run in state.runs.iter().filter(|r| !Arc::ptr_eq(r, shown)) {
                    let picked =
                        matches!(&state.compare.pick, ComparePick::Run(c) if Arc::ptr_eq(c, run));
                    if ui.selectable_label(picked, run_label(run)).clicked() {
                        pick = Some(ComparePick::Run(run.clone()));
                    }
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text(
                "The run shown beside this one: by default the newest run of the same pair on \
                 another model (pick model B, left, and Run makes it). Open older runs from the \
                 History tab to pick them.",
            );
        if let Some(p) = pick {
            state.compare.pick = p;
        }
    });
}
