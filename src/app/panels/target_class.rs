//! A target *class* instead of a target image: pick one of the model's classes, and the target
//! becomes an image of that class from the data folder (a labelled folder: ImageFolder tree or
//! `labels.tsv`) or, for the demo models, from the gallery. "Next" steps through that class's
//! images in the folder's fixed order.

use std::sync::Arc;

use egui::{RichText, Ui};

use crate::app::state::{Action, AppState};
use crate::app::worker::{ImageSource, Slot};

/// The label of the class picker.
pub const TARGET_CLASS: &str = "Target class";

#[derive(Default)]
pub struct TargetClassPicker {
    folder_text: String,
    class: Option<usize>,
    /// The class's image shown last, so "Next" moves on from it.
    cursor: usize,
}

impl TargetClassPicker {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState) {
        let Some(spec) = state.spec().cloned() else {
            return;
        };
        let busy = state.is_busy();
        ui.horizontal_wrapped(|ui| {
            let label = ui.label(TARGET_CLASS);
            let selected = self.class.filter(|c| *c < spec.num_classes()).map_or_else(
                || "pick a class…".to_string(),
                |c| spec.class_name(c).to_string(),
            );
            let before = self.class;
            egui::ComboBox::from_id_salt("target class")
                .selected_text(selected)
                .truncate()
                .width(150.0)
                .height(320.0)
                .show_ui(ui, |ui| {
                    for c in 0..spec.num_classes() {
                        ui.selectable_value(&mut self.class, Some(c), spec.class_name(c));
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text(
                    "Make the target an image of this class, from the data folder below (or the \
                     gallery for the demo models)",
                );
            if self.class != before {
                self.cursor = 0;
                self.pick(state);
            }
            if ui
                .add_enabled(!busy && self.class.is_some(), egui::Button::new("Next"))
                .on_hover_text("The next image of this class")
                .clicked()
            {
                self.cursor += 1;
                self.pick(state);
            }
        });
        ui.horizontal(|ui| {
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.folder_text)
                    .hint_text("data folder (labelled images)")
                    .desired_width((ui.available_width() - 84.0).max(60.0)),
            );
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (enter || ui.button("Read").clicked()) && !self.folder_text.trim().is_empty() {
                state.act(Action::ReadDataFolder(self.folder_text.trim().into()));
            }
        });
        match &state.data_folder {
            Some(data) => {
                ui.label(
                    RichText::new(format!(
                        "{}: {} labelled images",
                        data.0.display(),
                        data.1.images.len()
                    ))
                    .small()
                    .weak(),
                );
            }
            None if state.demo().is_none() => {
                ui.label(
                    RichText::new("Read a labelled folder to pick targets by class.")
                        .small()
                        .weak(),
                );
            }
            None => {}
        }
    }

    /// Picks the class's image at the cursor (wrapping), or says why there is none.
    fn pick(&mut self, state: &mut AppState) {
        let Some(class) = self.class else {
            return;
        };
        let candidates = class_images(state, class);
        if candidates.is_empty() {
            let name = state
                .spec()
                .map_or_else(String::new, |s| s.class_name(class).to_string());
            state.error(
                format!("No image of class {name}"),
                "Read a labelled data folder (ImageFolder tree or labels.tsv) that has this class",
            );
            return;
        }
        self.cursor %= candidates.len();
        let source = candidates[self.cursor].clone();
        state.act(Action::PickImage(Slot::Target, source));
    }
}

/// The images of `class`: the data folder's, else (for a demo model) the gallery's.
pub fn class_images(state: &AppState, class: usize) -> Vec<ImageSource> {
    if let Some(data) = &state.data_folder {
        let found: Vec<ImageSource> = data
            .1
            .images
            .iter()
            .filter(|i| i.label == class)
            .map(|i| ImageSource::File(i.path.clone()))
            .collect();
        if !found.is_empty() {
            return found;
        }
    }
    let Some(spec) = state.spec() else {
        return Vec::new();
    };
    if state.demo().is_none() {
        return Vec::new();
    }
    // Gallery images are named <class>_<n>.
    let name = spec.class_name(class);
    crate::demo::gallery()
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| n.rsplit_once('_').is_some_and(|(c, _)| c == name))
        .map(|n| ImageSource::Gallery(n.to_string()))
        .collect()
}

/// A labelled data folder as read for the class picker.
pub type DataFolder = Arc<(std::path::PathBuf, crate::images::Dataset)>;
