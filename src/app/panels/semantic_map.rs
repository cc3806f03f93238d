//! One model's semantic map in the Semantic view: the 2-D map through the GPU heatmap (two
//! triangles of the hull's shader, see `semantic_heatmap`) with axes, the rows still being
//! computed greyed out and the regions' boxes drawn as they grow; the 1-D map as a curve with
//! the regions' intervals. Hovering picks the nearest grid point, a click asks to grow there.

use egui::{Color32, Pos2, Rect, RichText, Stroke, Ui, pos2, vec2};
use egui_plot::{Line, Plot, PlotPoints, VLine};

use crate::analysis::semantic::RegionMethod;
use crate::app::heatmap::{HeatmapCallback, SEMANTIC_FIRST_SLOT};
use crate::app::semantic_heatmap::square_frames;
use crate::app::semantic_state::{LiveRegion, MapView};

use super::{L2_COLOUR, LINF_COLOUR, REJECTED_COLOUR};

/// The 0.5 contour: where the model's confidence in the class crosses one half.
const CONTOURS: [f32; 1] = [0.5];

/// Each method's colour, on the map and in the table.
pub fn method_colour(method: RegionMethod) -> Color32 {
    match method {
        RegionMethod::Naive => REJECTED_COLOUR,
        RegionMethod::OirB => L2_COLOUR,
        RegionMethod::OirW => LINF_COLOUR,
    }
}

/// Where a 2-D map was last drawn: enough to find the pixel of any grid point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawnMap {
    /// The heatmap's rect, in points: grid (0, 0) at the bottom-left, (N−1, N−1) top-right.
    pub rect: Rect,
    pub points: usize,
}

impl DrawnMap {
    /// The position of grid point (row r, column c), fractional allowed.
    pub fn position(&self, r: f64, c: f64) -> Pos2 {
        let n = (self.points.max(2) - 1) as f32;
        pos2(
            self.rect.left() + self.rect.width() * c as f32 / n,
            self.rect.bottom() - self.rect.height() * r as f32 / n,
        )
    }

    /// The nearest grid point's flat index to `pos`, if `pos` is on the map.
    pub fn index_at(&self, pos: Pos2) -> Option<usize> {
        if !self.rect.expand(2.0).contains(pos) {
            return None;
        }
        let n = (self.points.max(2) - 1) as f32;
        let c = ((pos.x - self.rect.left()) / self.rect.width() * n).round();
        let r = ((self.rect.bottom() - pos.y) / self.rect.height() * n).round();
        let clamp = |v: f32| (v.max(0.0) as usize).min(self.points - 1);
        Some(clamp(r) * self.points + clamp(c))
    }
}

/// What the pointer did on a map this frame (flat grid indices).
#[derive(Default)]
pub struct MapInput {
    pub hovered: Option<usize>,
    pub clicked: Option<usize>,
    pub drawn: Option<DrawnMap>,
}

/// Natural-unit value → fraction of the axis of parameter `i`.
fn fraction(view: &MapView, i: usize, u: f64) -> f32 {
    let d = view.space.domains()[i];
    ((u - d.lo) / d.width()) as f32
}

