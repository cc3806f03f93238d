//! Two runs' path widths side by side (ALGORITHMS.md §2.4): each run's q05/q95 heatmaps, drawn
//! by the same figure code as the CLI and the export (so both sit on the one [0, 1] viridis
//! scale), labelled with the run's model, and the per-radius means (§2.4's width summary)
//! beside each other. The seed's finding is read here: a robust model's path stays wide.

use std::sync::Arc;

use egui::{RichText, Ui};

use crate::analysis::reach::width_summary;
use crate::app::worker::FinishedRun;
use crate::record::RunRecord;

/// Rendered figures kept at most (two are shown; a few more spare re-rendering when the user
/// flips between runs).
const FIGURE_CACHE: usize = 6;

/// The figure's render scale: sharp on a HiDPI screen, scaled down to the column's width.
const FIGURE_SCALE: f32 = 2.0;

/// A model as the comparison names it: the weights' file stem (e.g. "demo-robust") and the
/// architecture, so two models of one architecture are told apart.
pub fn model_label(record: &RunRecord) -> String {
    let stem = std::path::Path::new(&record.model.weights_path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty());
    match stem {
        Some(stem) => format!("{stem} ({})", record.model.architecture),
        None => record.model.architecture.clone(),
    }
}

/// What the picker lists for a run: its pair, walk and model.
pub fn run_label(run: &FinishedRun) -> String {
    format!(
        "{} · {} · {}",
        run.title(),
        run.record.config.method().name(),
        model_label(&run.record)
    )
}

/// Why two runs' widths do not compare like for like, if they do not.
fn mismatch(a: &RunRecord, b: &RunRecord) -> Option<String> {
    if a.source.sha256 != b.source.sha256 || a.target.sha256 != b.target.sha256 {
        return Some(format!(
            "Different pairs: {} → {} beside {} → {}. The widths are of different paths; \
             run the same pair on both models to compare them.",
            a.source.class_name, a.target.class_name, b.source.class_name, b.target.class_name
        ));
    }
    if a.model.weights_sha256 == b.model.weights_sha256 {
        return Some("Both runs are of the same model.".into());
    }
    None
}

#[derive(Default)]
pub struct WidthComparison {
    /// Rendered heatmap figures by run; the Arc keeps the run alive, so identity is safe.
    figures: Vec<(Arc<FinishedRun>, Result<egui::TextureHandle, String>)>,
}

impl WidthComparison {
    /// Shows `a` (the shown run) and `b` side by side; both must have measured widths, else
    /// it says which has none.
    pub fn ui(&mut self, ui: &mut Ui, a: &Arc<FinishedRun>, b: &Arc<FinishedRun>) {
        let without: Vec<&Arc<FinishedRun>> = [a, b]
            .into_iter()
            .filter(|r| r.record.measured_widths().is_empty())
            .collect();
        if !without.is_empty() {
            ui.add_space(12.0);
            for run in without {
                ui.label(
                    RichText::new(format!(
                        "{} has no width measurements: run it again with Parameters → Path \
                         widths on.",
                        run_label(run)
                    ))
                    .strong(),
                );
            }
            return;
        }
        if let Some(why) = mismatch(&a.record, &b.record) {
            ui.colored_label(ui.visuals().warn_fg_color, why);
        }
        ui.label(
            RichText::new(
                "Colour: p(source) on the same [0, 1] viridis scale in both; rows are radii \
                 (mirrored, the path in the middle), columns the measured iterations.",
            )
            .weak()
            .small(),
        );
        let runs = [a, b];
        ui.columns(2, |columns| {
            for (column, run) in columns.iter_mut().zip(runs) {
                self.column(column, run);
            }
        });
        ui.add_space(6.0);
        summary_table(ui, &runs);
    }

    fn column(&mut self, ui: &mut Ui, run: &Arc<FinishedRun>) {
        let record = &run.record;
        ui.label(RichText::new(model_label(record)).strong().size(15.0));
        ui.label(
            RichText::new(format!(
                "{} · {} · {}",
                run.title(),
                record.config.method().name(),
                record.status.label()
            ))
            .small(),
        );
        match self.figure(ui.ctx(), run) {
            Ok(texture) => {
                let size = texture.size_vec2();
                let width = ui.available_width().min(size.x);
                let height = width * size.y / size.x.max(1.0);
                ui.add(egui::Image::new((texture.id(), egui::vec2(width, height))));
            }
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        }
    }

    /// The run's heatmap figure as a texture, rendered once.
    fn figure(
        &mut self,
        ctx: &egui::Context,
        run: &Arc<FinishedRun>,
    ) -> Result<egui::TextureHandle, String> {
        if let Some((_, made)) = self.figures.iter().find(|(r, _)| Arc::ptr_eq(r, run)) {
            return made.clone();
        }
        let made = render(ctx, &run.record);
        if self.figures.len() >= FIGURE_CACHE {
            let _evicted = self.figures.remove(0);
        }
        self.figures.push((run.clone(), made.clone()));
        made
    }
}

fn render(ctx: &egui::Context, record: &RunRecord) -> Result<egui::TextureHandle, String> {
    let figure = crate::report::width_plot(record)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "this run has no width measurements".to_string())?;
    let png = figure
        .png_bytes(FIGURE_SCALE)
        .map_err(|e| format!("cannot draw the width figure: {e}"))?;
    let rgba = image::load_from_memory(&png)
        .map_err(|e| format!("cannot read the width figure: {e}"))?
        .to_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    let image = egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw());
    Ok(ctx.load_texture(
        format!("width figure {}", record.created_unix),
        image,
        egui::TextureOptions::LINEAR,
    ))
}

/// §2.4's width summary, the two models side by side: per radius, mean q05 and mean q95.
fn summary_table(ui: &mut Ui, runs: &[&Arc<FinishedRun>; 2]) {
    let summaries = runs.map(|r| {
        let measured = r.record.measured_widths();
        width_summary(
            &r.record.config.width().radii,
            measured.iter().map(|(_, w)| *w),
        )
    });
    let [a, b] = &summaries;
    if a.radii != b.radii {
        ui.label(RichText::new("The two runs measured different radii; no summary table.").weak());
        return;
    }
    let cell = |row: Option<&Option<[f64; 2]>>, k: usize| match row {
        Some(Some(v)) => format!("{:.2}", v[k]),
        _ => "n/a".into(),
    };
    ui.label(RichText::new("Mean over measurements (width summary)").strong());
    egui::Grid::new("width summary")
        .striped(true)
        .spacing([14.0, 2.0])
        .show(ui, |ui| {
            ui.label("radius");
            for run in runs {
                let name = model_label(&run.record);
                ui.label(format!("{name} q05"));
                ui.label(format!("{name} q95"));
            }
            ui.end_row();
            for (k, name) in std::iter::once("on path".to_string())
                .chain(a.radii.iter().map(|r| format!("{r}")))
                .enumerate()
            {
                ui.label(name);
                for s in &summaries {
                    ui.label(cell(s.rows.get(k), 0));
                    ui.label(cell(s.rows.get(k), 1));
                }
                ui.end_row();
            }
        });
}
