//! All-pairs grid (§1.9): row i is target i, column j is source j.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Canvas, TextStyleU, measure};
use super::strip::fmt_p;
use super::style::{self, DARK, FRAME, MID, pt};
use super::{FigureError, GridFigureData};

const MARGIN: f64 = 12.0;
const SPACING: f64 = 10.0;
/// Empty cell (no result for that pair).
const EMPTY: RGBColor = RGBColor(240, 240, 240);
/// Gap between a cell's image (and its frame) and the label under it.
const LABEL_GAP: f64 = 6.0;

fn note(g: &GridFigureData) -> String {
    format!("label: p(source class);  framed: {}", g.diagonal)
}

struct Layout {
    w: f64,
    h: f64,
    cell: f64,
    pitch_x: f64,
    pitch_y: f64,
    grid_x: f64,
    grid_y: f64,
    header_y: f64,
    header_vertical: bool,
    row_header_right: f64,
    axis_y: f64,
    title_size: f64,
    note_y: f64,
}

impl Layout {
    fn new(g: &GridFigureData) -> Self {
        let note = note(g);
        // 3× a CIFAR image while the grid stays within a double column, 2× beyond.
        let cell = if g.k <= 8 { 96.0 } else { 64.0 };
        let head = pt(style::TICK_PT);
        let label = pt(style::LABEL_PT);
        let p_size = pt(style::TICK_PT);
        let pitch_x = cell + SPACING;
        let widest = g
            .class_names
            .iter()
            .map(|n| measure(n, head, false).0)
            .fold(0.0, f64::max);
        // Column headers turn vertical when a name is wider than its column.
        let header_vertical = widest > pitch_x - 10.0;
        let header_h = if header_vertical { widest } else { head };
        let row_header_w = widest;
        let grid_x = MARGIN + label + 6.0 + row_header_w + 8.0;
        let w = (grid_x + g.k as f64 * pitch_x - SPACING + MARGIN)
            .max(measure(&note, pt(style::SMALL_PT), false).0 + 2.0 * MARGIN);
        let title_size = style::fit_size(&g.title, style::TITLE_PT, w - 2.0 * MARGIN, true);
        let axis_y = MARGIN + title_size + 8.0;
        let header_y = axis_y + label + 4.0;
        let grid_y = header_y + header_h + 10.0;
        let pitch_y = cell + LABEL_GAP + p_size + 10.0;
        let note_y = grid_y + g.k as f64 * pitch_y + 2.0;
        let h = note_y + pt(style::SMALL_PT) + MARGIN;
        Self {
            w,
            h,
            cell,
            pitch_x,
            pitch_y,
            grid_x,
            grid_y,
            header_y,
            header_vertical,
            row_header_right: grid_x - 8.0,
            axis_y,
            title_size,
            note_y,
        }
    }
}

pub(crate) fn size(g: &GridFigureData) -> (u32, u32) {
    let l = Layout::new(g);
    (l.w.ceil() as u32, l.h.ceil() as u32)
}

pub(crate) fn validate(g: &GridFigureData) -> Result<(), FigureError> {
    if g.class_names.len() != g.k {
        return Err(FigureError::InvalidData(format!(
            "pairs grid: {} class names for k = {}",
            g.class_names.len(),
            g.k
        )));
    }
    if g.cells.len() != g.k || g.cells.iter().any(|row| row.len() != g.k) {
        return Err(FigureError::InvalidData(format!(
            "pairs grid: cells must be {k}×{k}",
            k = g.k
        )));
    }
    Ok(())
}

pub(crate) fn draw<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    g: &GridFigureData,
) -> Result<(), FigureError> {
    let l = Layout::new(g);
    let head = pt(style::TICK_PT);
    let label = pt(style::LABEL_PT);
    let grid_w = g.k as f64 * l.pitch_x - SPACING;
    let grid_h = g.k as f64 * l.pitch_y;
    c.title(&g.title, l.w / 2.0, MARGIN, l.title_size)?;
    c.text(
        "source class",
        l.grid_x + grid_w / 2.0,
        l.axis_y,
        TextStyleU::new(label)
            .bold()
            .color(DARK)
            .anchor(HPos::Center, VPos::Top),
    )?;
    c.text(
        "target class",
        MARGIN,
        l.grid_y + grid_h / 2.0,
        TextStyleU::new(label)
            .bold()
            .color(DARK)
            .anchor(HPos::Center, VPos::Top)
            .vertical(),
    )?;
    let header_bottom = l.grid_y - 8.0;
    for (j, name) in g.class_names.iter().enumerate() {
        let cx = l.grid_x + j as f64 * l.pitch_x + l.cell / 2.0;
        if l.header_vertical {
            // Rotated text reads bottom to top, ending just above its column.
            c.text(
                name,
                cx,
                header_bottom,
                TextStyleU::new(head)
                    .color(DARK)
                    .anchor(HPos::Left, VPos::Center)
                    .vertical(),
            )?;
        } else {
            c.text(
                name,
                cx,
                l.header_y,
                TextStyleU::new(head)
                    .color(DARK)
                    .anchor(HPos::Center, VPos::Top),
            )?;
        }
    }
    for (i, row) in g.cells.iter().enumerate() {
        let y = l.grid_y + i as f64 * l.pitch_y;
        c.text(
            &g.class_names[i],
            l.row_header_right,
            y + l.cell / 2.0,
            TextStyleU::new(head)
                .color(DARK)
                .anchor(HPos::Right, VPos::Center),
        )?;
        for (j, cell) in row.iter().enumerate() {
            let x = l.grid_x + j as f64 * l.pitch_x;
            let Some(cell) = cell else {
                c.rect([x, y, x + l.cell, y + l.cell], EMPTY.to_rgba(), true, 1.0)?;
                c.text(
                    "–",
                    x + l.cell / 2.0,
                    y + l.cell / 2.0,
                    TextStyleU::new(head)
                        .color(MID)
                        .anchor(HPos::Center, VPos::Center),
                )?;
                continue;
            };
            // The diagonal (the caller's `diagonal`) is set apart by a heavy frame.
            let border = if i == j { (DARK, 2.5) } else { (FRAME, 0.75) };
            c.image(&cell.image, x, y, l.cell, Some(border))?;
            c.text(
                &fmt_p(cell.source_confidence),
                x + l.cell / 2.0,
                y + l.cell + LABEL_GAP,
                TextStyleU::new(head)
                    .color(DARK)
                    .anchor(HPos::Center, VPos::Top),
            )?;
        }
    }
    c.text(
        &note(g),
        l.w / 2.0,
        l.note_y,
        TextStyleU::new(pt(style::SMALL_PT))
            .color(MID)
            .anchor(HPos::Center, VPos::Top),
    )
}