fn tick(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The 2-D map at `side` points square, with axes; `slot` picks its GPU buffers (0 or 1).
pub fn map_2d(
    ui: &mut Ui,
    view: &MapView,
    slot: usize,
    side: f32,
    regions: &[LiveRegion],
    marked: Option<usize>,
    contour: bool,
) -> MapInput {
    let points = view.points();
    let (left, bottom) = (46.0, 34.0);
    let top = 16.0;
    let (outer, response) = ui.allocate_exact_size(
        vec2(side + left + 8.0, side + bottom + top),
        egui::Sense::click(),
    );
    let rect = Rect::from_min_size(outer.min + vec2(left, top), vec2(side, side));
    let painter = ui.painter_at(outer);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 0.0, visuals.extreme_bg_color);
    if let Some(frames) = square_frames(&view.values, points, if contour { &CONTOURS } else { &[] })
    {
        for (t, frame) in frames.into_iter().enumerate() {
            painter.add(eframe::egui_wgpu::Callback::new_paint_callback(
                rect,
                HeatmapCallback {
                    slot: SEMANTIC_FIRST_SLOT + 2 * slot + t,
                    frame,
                },
            ));
        }
    }
    let drawn = DrawnMap { rect, points };
    // Rows not computed yet (the map fills row by row, upward) are covered, so the zeros
    // standing in for them never read as low confidence.
    let full_rows = view.values.len() / points.max(1);
    if full_rows < points {
        let y = if full_rows == 0 {
            rect.bottom()
        } else {
            drawn.position((full_rows - 1) as f64, 0.0).y
        };
        let pending = Rect::from_min_max(rect.min, pos2(rect.right(), y));
        painter.rect_filled(pending, 0.0, visuals.extreme_bg_color.gamma_multiply(0.92));
    }
    painter.rect_stroke(
        rect,
        0.0,
        visuals.widgets.noninteractive.fg_stroke,
        egui::StrokeKind::Outside,
    );
    // Axes: first parameter up the side, second along the bottom, ticks at both ends and zero.
    let text = visuals.text_color();
    let font = egui::FontId::proportional(11.0);
    let params = view.space.params();
    for (i, p) in params.iter().enumerate() {
        let d = view.space.domains()[i];
        let mut ticks = vec![d.lo, d.hi];
        if d.lo < p.identity() && p.identity() < d.hi {
            ticks.push(p.identity());
        }
        for v in ticks {
            let f = fraction(view, i, v);
            if i == 0 {
                let y = rect.bottom() - f * rect.height();
                painter.text(
                    pos2(rect.left() - 4.0, y),
                    egui::Align2::RIGHT_CENTER,
                    tick(v),
                    font.clone(),
                    text,
                );
            } else {
                let x = rect.left() + f * rect.width();
                painter.text(
                    pos2(x, rect.bottom() + 3.0),
                    egui::Align2::CENTER_TOP,
                    tick(v),
                    font.clone(),
                    text,
                );
            }
        }
    }
    if let [rows, cols] = params {
        painter.text(
            pos2(rect.center().x, rect.bottom() + 17.0),
            egui::Align2::CENTER_TOP,
            format!("{} ({})", cols.name(), cols.unit()),
            font.clone(),
            text,
        );
        painter.text(
            pos2(outer.left() + 2.0, outer.top() + 1.0),
            egui::Align2::LEFT_TOP,
            format!("↑ {} ({})", rows.name(), rows.unit()),
            font.clone(),
            text,
        );
    }
    // Boxes as they grow, with the start point.
    let to_pixel = |u: &[f64]| {
        pos2(
            rect.left() + fraction(view, 1, u[1]) * rect.width(),
            rect.bottom() - fraction(view, 0, u[0]) * rect.height(),
        )
    };
    for r in regions {
        let Some((a, b)) = r.current() else { continue };
        let (ua, ub) = (view.space.to_u(a), view.space.to_u(b));
        let boxed = Rect::from_two_pos(to_pixel(&ua), to_pixel(&ub)).intersect(rect);
        painter.rect_stroke(
            boxed,
            0.0,
            Stroke::new(2.0, method_colour(r.method)),
            egui::StrokeKind::Middle,
        );
        let start = to_pixel(&view.space.to_u(&r.start_z));
        painter.circle(start, 3.5, Color32::WHITE, Stroke::new(1.0, Color32::BLACK));
    }
    let input_pos = response.hover_pos();
    let hovered = input_pos.and_then(|p| drawn.index_at(p));
    if let Some(k) = marked.or(hovered) {
        let centre = drawn.position((k / points) as f64, (k % points) as f64);
        painter.circle_stroke(centre, 5.0, Stroke::new(1.5, Color32::BLACK));
        painter.circle_stroke(centre, 6.5, Stroke::new(1.0, Color32::WHITE));
    }
    let clicked = if response.clicked() {
        response
            .interact_pointer_pos()
            .and_then(|p| drawn.index_at(p))
    } else {
        None
    };
    MapInput {
        hovered,
        clicked,
        drawn: Some(drawn),
    }
}

