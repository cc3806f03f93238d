//! The app's panels: each a small struct with a `ui` method that reads [`AppState`] and asks for
//! work through actions. The app only lays them out.

pub mod compare;
pub mod frequency;
pub mod frequency_plot;
pub mod grid;
pub mod history;
pub mod hull;
pub mod images;
pub mod model;
pub mod model_choice;
pub mod params;
pub mod reach;
pub mod reach_matrix;
pub mod semantic;
pub mod semantic_map;
pub mod status;
pub mod target_class;
pub mod traversal;
pub mod width_compare;
pub mod widths;

use egui::{Color32, RichText, Ui};

use super::background::{DialogPurpose, ImagesFor};
use super::state::{Action, AppState, ExportKind};
use super::textures::{Textures, color_image};

/// Colours of the traversal series, readable on the dark and the light theme.
pub const SOURCE_COLOUR: Color32 = Color32::from_rgb(86, 180, 233);
pub const TARGET_COLOUR: Color32 = Color32::from_rgb(230, 159, 0);
pub const REJECTED_COLOUR: Color32 = Color32::from_rgb(213, 94, 0);
pub const L2_COLOUR: Color32 = Color32::from_rgb(0, 158, 115);
pub const LINF_COLOUR: Color32 = Color32::from_rgb(204, 121, 167);

/// A shown result that no longer matches the loaded model or the picked pair: it stays (it
/// carries its own record), marked so nobody reads it as the current settings' result.
pub fn stale_note(ui: &mut Ui, why: &str) {
    ui.label(
        RichText::new(format!("⚠ Stale: {why}. Run again to update."))
            .small()
            .color(ui.visuals().warn_fg_color),
    );
}

/// Model-space pixels to show: [C, H, W] in [0, 1], cached as a texture under `key`.
pub struct Pixels<'a> {
    pub key: &'a str,
    pub data: &'a [f32],
    pub shape: [usize; 3],
}

/// Draws model-space pixels at `side` points, nearest-neighbour, with a caption (and an
/// optional detail line) below.
pub fn image_card(
    ui: &mut Ui,
    textures: &mut Textures,
    image: Pixels<'_>,
    side: f32,
    caption: &str,
    detail: Option<RichText>,
) -> egui::Response {
    let Pixels {
        key,
        data: pixels,
        shape,
    } = image;
    ui.vertical(|ui| {
        let texture = textures.get(ui.ctx(), key, || color_image(pixels, shape));
        let aspect = shape[2] as f32 / shape[1].max(1) as f32;
        let size = egui::vec2(side * aspect.min(1.0), side / aspect.max(1.0));
        // Captions never widen the card: a long ImageNet file name is elided (the whole text
        // shows on hover), so the cards beside stay on screen.
        ui.set_max_width(size.x);
        let response = ui.add(
            egui::Image::new((texture.id(), size))
                .corner_radius(2.0)
                .sense(egui::Sense::hover()),
        );
        ui.add(egui::Label::new(RichText::new(caption).strong()).truncate());
        if let Some(d) = detail {
            ui.add(egui::Label::new(d).truncate());
        }
        response
    })
    .inner
}

/// An empty square where an image will go.
pub fn placeholder(ui: &mut Ui, side: f32, text: &str) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
    ui.painter().rect_stroke(
        rect,
        2.0,
        ui.visuals().widgets.noninteractive.bg_stroke,
        egui::StrokeKind::Inside,
    );
    ui.painter().text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        text,
        egui::FontId::proportional(12.0),
        ui.visuals().weak_text_color(),
    );
}

/// "Folder…" and "File…" for a labelled-images field: the dialog a click asks for.
pub fn labelled_images_buttons(ui: &mut Ui, view: ImagesFor) -> Option<DialogPurpose> {
    let mut dialog = None;
    if ui
        .button("Folder…")
        .on_hover_text("Pick an image folder")
        .clicked()
    {
        dialog = Some(DialogPurpose::ImagesFolder(view));
    }
    if ui
        .button("File…")
        .on_hover_text("Pick a .safetensors set")
        .clicked()
    {
        dialog = Some(DialogPurpose::ImagesFile(view));
    }
    dialog
}

/// The export row of a view: folder, PNG scale, and one button per thing to export.
pub fn export_bar(ui: &mut Ui, state: &mut AppState, kinds: &[(ExportKind, &str)]) {
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("Export to");
        let field = ui.add(
            egui::TextEdit::singleline(&mut state.export.dir_text)
                .desired_width(220.0)
                .hint_text("folder (created if missing)"),
        );
        field
            .labelled_by(label.id)
            .on_hover_text("Exports go into this folder; PNG and SVG of each figure.");
        if ui
            .button("Browse…")
            .on_hover_text("Pick the export folder")
            .clicked()
        {
            state.act(Action::Dialog(DialogPurpose::ExportDir));
        }
        let scale = ui.label("PNG scale");
        ui.add(
            egui::DragValue::new(&mut state.export.scale)
                .range(1.0..=8.0)
                .speed(0.1)
                .suffix("×"),
        )
        .labelled_by(scale.id)
        .on_hover_text("PNG scale: 1× is 144 px per inch; 2–4× for print.");
        for (kind, label) in kinds {
            if ui
                .button(*label)
                .on_hover_text(format!("Write the {} into the export folder", kind.label()))
                .clicked()
            {
                state.act(Action::Export(*kind));
            }
        }
        if state.export.in_flight > 0 {
            ui.spinner();
        }
    });
}

/// `p` with two decimals, as every confidence in the app.
pub fn conf(p: f32) -> String {
    format!("{p:.2}")
}

/// What a job's Start/Cancel button does and says.
pub struct JobButtons<'a> {
    pub running: bool,
    pub start: &'a str,
    pub cancel: &'a str,
    pub start_tip: &'a str,
    pub cancel_tip: &'a str,
    pub start_action: Action,
}

/// Cancel while the view's job runs, else Start (enabled with a model and no other job).
pub fn job_buttons(ui: &mut Ui, state: &mut AppState, buttons: JobButtons<'_>) {
    if buttons.running {
        if ui
            .button(buttons.cancel)
            .on_hover_text(buttons.cancel_tip)
            .clicked()
        {
            state.act(Action::Cancel);
        }
    } else {
        let ready = state.spec().is_some() && !state.is_busy();
        if ui
            .add_enabled(
                ready,
                egui::Button::new(RichText::new(buttons.start).strong()),
            )
            .on_hover_text(buttons.start_tip)
            .on_disabled_hover_text("Needs a loaded model and no other job running")
            .clicked()
        {
            state.act(buttons.start_action);
        }
    }
}

/// A job's progress bar: "done of total unit", or `waiting` before the total is known.
pub fn job_progress(
    ui: &mut Ui,
    (done, total): (usize, usize),
    unit: &str,
    waiting: &str,
    width: f32,
) {
    let (fraction, text) = if total > 0 {
        (
            done as f32 / total as f32,
            format!("{done} of {total} {unit}"),
        )
    } else {
        (0.0, waiting.to_string())
    };
    ui.add(
        egui::ProgressBar::new(fraction)
            .desired_width(width)
            .text(text),
    );
}
