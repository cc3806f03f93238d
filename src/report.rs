//! Figures of runs, hulls and evaluations: turns run records into the plain data that
//! `figures` draws. The CLI and the app both export through here.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::analysis::hull::PROFILE_STEPS;
use crate::analysis::plans::path_strip_frames;
use crate::analysis::width::WidthStatus;
use crate::figures::{
    self, Figure, FigureError, HullFigureData, ProfileCurve, StepPoint, StripFrame, WidthFigureData,
};
use crate::images::{self, ImageError};
use crate::record::{RunPixels, RunRecord};
use crate::run::HullReport;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Figure(#[from] FigureError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{0}")]
    Data(String),
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// Contour levels drawn on hull heatmaps.
pub const CONTOUR_LEVELS: [f32; 4] = [0.25, 0.5, 0.75, 0.9];

/// The RGB image of [C, H, W] pixels in [0, 1].
pub fn rgb(pixels: &[f32], shape: [usize; 3]) -> Result<RgbImage> {
    let t = Tensor::from_slice(pixels, shape.as_slice(), &Device::Cpu)
        .map_err(|e| ReportError::Data(e.to_string()))?;
    Ok(images::from_tensor(&t)?)
}

fn run_title(record: &RunRecord) -> String {
    format!(
        "{} → {}, {}",
        record.source.class_name, record.target.class_name, record.model.architecture
    )
}

/// §1.9 path strip: the source, six logged iterates, x*, and the target at the right end.
pub fn path_strip(record: &RunRecord, pixels: &RunPixels) -> Result<Figure> {
    let shape = pixels.shape;
    let mut frames = vec![StripFrame {
        image: rgb(&pixels.source, shape)?,
        source_confidence: record.p0,
        // The first logged frame is the noised start; its target confidence stands in.
        target_confidence: record.frames.first().map_or(0.0, |f| f.target_confidence),
        caption: "source".into(),
    }];
    for i in path_strip_frames(record.frames.len()) {
        let (Some(f), Some(p)) = (record.frames.get(i), pixels.frames.get(i)) else {
            continue;
        };
        frames.push(StripFrame {
            image: rgb(p, shape)?,
            source_confidence: f.source_confidence,
            target_confidence: f.target_confidence,
            caption: format!("step {}", f.step),
        });
    }
    if let (Some(fin), Some(out)) = (&record.final_output, &pixels.output) {
        frames.push(StripFrame {
            image: rgb(out, shape)?,
            source_confidence: fin.source_confidence,
            target_confidence: fin.target_confidence,
            caption: "x*".into(),
        });
    }
    Ok(figures::path_strip(
        &frames,
        &rgb(&pixels.target, shape)?,
        &run_title(record),
    ))
}

/// Confidences and distances against step, rejected steps marked.
pub fn confidence_plot(record: &RunRecord) -> Result<Figure> {
    let steps: Vec<StepPoint> = record
        .steps
        .iter()
        .map(|s| StepPoint {
            step: s.step,
            source_confidence: s.source_confidence,
            target_confidence: s.target_confidence,
            l2_normalized: s.l2_normalized,
            linf: s.linf,
            accepted: s.accepted,
        })
        .collect();
    Ok(figures::confidence_plot(&steps, &run_title(record)))
}

/// The width data of a run, when it measured widths, titled `title`.
fn width_data(record: &RunRecord, title: String) -> Option<WidthFigureData> {
    let measured = record.measured_widths();
    if measured.is_empty() {
        return None;
    }
    Some(WidthFigureData {
        logged_steps: measured.iter().map(|(s, _)| *s).collect(),
        radii: record.config.width().radii.clone(),
        q05: measured
            .iter()
            .map(|(_, w)| w.rows.iter().map(|r| r[0]).collect())
            .collect(),
        q95: measured
            .iter()
            .map(|(_, w)| w.rows.iter().map(|r| r[1]).collect())
            .collect(),
        skipped: measured
            .iter()
            .map(|(_, w)| w.status == WidthStatus::Skipped)
            .collect(),
        title,
    })
}

/// The path-width heatmaps, when the run measured widths.
pub fn width_plot(record: &RunRecord) -> Result<Option<Figure>> {
    let title = format!("path width, {}", run_title(record));
    Ok(width_data(record, title).map(|d| figures::width_plot(&d)))
}

/// The path widths of several runs of one pair (one per model), a row each, on the shared
/// colour scale (§2.4). Refuses runs without widths, and runs of different pairs.
pub fn width_compare(runs: &[(&str, &RunRecord)]) -> Result<Figure> {
    let Some((_, first)) = runs.first() else {
        return Err(ReportError::Data("a width comparison needs runs".into()));
    };
    let mut rows = Vec::with_capacity(runs.len());
    for (label, record) in runs {
        if record.source.sha256 != first.source.sha256
            || record.target.sha256 != first.target.sha256
        {
            return Err(ReportError::Data(format!(
                "{label} walked another pair ({} → {}) than {} ({} → {}): widths compare on one pair",
                record.source.path,
                record.target.path,
                runs[0].0,
                first.source.path,
                first.target.path
            )));
        }
        let title = format!("{label}: p0 {:.3}, {}", record.p0, record.status.label());
        rows.push(width_data(record, title).ok_or_else(|| {
            ReportError::Data(format!("{label}: the run measured no path widths"))
        })?);
    }
    Ok(figures::width_compare(&figures::WidthCompareData {
        rows,
        title: format!(
            "path width, {} → {} (same colour scale)",
            first.source.class_name, first.target.class_name
        ),
    }))
}

/// The hull heatmap in true geometry, with the three corner thumbnails.
pub fn hull_heatmap(report: &HullReport, corners: [RgbImage; 3]) -> Result<Figure> {
    hull_heatmap_styled(report, corners, &CONTOUR_LEVELS, figures::Colormap::Viridis)
}

/// [`hull_heatmap`] with the contour levels and colour map the user picked (the app's
/// export draws what its view shows).
pub fn hull_heatmap_styled(
    report: &HullReport,
    corners: [RgbImage; 3],
    contour_levels: &[f32],
    colormap: figures::Colormap,
) -> Result<Figure> {
    let g = &report.geometry;
    let data = HullFigureData {
        n: report.n,
        confidences: report.confidences.clone(),
        p1: [g.p1[0] as f32, g.p1[1] as f32],
        p2: [g.p2[0] as f32, g.p2[1] as f32],
        degenerate: g.degenerate,
        corners,
        corner_labels: [
            format!("source ({})", report.source_class),
            format!("x* → {}", report.target_classes[0]),
            format!("x* → {}", report.target_classes[1]),
        ],
        contour_levels: contour_levels.to_vec(),
        title: format!("p({}) over the hull, {}", report.source_class, report.model),
        colormap,
    };
    Ok(figures::hull_heatmap(&data))
}

/// §1.8 profile: source → x* solid, source → target dashed, for both runs of the hull.
pub fn interpolation_profile(report: &HullReport) -> Result<Figure> {
    let t: Vec<f32> = (0..=PROFILE_STEPS)
        .map(|k| k as f32 / PROFILE_STEPS as f32)
        .collect();
    let curve = |k: usize, label: String, dashed: bool| ProfileCurve {
        label,
        t: t.clone(),
        confidence: report.profiles[k].clone(),
        dashed,
    };
    let curves = [
        curve(0, format!("→ x* ({})", report.target_classes[0]), false),
        curve(1, format!("→ x* ({})", report.target_classes[1]), false),
        curve(2, format!("→ target ({})", report.target_classes[0]), true),
        curve(3, format!("→ target ({})", report.target_classes[1]), true),
    ];
    Ok(figures::interpolation_profile(
        &curves,
        &format!(
            "p({}) along straight paths, {}",
            report.source_class, report.model
        ),
    ))
}

/// Writes `name.png` (at `scale`) and `name.svg` into `dir`.
pub fn write_figure(figure: &Figure, dir: &Path, name: &str, scale: f32) -> Result<()> {
    figure.write_png(&dir.join(format!("{name}.png")), scale)?;
    figure.write_svg(&dir.join(format!("{name}.svg")))?;
    Ok(())
}

/// The figures of one run: path strip, confidence plot and (when measured) widths.
pub fn write_run_figures(record: &RunRecord, pixels: &RunPixels, dir: &Path) -> Result<()> {
    write_figure(&path_strip(record, pixels)?, dir, "path_strip", 2.0)?;
    write_figure(&confidence_plot(record)?, dir, "confidence", 2.0)?;
    if let Some(w) = width_plot(record)? {
        write_figure(&w, dir, "widths", 2.0)?;
    }
    Ok(())
}

/// The all-pairs grid (row = target, column = source).
pub fn pairs_grid(grid: &crate::eval::ExamplesGrid, model: &str) -> Result<Figure> {
    let cells = grid
        .outputs
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Some((pixels, conf)) => Ok(Some(figures::GridCell {
                        image: rgb(pixels, grid.shape)?,
                        source_confidence: *conf,
                    })),
                    None => Ok(None),
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(figures::pairs_grid(&figures::GridFigureData {
        k: grid.k,
        class_names: grid.class_names.clone(),
        cells,
        title: format!("LST outputs (row = target, column = source), {model}"),
        diagonal: "unmodified source",
    }))
}
