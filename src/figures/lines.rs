//! Line plots: confidence over the path and the linear-interpolation profile.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Canvas, TextStyleU, draw_err, measure};
use super::style::{self, DARK, LIGHT, PALETTE, REJECT, pt};
use super::{FigureError, ProfileCurve, StepPoint};

pub(crate) struct Confidence {
    pub steps: Vec<StepPoint>,
    pub title: String,
}

pub(crate) struct Profile {
    pub curves: Vec<ProfileCurve>,
    pub title: String,
}

/// Single-column width (3.3 in at 144 units per inch).
const WIDTH: u32 = 480;
pub(crate) const CONFIDENCE_SIZE: (u32, u32) = (WIDTH, 620);
const MARGIN: f64 = 12.0;

/// Below this many steps every accepted step also gets a dot; above it dots would merge into
/// a thick line, and the line itself already shows the accepted path.
const DOT_ACCEPTED_UP_TO: usize = 60;

/// Draw the title and return the y where the plots may start.
pub(super) fn title<DB: DrawingBackend>(
    c: &Canvas<DB>,
    text: &str,
    width: f64,
) -> Result<f64, FigureError> {
    let size = style::fit_size(text, style::TITLE_PT, width - 2.0 * MARGIN, true);
    c.text(
        text,
        width / 2.0,
        MARGIN,
        TextStyleU::new(size).bold().anchor(HPos::Center, VPos::Top),
    )?;
    Ok(MARGIN + size + 6.0)
}

/// A Cartesian chart with the house style: light grid, ticks and labels at readable sizes.
pub(super) fn make_chart<'a, DB: DrawingBackend>(
    c: &Canvas<DB>,
    area: &'a DrawingArea<DB, Shift>,
    x: Range<f64>,
    y: Range<f64>,
    x_desc: &str,
    y_desc: &str,
    x_fmt: fn(&f64) -> String,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, FigureError> {
    make_chart_with_y(c, area, x, y, x_desc, y_desc, x_fmt, |v| format!("{v:.1}"))
}

/// `make_chart` with the y tick labels formatted by `y_fmt`.
#[allow(clippy::too_many_arguments)]
pub(super) fn make_chart_with_y<'a, DB: DrawingBackend>(
    c: &Canvas<DB>,
    area: &'a DrawingArea<DB, Shift>,
    x: Range<f64>,
    y: Range<f64>,
    x_desc: &str,
    y_desc: &str,
    x_fmt: fn(&f64) -> String,
    y_fmt: fn(&f64) -> String,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, FigureError> {
    // Without an x title the label area only has to hold the tick labels.
    let x_area = if x_desc.is_empty() { 34.0 } else { 60.0 };
    let mut chart = ChartBuilder::on(area)
        .margin_right(c.px(18.0))
        .margin_top(c.px(10.0))
        .x_label_area_size(c.px(x_area))
        .y_label_area_size(c.px(72.0))
        .build_cartesian_2d(x, y)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(c.text_style(pt(style::TICK_PT)))
        .axis_desc_style(c.text_style(pt(style::LABEL_PT)))
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(232, 232, 232).stroke_width(c.stroke(1.0)))
        .axis_style(DARK.stroke_width(c.stroke(1.0)))
        .set_all_tick_mark_size(c.px(4.0))
        .draw()
        .map_err(draw_err)?;
    Ok(chart)
}

pub(super) fn legend<'a, DB: DrawingBackend + 'a>(
    c: &Canvas<DB>,
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<(), FigureError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(LIGHT.stroke_width(c.stroke(1.0)))
        .label_font(c.text_style(pt(style::SMALL_PT)))
        .margin(c.px(8.0))
        .legend_area_size(c.px(30.0))
        .draw()
        .map_err(draw_err)
}

/// The step range, widened when there is a single step so the axis is not empty.
fn step_range(steps: &[StepPoint]) -> Range<f64> {
    let lo = steps.iter().map(|s| s.step).min().unwrap_or(0) as f64;
    let hi = steps.iter().map(|s| s.step).max().unwrap_or(1) as f64;
    if hi > lo { lo..hi } else { lo - 1.0..hi + 1.0 }
}

/// 0..(a round number just above the largest finite value), so distances fill the panel.
fn distance_range(values: impl Iterator<Item = f32>) -> Range<f64> {
    let max = values.filter(|v| v.is_finite()).fold(0.0f32, f32::max) as f64;
    if max <= 0.0 {
        return 0.0..1.0;
    }
    let step = 10f64.powf((max * 1.05).log10().floor()) / 2.0;
    0.0..((max * 1.05) / step).ceil() * step
}

