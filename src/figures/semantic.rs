//! The semantic-robustness views of ALGORITHMS.md §3.8: the 1-D map (f against one
//! parameter in natural units, identity marked, the class mean over images bold), the 2-D map
//! on RdBu (blue high, red low) with the found boxes and the initial point, and the bound
//! traces of region growing against iteration.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Canvas, TextStyleU, draw_err, measure};
use super::hull::colour_bar;
use super::lines::{legend, make_chart, make_chart_with_y, title};
use super::style::{self, DARK, MID, PALETTE, pt};
use super::{Colormap, FigureError};

/// A 1-D map: one curve per image, and the mean when there are several.
#[derive(Clone, Debug)]
pub struct SemanticCurveData {
    /// e.g. "rot (degrees)".
    pub axis_label: String,
    /// The parameter values (natural units).
    pub grid: Vec<f64>,
    /// (label, f at each grid value) per image.
    pub curves: Vec<(String, Vec<f64>)>,
    /// Where the identity is, marked by a dashed vertical line.
    pub identity: f64,
    /// Found intervals (label, lo, hi) in natural units, drawn as bars under the curves.
    pub intervals: Vec<(String, f64, f64)>,
    pub title: String,
}

/// A 2-D map: `values[i·cols + j]` at (rows[i], cols[j]); the first parameter runs along rows
/// (the vertical axis, increasing upward).
#[derive(Clone, Debug)]
pub struct SemanticMapData {
    pub row_label: String,
    pub col_label: String,
    pub rows: Vec<f64>,
    pub cols: Vec<f64>,
    pub values: Vec<f64>,
    /// (label, [row lo, row hi], [col lo, col hi]) in natural units.
    pub boxes: Vec<(String, [f64; 2], [f64; 2])>,
    /// The initial point (row value, column value).
    pub start: Option<[f64; 2]>,
    pub title: String,
}

/// One method's bounds on one parameter: (label, a_t, b_t) in natural units.
pub type BoundTrace = (String, Vec<f64>, Vec<f64>);

/// Bound traces: per parameter, a_t and b_t against iteration for each method.
#[derive(Clone, Debug)]
pub struct RegionTraceData {
    /// (axis label, the traces of each method).
    pub panels: Vec<(String, Vec<BoundTrace>)>,
    pub title: String,
}

const MARGIN: f64 = 12.0;
const CURVE_SIZE: (u32, u32) = (640, 460);
const PLOT: f64 = 400.0;
const PANEL_H: f64 = 300.0;
const TRACE_W: u32 = 640;

/// The colours of the three methods' boxes and traces (Okabe–Ito, distinct on RdBu).
pub(crate) fn method_colour(k: usize) -> RGBColor {
    [
        RGBColor(0, 0, 0),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
    ][k % 3]
}

pub(crate) fn curve_size() -> (u32, u32) {
    CURVE_SIZE
}

pub(crate) fn validate_curve(d: &SemanticCurveData) -> Result<(), FigureError> {
    if d.grid.len() < 2 {
        return Err(FigureError::InvalidData(
            "a 1-D map needs 2 or more points".into(),
        ));
    }
    if d.curves.is_empty() || d.curves.iter().any(|(_, v)| v.len() != d.grid.len()) {
        return Err(FigureError::InvalidData(format!(
            "1-D map: every curve needs {} values",
            d.grid.len()
        )));
    }
    Ok(())
}

