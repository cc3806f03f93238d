//! Exports: figures as PNG (at the chosen scale) and SVG through the same `report`/`figures`
//! code as the CLI, the run record folder, and the GPU heatmap rendered offscreen. Everything
//! is written atomically, and an existing file is never overwritten (a new name is chosen).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui_wgpu::wgpu;

use crate::eval::ExamplesGrid;
use crate::figures::{Colormap, Figure};
use crate::report;
use crate::run::HullReport;

use super::heatmap::{HeatmapFrame, fit_corners, render_offscreen};
use super::state::ExportKind;
use super::worker::FinishedRun;

/// Everything one export needs, copied out of the app state so it runs on its own thread.
pub enum ExportJob {
    Run(Arc<FinishedRun>),
    PathStrip(Arc<FinishedRun>),
    Confidence(Arc<FinishedRun>),
    Widths(Arc<FinishedRun>),
    HullFigure {
        report: Box<HullReport>,
        corners: [image::RgbImage; 3],
        contours: Vec<f32>,
        colormap: Colormap,
    },
    Profile(Box<HullReport>),
    HullRender {
        device: wgpu::Device,
        queue: wgpu::Queue,
        report: Box<HullReport>,
        contours: Vec<f32>,
        colormap: Colormap,
        size: u32,
    },
    Grid {
        grid: Box<ExamplesGrid>,
        model: String,
    },
    /// A complete reach evaluation: its hit-rate matrix drawn again at the export scale, and
    /// the examples grid it wrote (made of per-pair tensors, so it is copied, not redrawn).
    ReachFigures {
        summary: Box<crate::reach::ReachSummary>,
        out: PathBuf,
    },
    /// The frequency margins shown: the record folder or the plot.
    Frequency(Box<super::frequency_job::FrequencyExport>),
}

/// A name in `dir` starting with `stem` that is free with each of `extensions` (a folder
/// name when there are none): `stem`, then `stem-2`, `stem-3`, …
pub(super) fn free_stem(dir: &Path, stem: &str, extensions: &[&str]) -> String {
    let taken = |s: &str| {
        if extensions.is_empty() {
            dir.join(s).exists()
        } else {
            extensions
                .iter()
                .any(|e| dir.join(format!("{s}.{e}")).exists())
        }
    };
    if !taken(stem) {
        return stem.to_string();
    }
    (2..)
        .map(|k| format!("{stem}-{k}"))
        .find(|s| !taken(s))
        .unwrap_or_else(|| stem.to_string())
}

pub(super) fn write_figure(
    figure: &Figure,
    dir: &Path,
    stem: &str,
    scale: f32,
) -> Result<String, String> {
    let stem = free_stem(dir, stem, &["png", "svg"]);
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    figure.write_png(&png, scale).map_err(|e| e.to_string())?;
    figure.write_svg(&svg).map_err(|e| e.to_string())?;
    Ok(format!("wrote {} and {}", png.display(), svg.display()))
}

/// The stem of a run's exports: its history folder's name, or source-to-target.
fn run_stem(run: &FinishedRun) -> String {
    run.dir
        .as_ref()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| {
            format!(
                "{}-to-{}",
                run.record.source.class_name, run.record.target.class_name
            )
        })
}

impl ExportJob {
    pub fn kind(&self) -> ExportKind {
        match self {
            ExportJob::Run(_) => ExportKind::Run,
            ExportJob::PathStrip(_) => ExportKind::PathStrip,
            ExportJob::Confidence(_) => ExportKind::Confidence,
            ExportJob::Widths(_) => ExportKind::Widths,
            ExportJob::HullFigure { .. } => ExportKind::HullFigure,
            ExportJob::Profile(_) => ExportKind::Profile,
            ExportJob::HullRender { .. } => ExportKind::HullRender,
            ExportJob::Grid { .. } => ExportKind::Grid,
            ExportJob::ReachFigures { .. } => ExportKind::ReachFigures,
            ExportJob::Frequency(job) => job.kind,
        }
    }