fn int_fmt(v: &f64) -> String {
    format!("{v:.0}")
}

fn one_decimal(v: &f64) -> String {
    format!("{v:.1}")
}

fn finite(v: f32) -> bool {
    v.is_finite()
}

pub(crate) fn draw_confidence<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    p: &Confidence,
) -> Result<(), FigureError> {
    let (w, h) = (CONFIDENCE_SIZE.0 as f64, CONFIDENCE_SIZE.1 as f64);
    let top = title(c, &p.title, w)?;
    let split = top + (h - top - MARGIN) * 0.5;
    let xr = step_range(&p.steps);
    let line_w = c.stroke(1.8);
    let src_style = PALETTE[0].stroke_width(line_w);
    let tgt_style = PALETTE[1].stroke_width(line_w);

    // Top: the two confidences, rejected steps as red crosses on both curves.
    let upper = c.sub_area(MARGIN, top, w - MARGIN, split);
    // The step axis is titled once, under the bottom panel.
    let mut chart = make_chart(c, &upper, xr.clone(), 0.0..1.0, "", "confidence", int_fmt)?;
    let series = |get: fn(&StepPoint) -> f32| {
        p.steps
            .iter()
            .filter(move |s| finite(get(s)))
            .map(move |s| (s.step as f64, get(s) as f64))
    };
    let sample = c.px(22.0);
    chart
        .draw_series(LineSeries::new(series(|s| s.source_confidence), src_style))
        .map_err(draw_err)?
        .label("p(source)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + sample, y)], src_style));
    chart
        .draw_series(LineSeries::new(series(|s| s.target_confidence), tgt_style))
        .map_err(draw_err)?
        .label("p(target)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + sample, y)], tgt_style));
    if p.steps.len() <= DOT_ACCEPTED_UP_TO {
        let r = c.px(2.5);
        for (get, colour) in [
            (
                (|s: &StepPoint| s.source_confidence) as fn(&StepPoint) -> f32,
                PALETTE[0],
            ),
            (|s: &StepPoint| s.target_confidence, PALETTE[1]),
        ] {
            chart
                .draw_series(
                    p.steps
                        .iter()
                        .filter(|s| s.accepted && finite(get(s)))
                        .map(|s| Circle::new((s.step as f64, get(s) as f64), r, colour.filled())),
                )
                .map_err(draw_err)?;
        }
    }
    let cross = c.px(5.0);
    let cross_style = REJECT.stroke_width(c.stroke(1.6));
    let rejected: Vec<&StepPoint> = p.steps.iter().filter(|s| !s.accepted).collect();
    let marks = rejected.iter().flat_map(|s| {
        [s.source_confidence, s.target_confidence]
            .into_iter()
            .filter(|v| v.is_finite())
            .map(move |v| (s.step as f64, v as f64))
    });
    let drawn = chart
        .draw_series(marks.map(|pt| Cross::new(pt, cross, cross_style)))
        .map_err(draw_err)?;
    if !rejected.is_empty() {
        drawn
            .label("rejected step")
            .legend(move |(x, y)| Cross::new((x + sample / 2, y), cross, cross_style));
    }
    legend(c, &mut chart, SeriesLabelPosition::MiddleRight)?;

    // Bottom: how far the iterate is from the target.
    let lower = c.sub_area(MARGIN, split + 4.0, w - MARGIN, h - MARGIN);
    let yr = distance_range(p.steps.iter().flat_map(|s| [s.l2_normalized, s.linf]));
    let mut chart = make_chart(c, &lower, xr, yr, "step", "distance to target", int_fmt)?;
    let l2_style = PALETTE[2].stroke_width(line_w);
    let linf_style = PALETTE[3].stroke_width(line_w);
    chart
        .draw_series(LineSeries::new(series(|s| s.l2_normalized), l2_style))
        .map_err(draw_err)?
        .label("L2 (normalised)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + sample, y)], l2_style));
    chart
        .draw_series(LineSeries::new(series(|s| s.linf), linf_style))
        .map_err(draw_err)?
        .label("L∞")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + sample, y)], linf_style));
    legend(c, &mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

pub(crate) fn validate_profile(p: &Profile) -> Result<(), FigureError> {
    for curve in &p.curves {
        if curve.t.len() != curve.confidence.len() {
            return Err(FigureError::InvalidData(format!(
                "profile curve {:?} has {} t values but {} confidences",
                curve.label,
                curve.t.len(),
                curve.confidence.len()
            )));
        }
    }
    Ok(())
}

/// Height of the profile's plot area; the legend below it grows with the curves.
const PROFILE_PLOT_H: f64 = 380.0;
/// Length of a legend's line sample.
const SAMPLE: f64 = 30.0;

/// Legend layout: two columns (solid curves left, dashed right, pairs side by side) when the
/// labels fit, else one column in the order given.
struct ProfileLegend {
    two_columns: bool,
    rows: usize,
    row_h: f64,
}

impl ProfileLegend {
    fn new(p: &Profile) -> Self {
        let size = pt(style::SMALL_PT);
        let widest = p
            .curves
            .iter()
            .map(|c| measure(&c.label, size, false).0)
            .fold(0.0, f64::max);
        let solid = p.curves.iter().filter(|c| !c.dashed).count();
        let dashed = p.curves.len() - solid;
        let half = (WIDTH as f64 - 2.0 * MARGIN - LEGEND_INDENT) / 2.0;
        let two_columns = SAMPLE + 8.0 + widest + 12.0 <= half;
        let rows = if two_columns {
            solid.max(dashed)
        } else {
            p.curves.len()
        };
        Self {
            two_columns,
            rows,
            row_h: size + 2.0,
        }
    }

    fn height(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.rows as f64 * self.row_h + 8.0
        }
    }
}