/// The 1-D map as a curve on [0, 1], the regions' intervals above it.
pub fn map_1d(
    ui: &mut Ui,
    view: &MapView,
    slot: usize,
    size: egui::Vec2,
    regions: &[LiveRegion],
    marked: Option<usize>,
) -> MapInput {
    let axis = view.grid.first().cloned().unwrap_or_default();
    let param = view.space.params()[0];
    let values: Vec<[f64; 2]> = axis
        .iter()
        .zip(&view.values)
        .map(|(u, f)| [*u, *f])
        .collect();
    let d = view.space.domains()[0];
    let shown = Plot::new(("semantic curve", slot))
        .width(size.x)
        .height(size.y)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .include_x(d.lo)
        .include_x(d.hi)
        .include_y(0.0)
        .include_y(1.05 + 0.05 * regions.len() as f64)
        .x_axis_label(format!("{} ({})", param.name(), param.unit()))
        .y_axis_label("f")
        .show(ui, |plot| {
            plot.line(Line::new("f", PlotPoints::from(values)).width(2.0));
            plot.vline(VLine::new("identity", param.identity()).color(Color32::GRAY));
            for (k, r) in regions.iter().enumerate() {
                if let Some((a, b)) = r.current() {
                    let (ua, ub) = (view.space.to_u(a)[0], view.space.to_u(b)[0]);
                    let y = 1.05 + 0.05 * k as f64;
                    plot.line(
                        Line::new(r.method.label(), PlotPoints::from(vec![[ua, y], [ub, y]]))
                            .color(method_colour(r.method))
                            .width(4.0),
                    );
                }
            }
            if let Some(k) = marked.filter(|k| *k < axis.len()) {
                plot.vline(VLine::new("hover", axis[k]).color(Color32::BLACK));
            }
            plot.pointer_coordinate()
        });
    let nearest = |x: f64| {
        axis.iter()
            .enumerate()
            .min_by(|a, b| (a.1 - x).abs().total_cmp(&(b.1 - x).abs()))
            .map(|(k, _)| k)
    };
    let hovered = shown.inner.and_then(|p| nearest(p.x));
    let clicked = if shown.response.clicked() {
        hovered
    } else {
        None
    };
    MapInput {
        hovered,
        clicked,
        drawn: None,
    }
}

/// The [0, 1] colour scale both maps share.
pub fn colour_bar(ui: &mut Ui, height: f32) {
    let (rect, _) = ui.allocate_exact_size(vec2(48.0, height + 40.0), egui::Sense::hover());
    let bar = Rect::from_min_size(rect.min + vec2(4.0, 6.0), vec2(14.0, height));
    let painter = ui.painter_at(rect);
    let levels = crate::app::semantic_heatmap::COLORMAP.levels();
    let step = bar.height() / levels.len() as f32;
    for (k, c) in levels.iter().enumerate() {
        let y = bar.bottom() - (k + 1) as f32 * step;
        painter.rect_filled(
            Rect::from_min_size(pos2(bar.left(), y), vec2(bar.width(), step + 0.5)),
            0.0,
            Color32::from_rgb(c[0], c[1], c[2]),
        );
    }
    let text = ui.visuals().text_color();
    for v in [0.0f32, 0.5, 1.0] {
        painter.text(
            pos2(bar.right() + 3.0, bar.bottom() - v * bar.height()),
            egui::Align2::LEFT_CENTER,
            format!("{v}"),
            egui::FontId::proportional(11.0),
            text,
        );
    }
    ui.label(RichText::new("p(class)").small());
}
