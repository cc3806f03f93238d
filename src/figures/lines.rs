//! Line plots: confidence over the path and the linear-interpolation profile.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Canvas, TextStyleU, draw_err};
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
pub(crate) const PROFILE_SIZE: (u32, u32) = (WIDTH, 420);
const MARGIN: f64 = 12.0;

/// Below this many steps every accepted step also gets a dot; above it dots would merge into
/// a thick line, and the line itself already shows the accepted path.
const DOT_ACCEPTED_UP_TO: usize = 60;

/// Draw the title and return the y where the plots may start.
fn title<DB: DrawingBackend>(c: &Canvas<DB>, text: &str, width: f64) -> Result<f64, FigureError> {
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
fn make_chart<'a, DB: DrawingBackend>(
    c: &Canvas<DB>,
    area: &'a DrawingArea<DB, Shift>,
    x: Range<f64>,
    y: Range<f64>,
    x_desc: &str,
    y_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, FigureError> {
    let mut chart = ChartBuilder::on(area)
        .margin_right(c.px(16.0))
        .margin_top(c.px(8.0))
        .x_label_area_size(c.px(58.0))
        .y_label_area_size(c.px(72.0))
        .build_cartesian_2d(x, y)
        .map_err(draw_err)?;
    let x_fmt = |v: &f64| style::num(*v);
    let y_fmt = |v: &f64| format!("{v:.1}");
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

fn legend<'a, DB: DrawingBackend + 'a>(
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

fn finite(v: f32) -> bool {
    v.is_finite()
}

pub(crate) fn draw_confidence<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    p: &Confidence,
) -> Result<(), FigureError> {
    let (w, h) = (CONFIDENCE_SIZE.0 as f64, CONFIDENCE_SIZE.1 as f64);
    let top = title(c, &p.title, w)?;
    let split = top + (h - top - MARGIN) * 0.54;
    let xr = step_range(&p.steps);
    let line_w = c.stroke(1.8);
    let src_style = PALETTE[0].stroke_width(line_w);
    let tgt_style = PALETTE[1].stroke_width(line_w);

    // Top: the two confidences, rejected steps as red crosses on both curves.
    let upper = c.sub_area(MARGIN, top, w - MARGIN, split);
    let mut chart = make_chart(c, &upper, xr.clone(), 0.0..1.0, "step", "confidence")?;
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
    let mut chart = make_chart(c, &lower, xr, yr, "step", "distance to target")?;
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

pub(crate) fn draw_profile<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    p: &Profile,
) -> Result<(), FigureError> {
    let (w, h) = (PROFILE_SIZE.0 as f64, PROFILE_SIZE.1 as f64);
    let top = title(c, &p.title, w)?;
    let area = c.sub_area(MARGIN, top, w - MARGIN, h - MARGIN);
    let mut chart = make_chart(c, &area, 0.0..1.0, 0.0..1.0, "t", "p(source class)")?;
    let line_w = c.stroke(1.8);
    let dash = c.px(7.0);
    let gap = c.px(4.0);
    let sample = c.px(26.0);
    let (mut solid_k, mut dashed_k) = (0usize, 0usize);
    for curve in &p.curves {
        // Pairs share a colour: the k-th solid and the k-th dashed curve.
        let k = if curve.dashed {
            dashed_k += 1;
            dashed_k - 1
        } else {
            solid_k += 1;
            solid_k - 1
        };
        let st = PALETTE[k % PALETTE.len()].stroke_width(line_w);
        let pts: Vec<(f64, f64)> = curve
            .t
            .iter()
            .zip(&curve.confidence)
            .filter(|(t, v)| t.is_finite() && v.is_finite())
            .map(|(&t, &v)| (t as f64, v as f64))
            .collect();
        let legend_dash = (sample - gap) / 2;
        if curve.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, dash, gap, st))
                .map_err(draw_err)?
                .label(curve.label.as_str())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (legend_dash, 0)], st)
                        + PathElement::new(vec![(legend_dash + gap, 0), (sample, 0)], st)
                });
        } else {
            chart
                .draw_series(LineSeries::new(pts, st))
                .map_err(draw_err)?
                .label(curve.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + sample, y)], st));
        }
    }
    if !p.curves.is_empty() {
        legend(c, &mut chart, SeriesLabelPosition::LowerLeft)?;
    }
    Ok(())
}
