//! The model panel: the two demo models one click apart, any checkpoint by dialog, drop, path
//! or the recent list, and what the loader found out about the model.

use egui::{RichText, Ui};

use crate::app::background::DialogPurpose;
use crate::app::state::{Action, AppState};
use crate::app::worker::{LpipsStatus, ModelSource};
use crate::demo::DemoModel;

#[derive(Default)]
pub struct ModelPanel {
    path_text: String,
}

impl ModelPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState) {
        ui.heading("Model");
        let busy = state.is_busy();
        ui.horizontal(|ui| {
            for demo in DemoModel::ALL {
                let selected = state.demo() == Some(demo);
                let label = match demo {
                    DemoModel::Standard => "Demo standard",
                    DemoModel::Robust => "Demo robust",
                };
                let tip = match demo {
                    DemoModel::Standard => {
                        "CIFAR ResNet-8 trained on blindspot's synthetic shapes (embedded)"
                    }
                    DemoModel::Robust => {
                        "The same network adversarially trained (L2 PGD), embedded: its \
                         high-confidence region covers more of the hull"
                    }
                };
                let button = ui.add_enabled(!busy, egui::Button::selectable(selected, label));
                if button.on_hover_text(tip).clicked() && !selected {
                    state.act(Action::LoadModel(ModelSource::Demo(demo)));
                }
            }
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!busy, egui::Button::new("Open checkpoint…"))
                .on_hover_text(
                    "safetensors, PyTorch .pth (zip or legacy); or drop a file on the window",
                )
                .clicked()
            {
                state.act(Action::Dialog(DialogPurpose::Model));
            }
            if !state.recent_models.is_empty() {
                egui::ComboBox::from_id_salt("recent models")
                    .selected_text("Recent")
                    .width(70.0)
                    .show_ui(ui, |ui| {
                        for path in state.recent_models.clone() {
                            let name = path.display().to_string();
                            if ui.selectable_label(false, name.clone()).clicked() && !busy {
                                // The path box shows what was picked, not an older typed path
                                // that Load would otherwise load instead.
                                self.path_text = name;
                                state.act(Action::LoadModel(ModelSource::File(path)));
                            }
                        }
                    })
                    .response
                    .on_hover_text("Recent checkpoints");
            }
        });
        ui.horizontal(|ui| {
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.path_text)
                    .hint_text("checkpoint path")
                    .desired_width((ui.available_width() - 64.0).max(60.0)),
            );
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let load = ui
                .add_enabled(
                    !busy && !self.path_text.trim().is_empty(),
                    egui::Button::new("Load"),
                )
                .on_hover_text("Load the checkpoint at this path");
            if (enter || load.clicked()) && !self.path_text.trim().is_empty() && !busy {
                let path = std::path::PathBuf::from(self.path_text.trim());
                state.act(Action::LoadModel(ModelSource::File(path)));
            }
        });
        if let Some(loading) = &state.model.loading {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("loading {}", loading.label()));
            });
        }
        let Some((source, spec)) = state.model.loaded.clone() else {
            ui.weak("no model loaded");
            return;
        };
        egui::Grid::new("model info")
            .num_columns(2)
            .spacing([8.0, 2.0])
            .show(ui, |ui| {
                let row = |ui: &mut Ui, key: &str, value: String, tip: &str| {
                    ui.weak(key);
                    let r = ui.label(value);
                    if !tip.is_empty() {
                        r.on_hover_text(tip);
                    }
                    ui.end_row();
                };
                row(
                    ui,
                    "weights",
                    source.label(),
                    &format!("sha256 {}", short_hash(&spec.weights_sha256)),
                );
                row(
                    ui,
                    "architecture",
                    spec.architecture.clone(),
                    &format!("from {}", spec.provenance.architecture),
                );
                row(
                    ui,
                    "input",
                    format!(
                        "{}×{} × {} ch",
                        spec.input_size[1], spec.input_size[0], spec.channels
                    ),
                    &format!("from {}; {:?}", spec.provenance.input_size, spec.preprocess),
                );
                row(
                    ui,
                    "normalise",
                    format!(
                        "mean {} std {}",
                        list(&spec.normalization.mean),
                        list(&spec.normalization.std)
                    ),
                    &format!("from {}", spec.provenance.normalization),
                );
                row(
                    ui,
                    "classes",
                    format!("{}", spec.num_classes()),
                    &format!(
                        "{} (from {})",
                        spec.class_names
                            .iter()
                            .take(12)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                        spec.provenance.class_names
                    ),
                );
                if let Some((value, tip)) = lpips_row(state.model.lpips.as_ref()) {
                    row(ui, "LPIPS", value, &tip);
                }
            });
        if busy {
            let paused = state.job.as_ref().is_some_and(|j| j.is_paused());
            let what = if paused {
                "a job is paused: the model is locked until it ends"
            } else {
                "a job is running: the model is locked"
            };
            ui.label(RichText::new(what).weak().small());
        }
    }
}

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn list(values: &[f32]) -> String {
    let all_same = values.windows(2).all(|w| w[0] == w[1]);
    if all_same {
        values
            .first()
            .map_or_else(String::new, |v| format!("{v:.3}"))
    } else {
        values
            .iter()
            .map(|v| format!("{v:.3}"))
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Where Table 1's LPIPS column comes from, or why it reads n/a: (value, tooltip).
fn lpips_row(status: Option<&LpipsStatus>) -> Option<(String, String)> {
    Some(match status? {
        LpipsStatus::Loaded(path) => (
            "Alex v0.1".to_string(),
            format!("Table 1's LPIPS column uses {}", path.display()),
        ),
        LpipsStatus::Missing => (
            "n/a (no weights)".to_string(),
            "Start with --lpips PATH, set $BLINDSPOT_LPIPS, or put lpips_alex.safetensors in the \
             data folder; the README says how to build the file."
                .to_string(),
        ),
        LpipsStatus::Failed(error) => ("n/a (bad weights)".to_string(), error.clone()),
    })
}
