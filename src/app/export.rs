//! Exports: figures as PNG (at the chosen scale) and SVG through the same `report`/`figures`
//! code as the CLI, the run record folder, and the GPU heatmap rendered offscreen. Everything
//! is written atomically, and an existing file is never overwritten (a new name is chosen).
//!
//! Every export is named `<what>_<source>-to-<target>_<model>_<YYYY-MM-DD_HHMMSS>Z` (the pair
//! left out when the export is not of one pair), so a folder of exports sorts by kind and
//! reads without opening the files.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

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
        /// The model's name for the file name (the report only has its architecture).
        model: String,
        corners: [image::RgbImage; 3],
        contours: Vec<f32>,
        colormap: Colormap,
    },
    Profile {
        report: Box<HullReport>,
        model: String,
    },
    HullRender {
        device: wgpu::Device,
        queue: wgpu::Queue,
        report: Box<HullReport>,
        model: String,
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

/// One part of an export's name, safe in a file name on every system: ASCII letters, digits
/// and `+`; anything else becomes `-` (so `_` is left to separate the parts), runs of `-`
/// collapse, and the part is kept short.
pub fn name_part(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '+' {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
        if out.len() >= 40 {
            break;
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "unnamed".into()
    } else {
        out.into()
    }
}

/// `YYYY-MM-DD_HHMMSSZ`, in UTC (the standard library has no time zones; the `Z` says so).
pub fn timestamp(when: SystemTime) -> String {
    let digits: String = humantime::format_rfc3339_seconds(when)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let part = |a: usize, b: usize| digits.get(a..b).unwrap_or("00");
    format!(
        "{}-{}-{}_{}{}{}Z",
        part(0, 4),
        part(4, 6),
        part(6, 8),
        part(8, 10),
        part(10, 12),
        part(12, 14)
    )
}

/// The stem of an export: `<what>_<source>-to-<target>_<model>_<timestamp>`, without the pair
/// when there is none.
pub fn export_stem(
    what: &str,
    pair: Option<(&str, &str)>,
    model: &str,
    when: SystemTime,
) -> String {
    let mut parts = vec![name_part(what)];
    if let Some((source, target)) = pair {
        parts.push(format!("{}-to-{}", name_part(source), name_part(target)));
    }
    parts.push(name_part(model));
    parts.push(timestamp(when));
    parts.join("_")
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

/// Like [`free_stem`], but claims the name: empty files (or the folder, with no extensions)
/// are created with create-new semantics, so two exports finishing in the same second cannot
/// both pick it. The atomic writes then replace the placeholders.
pub fn reserve_stem(dir: &Path, stem: &str, extensions: &[&str]) -> Result<String, String> {
    let claim = |path: &Path| {
        let made = if extensions.is_empty() {
            std::fs::create_dir(path)
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map(drop)
        };
        match made {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(format!("cannot create {}: {e}", path.display())),
        }
    };
    for k in 1..10_000 {
        let candidate = if k == 1 {
            stem.to_string()
        } else {
            format!("{stem}-{k}")
        };
        let paths: Vec<PathBuf> = if extensions.is_empty() {
            vec![dir.join(&candidate)]
        } else {
            extensions
                .iter()
                .map(|e| dir.join(format!("{candidate}.{e}")))
                .collect()
        };
        let mut claimed = Vec::new();
        let mut all = true;
        for path in &paths {
            if claim(path)? {
                claimed.push(path);
            } else {
                all = false;
                break;
            }
        }
        if all {
            return Ok(candidate);
        }
        // Part of this name was taken: give back what was claimed and try the next one.
        for path in claimed {
            let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir(path));
        }
    }
    Err(format!("no free name for {stem} in {}", dir.display()))
}

/// Writes `figure` as `<stem>.png` and `<stem>.svg` under a name no other file has.
pub(super) fn write_figure(
    figure: &Figure,
    dir: &Path,
    stem: &str,
    scale: f32,
) -> Result<String, String> {
    let stem = reserve_stem(dir, stem, &["png", "svg"])?;
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    let written = figure
        .write_png(&png, scale)
        .and_then(|()| figure.write_svg(&svg));
    if let Err(e) = written {
        // No empty placeholder is left behind to look like an export.
        for path in [&png, &svg] {
            let _ = std::fs::remove_file(path);
        }
        return Err(e.to_string());
    }
    Ok(format!("wrote {} and {}", png.display(), svg.display()))
}

/// The stem of a run's export of `what`.
fn run_stem(run: &FinishedRun, what: &str, when: SystemTime) -> String {
    let r = &run.record;
    export_stem(
        what,
        Some((&r.source.class_name, &r.target.class_name)),
        &r.model.short_name(),
        when,
    )
}

/// The stem of a hull's export of `what`: the pair is the source class to both targets.
fn hull_stem(report: &HullReport, what: &str, model: &str, when: SystemTime) -> String {
    let targets = format!("{}+{}", report.target_classes[0], report.target_classes[1]);
    export_stem(what, Some((&report.source_class, &targets)), model, when)
}

impl ExportJob {
    pub fn kind(&self) -> ExportKind {
        match self {
            ExportJob::Run(_) => ExportKind::Run,
            ExportJob::PathStrip(_) => ExportKind::PathStrip,
            ExportJob::Confidence(_) => ExportKind::Confidence,
            ExportJob::Widths(_) => ExportKind::Widths,
            ExportJob::HullFigure { .. } => ExportKind::HullFigure,
            ExportJob::Profile { .. } => ExportKind::Profile,
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
        let now = SystemTime::now();
        match self {
            ExportJob::Run(run) => {
                let name = reserve_stem(dir, &run_stem(&run, "run", now), &[])?;
                let out: PathBuf = dir.join(name);
                let saved = run
                    .record
                    .save(&run.pixels, &out)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        report::write_run_figures(&run.record, &run.pixels, &out).map_err(err)
                    });
                if let Err(e) = saved {
                    // Only a folder this export created (and half filled) is removed.
                    let _ = std::fs::remove_dir_all(&out);
                    return Err(e);
                }
                Ok(format!(
                    "wrote the run record and its figures to {}",
                    out.display()
                ))
            }
            ExportJob::PathStrip(run) => write_figure(
                &report::path_strip(&run.record, &run.pixels).map_err(err)?,
                dir,
                &run_stem(&run, "path-strip", now),
                scale,
            ),
            ExportJob::Confidence(run) => write_figure(
                &report::confidence_plot(&run.record).map_err(err)?,
                dir,
                &run_stem(&run, "confidence", now),
                scale,
            ),
            ExportJob::Widths(run) => {
                let figure = report::width_plot(&run.record)
                    .map_err(err)?
                    .ok_or_else(|| "this run has no width measurements".to_string())?;
                write_figure(&figure, dir, &run_stem(&run, "widths", now), scale)
            }
            ExportJob::HullFigure {
                report,
                model,
                corners,
                contours,
                colormap,
            } => write_figure(
                &report::hull_heatmap_styled(&report, corners, &contours, colormap).map_err(err)?,
                dir,
                &hull_stem(&report, &format!("hull-n{}", report.n), &model, now),
                scale,
            ),
            ExportJob::Profile { report, model } => write_figure(
                &report::interpolation_profile(&report).map_err(err)?,
                dir,
                &hull_stem(&report, "profile", &model, now),
                scale,
            ),
            ExportJob::HullRender {
                device,
                queue,
                report,
                model,
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
                let what = format!("heatmap-n{}-{size}px", report.n);
                let stem = reserve_stem(dir, &hull_stem(&report, &what, &model, now), &["png"])?;
                let path = dir.join(format!("{stem}.png"));
                if let Err(e) = crate::images::save_png_atomic(&image, &path) {
                    let _ = std::fs::remove_file(&path);
                    return Err(e.to_string());
                }
                Ok(format!("wrote {}", path.display()))
            }
            ExportJob::Grid { grid, model } => write_figure(
                &report::pairs_grid(&grid, &model).map_err(err)?,
                dir,
                &export_stem("grid", None, &model, now),
                scale,
            ),
            ExportJob::Frequency(job) => job.write(dir, scale),
            ExportJob::ReachFigures { summary, out } => {
                let model = crate::models::spec::short_name(
                    &summary.model.weights_path,
                    &summary.model.architecture,
                );
                let matrix = write_figure(
                    &crate::reach::hit_matrix_figure(&summary),
                    dir,
                    &export_stem("reach-hit-matrix", None, &model, now),
                    scale,
                )?;
                let stem = reserve_stem(
                    dir,
                    &export_stem("reach-examples-grid", None, &model, now),
                    &["png", "svg"],
                )?;
                for ext in ["png", "svg"] {
                    let from = out.join(format!("examples_grid.{ext}"));
                    let to = dir.join(format!("{stem}.{ext}"));
                    let copied = std::fs::read(&from)
                        .map_err(|e| format!("cannot read {}: {e}", from.display()))
                        .and_then(|bytes| {
                            crate::record::write_atomic(&to, &bytes).map_err(|e| e.to_string())
                        });
                    if let Err(e) = copied {
                        for ext in ["png", "svg"] {
                            let _ = std::fs::remove_file(dir.join(format!("{stem}.{ext}")));
                        }
                        return Err(e);
                    }
                }
                Ok(format!(
                    "{matrix}; copied the examples grid as {stem}.png and .svg"
                ))
            }
        }
    }
}
