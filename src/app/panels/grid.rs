//! The all-pairs grid (§1.3 examples mode, §1.9): 3-5 images, each traversed toward every
//! other in one batch; cell (row i, column j) is source j's output toward target i.

use egui::{RichText, Ui};

use crate::app::background::DialogPurpose;
use crate::app::state::{Action, AppState, ExportKind};
use crate::app::textures::Textures;
use crate::app::worker::ImageSource;

use super::images::decode_png;
use super::{Pixels, conf, export_bar, image_card};

#[derive(Default)]
pub struct GridPanel;

pub const MIN_IMAGES: usize = 3;
pub const MAX_IMAGES: usize = 5;

impl GridPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState, textures: &mut Textures) {
        let busy = state.is_busy();
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Images").strong());
            let mut remove = None;
            for (k, source) in state.grid.images.iter().enumerate() {
                ui.group(|ui| {
                    if let ImageSource::Gallery(name) = source
                        && let Some((_, bytes)) =
                            crate::demo::gallery().iter().find(|(n, _)| n == name)
                    {
                        let t = textures
                            .get(ui.ctx(), &format!("gallery {name}"), || decode_png(bytes));
                        ui.add(egui::Image::new((t.id(), egui::vec2(28.0, 28.0))));
                    }
                    ui.label(source.label());
                    if ui
                        .add_enabled(!busy, egui::Button::new("✕").small())
                        .on_hover_text(format!("Remove {} from the grid", source.label()))
                        .clicked()
                    {
                        remove = Some(k);
                    }
                });
            }
            if let Some(k) = remove {
                state.grid.images.remove(k);
            }
        });
        let full = state.grid.images.len() >= MAX_IMAGES;
        ui.horizontal(|ui| {
            ui.add_enabled_ui(!busy && !full, |ui| {
                ui.menu_button("Add from gallery ▾", |ui| {
                    for (name, _) in crate::demo::gallery() {
                        if ui.button(*name).clicked() {
                            state.grid.images.push(ImageSource::Gallery((*name).into()));
                            ui.close();
                        }
                    }
                });
                if ui.button("Add file…").clicked() {
                    state.act(Action::Dialog(DialogPurpose::GridImage));
                }
                let field = ui.add(
                    egui::TextEdit::singleline(&mut state.grid.add_text)
                        .hint_text("path or gallery:NAME")
                        .desired_width(180.0),
                );
                let field = field.on_hover_text("Add this image to the grid (Enter)");
                if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    let text = state.grid.add_text.trim().to_string();
                    if !text.is_empty() {
                        state.grid.images.push(ImageSource::parse(&text));
                        state.grid.add_text.clear();
                    }
                }
            });
            let n = state.grid.images.len();
            let ok = (MIN_IMAGES..=MAX_IMAGES).contains(&n) && state.spec().is_some();
            let lst_only = state.lst_only_reason();
            let run = ui
                .add_enabled(
                    !busy && ok && lst_only.is_none(),
                    egui::Button::new(RichText::new("▶ Run grid").strong()),
                )
                .on_hover_text(format!(
                    "{} LST traversals in one batch, with the current parameters",
                    n * n.saturating_sub(1)
                ))
                .on_disabled_hover_text(lst_only.unwrap_or("Pick 3 to 5 images"));
            if run.clicked() {
                state.act(Action::Grid);
            }
        });
        if let Some((step, total)) = state.grid.progress {
            ui.add(
                egui::ProgressBar::new(step as f32 / total.max(1) as f32)
                    .text(format!("step {step} of {total}")),
            );
        }
        let Some((grid, model)) = &state.grid.result else {
            ui.add_space(20.0);
            ui.label(
                RichText::new(
                    "Every image is traversed toward every other. Row = target, column = \
                     source; the diagonal shows the images themselves.",
                )
                .weak(),
            );
            return;
        };
        let k = grid.k;
        let cell = ((ui.available_width() - 120.0) / k as f32)
            .min((ui.available_height() - 80.0) / (k as f32 + 0.6))
            .clamp(48.0, 200.0);
        egui::Grid::new("pairs grid")
            .spacing([6.0, 6.0])
            .show(ui, |ui| {
                ui.label(RichText::new("target ↓ · source →").weak().small());
                for j in 0..k {
                    ui.label(RichText::new(&grid.class_names[j]).strong());
                }
                ui.end_row();
                for i in 0..k {
                    ui.label(RichText::new(&grid.class_names[i]).strong());
                    for j in 0..k {
                        match &grid.outputs[i][j] {
                            Some((pixels, p)) => {
                                image_card(
                                    ui,
                                    textures,
                                    Pixels {
                                        key: &format!("grid {model} {i} {j}"),
                                        data: pixels,
                                        shape: grid.shape,
                                    },
                                    cell,
                                    &format!("p({}) = {}", grid.class_names[j], conf(*p)),
                                    None,
                                );
                            }
                            None => {
                                ui.label(RichText::new("skipped").weak());
                            }
                        }
                    }
                    ui.end_row();
                }
            });
        export_bar(ui, state, &[(ExportKind::Grid, "Grid figure")]);
    }
}