pub(crate) fn draw_curve<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    d: &SemanticCurveData,
) -> Result<(), FigureError> {
    let (w, h) = (CURVE_SIZE.0 as f64, CURVE_SIZE.1 as f64);
    let top = title(c, &d.title, w)?;
    let area = c.sub_area(MARGIN, top, w - MARGIN, h - MARGIN);
    let lo = d.grid[0];
    let hi = d.grid[d.grid.len() - 1];
    let mut chart = make_chart(
        c,
        &area,
        lo..hi,
        -0.05..1.05,
        &d.axis_label,
        "f = p(class)",
        |v| style::num(*v),
    )?;
    let several = d.curves.len() > 1;
    let thin = c.stroke(if several { 1.0 } else { 1.8 });
    for (k, (label, values)) in d.curves.iter().enumerate() {
        let colour = if several {
            MID.mix(0.45)
        } else {
            PALETTE[k % PALETTE.len()].to_rgba()
        };
        let style = colour.stroke_width(thin);
        let series = chart
            .draw_series(LineSeries::new(
                d.grid.iter().copied().zip(values.iter().copied()),
                style,
            ))
            .map_err(draw_err)?;
        if !several {
            let sample = c.px(22.0);
            series
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + sample, y)], style));
        }
    }
    if several {
        let n = d.curves.len() as f64;
        let mean: Vec<f64> = (0..d.grid.len())
            .map(|i| d.curves.iter().map(|(_, v)| v[i]).sum::<f64>() / n)
            .collect();
        let style = PALETTE[0].stroke_width(c.stroke(2.4));
        let sample = c.px(22.0);
        chart
            .draw_series(LineSeries::new(d.grid.iter().copied().zip(mean), style))
            .map_err(draw_err)?
            .label(format!("mean over {} images", d.curves.len()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + sample, y)], style));
    }
    let dash = DARK.stroke_width(c.stroke(1.0));
    chart
        .draw_series(DashedLineSeries::new(
            [(d.identity, -0.05), (d.identity, 1.05)],
            c.px(5.0) as u32,
            c.px(4.0) as u32,
            dash,
        ))
        .map_err(draw_err)?
        .label("identity");
    for (k, (label, a, b)) in d.intervals.iter().enumerate() {
        let y = -0.02 - 0.012 * k as f64;
        let style = method_colour(k).stroke_width(c.stroke(3.0));
        let sample = c.px(22.0);
        chart
            .draw_series(LineSeries::new([(*a, y), (*b, y)], style))
            .map_err(draw_err)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + sample, y)], style));
    }
    legend(c, &mut chart, SeriesLabelPosition::LowerRight)
}

pub(crate) fn map_size() -> (u32, u32) {
    let w = MARGIN + 96.0 + PLOT + 24.0 + 110.0 + MARGIN;
    let h = MARGIN + 40.0 + PLOT + 80.0 + MARGIN;
    (w.ceil() as u32, h.ceil() as u32)
}

pub(crate) fn validate_map(d: &SemanticMapData) -> Result<(), FigureError> {
    if d.rows.len() < 2 || d.cols.len() < 2 {
        return Err(FigureError::InvalidData(
            "a 2-D map needs 2 or more points per axis".into(),
        ));
    }
    if d.values.len() != d.rows.len() * d.cols.len() {
        return Err(FigureError::InvalidData(format!(
            "2-D map: {} values for a {}×{} grid",
            d.values.len(),
            d.rows.len(),
            d.cols.len()
        )));
    }
    if let Some(v) = d.values.iter().find(|v| !v.is_finite()) {
        return Err(FigureError::InvalidData(format!(
            "2-D map: value {v} is not finite"
        )));
    }
    Ok(())
}

/// Round tick values inside [lo, hi] at 1, 2, 2.5 or 5 × 10^k, the step giving closest to six
/// ticks (the larger step on a tie).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let power = 10f64.powf(((hi - lo) / 6.0).log10().floor());
    let within = |step: f64| {
        let first = (lo / step).ceil() as i64;
        let last = (hi / step).floor() as i64;
        (first..=last)
            .map(|k| k as f64 * step)
            .collect::<Vec<f64>>()
    };
    [10.0, 5.0, 2.5, 2.0, 1.0]
        .into_iter()
        .map(|m| within(m * power))
        .min_by_key(|t| t.len().abs_diff(6))
        .unwrap_or_default()
}

