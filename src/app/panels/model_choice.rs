//! Picking a second (or third) model for a comparing view: the demo models, the recent
//! checkpoints, or a typed path. The worker loads the choice for the job
//! (`Worker::comparison_model`), so the main model stays as it is.

use egui::Ui;

use crate::app::state::AppState;
use crate::app::worker::ModelSource;
use crate::demo::DemoModel;

/// A model choice that may be empty ("none").
#[derive(Default)]
pub struct ModelChoice {
    pub source: Option<ModelSource>,
    path_text: String,
}

/// A source as a short name: the demo label or the file name.
pub fn short_label(source: &ModelSource) -> String {
    match source {
        ModelSource::Demo(demo) => demo.label().to_string(),
        ModelSource::File(path) => path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    }
}

impl ModelChoice {
    pub fn new(source: Option<ModelSource>) -> Self {
        Self {
            source,
            path_text: String::new(),
        }
    }

    /// The picker: a combo box (none, demo models, recent checkpoints) and a path field.
    /// `label` names it for the user and for tests ("Model B"). True when the choice changed.
    pub fn ui(&mut self, ui: &mut Ui, label: &str, state: &AppState) -> bool {
        let before = self.source.clone();
        // Wrapped: in the narrow side panel the path field goes to a second line.
        ui.horizontal_wrapped(|ui| {
            let name = ui.label(label);
            let selected = self
                .source
                .as_ref()
                .map_or_else(|| "none".to_string(), short_label);
            egui::ComboBox::from_id_salt(("model choice", label))
                .selected_text(selected)
                .truncate()
                .width(160.0)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.source, None, "none");
                    for demo in DemoModel::ALL {
                        ui.selectable_value(
                            &mut self.source,
                            Some(ModelSource::Demo(demo)),
                            demo.label(),
                        );
                    }
                    for path in &state.recent_models {
                        let source = ModelSource::File(path.clone());
                        let text = short_label(&source);
                        ui.selectable_value(&mut self.source, Some(source), text)
                            .on_hover_text(path.display().to_string());
                    }
                })
                .response
                .labelled_by(name.id)
                .on_hover_text("A model to compare with: a demo model or a recent checkpoint");
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.path_text)
                    .hint_text("or a checkpoint path")
                    .desired_width(140.0),
            );
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let typed = self.path_text.trim();
            if (enter
                || ui
                    .add_enabled(!typed.is_empty(), egui::Button::new("Use"))
                    .clicked())
                && !typed.is_empty()
            {
                self.source = Some(ModelSource::File(typed.into()));
                self.path_text.clear();
            }
        });
        self.source != before
    }
}