    /// Writes the export into `dir` (created if needed) and says what was written.
    pub fn write(self, dir: &Path, scale: f32) -> Result<String, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the export folder {}: {e}", dir.display()))?;
        let err = |e: report::ReportError| e.to_string();
        match self {
            ExportJob::Run(run) => {
                let name = free_stem(dir, &run_stem(&run), &[]);
                let out: PathBuf = dir.join(name);
                if out.exists() {
                    return Err(format!("{} already exists", out.display()));
                }
                run.record
                    .save(&run.pixels, &out)
                    .map_err(|e| e.to_string())?;
                report::write_run_figures(&run.record, &run.pixels, &out).map_err(err)?;
                Ok(format!(
                    "wrote the run record and its figures to {}",
                    out.display()
                ))
            }
            ExportJob::PathStrip(run) => write_figure(
                &report::path_strip(&run.record, &run.pixels).map_err(err)?,
                dir,
                &format!("{}_path_strip", run_stem(&run)),
                scale,
            ),
            ExportJob::Confidence(run) => write_figure(
                &report::confidence_plot(&run.record).map_err(err)?,
                dir,
                &format!("{}_confidence", run_stem(&run)),
                scale,
            ),
            ExportJob::Widths(run) => {
                let figure = report::width_plot(&run.record)
                    .map_err(err)?
                    .ok_or_else(|| "this run has no width measurements".to_string())?;
                write_figure(&figure, dir, &format!("{}_widths", run_stem(&run)), scale)
            }
            ExportJob::HullFigure {
                report,
                corners,
                contours,
                colormap,
            } => write_figure(
                &report::hull_heatmap_styled(&report, corners, &contours, colormap).map_err(err)?,
                dir,
                &format!("hull_{}_n{}", report.source_class, report.n),
                scale,
            ),
            ExportJob::Profile(report) => write_figure(
                &report::interpolation_profile(&report).map_err(err)?,
                dir,
                &format!("profile_{}", report.source_class),
                scale,
            ),
            ExportJob::HullRender {
                device,
                queue,
                report,
                contours,
                colormap,
                size,
            } => {
                let g = &report.geometry;
                let (p1, p2) = if g.degenerate {
                    ([1.0, 0.0], [0.0, 1.0])
                } else {
                    (g.p1, g.p2)
                };
                let (corners_ndc, _) = fit_corners(p1, p2, size as f32, size as f32, 0.02);
                let frame = HeatmapFrame {
                    n: report.n,
                    confidences: report.confidences.clone(),
                    corners_ndc,
                    contours,
                    colormap,
                };
                let image = render_offscreen(&device, &queue, &frame, size, size, [0, 0, 0, 0])
                    .map_err(|e| e.to_string())?;
                let stem = free_stem(
                    dir,
                    &format!("heatmap_{}_n{}_{size}px", report.source_class, report.n),
                    &["png"],
                );
                let path = dir.join(format!("{stem}.png"));
                crate::images::save_png_atomic(&image, &path).map_err(|e| e.to_string())?;
                Ok(format!("wrote {}", path.display()))
            }
            ExportJob::Grid { grid, model } => write_figure(
                &report::pairs_grid(&grid, &model).map_err(err)?,
                dir,
                "grid",
                scale,
            ),
            ExportJob::Frequency(job) => job.write(dir, scale),
            ExportJob::ReachFigures { summary, out } => {
                let name = out
                    .file_name()
                    .map_or_else(|| "reach".into(), |n| n.to_string_lossy().into_owned());
                let matrix = write_figure(
                    &crate::reach::hit_matrix_figure(&summary),
                    dir,
                    &format!("{name}_hit_matrix"),
                    scale,
                )?;
                let stem = free_stem(dir, &format!("{name}_examples_grid"), &["png", "svg"]);
                for ext in ["png", "svg"] {
                    let from = out.join(format!("examples_grid.{ext}"));
                    let bytes = std::fs::read(&from)
                        .map_err(|e| format!("cannot read {}: {e}", from.display()))?;
                    let to = dir.join(format!("{stem}.{ext}"));
                    crate::record::write_atomic(&to, &bytes).map_err(|e| e.to_string())?;
                }
                Ok(format!(
                    "{matrix}; copied the examples grid as {stem}.png and .svg"
                ))
            }
        }
    }
}