pub(crate) fn draw_map<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    d: &SemanticMapData,
) -> Result<(), FigureError> {
    let (w, _) = map_size();
    let w = w as f64;
    let top = title(c, &d.title, w)?;
    let (x0, y0) = (MARGIN + 96.0, top + 14.0);
    let (x1, y1) = (x0 + PLOT, y0 + PLOT);
    let (nr, nc) = (d.rows.len(), d.cols.len());
    // Each value is a cell centred on its grid point, so the picture runs half a cell beyond
    // the domain on every side.
    let half = |g: &[f64]| (g[g.len() - 1] - g[0]) / (g.len() - 1) as f64 / 2.0;
    let (col_lo, col_hi) = (d.cols[0] - half(&d.cols), d.cols[nc - 1] + half(&d.cols));
    let (row_lo, row_hi) = (d.rows[0] - half(&d.rows), d.rows[nr - 1] + half(&d.rows));
    let to_x = |v: f64| x0 + (v - col_lo) / (col_hi - col_lo) * PLOT;
    let to_y = |v: f64| y1 - (v - row_lo) / (row_hi - row_lo) * PLOT;
    let values = &d.values;
    c.raster(x0, y0, PLOT, PLOT, |ux, uy| {
        let j = (((ux - x0) / PLOT) * nc as f64).floor();
        let i = (((y1 - uy) / PLOT) * nr as f64).floor();
        if !(0.0..nc as f64).contains(&j) || !(0.0..nr as f64).contains(&i) {
            return None;
        }
        Some(Colormap::RdBu.colour(values[i as usize * nc + j as usize] as f32))
    })?;
    c.rect([x0, y0, x1, y1], DARK.to_rgba(), false, 1.0)?;
    let tick = TextStyleU::new(pt(style::TICK_PT)).color(DARK);
    for v in ticks(col_lo, col_hi) {
        let x = to_x(v);
        c.line((x, y1), (x, y1 + 5.0), DARK.to_rgba(), 1.0)?;
        c.text(
            &style::num(v),
            x,
            y1 + 8.0,
            tick.anchor(HPos::Center, VPos::Top),
        )?;
    }
    for v in ticks(row_lo, row_hi) {
        let y = to_y(v);
        c.line((x0 - 5.0, y), (x0, y), DARK.to_rgba(), 1.0)?;
        c.text(
            &style::num(v),
            x0 - 8.0,
            y,
            tick.anchor(HPos::Right, VPos::Center),
        )?;
    }
    let label = TextStyleU::new(pt(style::LABEL_PT)).color(DARK);
    c.text(
        &d.col_label,
        (x0 + x1) / 2.0,
        y1 + 40.0,
        label.anchor(HPos::Center, VPos::Top),
    )?;
    c.text(
        &d.row_label,
        MARGIN,
        (y0 + y1) / 2.0,
        label.anchor(HPos::Center, VPos::Top).vertical(),
    )?;
    for (k, (name, [r_lo, r_hi], [c_lo, c_hi])) in d.boxes.iter().enumerate() {
        let colour = method_colour(k);
        let rect = [to_x(*c_lo), to_y(*r_hi), to_x(*c_hi), to_y(*r_lo)];
        c.rect(rect, WHITE.mix(0.8), false, 4.0)?;
        c.rect(rect, colour.to_rgba(), false, 2.0)?;
        // The legend under the plot, one entry per box, each as wide as its name.
        let small = pt(style::SMALL_PT);
        let lx = x0
            + d.boxes[..k]
                .iter()
                .map(|(n, _, _)| 28.0 + measure(n, small, false).0 + 18.0)
                .sum::<f64>();
        let ly = y1 + 70.0;
        c.rect(
            [lx, ly - 6.0, lx + 22.0, ly + 6.0],
            colour.to_rgba(),
            false,
            2.0,
        )?;
        c.text(
            name,
            lx + 28.0,
            ly,
            TextStyleU::new(pt(style::SMALL_PT))
                .color(DARK)
                .anchor(HPos::Left, VPos::Center),
        )?;
    }
    if let Some([r, col]) = d.start {
        let (x, y) = (to_x(col), to_y(r));
        c.circle(x, y, 6.0, WHITE.to_rgba(), true, 1.0)?;
        c.circle(x, y, 6.0, BLACK.to_rgba(), false, 1.5)?;
        c.circle(x, y, 2.0, BLACK.to_rgba(), true, 1.0)?;
    }
    colour_bar(c, x1 + 24.0, (y0, y1), &[], "f = p(class)", Colormap::RdBu)
}

pub(crate) fn trace_size(d: &RegionTraceData) -> (u32, u32) {
    let h = MARGIN + 40.0 + d.panels.len() as f64 * PANEL_H + MARGIN;
    (TRACE_W, h.ceil() as u32)
}

