//! Source and target: each shown as the model sees it (after resize and crop) with its top-3
//! predictions, picked from the gallery, a file dialog, a pasted path or a dropped file.

use egui::{RichText, Ui};

use crate::app::background::DialogPurpose;
use crate::app::state::{Action, AppState};
use crate::app::textures::Textures;
use crate::app::worker::{ImageSource, Slot};

use super::{conf, placeholder};

/// Side of the thumbnails in the side panel, in points.
const THUMB: f32 = 84.0;

#[derive(Default)]
pub struct ImagesPanel {
    /// Where each card was last drawn, so a dropped file can go to the card it lands on.
    pub source_rect: Option<egui::Rect>,
    target_class: super::target_class::TargetClassPicker,
}

impl ImagesPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState, textures: &mut Textures) {
        ui.heading("Images");
        let source = image_slot(ui, state, textures, Slot::Source, "Source");
        self.source_rect = Some(source);
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!state.is_busy(), egui::Button::new("⇄ Swap"))
                .on_hover_text("Swap source and target")
                .clicked()
            {
                state.act(Action::SwapImages);
            }
        });
        image_slot(ui, state, textures, Slot::Target, "Target");
        egui::CollapsingHeader::new("Target by class")
            .default_open(false)
            .show(ui, |ui| self.target_class.ui(ui, state));
    }
}

/// One image card; returns the rect it covers.
pub fn image_slot(
    ui: &mut Ui,
    state: &mut AppState,
    textures: &mut Textures,
    slot: Slot,
    title: &str,
) -> egui::Rect {
    let frame = egui::Frame::group(ui.style()).inner_margin(6.0);
    frame
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            let s = state.slot(slot).clone();
            ui.horizontal(|ui| {
                match &s.preview {
                    Some(p) => {
                        let key = format!("preview {slot:?} {}", s.request);
                        let texture = textures.get(ui.ctx(), &key, || {
                            crate::app::textures::color_image(&p.pixels, p.shape)
                        });
                        ui.add(egui::Image::new((texture.id(), egui::vec2(THUMB, THUMB))))
                            .on_hover_text(format!(
                                "{} as the model sees it: {}×{} after resize{}",
                                p.source.label(),
                                p.shape[2],
                                p.shape[1],
                                " and crop"
                            ));
                    }
                    None => placeholder(ui, THUMB, if s.error.is_some() { "error" } else { "…" }),
                }
                ui.vertical(|ui| {
                    ui.label(RichText::new(title).strong());
                    ui.label(RichText::new(s.source.label()).small());
                    if let Some(p) = &s.preview {
                        for (k, (_, name, prob)) in p.top.iter().enumerate() {
                            let text = format!("{name} {}", conf(*prob));
                            if k == 0 {
                                ui.label(RichText::new(text).strong());
                            } else {
                                ui.label(RichText::new(text).weak());
                            }
                        }
                    }
                });
            });
            if let Some(e) = &s.error {
                ui.label(RichText::new(e).color(ui.visuals().error_fg_color).small());
            }
            let busy = state.is_busy();
            ui.horizontal(|ui| {
                ui.add_enabled_ui(!busy, |ui| {
                    gallery_menu(ui, state, textures, slot);
                    if ui
                        .button("Open…")
                        .on_hover_text(format!(
                            "Pick the {} image from a file",
                            title.to_lowercase()
                        ))
                        .clicked()
                    {
                        state.act(Action::Dialog(DialogPurpose::Image(slot)));
                    }
                });
            });
            ui.horizontal(|ui| {
                let text = &mut state.slot_mut(slot).path_text;
                let field = ui.add(
                    egui::TextEdit::singleline(text)
                        .hint_text(format!("{} path or gallery:NAME", title.to_lowercase()))
                        .desired_width((ui.available_width() - 84.0).max(60.0)),
                );
                let field =
                    field.on_hover_text("Paste a path (or gallery:circle_1) and press Enter");
                let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                let use_it = ui
                    .add_enabled(!busy, egui::Button::new("Use"))
                    .on_hover_text(format!("Use this path as the {}", title.to_lowercase()));
                if (enter || use_it.clicked()) && !busy {
                    let text = state.slot(slot).path_text.trim().to_string();
                    if !text.is_empty() {
                        state.act(Action::PickImage(slot, ImageSource::parse(&text)));
                    }
                }
            });
        })
        .response
        .rect
}

/// The gallery as a menu of thumbnails.
pub fn gallery_menu(ui: &mut Ui, state: &mut AppState, textures: &mut Textures, slot: Slot) {
    ui.menu_button("Gallery ▾", |ui| {
        ui.set_min_width(420.0);
        ui.label(RichText::new("Synthetic shapes (the demo models' classes)").weak());
        egui::Grid::new(("gallery", format!("{slot:?}")))
            .spacing([4.0, 4.0])
            .show(ui, |ui| {
                for (k, (name, bytes)) in crate::demo::gallery().iter().enumerate() {
                    let key = format!("gallery {name}");
                    let texture = textures.get(ui.ctx(), &key, || decode_png(bytes));
                    let button = egui::Button::image_and_text(
                        egui::Image::new((texture.id(), egui::vec2(40.0, 40.0))),
                        RichText::new(*name).small(),
                    );
                    if ui.add(button).clicked() {
                        state.act(Action::PickImage(
                            slot,
                            ImageSource::Gallery((*name).into()),
                        ));
                        ui.close();
                    }
                    if k % 3 == 2 {
                        ui.end_row();
                    }
                }
            });
    });
}

/// An embedded PNG as an egui image (a grey square if it cannot be read, which the build's
/// own gallery never triggers).
pub fn decode_png(bytes: &[u8]) -> egui::ColorImage {
    match image::load_from_memory(bytes) {
        Ok(img) => {
            let rgba = img.to_rgba8();
            egui::ColorImage::from_rgba_unmultiplied(
                [rgba.width() as usize, rgba.height() as usize],
                rgba.as_raw(),
            )
        }
        Err(_) => egui::ColorImage::filled([8, 8], egui::Color32::GRAY),
    }
}
