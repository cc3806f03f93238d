//! The hull view (§1.7–§1.9): the triangle spanned by a source and two LST outputs, in true
//! geometry, coloured by source-class confidence on the GPU (our WGSL shader, through an
//! egui-wgpu paint callback). Contours, colour bar, corner thumbnails, and a hover readout of
//! the barycentric point, its confidence and its image. Table 2 and the §1.8 profile beside it.
//! The lattice refines as it streams in: n = 10 (66 points), then 20, then 40.

use egui::{Color32, Pos2, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::analysis::hull::lattice;
use crate::app::heatmap::{
    COMPARE_HULL_SLOT, HULL_SLOT, HeatmapCallback, HeatmapFrame, PlaneToPixel, fit_corners,
};
use crate::app::state::HullResult;
use crate::app::state::{Action, AppState, ExportKind};
use crate::app::textures::{Textures, color_image, mix};
use crate::app::worker::Slot;
use crate::figures::lattice_field;

use super::{SOURCE_COLOUR, TARGET_COLOUR, conf, export_bar, images::image_slot};

/// Where the heatmap was last drawn: enough to find the pixel of any barycentric point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawnHeatmap {
    /// The paint-callback rect, in points.
    pub rect: egui::Rect,
    /// plane → position inside `rect` (points, y down).
    pub map: PlaneToPixel,
    pub p1: [f64; 2],
    pub p2: [f64; 2],
}

impl DrawnHeatmap {
    /// Screen position (points) of the point with weights (w1, w2) of x1 and x2.
    pub fn position(&self, w1: f64, w2: f64) -> Pos2 {
        let plane = [
            w1 * self.p1[0] + w2 * self.p2[0],
            w1 * self.p1[1] + w2 * self.p2[1],
        ];
        let [x, y] = self.map.apply(plane);
        self.rect.min + egui::vec2(x, y)
    }

    /// The weights (w1, w2) of a screen position, and whether it lies in the triangle.
    pub fn weights(&self, pos: Pos2) -> ([f64; 2], bool) {
        let local = pos - self.rect.min;
        let px = f64::from((local.x - self.map.origin[0]) / self.map.scale);
        let py = f64::from((self.map.origin[1] - local.y) / self.map.scale);
        let [a, b] = [self.p1, self.p2];
        let det = a[0] * b[1] - a[1] * b[0];
        if det.abs() < 1e-12 {
            return ([0.0, 0.0], false);
        }
        let w1 = (px * b[1] - py * b[0]) / det;
        let w2 = (a[0] * py - a[1] * px) / det;
        let eps = 1e-9;
        ([w1, w2], w1 >= -eps && w2 >= -eps && w1 + w2 <= 1.0 + eps)
    }
}

#[derive(Default)]
pub struct HullPanel {
    /// Where the shown hull was drawn last frame.
    pub drawn: Option<DrawnHeatmap>,
    /// Where the hull beside it (model B's, or a pinned one) was drawn.
    pub drawn_compare: Option<DrawnHeatmap>,
}

/// Room for the colour bar and its tick labels right of the heatmaps.
const BAR_WIDTH: f32 = 70.0;

