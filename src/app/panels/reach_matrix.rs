//! The live hit-rate matrix of the Reach tab (§2.4): row = source class, column = target class,
//! each cell coloured on the shared viridis scale of [0, 1] and annotated with its value. Cells
//! without a valid pair yet, and the diagonal (same-class walks, outside the reach fraction),
//! read "n/a". Drawn with the painter; every header and cell is also an accessible label
//! ("circle → star: 0.50"), so screen readers and tests can read the matrix.

use egui::{Align2, Color32, FontId, Rect, Sense, Stroke, StrokeKind, Ui, pos2, vec2};

use crate::figures::Colormap;
use crate::reach::ReachSummary;

/// The accessible name of a cell: "circle → star: 0.50" (or "n/a").
pub fn cell_label(source: &str, target: &str, value: Option<f64>) -> String {
    match value {
        Some(v) => format!("{source} → {target}: {v:.2}"),
        None => format!("{source} → {target}: n/a"),
    }
}

fn colour(v: f64) -> Color32 {
    let [r, g, b] = Colormap::Viridis.colour(v as f32);
    Color32::from_rgb(r, g, b)
}

/// Dark text on the light end of viridis, light text on the dark end.
fn ink(v: f64) -> Color32 {
    if v > 0.55 {
        Color32::from_gray(20)
    } else {
        Color32::from_gray(240)
    }
}

/// A painted area that screen readers (and tests) read as a label.
fn accessible(ui: &Ui, rect: Rect, id: egui::Id, text: &str) -> egui::Response {
    let response = ui.interact(rect, id, Sense::hover());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, text));
    response
}

/// Draws the matrix of `summary`; `valid` counts the valid pairs per cell for the tooltips.
pub fn hit_matrix(ui: &mut Ui, summary: &ReachSummary, valid: &[Vec<usize>]) {
    let names = &summary.class_names;
    let k = names.len();
    if k == 0 {
        return;
    }
    let font = FontId::proportional(12.0);
    let text_colour = ui.visuals().text_color();
    let weak = ui.visuals().weak_text_color();
    let galleys: Vec<_> = names
        .iter()
        .map(|n| {
            ui.painter()
                .layout_no_wrap(n.clone(), font.clone(), text_colour)
        })
        .collect();
    let widest = galleys.iter().map(|g| g.size().x).fold(0.0, f32::max);
    let line = galleys.first().map_or(14.0, |g| g.size().y);
    let bar_area = 64.0;
    let cell = ((ui.available_width() - widest - 12.0 - bar_area) / k as f32).clamp(26.0, 44.0);
    // Column headers stand upright, so long class names never overlap.
    let header = widest + 6.0;
    let size = vec2(
        widest + 8.0 + k as f32 * cell + bar_area,
        header + k as f32 * cell,
    );
    let (area, _) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(area.expand(2.0));
    let grid_min = pos2(area.left() + widest + 8.0, area.top() + header);
    let id = ui.make_persistent_id("reach matrix");

    for (i, galley) in galleys.iter().enumerate() {
        // Row header, right-aligned beside its row.
        let row_y = grid_min.y + (i as f32 + 0.5) * cell;
        let pos = pos2(grid_min.x - 6.0 - galley.size().x, row_y - line / 2.0);
        painter.galley(pos, galley.clone(), text_colour);
        let rect = Rect::from_min_size(pos, galley.size());
        accessible(ui, rect, id.with(("row", i)), &names[i]);
        // Column header, rotated a quarter turn, its baseline along the column's centre.
        let col_x = grid_min.x + (i as f32 + 0.5) * cell;
        let bottom = grid_min.y - 4.0;
        let text = egui::epaint::TextShape::new(
            pos2(col_x - line / 2.0, bottom),
            galley.clone(),
            text_colour,
        )
        .with_angle(-std::f32::consts::FRAC_PI_2);
        painter.add(text);
        let rect = Rect::from_min_max(
            pos2(col_x - line / 2.0, bottom - galley.size().x),
            pos2(col_x + line / 2.0, bottom),
        );
        accessible(ui, rect, id.with(("column", i)), &names[i]);
    }

    let na_fill = ui.visuals().faint_bg_color;
    for (s, row) in summary.hit_matrix.iter().enumerate().take(k) {
        for (t, value) in row.iter().enumerate().take(k) {
            let rect = Rect::from_min_size(
                pos2(grid_min.x + t as f32 * cell, grid_min.y + s as f32 * cell),
                vec2(cell, cell),
            )
            .shrink(1.0);
            let diagonal = s == t;
            let shown = if diagonal { None } else { *value };
            match shown {
                Some(v) => {
                    painter.rect_filled(rect, 2.0, colour(v));
                    painter.text(
                        rect.center(),
                        Align2::CENTER_CENTER,
                        format!("{v:.2}"),
                        font.clone(),
                        ink(v),
                    );
                }
                None => {
                    painter.rect_filled(rect, 2.0, na_fill);
                    painter.rect_stroke(
                        rect,
                        2.0,
                        Stroke::new(1.0, weak.gamma_multiply(0.4)),
                        StrokeKind::Inside,
                    );
                    painter.text(
                        rect.center(),
                        Align2::CENTER_CENTER,
                        "n/a",
                        FontId::proportional(10.0),
                        weak,
                    );
                }
            }
            let label = cell_label(&names[s], &names[t], shown);
            let n = valid.get(s).and_then(|r| r.get(t)).copied().unwrap_or(0);
            let tip = if diagonal {
                format!(
                    "{} → its own class's target: same-class walks are not in the reach \
                     fraction ({} valid, hit rate {})",
                    names[s],
                    n,
                    value.map_or("n/a".into(), |v| format!("{v:.2}"))
                )
            } else if n == 0 {
                format!("{label}: no valid pair yet")
            } else {
                format!("{label} over {n} valid source(s)")
            };
            accessible(ui, rect, id.with(("cell", s, t)), &label).on_hover_text(tip);
        }
    }

    // The colour bar: viridis on [0, 1], 0 at the bottom.
    let bar = Rect::from_min_size(
        pos2(grid_min.x + k as f32 * cell + 14.0, grid_min.y),
        vec2(14.0, k as f32 * cell),
    );
    let steps = 32;
    for j in 0..steps {
        let v = 1.0 - (j as f64 + 0.5) / steps as f64;
        let h = bar.height() / steps as f32;
        let r = Rect::from_min_size(
            pos2(bar.left(), bar.top() + j as f32 * h),
            vec2(14.0, h + 0.5),
        );
        painter.rect_filled(r, 0.0, colour(v));
    }
    for (v, y) in [(1.0, bar.top()), (0.0, bar.bottom())] {
        painter.text(
            pos2(bar.right() + 4.0, y),
            Align2::LEFT_CENTER,
            format!("{v:.0}"),
            font.clone(),
            weak,
        );
    }
}
