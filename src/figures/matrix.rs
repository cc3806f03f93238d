//! An annotated matrix of fractions in [0, 1]: the NSPGD hit-rate matrix (§2.4). Rows and
//! columns are labelled with class names, each cell shows its value with two decimals, and
//! the colour bar is the shared viridis scale on [0, 1].

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Canvas, TextStyleU, measure};
use super::hull::colour_bar;
use super::style::{self, DARK, pt};
use super::{Colormap, FigureError, MatrixFigureData};

const MARGIN: f64 = 12.0;
/// A cell holds "0.93" at tick size with room to spare; ten of them make about 4.5 in.
const CELL: f64 = 58.0;
const BAR_AREA: f64 = 110.0;
const EMPTY: RGBColor = RGBColor(240, 240, 240);

struct Layout {
    w: f64,
    h: f64,
    title_size: f64,
    grid_x: f64,
    grid_y: f64,
    header_vertical: bool,
}

impl Layout {
    fn new(m: &MatrixFigureData) -> Self {
        let tick = pt(style::TICK_PT);
        let label = pt(style::LABEL_PT);
        let widest = |names: &[String]| {
            names
                .iter()
                .map(|n| measure(n, tick, false).0)
                .fold(0.0, f64::max)
        };
        let row_w = widest(&m.row_labels);
        let col_w = widest(&m.column_labels);
        let header_vertical = col_w > CELL - 6.0;
        let header_h = if header_vertical { col_w } else { tick };
        let grid_x = MARGIN + label + 8.0 + row_w + 8.0;
        let cols = m.column_labels.len() as f64;
        let w = grid_x + cols * CELL + BAR_AREA + MARGIN;
        let title_size = style::fit_size(&m.title, style::TITLE_PT, w - 2.0 * MARGIN, true);
        let grid_y = MARGIN + title_size + 8.0 + label + 6.0 + header_h + 8.0;
        let h = grid_y + m.row_labels.len() as f64 * CELL + MARGIN;
        Self {
            w,
            h,
            title_size,
            grid_x,
            grid_y,
            header_vertical,
        }
    }
}

pub(crate) fn size(m: &MatrixFigureData) -> (u32, u32) {
    let l = Layout::new(m);
    (l.w.ceil() as u32, l.h.ceil() as u32)
}

pub(crate) fn validate(m: &MatrixFigureData) -> Result<(), FigureError> {
    let (rows, cols) = (m.row_labels.len(), m.column_labels.len());
    if rows == 0 || cols == 0 {
        return Err(FigureError::InvalidData(
            "a matrix needs rows and columns".into(),
        ));
    }
    if m.values.len() != rows || m.values.iter().any(|r| r.len() != cols) {
        return Err(FigureError::InvalidData(format!(
            "matrix: values must be {rows}×{cols} to match the labels"
        )));
    }
    if let Some(v) = m.values.iter().flatten().flatten().find(|v| !v.is_finite()) {
        return Err(FigureError::InvalidData(format!(
            "matrix: value {v} is not finite"
        )));
    }
    Ok(())
}

pub(crate) fn draw<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    m: &MatrixFigureData,
) -> Result<(), FigureError> {
    let l = Layout::new(m);
    let tick = pt(style::TICK_PT);
    let label = pt(style::LABEL_PT);
    let (rows, cols) = (m.row_labels.len(), m.column_labels.len());
    let grid_w = cols as f64 * CELL;
    let grid_h = rows as f64 * CELL;
    c.title(&m.title, l.w / 2.0, MARGIN, l.title_size)?;
    c.text(
        &m.column_title,
        l.grid_x + grid_w / 2.0,
        MARGIN + l.title_size + 8.0,
        TextStyleU::new(label)
            .bold()
            .color(DARK)
            .anchor(HPos::Center, VPos::Top),
    )?;
    c.text(
        &m.row_title,
        MARGIN,
        l.grid_y + grid_h / 2.0,
        TextStyleU::new(label)
            .bold()
            .color(DARK)
            .anchor(HPos::Center, VPos::Top)
            .vertical(),
    )?;
    for (j, name) in m.column_labels.iter().enumerate() {
        let cx = l.grid_x + (j as f64 + 0.5) * CELL;
        let style = TextStyleU::new(tick).color(DARK);
        if l.header_vertical {
            c.text(
                name,
                cx,
                l.grid_y - 8.0,
                style.anchor(HPos::Left, VPos::Center).vertical(),
            )?;
        } else {
            c.text(
                name,
                cx,
                l.grid_y - 8.0,
                style.anchor(HPos::Center, VPos::Bottom),
            )?;
        }
    }
    for (i, (name, row)) in m.row_labels.iter().zip(&m.values).enumerate() {
        let y = l.grid_y + i as f64 * CELL;
        c.text(
            name,
            l.grid_x - 8.0,
            y + CELL / 2.0,
            TextStyleU::new(tick)
                .color(DARK)
                .anchor(HPos::Right, VPos::Center),
        )?;
        for (j, value) in row.iter().enumerate() {
            let x = l.grid_x + j as f64 * CELL;
            let (fill, text, ink) = match value {
                Some(v) => {
                    let v = v.clamp(0.0, 1.0) as f32;
                    // Dark text on the light (yellow-green) end of viridis, white elsewhere.
                    let ink = if v > 0.6 { DARK } else { WHITE };
                    (
                        style::rgb(Colormap::Viridis.colour(v)),
                        format!("{v:.2}"),
                        ink,
                    )
                }
                None => (EMPTY, "n/a".to_string(), DARK),
            };
            c.rect(
                [x, y, x + CELL + 0.4, y + CELL + 0.4],
                fill.to_rgba(),
                true,
                1.0,
            )?;
            c.text(
                &text,
                x + CELL / 2.0,
                y + CELL / 2.0,
                TextStyleU::new(tick)
                    .color(ink)
                    .anchor(HPos::Center, VPos::Center),
            )?;
        }
    }
    c.rect(
        [l.grid_x, l.grid_y, l.grid_x + grid_w, l.grid_y + grid_h],
        DARK.to_rgba(),
        false,
        1.0,
    )?;
    colour_bar(
        c,
        l.grid_x + grid_w + 16.0,
        (l.grid_y, l.grid_y + grid_h),
        &[],
        &m.value_label,
        Colormap::Viridis,
    )
}

#[cfg(test)]
mod tests {
    use super::super::{FigureError, MatrixFigureData, fraction_matrix};

    fn data(values: Vec<Vec<Option<f64>>>) -> MatrixFigureData {
        MatrixFigureData {
            row_labels: vec!["a".into(), "b".into()],
            column_labels: vec!["a".into(), "b".into()],
            row_title: "source class".into(),
            column_title: "target class".into(),
            values,
            value_label: "hit rate".into(),
            title: "t".into(),
        }
    }

    #[test]
    fn a_matrix_draws_n_a_cells_and_refuses_bad_shapes_and_nan() {
        let ok = fraction_matrix(&data(vec![
            vec![Some(1.0), None],
            vec![Some(0.25), Some(0.0)],
        ]));
        let svg = ok.svg_string().unwrap();
        assert!(
            svg.contains("n/a") && svg.contains("0.25"),
            "annotated cells"
        );
        let short = fraction_matrix(&data(vec![vec![Some(1.0), None]]));
        assert!(matches!(
            short.png_bytes(1.0),
            Err(FigureError::InvalidData(_))
        ));
        let nan = fraction_matrix(&data(vec![vec![Some(f64::NAN), None], vec![None, None]]));
        assert!(matches!(nan.svg_string(), Err(FigureError::InvalidData(_))));
    }
}