impl HullPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState, textures: &mut Textures) {
        if state.presentation {
            // A talk shows the hulls, large; the controls stay in the normal view.
            let width = ui.available_width();
            self.canvases(ui, state, textures, width);
            return;
        }
        let wide = ui.available_width() > 900.0;
        let side_width = if wide { 340.0 } else { 280.0 };
        ui.horizontal_top(|ui| {
            // Leave room for the separator and the spacing on both sides of it.
            let gap = ui.spacing().item_spacing.x * 2.0 + 8.0;
            let canvas_w = (ui.available_width() - side_width - gap).max(240.0);
            ui.vertical(|ui| {
                ui.set_width(canvas_w);
                self.canvases(ui, state, textures, canvas_w);
            });
            ui.separator();
            ui.vertical(|ui| {
                ui.set_width(side_width);
                egui::ScrollArea::vertical()
                    .id_salt("hull side")
                    .show(ui, |ui| controls(ui, state, textures));
            });
        });
    }

    /// The shown hull, and the hull beside it when there is one, on one colour scale.
    fn canvases(&mut self, ui: &mut Ui, state: &mut AppState, textures: &mut Textures, width: f32) {
        let main = &state.hull.main;
        let beside = &state.hull.compare;
        let comparing = beside.report.is_some() || beside.job.is_some();
        if main.report.is_none() && !comparing {
            self.drawn = None;
            self.drawn_compare = None;
            empty(ui, main);
            return;
        }
        let height = (ui.available_height() - 110.0).max(220.0);
        // Two hulls side by side while each keeps a useful size, else one above the other.
        let side_by_side = comparing && width >= 520.0;
        let columns = if side_by_side { 2.0 } else { 1.0 };
        let spacing = ui.spacing().item_spacing.x * columns;
        let each = ((width - BAR_WIDTH - spacing) / columns).max(160.0);
        let rows = if comparing && !side_by_side { 2.0 } else { 1.0 };
        let row_height = ((height - 40.0 * (rows - 1.0)) / rows).max(160.0);
        let size = egui::vec2(each, row_height.min(each * 1.1));
        let contours = state.hull.drawn_contours();
        let style = Drawing {
            contours: &contours,
            colormap: state.hull.colormap,
            size,
        };
        let mut bar_beside = None;
        let mut draw = |ui: &mut Ui, this: &mut Self| {
            this.drawn = hull_column(ui, state, main, HULL_SLOT, "main", textures, &style);
            bar_beside = this.drawn.map(|d| d.rect);
            if comparing {
                this.drawn_compare = hull_column(
                    ui,
                    state,
                    beside,
                    COMPARE_HULL_SLOT,
                    "beside",
                    textures,
                    &style,
                );
                if side_by_side {
                    bar_beside = this.drawn_compare.map(|d| d.rect).or(bar_beside);
                }
            } else {
                this.drawn_compare = None;
            }
        };
        if side_by_side {
            ui.horizontal_top(|ui| {
                draw(ui, self);
                ui.add_space(BAR_WIDTH);
            });
        } else {
            draw(ui, self);
        }
        if let Some(rect) = bar_beside {
            colour_bar(ui, state, rect, &contours);
        }
        if comparing {
            ui.label(
                RichText::new(
                    "Both hulls on one colour scale: p(source class) from 0 to 1. Table 2 \
                     (right) has a column for each.",
                )
                .weak()
                .small(),
            );
        }
        if !state.presentation {
            exports(ui, state);
        }
    }
}

/// Before any hull: what a hull is, and the progress of the first one.
fn empty(ui: &mut Ui, main: &HullResult) {
    ui.add_space(30.0);
    ui.vertical_centered(|ui| {
        ui.heading("No hull yet");
        ui.label(
            "The hull is the triangle spanned by a source and two LST outputs. Pick a second run \
             of the same source, or a second target, or run both traversals with one click \
             (right).",
        );
        if let Some((n, done, total)) = main.progress {
            ui.add(
                egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                    .text(format!("n = {n}: {done} of {total} points")),
            );
        }
    });
}

/// What both hulls are drawn with.
struct Drawing<'a> {
    contours: &'a [f32],
    colormap: crate::figures::Colormap,
    size: egui::Vec2,
}

/// One hull with its heading (model, pair) above and its lattice line below; where it was
/// drawn, once it has a report.
fn hull_column(
    ui: &mut Ui,
    state: &AppState,
    hull: &HullResult,
    slot: usize,
    key: &str,
    textures: &mut Textures,
    style: &Drawing<'_>,
) -> Option<DrawnHeatmap> {
    ui.vertical(|ui| {
        ui.set_width(style.size.x);
        heading(ui, state, hull);
        let (Some(report), Some(runs)) = (&hull.report, &hull.runs) else {
            let (n, done, total) = hull.progress.unwrap_or((0, 0, 1));
            ui.allocate_ui(style.size, |ui| {
                ui.add_space(40.0);
                ui.add(
                    egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                        .text(format!("waiting · n = {n}: {done} of {total} points")),
                );
            });
            return None;
        };
        let drawn = draw_hull(ui, hull, report, runs, slot, key, textures, style);
        let (n, confidences) = hull.finest().unwrap_or((report.n, &report.confidences));
        ui.label(
            RichText::new(format!(
                "lattice n = {n} ({} points){}",
                confidences.len(),
                hull.progress.map_or(String::new(), |(n, d, t)| format!(
                    " · computing n = {n}: {d}/{t}"
                ))
            ))
            .weak()
            .small(),
        );
        Some(drawn)
    })
    .inner
}

