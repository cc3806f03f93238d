//! Path-width plot (§1.5, §1.9): q05 and q95 heatmaps side by side over the logged iterations.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Canvas, TextStyleU, measure};
use super::hull::colour_bar;
use super::style::{self, DARK, MID, pt};
use super::{FigureError, WidthCompareData, WidthFigureData, viridis};

const MARGIN: f64 = 12.0;
/// Each heatmap's width: two of them, their labels and the colour bar make about 7 in
/// (double column) at 144 units per inch.
const PANEL_W: f64 = 360.0;
const BAR_AREA: f64 = 104.0;
/// Room for the rotated y-axis title left of the first panel.
const Y_TITLE_W: f64 = 26.0;
/// Space between hatch lines of skipped measurements.
const HATCH: f64 = 7.0;
const SKIPPED_FILL: RGBColor = RGBColor(236, 236, 236);

struct Layout {
    /// Where this figure's title band starts.
    top: f64,
    w: f64,
    h: f64,
    title_size: f64,
    /// Left edges of the two panels.
    px: [f64; 2],
    panel_top: f64,
    row_h: f64,
    rows: usize,
}

impl Layout {
    /// The layout of one width figure whose title starts `top` units below the page's top edge
    /// (0 for a figure of its own; further down for a row of a comparison).
    fn new(d: &WidthFigureData, top: f64) -> Self {
        let tick = pt(style::TICK_PT);
        let tick_w = row_labels(d)
            .iter()
            .map(|s| measure(s, tick, false).0)
            .fold(0.0, f64::max)
            + 10.0;
        let rows = 2 * d.radii.len() + 1;
        // About 240 units of heatmap, but never rows so thin their labels collide or so fat
        // that a single radius fills the page.
        let row_h = (240.0 / rows as f64).clamp(12.0, 40.0);
        let first = MARGIN + Y_TITLE_W + tick_w;
        let second = first + PANEL_W + tick_w + 14.0;
        let w = second + PANEL_W + BAR_AREA + MARGIN;
        let title_size = style::fit_size(&d.title, style::TITLE_PT, w - 2.0 * MARGIN, true);
        let panel_top = top + MARGIN + title_size + 10.0 + pt(style::LABEL_PT) + 6.0;
        let h = panel_top + row_h * rows as f64 + 6.0 + tick + 4.0 + pt(style::LABEL_PT) + MARGIN;
        Self {
            top,
            w,
            h,
            title_size,
            px: [first, second],
            panel_top,
            row_h,
            rows,
        }
    }
}

/// Row labels top to bottom: +r_R … +r_1, 0, −r_1 … −r_R (the real minus sign, U+2212).
fn row_labels(d: &WidthFigureData) -> Vec<String> {
    let pos = d
        .radii
        .iter()
        .rev()
        .map(|r| format!("+{}", style::num(*r as f64)));
    let neg = d
        .radii
        .iter()
        .map(|r| format!("−{}", style::num(*r as f64)));
    pos.chain(["0".to_string()]).chain(neg).collect()
}

/// Which radius index (0 = on path) row `row` shows: the picture is mirrored about row R.
fn radius_index(row: usize, r: usize) -> usize {
    row.abs_diff(r)
}

pub(crate) fn size(d: &WidthFigureData) -> (u32, u32) {
    let l = Layout::new(d, 0.0);
    (l.w.ceil() as u32, l.h.ceil() as u32)
}

/// The title band of a comparison above its rows.
fn compare_header(d: &WidthCompareData, w: f64) -> (f64, f64) {
    let title_size = style::fit_size(&d.title, style::TITLE_PT, w - 2.0 * MARGIN, true);
    (title_size, MARGIN + title_size + 4.0)
}

/// Rows of the comparison, top to bottom, each with the y its own layout starts at.
fn compare_rows(d: &WidthCompareData) -> (f64, f64, Vec<(f64, Layout)>) {
    let w = d
        .rows
        .iter()
        .map(|r| Layout::new(r, 0.0).w)
        .fold(0.0, f64::max);
    let (title_size, mut top) = compare_header(d, w);
    let mut rows = Vec::with_capacity(d.rows.len());
    for r in &d.rows {
        let l = Layout::new(r, top);
        top = l.h;
        rows.push((top, l));
    }
    (w, title_size, rows)
}

