//! Path widths (§1.5): at every kept frame, the 5% and 95% quantiles of the source confidence
//! over 256 random directions orthogonal to the path, per radius. A wide path keeps both high
//! at large radii; a thin one collapses.

use egui::{RichText, Ui};
use egui_plot::{Legend, Line, MarkerShape, Plot, PlotPoints, Points};

use crate::analysis::width::WidthStatus;
use crate::app::state::{AppState, ExportKind};

use super::compare::comparison_picker;
use super::export_bar;
use super::width_compare::WidthComparison;

pub use super::compare::NO_COMPARISON;

#[derive(Default)]
pub struct WidthsPanel {
    comparison: WidthComparison,
}

/// A marker per radius, so curves of near colours stay apart.
const RADIUS_MARKERS: [MarkerShape; 6] = [
    MarkerShape::Circle,
    MarkerShape::Square,
    MarkerShape::Diamond,
    MarkerShape::Up,
    MarkerShape::Down,
    MarkerShape::Asterisk,
];

/// A colour per radius, light to dark.
fn radius_colour(k: usize, count: usize) -> egui::Color32 {
    let t = if count > 1 {
        k as f32 / (count - 1) as f32
    } else {
        0.0
    };
    let c = crate::figures::Colormap::Viridis.colour(0.15 + 0.7 * t);
    egui::Color32::from_rgb(c[0], c[1], c[2])
}

impl WidthsPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState) {
        if state.live.is_some() {
            ui.label(RichText::new("Widths show when the run has finished.").weak());
            return;
        }
        let Some(run) = state.shown_finished().cloned() else {
            ui.label(RichText::new("No run yet.").weak());
            return;
        };
        comparison_picker(ui, state, &run);
        if let Some(other) = state.comparison_for(&run) {
            self.comparison.ui(ui, &run, &other);
            return;
        }
        if let Some(why) = state.stale_reason(&run.record) {
            super::stale_note(ui, &why);
        }
        let record = &run.record;
        let measured = record.measured_widths();
        if measured.is_empty() {
            ui.add_space(20.0);
            ui.label(RichText::new("This run has no width measurements.").strong());
            ui.label(
                "Turn on Parameters → Path widths (measure) and run again. Each kept frame \
                 then costs 256 forward passes per radius.",
            );
            return;
        }
        let radii = &record.config.width().radii;
        let skipped = measured
            .iter()
            .filter(|(_, w)| w.status == WidthStatus::Skipped)
            .count();
        ui.label(format!(
            "{} → {}: {} measurements at radii {:?} (L2, pixel space){}",
            record.source.class_name,
            record.target.class_name,
            measured.len(),
            radii,
            if skipped > 0 {
                format!(", {skipped} skipped (confidence below pthresh)")
            } else {
                String::new()
            }
        ));
        let height = ((ui.available_height() - 60.0) / 2.0).clamp(140.0, 320.0);
        for (q, name) in [(1usize, "q95"), (0usize, "q05")] {
            Plot::new(format!("width {name}"))
                .height(height)
                .legend(Legend::default().follow_insertion_order(true))
                .include_y(0.0)
                .include_y(1.0)
                .x_axis_label("step")
                .y_axis_label(format!("{name} of p(source)"))
                .allow_scroll(false)
                .show(ui, |plot| {
                    let on_path: PlotPoints = measured
                        .iter()
                        .map(|(s, w)| [*s as f64, f64::from(w.rows[0][0])])
                        .collect();
                    plot.line(
                        Line::new("on the path", on_path)
                            .color(super::SOURCE_COLOUR)
                            .width(2.0),
                    );
                    for (k, r) in radii.iter().enumerate() {
                        let values: Vec<[f64; 2]> = measured
                            .iter()
                            .filter(|(_, w)| w.status == WidthStatus::Measured)
                            .filter_map(|(s, w)| {
                                w.rows.get(k + 1).map(|row| [*s as f64, f64::from(row[q])])
                            })
                            .collect();
                        // Colour alone does not tell neighbouring radii apart (nor in print):
                        // each radius also gets its own marker, named in the legend.
                        let colour = radius_colour(k, radii.len());
                        let name = format!("r = {r}");
                        plot.line(
                            Line::new(name.clone(), PlotPoints::from(values.clone()))
                                .color(colour)
                                .width(1.5),
                        );
                        plot.points(
                            Points::new(name, PlotPoints::from(values))
                                .shape(RADIUS_MARKERS[k % RADIUS_MARKERS.len()])
                                .radius(3.5)
                                .filled(k % 2 == 0)
                                .color(colour),
                        );
                    }
                    let skipped: Vec<[f64; 2]> = measured
                        .iter()
                        .filter(|(_, w)| w.status == WidthStatus::Skipped)
                        .map(|(s, _)| [*s as f64, 0.0])
                        .collect();
                    if !skipped.is_empty() {
                        plot.points(
                            Points::new("skipped", PlotPoints::from(skipped))
                                .shape(MarkerShape::Diamond)
                                .radius(3.0),
                        );
                    }
                });
        }
        export_bar(ui, state, &[(ExportKind::Widths, "Width plot")]);
    }
}