/// The hull's own record in a line: the model and the pair that made it, marked when the loaded
/// model or the picked pair are no longer those.
fn heading(ui: &mut Ui, state: &AppState, hull: &HullResult) {
    let Some([a, b]) = &hull.runs else {
        return;
    };
    let name = |p: &str| crate::app::worker::ImageSource::parse(p).label();
    let text = format!(
        "{} · {} → {}, {}",
        a.record.model.short_name(),
        name(&a.record.source.path),
        name(&a.record.target.path),
        name(&b.record.target.path)
    );
    ui.add(egui::Label::new(RichText::new(text).strong()).truncate())
        .on_hover_text(format!(
            "{} ({})\nsource {}\ntargets {} and {}",
            a.record.model.weights_path,
            a.record.model.architecture,
            a.record.source.path,
            a.record.target.path,
            b.record.target.path
        ));
    // The same rule as a run's: neither the loaded model nor the second model made it.
    if let Some(why) = state.model_stale_reason(&a.record.model) {
        super::stale_note(ui, &why);
    }
}

/// The heatmap of one hull through the GPU shader, its outline, the spec's lattice points,
/// the corner thumbnails and the hover readout.
#[allow(clippy::too_many_arguments)]
fn draw_hull(
    ui: &mut Ui,
    hull: &HullResult,
    report: &crate::run::HullReport,
    runs: &[std::sync::Arc<crate::app::worker::FinishedRun>; 2],
    slot: usize,
    key: &str,
    textures: &mut Textures,
    style: &Drawing<'_>,
) -> DrawnHeatmap {
    let (rect, response) = ui.allocate_exact_size(style.size, egui::Sense::click());
    let g = &report.geometry;
    let (p1, p2) = if g.degenerate {
        ([1.0, 0.0], [0.0, 1.0])
    } else {
        (g.p1, g.p2)
    };
    // The corner thumbnails sit outside the triangle: leave them room at every size.
    let thumb = (rect.width().min(rect.height()) * 0.11).clamp(24.0, 96.0);
    let margin = ((thumb * 1.3 + 16.0) / rect.width().min(rect.height())).clamp(0.12, 0.36);
    let (corners, map) = fit_corners(p1, p2, rect.width(), rect.height(), margin);
    let drawn = DrawnHeatmap { rect, map, p1, p2 };
    let (n, confidences) = hull.finest().unwrap_or((report.n, &report.confidences));
    let frame = HeatmapFrame {
        n,
        confidences: confidences.to_vec(),
        corners_ndc: corners,
        contours: style.contours.to_vec(),
        colormap: style.colormap,
    };
    let painter = ui.painter_at(rect.expand(2.0));
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    if frame.is_valid() {
        painter.add(eframe::egui_wgpu::Callback::new_paint_callback(
            rect,
            HeatmapCallback { slot, frame },
        ));
    }
    // Outline and the spec's lattice points (n = 10).
    let stroke = egui::Stroke::new(1.0, ui.visuals().text_color().gamma_multiply(0.6));
    let v = [
        drawn.position(0.0, 0.0),
        drawn.position(1.0, 0.0),
        drawn.position(0.0, 1.0),
    ];
    painter.add(egui::Shape::closed_line(v.to_vec(), stroke));
    let rn = report.n as f64;
    for p in lattice(report.n) {
        let pos = drawn.position(p.i as f64 / rn, p.j as f64 / rn);
        painter.circle_filled(pos, 1.6, Color32::from_black_alpha(150));
    }
    // Corner thumbnails, pushed outward from the centroid.
    let [a, b] = runs;
    let shape = a.pixels.shape;
    let images: [&[f32]; 3] = [
        &a.pixels.source,
        a.pixels.output.as_deref().unwrap_or(&a.pixels.source),
        b.pixels.output.as_deref().unwrap_or(&b.pixels.source),
    ];
    let labels = [
        format!("source ({})", report.source_class),
        format!("x* → {}", report.target_classes[0]),
        format!("x* → {}", report.target_classes[1]),
    ];
    let centroid = Pos2::new(
        (v[0].x + v[1].x + v[2].x) / 3.0,
        (v[0].y + v[1].y + v[2].y) / 3.0,
    );
    for k in 0..3 {
        let dir = (v[k] - centroid).normalized();
        let c = v[k] + dir * (thumb * 0.75);
        let r = egui::Rect::from_center_size(c, egui::vec2(thumb, thumb));
        let texture_key = format!(
            "hull {key} corner {k} {} {}",
            report.source, a.record.model.weights_sha256
        );
        let t = textures.get(ui.ctx(), &texture_key, || color_image(images[k], shape));
        painter.image(
            t.id(),
            r,
            egui::Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
        painter.rect_stroke(r, 0.0, stroke, egui::StrokeKind::Outside);
        let below = r.center_bottom() + egui::vec2(0.0, 2.0);
        painter.text(
            below,
            egui::Align2::CENTER_TOP,
            &labels[k],
            egui::FontId::proportional(11.0),
            ui.visuals().text_color(),
        );
    }
    if g.degenerate {
        painter.text(
            rect.left_top() + egui::vec2(8.0, 8.0),
            egui::Align2::LEFT_TOP,
            "degenerate geometry (drawn as a right triangle)",
            egui::FontId::proportional(12.0),
            ui.visuals().warn_fg_color,
        );
    }
    // Hover: weights, confidence and the image at that point.
    if let Some(pos) = response.hover_pos() {
        let ([w1, w2], inside) = drawn.weights(pos);
        if inside {
            let (w1, w2) = (w1.max(0.0), w2.max(0.0));
            let c = lattice_field(n, confidences, w1 * n as f64, w2 * n as f64);
            let w0 = (1.0 - w1 - w2).max(0.0);
            let mixed = mix(images, [w0 as f32, w1 as f32, w2 as f32]);
            let hover_key = format!("hull {key} hover {:.3} {:.3}", w1, w2);
            let t = textures.get(ui.ctx(), &hover_key, || color_image(&mixed, shape));
            response.clone().on_hover_ui_at_pointer(|ui| {
                ui.label(format!(
                    "w = ({w0:.3}, {w1:.3}, {w2:.3})  (source, x*₁, x*₂)"
                ));
                ui.label(
                    RichText::new(format!(
                        "p({}) = {} · {}",
                        report.source_class,
                        conf(c),
                        a.record.model.short_name()
                    ))
                    .strong(),
                );
                ui.add(egui::Image::new((t.id(), egui::vec2(112.0, 112.0))));
            });
        }
    }
    drawn
}

/// The colour bar right of the heatmap, with the contour levels marked.
fn colour_bar(ui: &Ui, state: &AppState, heat: egui::Rect, levels: &[f32]) {
    let top = heat.top() + heat.height() * 0.1;
    let bottom = heat.bottom() - heat.height() * 0.1;
    let x0 = heat.right() + 12.0;
    let bar = egui::Rect::from_min_max(Pos2::new(x0, top), Pos2::new(x0 + 16.0, bottom));
    let painter = ui.painter();
    let lut = state.hull.colormap.levels();
    let k_n = lut.len();
    for (k, c) in lut.iter().enumerate() {
        let y1 = bottom - (k as f32 / k_n as f32) * bar.height();
        let y0 = bottom - ((k + 1) as f32 / k_n as f32) * bar.height();
        painter.rect_filled(
            egui::Rect::from_min_max(Pos2::new(bar.left(), y0 - 0.5), Pos2::new(bar.right(), y1)),
            0.0,
            Color32::from_rgb(c[0], c[1], c[2]),
        );
    }
    let text = ui.visuals().text_color();
    painter.rect_stroke(
        bar,
        0.0,
        egui::Stroke::new(1.0, text),
        egui::StrokeKind::Outside,
    );
    for k in 0..=5 {
        let v = k as f32 / 5.0;
        let y = bottom - v * bar.height();
        painter.line_segment(
            [Pos2::new(bar.right(), y), Pos2::new(bar.right() + 4.0, y)],
            egui::Stroke::new(1.0, text),
        );
        painter.text(
            Pos2::new(bar.right() + 6.0, y),
            egui::Align2::LEFT_CENTER,
            format!("{v:.1}"),
            egui::FontId::proportional(11.0),
            text,
        );
    }
    for &level in levels {
        let y = bottom - level * bar.height();
        painter.line_segment(
            [Pos2::new(bar.left(), y), Pos2::new(bar.right(), y)],
            egui::Stroke::new(2.5, Color32::WHITE),
        );
        painter.line_segment(
            [Pos2::new(bar.left(), y), Pos2::new(bar.right(), y)],
            egui::Stroke::new(1.0, Color32::BLACK),
        );
    }
}

fn controls(ui: &mut Ui, state: &mut AppState, textures: &mut Textures) {
    let busy = state.is_busy();
    ui.heading("Triangle");
    let partners: Vec<(usize, String)> = state
        .hull_partners()
        .into_iter()
        .map(|(i, r)| (i, r.title()))
        .collect();
    if let Some([a, b]) = &state.hull.main.runs {
        ui.label(RichText::new(format!("Shown: {}\n   and {}", a.title(), b.title())).small());
    }
    match state.shown_finished() {
        Some(r) if r.record.config.method() != crate::analysis::Method::Lst => {
            ui.label(
                RichText::new(
                    "The shown run is an NSPGD run; a hull starts from an LST run (open one, \
                     or run LST).",
                )
                .weak(),
            );
        }
        Some(r) => {
            ui.label(RichText::new(format!("Next hull starts from: {}", r.title())).small());
        }
        None => {
            ui.label(
                RichText::new("Run a traversal first: its source and output are two corners.")
                    .weak(),
            );
        }
    }
    ui.horizontal_wrapped(|ui| {
        let selected = state
            .hull
            .second_run
            .and_then(|i| partners.iter().find(|(k, _)| *k == i))
            .map_or("second run…".to_string(), |(_, t)| t.clone());
        egui::ComboBox::from_id_salt("second run")
            .selected_text(selected)
            .truncate()
            .width((ui.available_width() - 110.0).clamp(120.0, 220.0))
            .show_ui(ui, |ui| {
                for (i, title) in &partners {
                    ui.selectable_value(&mut state.hull.second_run, Some(*i), title);
                }
            })
            .response
            .on_hover_text(
                "Second run: another run of the same source (its output is the third corner)",
            );
        let go = ui
            .add_enabled(
                !busy && state.hull.second_run.is_some(),
                egui::Button::new("Hull of both"),
            )
            .on_hover_text("The hull of the shown run and this run (same source)")
            .on_disabled_hover_text("Needs a second run of the same source");
        if go.clicked()
            && let Some(i) = state.hull.second_run
        {
            state.act(Action::HullWithRun(i));
        }
    });
    if partners.is_empty() && state.shown_finished().is_some() {
        ui.label(
            RichText::new("No other run of this source yet.")
                .weak()
                .small(),
        );
    }
    ui.add_space(4.0);
    image_slot(ui, state, textures, Slot::SecondTarget, "Second target");
    let can_run = state.spec().is_some()
        && state.slot(Slot::SecondTarget).preview.is_some()
        && state.slot(Slot::Source).preview.is_some();
    let lst_only = state.lst_only_reason();
    if let Some(reason) = lst_only {
        ui.label(RichText::new(reason).weak().small());
    }
    let can_run = can_run && lst_only.is_none();
    let not_ready = lst_only.unwrap_or("Needs a model, a source and a second target");
    ui.horizontal_wrapped(|ui| {
        let second = ui
            .add_enabled(
                !busy && can_run && state.shown_lst_run().is_some(),
                egui::Button::new("Traverse to second target"),
            )
            .on_hover_text("Run source → second target, then the hull with the shown run")
            .on_disabled_hover_text(not_ready);
        if second.clicked() {
            state.act(Action::HullWithSecondTarget);
        }
        let both = ui
            .add_enabled(
                !busy && can_run && state.slot(Slot::Target).preview.is_some(),
                egui::Button::new(RichText::new("Run both + hull").strong()),
            )
            .on_hover_text("Traverse source → target and source → second target, then the hull")
            .on_disabled_hover_text(not_ready);
        if both.clicked() {
            state.act(Action::HullRunBoth);
        }
    });
    ui.separator();
    compare_controls(ui, state);
    ui.separator();
    ui.horizontal(|ui| {
        let label = ui.label("Contours");
        ui.add(egui::TextEdit::singleline(&mut state.hull.contours_text).desired_width(110.0))
            .labelled_by(label.id)
            .on_hover_text("Confidence levels for contour lines, e.g. 0.5, 0.9 (up to 8)");
    });
    if let Err(why) = state.hull.contour_levels() {
        // Say why no contour is drawn rather than silently drawing none.
        ui.label(
            RichText::new(format!("No contours drawn: {why}"))
                .small()
                .color(ui.visuals().error_fg_color),
        );
    }
    ui.horizontal(|ui| {
        let label = ui.label("Colour map");
        egui::ComboBox::from_id_salt("colormap")
            .selected_text(state.hull.colormap.label())
            .show_ui(ui, |ui| {
                for c in crate::figures::Colormap::ALL {
                    ui.selectable_value(&mut state.hull.colormap, c, c.label());
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text("Perceptual colour maps: viridis (the paper's), cividis, magma");
    });
    if let Some(report) = &state.hull.main.report {
        ui.separator();
        let name = |h: &HullResult| h.model_name().unwrap_or_default();
        let beside = state
            .hull
            .compare
            .report
            .as_ref()
            .map(|r| (r, name(&state.hull.compare)));
        table2(ui, (report, name(&state.hull.main)), beside.as_ref());
        profile(ui, report, beside.as_ref().map(|(r, _)| *r));
    }
}

/// The hull's export row, under the heatmap.
fn exports(ui: &mut Ui, state: &mut AppState) {
    export_bar(
        ui,
        state,
        &[
            (ExportKind::HullFigure, "Hull figure"),
            (ExportKind::HullRender, "Heatmap render"),
            (ExportKind::Profile, "Profile plot"),
        ],
    );
    ui.horizontal(|ui| {
        let label = ui.label("Heatmap render size");
        ui.add(
            egui::DragValue::new(&mut state.export.heatmap_px)
                .range(256..=8192)
                .suffix(" px"),
        )
        .labelled_by(label.id)
        .on_hover_text("Pixel size of the offscreen GPU render (square)");
    });
}

/// Model B's hull beside the shown one: make it, pin the shown hull, or clear the one beside.
fn compare_controls(ui: &mut Ui, state: &mut AppState) {
    let busy = state.is_busy();
    ui.label(RichText::new("Compare").strong());
    let model_b = state
        .compare
        .model_b
        .as_ref()
        .map(super::model_choice::short_label);
    match &model_b {
        Some(b) => ui.label(
            RichText::new(format!(
                "Model B is {b}: “Run both + hull” makes its hull too, beside this one."
            ))
            .small(),
        ),
        None => ui.label(
            RichText::new(
                "Pick a second model (left, under the model) to make its hull beside this one.",
            )
            .weak()
            .small(),
        ),
    };
    ui.horizontal_wrapped(|ui| {
        let can_b = !busy && model_b.is_some() && state.hull.main.runs.is_some();
        if ui
            .add_enabled(can_b, egui::Button::new("Same triangle on model B"))
            .on_hover_text("Walk the same source to the same two targets on model B, then its hull")
            .on_disabled_hover_text("Needs a hull and model B")
            .clicked()
        {
            state.act(Action::HullOnModelB);
        }
        let can_pin = !busy && state.hull.main.report.is_some();
        if ui
            .add_enabled(can_pin, egui::Button::new("Pin beside"))
            .on_hover_text(
                "Keep this hull beside the next one (e.g. load another model and run again)",
            )
            .clicked()
        {
            state.act(Action::PinHull);
        }
        let has_beside = state.hull.compare.report.is_some();
        if ui
            .add_enabled(!busy && has_beside, egui::Button::new("Clear beside"))
            .clicked()
        {
            state.hull.compare = HullResult::default();
        }
    });
}

/// Table 2 of the shown hull, and of the hull beside it in a second column.
fn table2(
    ui: &mut Ui,
    main: (&crate::run::HullReport, String),
    beside: Option<&(&crate::run::HullReport, String)>,
) {
    let (report, name) = main;
    let m = &report.metrics;
    let other = beside.map(|(r, _)| &r.metrics);
    ui.label(RichText::new(format!("Table 2 (n = {})", report.n)).strong());
    // The columns are named here, so long model names do not widen the table.
    if let Some((_, b)) = beside {
        ui.label(RichText::new(format!("A: {name}")).small());
        ui.label(RichText::new(format!("B: {b}")).small());
    }
    egui::Grid::new("table 2")
        .num_columns(if other.is_some() { 3 } else { 2 })
        .striped(true)
        .show(ui, |ui| {
            if beside.is_some() {
                ui.label("");
                ui.label(RichText::new("A").strong());
                ui.label(RichText::new("B").strong());
                ui.end_row();
            }
            type Metric = fn(&crate::analysis::hull::TriangleMetrics) -> f32;
            let rows: [(&str, Metric, &str); 8] = [
                (
                    "p_src",
                    |m| m.p_src,
                    "conf of the source (lattice point (0,0))",
                ),
                (
                    "mean hull conf",
                    |m| m.mean_hull,
                    "mean conf over all lattice points",
                ),
                (
                    "frac > p_src",
                    |m| m.frac[0],
                    "fraction of points above p_src (strict)",
                ),
                (
                    "frac > p_src−0.1",
                    |m| m.frac[1],
                    "fraction above p_src − 0.1",
                ),
                (
                    "frac > p_src−0.2",
                    |m| m.frac[2],
                    "fraction above p_src − 0.2",
                ),
                (
                    "frac > p_src−0.3",
                    |m| m.frac[3],
                    "fraction above p_src − 0.3",
                ),
                (
                    "mean conf, linear paths",
                    |m| m.mean_edges,
                    "mean conf along source → x*₁ and source → x*₂",
                ),
                (
                    "edge min",
                    |m| m.edge_min,
                    "worst drop along the two straight paths",
                ),
            ];
            for (k, value, tip) in rows {
                ui.label(k).on_hover_text(tip);
                ui.label(RichText::new(conf(value(m))).monospace());
                if let Some(o) = other {
                    ui.label(RichText::new(conf(value(o))).monospace());
                }
                ui.end_row();
            }
        });
}

fn profile(ui: &mut Ui, report: &crate::run::HullReport, beside: Option<&crate::run::HullReport>) {
    ui.label(RichText::new("Straight paths from the source (§1.8)").strong());
    if beside.is_some() {
        ui.label(
            RichText::new("solid: shown hull · dotted: the hull beside")
                .small()
                .weak(),
        );
    }
    let t = |k: usize, n: usize| k as f64 / n.max(1) as f64;
    Plot::new("hull profile")
        // Taller with the hull beside: its legend lists twice the curves.
        .height(if beside.is_some() { 230.0 } else { 150.0 })
        .legend(Legend::default().follow_insertion_order(true))
        .include_y(0.0)
        .include_y(1.0)
        .x_axis_label("t")
        .allow_scroll(false)
        .show(ui, |plot| {
            let colours = [SOURCE_COLOUR, TARGET_COLOUR];
            for (which, r) in std::iter::once(report).chain(beside).enumerate() {
                for (k, curve) in r.profiles.iter().enumerate() {
                    // The hull beside shows its x* paths only, so the plot stays readable.
                    if which == 1 && k >= 2 {
                        continue;
                    }
                    let n = curve.len().saturating_sub(1);
                    let points: PlotPoints = curve
                        .iter()
                        .enumerate()
                        .map(|(i, c)| [t(i, n), f64::from(*c)])
                        .collect();
                    let mut name = match k {
                        0 => format!("→ x* ({})", r.target_classes[0]),
                        1 => format!("→ x* ({})", r.target_classes[1]),
                        2 => format!("→ target ({})", r.target_classes[0]),
                        _ => format!("→ target ({})", r.target_classes[1]),
                    };
                    if which == 1 {
                        name.push_str(", beside");
                    }
                    let mut line = Line::new(name, points).color(colours[k % 2]).width(1.8);
                    if which == 1 {
                        line = line.style(egui_plot::LineStyle::dotted_dense());
                    } else if k >= 2 {
                        line = line.style(egui_plot::LineStyle::dashed_loose());
                    }
                    plot.line(line);
                }
            }
        });
}