pub(crate) fn compare_size(d: &WidthCompareData) -> (u32, u32) {
    let (w, _, rows) = compare_rows(d);
    let h = rows.last().map_or(MARGIN, |(bottom, _)| *bottom);
    (w.ceil() as u32, h.ceil() as u32)
}

pub(crate) fn validate_compare(d: &WidthCompareData) -> Result<(), FigureError> {
    if d.rows.is_empty() {
        return Err(FigureError::InvalidData(
            "a width comparison needs at least one model".into(),
        ));
    }
    d.rows.iter().try_for_each(validate)
}

/// The width heatmaps of several models on one pair, one row per model, on the one colour
/// scale p ∈ [0, 1] (§2.4: "side by side for two models on the same pair").
pub(crate) fn draw_compare<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    d: &WidthCompareData,
) -> Result<(), FigureError> {
    let (w, title_size, rows) = compare_rows(d);
    c.title(&d.title, w / 2.0, MARGIN, title_size)?;
    for (row, (_, layout)) in d.rows.iter().zip(&rows) {
        draw_with(c, row, layout)?;
    }
    Ok(())
}

pub(crate) fn validate(d: &WidthFigureData) -> Result<(), FigureError> {
    let logs = d.logged_steps.len();
    if logs == 0 {
        return Err(FigureError::InvalidData(
            "a width plot needs at least one logged measurement".into(),
        ));
    }
    for (name, len) in [
        ("q05", d.q05.len()),
        ("q95", d.q95.len()),
        ("skipped", d.skipped.len()),
    ] {
        if len != logs {
            return Err(FigureError::InvalidData(format!(
                "width plot: {name} has {len} entries for {logs} logged steps"
            )));
        }
    }
    let want = d.radii.len() + 1;
    for (name, q) in [("q05", &d.q05), ("q95", &d.q95)] {
        if let Some((k, row)) = q.iter().enumerate().find(|(_, row)| row.len() != want) {
            return Err(FigureError::InvalidData(format!(
                "width plot: {name}[{k}] has {} values, expected {want} (on-path + {} radii)",
                row.len(),
                d.radii.len()
            )));
        }
    }
    Ok(())
}

/// 45° hatch lines clipped to the rectangle (x0, y0)–(x1, y1).
fn hatch<DB: DrawingBackend>(
    c: &Canvas<DB>,
    (x0, y0, x1, y1): (f64, f64, f64, f64),
) -> Result<(), FigureError> {
    c.rect([x0, y0, x1, y1], SKIPPED_FILL.to_rgba(), true, 1.0)?;
    // Lines x + y = k, for k on a fixed grid so neighbouring runs line up.
    let mut k = ((x0 + y0) / HATCH).ceil() * HATCH;
    while k < x1 + y1 {
        let xa = x0.max(k - y1);
        let xb = x1.min(k - y0);
        if xb > xa {
            c.line((xa, k - xa), (xb, k - xb), MID.to_rgba(), 0.8)?;
        }
        k += HATCH;
    }
    Ok(())
}

pub(crate) fn draw<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    d: &WidthFigureData,
) -> Result<(), FigureError> {
    draw_with(c, d, &Layout::new(d, 0.0))
}