/// The legend starts under the y-axis labels, aligned with the plot.
const LEGEND_INDENT: f64 = 72.0;

pub(crate) fn profile_size(p: &Profile) -> (u32, u32) {
    let legend = ProfileLegend::new(p);
    let top = MARGIN
        + style::fit_size(&p.title, style::TITLE_PT, WIDTH as f64 - 2.0 * MARGIN, true)
        + 6.0;
    (
        WIDTH,
        (top + PROFILE_PLOT_H + legend.height() + MARGIN).ceil() as u32,
    )
}

pub(crate) fn draw_profile<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    p: &Profile,
) -> Result<(), FigureError> {
    let w = WIDTH as f64;
    let top = title(c, &p.title, w)?;
    let area = c.sub_area(MARGIN, top, w - MARGIN, top + PROFILE_PLOT_H);
    let mut chart = make_chart(
        c,
        &area,
        0.0..1.0,
        0.0..1.0,
        "t",
        "p(source class)",
        one_decimal,
    )?;
    let line_w = c.stroke(1.8);
    let dash = c.px(7.0);
    let gap = c.px(4.0);
    let legend = ProfileLegend::new(p);
    let legend_top = top + PROFILE_PLOT_H + 8.0;
    let col_w = (w - 2.0 * MARGIN - LEGEND_INDENT) / 2.0;
    let (mut solid_k, mut dashed_k) = (0usize, 0usize);
    for (n, curve) in p.curves.iter().enumerate() {
        // Pairs share a colour: the k-th solid and the k-th dashed curve.
        let k = if curve.dashed {
            dashed_k += 1;
            dashed_k - 1
        } else {
            solid_k += 1;
            solid_k - 1
        };
        let colour = PALETTE[k % PALETTE.len()];
        let st = colour.stroke_width(line_w);
        let pts: Vec<(f64, f64)> = curve
            .t
            .iter()
            .zip(&curve.confidence)
            .filter(|(t, v)| t.is_finite() && v.is_finite())
            .map(|(&t, &v)| (t as f64, v as f64))
            .collect();
        if curve.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, dash, gap, st))
                .map_err(draw_err)?;
        } else {
            chart
                .draw_series(LineSeries::new(pts, st))
                .map_err(draw_err)?;
        }
        // Legend entry under the plot.
        let (col, row) = if legend.two_columns {
            (usize::from(curve.dashed), k)
        } else {
            (0, n)
        };
        let x = MARGIN + LEGEND_INDENT + col as f64 * col_w;
        let y = legend_top + (row as f64 + 0.5) * legend.row_h;
        if curve.dashed {
            let seg = (SAMPLE - 4.0) / 2.0;
            c.line((x, y), (x + seg, y), colour.to_rgba(), 1.8)?;
            c.line((x + seg + 4.0, y), (x + SAMPLE, y), colour.to_rgba(), 1.8)?;
        } else {
            c.line((x, y), (x + SAMPLE, y), colour.to_rgba(), 1.8)?;
        }
        c.text(
            &curve.label,
            x + SAMPLE + 8.0,
            y,
            TextStyleU::new(pt(style::SMALL_PT))
                .color(DARK)
                .anchor(HPos::Left, VPos::Center),
        )?;
    }
    Ok(())
}