pub(crate) fn validate_trace(d: &RegionTraceData) -> Result<(), FigureError> {
    if d.panels.is_empty() || d.panels.iter().any(|(_, m)| m.is_empty()) {
        return Err(FigureError::InvalidData(
            "bound traces: nothing to draw".into(),
        ));
    }
    for (_, methods) in &d.panels {
        for (name, a, b) in methods {
            if a.len() != b.len() || a.is_empty() {
                return Err(FigureError::InvalidData(format!(
                    "bound traces of {name}: a and b need the same, non-zero length"
                )));
            }
            if a.iter().chain(b).any(|v| !v.is_finite()) {
                return Err(FigureError::InvalidData(format!(
                    "bound traces of {name}: values must be finite"
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn draw_trace<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    d: &RegionTraceData,
) -> Result<(), FigureError> {
    let w = TRACE_W as f64;
    let top = title(c, &d.title, w)?;
    for (p, (axis, methods)) in d.panels.iter().enumerate() {
        let y0 = top + p as f64 * PANEL_H;
        let area = c.sub_area(MARGIN, y0, w - MARGIN, y0 + PANEL_H - 6.0);
        let steps = methods.iter().map(|(_, a, _)| a.len()).max().unwrap_or(1);
        let (lo, hi) = methods
            .iter()
            .flat_map(|(_, a, b)| a.iter().chain(b))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(*v), h.max(*v))
            });
        let pad = ((hi - lo) * 0.05).max(1e-9);
        let mut chart = make_chart_with_y(
            c,
            &area,
            0.0..(steps.max(2) - 1) as f64,
            (lo - pad)..(hi + pad),
            if p + 1 == d.panels.len() {
                "iteration"
            } else {
                ""
            },
            axis,
            |v| format!("{v:.0}"),
            |v| style::num(*v),
        )?;
        for (k, (name, a, b)) in methods.iter().enumerate() {
            let style = method_colour(k).stroke_width(c.stroke(1.6));
            let sample = c.px(22.0);
            let x = |i: usize| i as f64;
            chart
                .draw_series(LineSeries::new(
                    a.iter().enumerate().map(|(i, v)| (x(i), *v)),
                    style,
                ))
                .map_err(draw_err)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + sample, y)], style));
            chart
                .draw_series(LineSeries::new(
                    b.iter().enumerate().map(|(i, v)| (x(i), *v)),
                    style,
                ))
                .map_err(draw_err)?;
        }
        legend(c, &mut chart, SeriesLabelPosition::MiddleRight)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{semantic_curve, semantic_map};
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(
            ticks(-183.0, 183.0),
            vec![-150.0, -100.0, -50.0, 0.0, 50.0, 100.0, 150.0]
        );
        assert_eq!(ticks(0.49, 1.51), vec![0.5, 0.75, 1.0, 1.25, 1.5]);
    }

    #[test]
    fn maps_draw_and_refuse_bad_shapes() {
        let map = SemanticMapData {
            row_label: "rot".into(),
            col_label: "scale".into(),
            rows: vec![-1.0, 0.0, 1.0],
            cols: vec![0.5, 1.0, 1.5],
            values: vec![0.0, 0.5, 1.0, 0.2, 0.9, 0.3, 1.0, 1.0, 0.0],
            boxes: vec![("Naive".into(), [-0.5, 0.5], [0.8, 1.2])],
            start: Some([0.0, 1.0]),
            title: "t".into(),
        };
        let png = semantic_map(&map).png_bytes(1.0).unwrap();
        assert!(png.len() > 1000);
        assert!(semantic_map(&map).svg_string().unwrap().contains("Naive"));
        let short = SemanticMapData {
            values: vec![0.5; 8],
            ..map
        };
        assert!(matches!(
            semantic_map(&short).png_bytes(1.0),
            Err(FigureError::InvalidData(_))
        ));
        let curve = SemanticCurveData {
            axis_label: "rot (degrees)".into(),
            grid: vec![-1.0, 0.0, 1.0],
            curves: vec![
                ("a".into(), vec![0.1, 0.9, 0.2]),
                ("b".into(), vec![0.3, 0.8, 0.1]),
            ],
            identity: 0.0,
            intervals: vec![("Naive".into(), -0.2, 0.3)],
            title: "t".into(),
        };
        assert!(
            semantic_curve(&curve)
                .svg_string()
                .unwrap()
                .contains("mean over 2 images")
        );
    }
}