fn draw_with<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    d: &WidthFigureData,
    l: &Layout,
) -> Result<(), FigureError> {
    let logs = d.logged_steps.len();
    let r = d.radii.len();
    let col_w = PANEL_W / logs as f64;
    let panel_h = l.row_h * l.rows as f64;
    let bottom = l.panel_top + panel_h;
    let tick = pt(style::TICK_PT);
    let label = pt(style::LABEL_PT);
    c.title(&d.title, l.w / 2.0, l.top + MARGIN, l.title_size)?;

    // x tick labels: as many logged steps as fit without touching.
    let widest = d
        .logged_steps
        .iter()
        .map(|s| measure(&s.to_string(), tick, false).0)
        .fold(0.0, f64::max);
    let stride = ((widest + 12.0) / col_w).ceil().max(1.0) as usize;
    let row_names = row_labels(d);
    // Label every row if they fit, else every other one counting out from the on-path row.
    let row_stride = if l.row_h >= tick * 0.85 { 1 } else { 2 };

    for (p, (q, name)) in [
        (&d.q05, "q05: 5th percentile"),
        (&d.q95, "q95: 95th percentile"),
    ]
    .into_iter()
    .enumerate()
    {
        let x0 = l.px[p];
        c.text(
            name,
            x0 + PANEL_W / 2.0,
            l.panel_top - 6.0,
            TextStyleU::new(label)
                .color(DARK)
                .anchor(HPos::Center, VPos::Bottom),
        )?;
        for (k, column) in q.iter().enumerate() {
            if d.skipped[k] {
                continue;
            }
            let cx0 = x0 + k as f64 * col_w;
            for row in 0..l.rows {
                let v = column[radius_index(row, r)];
                let y = l.panel_top + row as f64 * l.row_h;
                // Cells overlap by a hair so no seam shows in anti-aliased SVG viewers.
                c.rect(
                    [cx0, y, cx0 + col_w + 0.4, y + l.row_h + 0.4],
                    style::rgb(viridis(v)).to_rgba(),
                    true,
                    1.0,
                )?;
            }
        }
        // Skipped measurements, hatched, one block per run so the hatching is continuous.
        let mut k = 0;
        while k < logs {
            if d.skipped[k] {
                let start = k;
                while k < logs && d.skipped[k] {
                    k += 1;
                }
                hatch(
                    c,
                    (
                        x0 + start as f64 * col_w,
                        l.panel_top,
                        x0 + k as f64 * col_w,
                        bottom,
                    ),
                )?;
            } else {
                k += 1;
            }
        }
        c.rect(
            [x0, l.panel_top, x0 + PANEL_W, bottom],
            DARK.to_rgba(),
            false,
            1.0,
        )?;

        for (row, text) in row_names.iter().enumerate() {
            if !radius_index(row, r).is_multiple_of(row_stride) {
                continue;
            }
            let y = l.panel_top + (row as f64 + 0.5) * l.row_h;
            c.line((x0 - 4.0, y), (x0, y), DARK.to_rgba(), 1.0)?;
            c.text(
                text,
                x0 - 6.0,
                y,
                TextStyleU::new(tick)
                    .color(DARK)
                    .anchor(HPos::Right, VPos::Center),
            )?;
        }
        for (k, step) in d.logged_steps.iter().enumerate() {
            if k % stride != 0 {
                continue;
            }
            let x = x0 + (k as f64 + 0.5) * col_w;
            c.line((x, bottom), (x, bottom + 4.0), DARK.to_rgba(), 1.0)?;
            c.text(
                &step.to_string(),
                x,
                bottom + 6.0,
                TextStyleU::new(tick)
                    .color(DARK)
                    .anchor(HPos::Center, VPos::Top),
            )?;
        }
        c.text(
            "logged iteration",
            x0 + PANEL_W / 2.0,
            bottom + 10.0 + tick,
            TextStyleU::new(label)
                .color(DARK)
                .anchor(HPos::Center, VPos::Top),
        )?;
    }
    c.text(
        "radius (L2, pixel space)",
        MARGIN,
        l.panel_top + panel_h / 2.0,
        TextStyleU::new(label)
            .color(DARK)
            .anchor(HPos::Center, VPos::Top)
            .vertical(),
    )?;
    let bar_x = l.px[1] + PANEL_W + 18.0;
    colour_bar(
        c,
        bar_x,
        (l.panel_top, bottom),
        &[],
        "p(source class)",
        super::Colormap::Viridis,
    )?;
    if d.skipped.iter().any(|&s| s) {
        // Key for the hatching, under the colour bar's last tick label.
        let y = bottom + 16.0;
        hatch(c, (bar_x, y, bar_x + 14.0, y + 14.0))?;
        c.rect(
            [bar_x, y, bar_x + 14.0, y + 14.0],
            DARK.to_rgba(),
            false,
            0.75,
        )?;
        c.text(
            "skipped",
            bar_x + 20.0,
            y + 7.0,
            TextStyleU::new(tick)
                .color(DARK)
                .anchor(HPos::Left, VPos::Center),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_mirror_about_the_on_path_row() {
        let d = WidthFigureData {
            logged_steps: vec![0],
            radii: vec![5.0, 10.0, 1.5],
            q05: vec![vec![0.0; 4]],
            q95: vec![vec![0.0; 4]],
            skipped: vec![false],
            title: String::new(),
        };
        assert_eq!(
            row_labels(&d),
            ["+1.5", "+10", "+5", "0", "−5", "−10", "−1.5"]
        );
        let idx: Vec<usize> = (0..7).map(|row| radius_index(row, 3)).collect();
        assert_eq!(idx, [3, 2, 1, 0, 1, 2, 3]);
    }
}
