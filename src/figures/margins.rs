//! Frequency-margin figures (ALGORITHMS.md §4.4): the margin distribution over DCT subspaces,
//! several models overlaid, and the flip illustration.

use image::RgbImage;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Canvas, TextStyleU, measure};
use super::style::{self, DARK, FRAME, MID, PALETTE, pt};
use super::{FigureError, FlipFigureData, MarginPlotData, viridis};

const MARGIN: f64 = 12.0;
/// About 5 in wide at 144 units per inch: room for 21 subspaces × 3 models.
pub(crate) const MARGIN_PLOT_SIZE: (u32, u32) = (720, 470);
const Y_AXIS_W: f64 = 78.0;
const X_AXIS_H: f64 = 56.0;
const POINT_R: f64 = 2.2;

struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    fn new(d: &MarginPlotData) -> Self {
        let values = d
            .series
            .iter()
            .flat_map(|s| s.margins.iter().flatten())
            .map(|&v| f64::from(v))
            .filter(|v| v.is_finite());
        if d.log_scale {
            let positive: Vec<f64> = values.filter(|&v| v > 0.0).collect();
            let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
            let max = positive.iter().copied().fold(0.0, f64::max);
            let (lo, hi) = if positive.is_empty() {
                (-2.0, 1.0)
            } else {
                (
                    min.log10().floor(),
                    max.log10().ceil().max(min.log10().floor() + 1.0),
                )
            };
            let ticks = (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect();
            Self {
                log: true,
                lo,
                hi,
                ticks,
            }
        } else {
            let max = values.fold(0.0, f64::max);
            let max = if max > 0.0 { max * 1.05 } else { 1.0 };
            let raw = max / 5.0;
            let magnitude = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 2.5, 5.0, 10.0]
                .iter()
                .map(|m| m * magnitude)
                .find(|s| *s >= raw)
                .unwrap_or(10.0 * magnitude);
            let hi = (max / step).ceil() * step;
            let ticks = (0..=((hi / step).round() as usize))
                .map(|k| k as f64 * step)
                .collect();
            Self {
                log: false,
                lo: 0.0,
                hi,
                ticks,
            }
        }
    }

    /// 0 at the bottom, 1 at the top; values below the range (0 on a log axis) sit at 0.
    fn fraction(&self, v: f64) -> f64 {
        let t = if self.log {
            if v <= 0.0 {
                return 0.0;
            }
            v.log10()
        } else {
            v
        };
        ((t - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }
}

fn tick_text(v: f64, log: bool) -> String {
    if log && !(0.01..1000.0).contains(&v) {
        format!("1e{}", v.log10().round() as i32)
    } else {
        style::num(v)
    }
}

pub(crate) fn validate_margin_plot(d: &MarginPlotData) -> Result<(), FigureError> {
    let subspaces = d.starts.len();
    if subspaces == 0 || d.series.is_empty() {
        return Err(FigureError::InvalidData(
            "a margin plot needs at least one subspace and one model".into(),
        ));
    }
    if d.jitter.len() != subspaces {
        return Err(FigureError::InvalidData(format!(
            "margin plot: {} jitter rows for {subspaces} subspaces",
            d.jitter.len()
        )));
    }
    for s in &d.series {
        let rows_ok = s.margins.len() == subspaces
            && s.converged.len() == subspaces
            && s.quartiles.len() == subspaces;
        if !rows_ok {
            return Err(FigureError::InvalidData(format!(
                "margin plot: model `{}` has {} margin rows, {} status rows and {} quartile rows for {subspaces} subspaces",
                s.name,
                s.margins.len(),
                s.converged.len(),
                s.quartiles.len()
            )));
        }
        for (k, (m, c)) in s.margins.iter().zip(&s.converged).enumerate() {
            if m.len() != c.len() || m.len() > d.jitter[k].len() {
                return Err(FigureError::InvalidData(format!(
                    "margin plot: model `{}`, subspace {k}: {} margins, {} statuses, {} jitters",
                    s.name,
                    m.len(),
                    c.len(),
                    d.jitter[k].len()
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn draw_margin_plot<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    d: &MarginPlotData,
) -> Result<(), FigureError> {
    let (w, h) = (MARGIN_PLOT_SIZE.0 as f64, MARGIN_PLOT_SIZE.1 as f64);
    let title_size = style::fit_size(&d.title, style::TITLE_PT, w - 2.0 * MARGIN, true);
    c.title(&d.title, w / 2.0, MARGIN, title_size)?;
    let (x0, x1) = (MARGIN + Y_AXIS_W, w - MARGIN);
    let legend_top = MARGIN + title_size + 6.0;
    let legend_h = legend(c, d, (MARGIN + w) / 2.0, legend_top)?;
    let (y0, y1) = (legend_top + legend_h + 8.0, h - MARGIN - X_AXIS_H);
    let axis = Axis::new(d);
    let y_of = |v: f64| y1 - axis.fraction(v) * (y1 - y0);
    let tick = pt(style::TICK_PT);
    let label = pt(style::LABEL_PT);

    // Grid and y ticks.
    for &t in &axis.ticks {
        let y = y_of(t);
        c.line((x0, y), (x1, y), RGBColor(232, 232, 232).to_rgba(), 1.0)?;
        c.line((x0 - 4.0, y), (x0, y), DARK.to_rgba(), 1.0)?;
        c.text(
            &tick_text(t, axis.log),
            x0 - 7.0,
            y,
            TextStyleU::new(tick)
                .color(DARK)
                .anchor(HPos::Right, VPos::Center),
        )?;
    }
    let y_title = if axis.log {
        "L2 margin in pixel space (log scale)"
    } else {
        "L2 margin in pixel space"
    };
    c.text(
        y_title,
        MARGIN + label * 0.6,
        (y0 + y1) / 2.0,
        TextStyleU::new(label)
            .color(DARK)
            .anchor(HPos::Center, VPos::Center)
            .vertical(),
    )?;

    // Slots: one per subspace, models side by side inside it.
    let subspaces = d.starts.len();
    let slot = (x1 - x0) / subspaces as f64;
    let models = d.series.len();
    let lane = slot * 0.84 / models as f64;
    let lane_x = |s: usize, m: usize| x0 + slot * (s as f64 + 0.08) + lane * (m as f64 + 0.5);
    for (m, series) in d.series.iter().enumerate() {
        let colour = PALETTE[m % PALETTE.len()];
        for s in 0..subspaces {
            let cx = lane_x(s, m);
            for (k, (&v, &converged)) in series.margins[s]
                .iter()
                .zip(&series.converged[s])
                .enumerate()
            {
                if !v.is_finite() {
                    continue;
                }
                let x = cx + d.jitter[s][k] as f64 * lane * 0.7;
                c.circle(
                    x,
                    y_of(f64::from(v)),
                    POINT_R,
                    colour.mix(0.55),
                    converged,
                    1.0,
                )?;
            }
        }
    }
    // Boxes after every point, with a dark outline: dense jittered points in the box's own
    // colour would otherwise hide it (100 MNIST samples did).
    for (m, series) in d.series.iter().enumerate() {
        let colour = PALETTE[m % PALETTE.len()];
        for s in 0..subspaces {
            let cx = lane_x(s, m);
            let [q1, median, q3] = series.quartiles[s];
            if [q1, median, q3].iter().all(|v| v.is_finite()) {
                let half = (lane * 0.22).clamp(1.5, 6.0);
                c.rect(
                    [cx - half, y_of(q3), cx + half, y_of(q1)],
                    colour.mix(0.6),
                    true,
                    1.0,
                )?;
                c.rect(
                    [cx - half, y_of(q3), cx + half, y_of(q1)],
                    DARK.to_rgba(),
                    false,
                    1.2,
                )?;
                let ym = y_of(median);
                let wide = (lane * 0.4).max(half + 2.0);
                c.line((cx - wide, ym), (cx + wide, ym), DARK.to_rgba(), 2.4)?;
            }
        }
    }

    // Axes box and x ticks: the subspace index, "Low" and "High" at the ends.
    c.rect([x0, y0, x1, y1], FRAME.to_rgba(), false, 1.0)?;
    let widest = measure(&subspaces.to_string(), tick, false).0;
    let stride = ((widest + 8.0) / slot).ceil().max(1.0) as usize;
    for s in 0..subspaces {
        let x = x0 + slot * (s as f64 + 0.5);
        c.line((x, y1), (x, y1 + 4.0), DARK.to_rgba(), 1.0)?;
        if s % stride == 0 || s + 1 == subspaces {
            c.text(
                &s.to_string(),
                x,
                y1 + 6.0,
                TextStyleU::new(tick)
                    .color(DARK)
                    .anchor(HPos::Center, VPos::Top),
            )?;
        }
    }
    let band_y = y1 + 8.0 + tick;
    let ends = TextStyleU::new(label).bold().color(DARK);
    c.text("Low", x0, band_y, ends.anchor(HPos::Left, VPos::Top))?;
    c.text("High", x1, band_y, ends.anchor(HPos::Right, VPos::Top))?;
    c.text(
        &d.x_label,
        (x0 + x1) / 2.0,
        band_y,
        TextStyleU::new(label)
            .color(DARK)
            .anchor(HPos::Center, VPos::Top),
    )?;
    Ok(())
}

/// One row above the axes, centred on `centre`: the model colours, then what the marks mean.
/// Returns its height.
fn legend<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    d: &MarginPlotData,
    centre: f64,
    top: f64,
) -> Result<f64, FigureError> {
    let small = pt(style::SMALL_PT);
    let mut entries: Vec<(String, Option<RGBColor>)> = d
        .series
        .iter()
        .enumerate()
        .map(|(m, s)| (s.name.clone(), Some(PALETTE[m % PALETTE.len()])))
        .collect();
    let mut note = String::from("bar: median, box: Q1–Q3");
    if d.series
        .iter()
        .any(|s| s.converged.iter().flatten().any(|c| !c))
    {
        note.push_str(", hollow: not converged");
    }
    entries.push((note, None));
    const DOT: f64 = 14.0;
    const GAP: f64 = 18.0;
    let widths: Vec<f64> = entries
        .iter()
        .map(|(t, colour)| measure(t, small, false).0 + if colour.is_some() { DOT } else { 0.0 })
        .collect();
    let row_width = |ws: &[f64]| ws.iter().sum::<f64>() + GAP * ws.len().saturating_sub(1) as f64;
    // One row when it fits the page, else the note on a second row.
    let available = MARGIN_PLOT_SIZE.0 as f64 - 2.0 * MARGIN;
    let split = if row_width(&widths) <= available {
        entries.len()
    } else {
        entries.len() - 1
    };
    let rows = [(0..split), (split..entries.len())];
    let line = small * 1.2;
    let mut drawn = 0;
    for range in rows.into_iter().filter(|r| !r.is_empty()) {
        let y = top + small * 0.6 + line * drawn as f64;
        let mut x = centre - row_width(&widths[range.clone()]) / 2.0;
        for ((text, colour), width) in entries[range.clone()].iter().zip(&widths[range]) {
            let mut tx = x;
            if let Some(colour) = colour {
                c.circle(x + 4.0, y, 4.0, colour.to_rgba(), true, 1.0)?;
                tx += DOT;
            }
            c.text(
                text,
                tx,
                y,
                TextStyleU::new(small)
                    .color(if colour.is_some() { DARK } else { MID })
                    .anchor(HPos::Left, VPos::Center),
            )?;
            x += width + GAP;
        }
        drawn += 1;
    }
    Ok(line * drawn as f64)
}

const FLIP_PANEL: f64 = 150.0;
const FLIP_GAP: f64 = 16.0;

pub(crate) fn flip_size(_: &FlipFigureData) -> (u32, u32) {
    let w = 2.0 * MARGIN + 4.0 * FLIP_PANEL + 3.0 * FLIP_GAP;
    let h =
        MARGIN + pt(style::TITLE_PT) + 10.0 + FLIP_PANEL + 8.0 + 2.0 * pt(style::LABEL_PT) + MARGIN;
    (w.ceil() as u32, h.ceil() as u32)
}

pub(crate) fn validate_flip(d: &FlipFigureData) -> Result<(), FigureError> {
    let n = d.size;
    if n == 0 || d.spectrum.len() != n * n || d.flipped_spectrum.len() != n * n {
        return Err(FigureError::InvalidData(format!(
            "flip figure: spectra of {} and {} values for N = {n}",
            d.spectrum.len(),
            d.flipped_spectrum.len()
        )));
    }
    Ok(())
}

/// log|DCT2| as an N×N viridis image, both spectra on one colour scale.
fn spectrum_image(values: &[f32], n: usize, lo: f32, hi: f32) -> RgbImage {
    let span = (hi - lo).max(f32::MIN_POSITIVE);
    RgbImage::from_fn(n as u32, n as u32, |x, y| {
        let v = values[y as usize * n + x as usize];
        image::Rgb(viridis(((v - lo) / span).clamp(0.0, 1.0)))
    })
}

pub(crate) fn draw_flip<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    d: &FlipFigureData,
) -> Result<(), FigureError> {
    let (w, _) = flip_size(d);
    let title_size = style::fit_size(&d.title, style::TITLE_PT, w as f64 - 2.0 * MARGIN, true);
    c.title(&d.title, w as f64 / 2.0, MARGIN, title_size)?;
    let top = MARGIN + title_size + 10.0;
    let finite = d
        .spectrum
        .iter()
        .chain(&d.flipped_spectrum)
        .copied()
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let panels = [
        (d.image.clone(), "image"),
        (d.flipped.clone(), "flipped"),
        (
            spectrum_image(&d.spectrum, d.size, lo, hi),
            "log|DCT2| of the image",
        ),
        (
            spectrum_image(&d.flipped_spectrum, d.size, lo, hi),
            "log|DCT2| flipped",
        ),
    ];
    let label = pt(style::LABEL_PT);
    for (k, (img, name)) in panels.iter().enumerate() {
        let x = MARGIN + k as f64 * (FLIP_PANEL + FLIP_GAP);
        c.image(img, x, top, FLIP_PANEL, Some((FRAME, 1.0)))?;
        let size = style::fit_size(name, style::LABEL_PT, FLIP_PANEL + FLIP_GAP, false).min(label);
        c.text(
            name,
            x + FLIP_PANEL / 2.0,
            top + FLIP_PANEL + 8.0,
            TextStyleU::new(size)
                .color(DARK)
                .anchor(HPos::Center, VPos::Top),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{MarginSeries, flip_illustration, margin_plot};
    use super::*;

    fn data(log_scale: bool) -> MarginPlotData {
        let series = |name: &str, scale: f32| MarginSeries {
            name: name.into(),
            margins: (0..3)
                .map(|s| vec![scale * (s + 1) as f32, 0.5, 2.0])
                .collect(),
            converged: (0..3).map(|s| vec![true, s != 1, true]).collect(),
            quartiles: (0..3).map(|_| [0.5, 1.0, 2.0]).collect(),
        };
        MarginPlotData {
            title: "margins".into(),
            starts: vec![0, 2, 4],
            x_label: "subspace".into(),
            series: vec![series("standard", 1.0), series("robust", 2.0)],
            jitter: vec![vec![-0.4, 0.0, 0.4]; 3],
            log_scale,
        }
    }

    #[test]
    fn margin_plot_renders_png_and_svg_in_both_scales() {
        for log_scale in [false, true] {
            let figure = margin_plot(&data(log_scale));
            let png = figure.png_bytes(1.0).expect("png");
            let img = image::load_from_memory(&png).expect("decode").to_rgb8();
            assert_eq!(img.dimensions(), MARGIN_PLOT_SIZE);
            // Both model colours appear.
            for colour in [PALETTE[0], PALETTE[1]] {
                let near = |p: &image::Rgb<u8>| {
                    (0..3).all(|k| {
                        (i32::from(p[k]) - i32::from([colour.0, colour.1, colour.2][k])).abs() < 40
                    })
                };
                assert!(img.pixels().any(near), "colour {colour:?} missing");
            }
            let svg = figure.svg_string().expect("svg");
            assert!(svg.contains("hollow: not converged") && svg.contains("robust"));
        }
        let mut bad = data(false);
        bad.series[1].margins.pop();
        assert!(margin_plot(&bad).png_bytes(1.0).is_err());
        let mut bad = data(false);
        bad.jitter.pop();
        assert!(margin_plot(&bad).svg_string().is_err());
    }

    #[test]
    fn flip_figure_checks_its_spectra() {
        let n = 4;
        let d = FlipFigureData {
            title: "flip".into(),
            image: RgbImage::new(4, 4),
            flipped: RgbImage::new(4, 4),
            size: n,
            spectrum: vec![0.0; n * n],
            flipped_spectrum: (0..n * n).map(|k| k as f32).collect(),
        };
        assert!(flip_illustration(&d).png_bytes(1.0).is_ok());
        let mut bad = d;
        bad.spectrum.pop();
        assert!(flip_illustration(&bad).png_bytes(1.0).is_err());
    }
}
