//! The run history: every run saved in the platform data folder, newest first, to open again
//! or delete (with a confirmation). Runs stay until deleted here.

use egui::{RichText, Ui};

use crate::app::background::DialogPurpose;
use crate::app::state::{Action, AppState};

#[derive(Default)]
pub struct HistoryPanel {
    path_text: String,
    /// Words every listed row must contain.
    filter: String,
}

impl HistoryPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState, root: Option<&std::path::Path>) {
        if !state.history.loaded_once {
            state.history.loaded_once = true;
            state.act(Action::RefreshHistory);
        }
        ui.horizontal_wrapped(|ui| {
            match root {
                Some(r) => ui.label(format!("Saved in {}", r.display())),
                None => ui.label(RichText::new("No history folder (runs are not saved)").weak()),
            };
            if ui
                .button("Refresh")
                .on_hover_text("Read the history folder again")
                .clicked()
            {
                state.act(Action::RefreshHistory);
            }
            if ui
                .button("Open run folder…")
                .on_hover_text("Open any run folder (with run.json), e.g. one the CLI wrote")
                .clicked()
            {
                state.act(Action::Dialog(DialogPurpose::Run));
            }
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.path_text)
                    .hint_text("run folder path")
                    .desired_width(220.0),
            );
            let field = field.on_hover_text("Open the run folder at this path (Enter)");
            if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                let p = self.path_text.trim();
                if !p.is_empty() {
                    state.act(Action::OpenRun(p.into()));
                }
            }
        });
        ui.separator();
        if let Some(dir) = state.history.confirm_delete.clone() {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(format!("Delete {} for good?", dir.display()));
                ui.horizontal(|ui| {
                    if ui.button("Delete").clicked() {
                        state.history.confirm_delete = None;
                        state.act(Action::DeleteRun(dir.clone()));
                    }
                    if ui.button("Keep").clicked() {
                        state.history.confirm_delete = None;
                    }
                });
            });
        }
        for p in &state.history.problems {
            ui.label(
                RichText::new(format!("{}: {}", p.dir.display(), p.reason))
                    .small()
                    .color(ui.visuals().warn_fg_color),
            );
        }
        if state.history.entries.is_empty() {
            ui.label(RichText::new("No saved runs yet.").weak());
            return;
        }
        if let Some(dir) = state.history.last_deleted.clone() {
            ui.horizontal(|ui| {
                let name = dir
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                ui.label(format!("Deleted {name}."));
                if ui
                    .button("Undo delete")
                    .on_hover_text("Bring the run back (possible until the app closes)")
                    .clicked()
                {
                    state.act(Action::UndoDelete(dir.clone()));
                }
            });
        }
        ui.horizontal(|ui| {
            let label = ui.label("Filter");
            ui.add(
                egui::TextEdit::singleline(&mut self.filter)
                    .hint_text("model, image, class or walk")
                    .desired_width(260.0),
            )
            .labelled_by(label.id)
            .on_hover_text("Show only runs whose row contains all these words");
        });
        let words: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let now = std::time::SystemTime::now();
        let mut open = None;
        let mut delete = None;
        // Both ways: at 1024 px the columns scroll instead of pushing the buttons off-screen
        // (the buttons come first, too).
        egui::ScrollArea::both().show(ui, |ui| {
            egui::Grid::new("history")
                .striped(true)
                .num_columns(9)
                .spacing([12.0, 4.0])
                .show(ui, |ui| {
                    for h in [
                        "",
                        "when",
                        "source → target",
                        "classes",
                        "model",
                        "walk",
                        "status",
                        "L2 to target",
                        "time",
                    ] {
                        ui.label(RichText::new(h).strong());
                    }
                    ui.end_row();
                    for entry in &state.history.entries {
                        let r = &entry.record;
                        let name = |p: &str| crate::app::worker::ImageSource::parse(p).label();
                        let pair = format!("{} → {}", name(&r.source.path), name(&r.target.path));
                        let classes = format!("{} → {}", r.source.class_name, r.target.class_name);
                        let model = format!("{} ({})", r.model.short_name(), r.model.architecture);
                        let method = r.config.method();
                        let walk = format!(
                            "{} · {} it · {} {}",
                            method.name(),
                            r.config.iterations(),
                            method.threshold_symbol(),
                            r.config.threshold()
                        );
                        let row = format!("{pair} {classes} {model} {walk}").to_lowercase();
                        if !words.iter().all(|w| row.contains(w.as_str())) {
                            continue;
                        }
                        ui.horizontal(|ui| {
                            if ui
                                .button("Open")
                                .on_hover_text(entry.dir.display().to_string())
                                .clicked()
                            {
                                open = Some(entry.dir.clone());
                            }
                            if ui
                                .button("Delete…")
                                .on_hover_text("Delete this run")
                                .clicked()
                            {
                                delete = Some(entry.dir.clone());
                            }
                        });
                        let when =
                            std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.created_unix);
                        let ago = now
                            .duration_since(when)
                            .map_or_else(|_| "just now".to_string(), |d| ago(d.as_secs()));
                        ui.label(ago)
                            .on_hover_text(humantime::format_rfc3339_seconds(when).to_string());
                        ui.add(egui::Label::new(pair).truncate())
                            .on_hover_text(format!("{}\n{}", r.source.path, r.target.path));
                        ui.label(classes);
                        ui.label(model).on_hover_text(&r.model.weights_path);
                        ui.label(walk);
                        ui.label(r.status.label());
                        ui.label(
                            r.final_output
                                .as_ref()
                                .map_or("–".into(), |f| format!("{:.4}", f.l2_normalized)),
                        );
                        ui.label(crate::app::panels::status::seconds(r.timing.seconds));
                        ui.end_row();
                    }
                });
        });
        if let Some(dir) = open {
            state.act(Action::OpenRun(dir));
        }
        if let Some(dir) = delete {
            state.history.confirm_delete = Some(dir);
        }
    }
}

fn ago(secs: u64) -> String {
    match secs {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}
