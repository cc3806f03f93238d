//! The margin plot of the Frequency tab, drawn as `figures::margin_plot` draws it (§4.4): one
//! slot per subspace, low to high, models side by side in it in the figure's palette; jittered
//! points from the same `plot_jitter` stream, hollow where DeepFool did not converge, an IQR
//! box and a median bar per model and subspace. Clicking a point selects it; the detail view
//! below shows that sample, its minimal perturbation and the perturbation's DCT magnitude.

use egui::{Color32, RichText, Ui};
use egui_plot::{GridMark, Legend, Line, Plot, PlotPoint, PlotPoints, Points, Polygon};

use crate::analysis::frequency::dct::Dct2;
use crate::analysis::frequency::{DeepFoolStatus, FrequencyTransform, plot_jitter};
use crate::app::frequency_state::{FrequencyState, Selection};
use crate::app::textures::Textures;
use crate::frequency_record::log_spectrum;

use super::{Pixels, image_card};

/// The model colours: the figure's palette (figures::style::PALETTE), so the app and the
/// exported figure agree.
pub const MODEL_COLOURS: [Color32; 3] = [
    Color32::from_rgb(0, 114, 178),
    Color32::from_rgb(230, 159, 0),
    Color32::from_rgb(0, 158, 115),
];

/// Screen distance within which a click picks a point.
const PICK_RADIUS: f32 = 8.0;

/// Where a margin is drawn on the y axis: log10 on a log scale, where 0 has no place.
fn y_of(v: f32, log: bool) -> Option<f64> {
    let v = f64::from(v);
    if !v.is_finite() {
        return None;
    }
    if log {
        (v > 0.0).then(|| v.log10())
    } else {
        Some(v)
    }
}

fn y_of64(v: f64, log: bool) -> Option<f64> {
    if log {
        (v.is_finite() && v > 0.0).then(|| v.log10())
    } else {
        v.is_finite().then_some(v)
    }
}

/// The centre of model `m`'s lane in subspace `s`, and the lane width (the figure's layout:
/// 84% of the slot shared by the models).
fn lane(s: usize, m: usize, models: usize) -> (f64, f64) {
    let width = 0.84 / models.max(1) as f64;
    (s as f64 - 0.42 + width * (m as f64 + 0.5), width)
}

#[derive(Default)]
pub struct MarginPlot {
    /// Where each point was drawn last frame, for picking (and for tests to click).
    pub hits: Vec<(egui::Pos2, Selection)>,
}

impl MarginPlot {
    pub fn ui(&mut self, ui: &mut Ui, f: &mut FrequencyState, height: f32) {
        let Some(plan) = f.plan else {
            return;
        };
        let log = f.log_scale;
        let models = f.measured.len();
        let seed = f.ran_with.map_or(0, |r| r.2);
        let samples = f.sample_data.as_ref().map_or(0, |s| s.pixels.len());
        let jitter: Vec<Vec<f32>> = (0..plan.count)
            .map(|s| plot_jitter(seed, s, samples))
            .collect();
        let median_colour = ui.visuals().strong_text_color();
        let selected = f.selected;
        let mut drawn: Vec<(PlotPoint, Selection)> = Vec::new();
        // A linear axis starts at 0 (a margin's floor); a log axis fits the data.
        let mut plot = Plot::new("frequency margins");
        if !log {
            plot = plot.include_y(0.0);
        }
        let response = plot
            .height(height)
            .legend(Legend::default().follow_insertion_order(true))
            .include_x(-0.5)
            .include_x(plan.count as f64 - 0.5)
            .x_axis_label(format!(
                "subspace s, low → high frequency (block start {}·s)",
                plan.step
            ))
            .y_axis_label(if log {
                "L2 margin (log scale)"
            } else {
                "L2 margin"
            })
            .x_grid_spacer(move |_| {
                (0..plan.count)
                    .map(|s| GridMark {
                        value: s as f64,
                        step_size: 1.0,
                    })
                    .collect()
            })
            .x_axis_formatter(|mark, _| format!("{}", mark.value.round() as i64))
            .y_axis_formatter(move |mark, _| {
                if log {
                    format!("{:.3}", 10f64.powf(mark.value))
                } else {
                    format!("{:.3}", mark.value)
                }
            })
            .allow_scroll(false)
            .allow_double_click_reset(true)
            .show(ui, |plot| {
                for (m, measured) in f.measured.iter().enumerate() {
                    let colour = MODEL_COLOURS[m % MODEL_COLOURS.len()];
                    let name = measured.model.label.as_str();
                    let mut filled = Vec::new();
                    let mut hollow = Vec::new();
                    for sub in &measured.distribution.subspaces {
                        let s = sub.summary.s;
                        let (cx, width) = lane(s, m, models);
                        for (k, (&v, &status)) in sub.margins.iter().zip(&sub.statuses).enumerate()
                        {
                            let Some(y) = y_of(v, log) else { continue };
                            let j = jitter.get(s).and_then(|j| j.get(k)).copied().unwrap_or(0.0);
                            let x = cx + f64::from(j) * width * 0.7;
                            drawn.push((
                                PlotPoint::new(x, y),
                                Selection {
                                    model: m,
                                    s,
                                    sample: k,
                                },
                            ));
                            if status == DeepFoolStatus::Converged {
                                filled.push([x, y]);
                            } else {
                                hollow.push([x, y]);
                            }
                        }
                    }
                    plot.points(
                        Points::new(name, PlotPoints::from(filled))
                            .id(("freq points", m))
                            .color(colour)
                            .radius(2.6),
                    );
                    plot.points(
                        Points::new(name, PlotPoints::from(hollow))
                            .id(("freq hollow", m))
                            .color(colour)
                            .filled(false)
                            .radius(3.0),
                    );
                }
                // Boxes after every point, as in the figure, so dense points do not hide them.
                for (m, measured) in f.measured.iter().enumerate() {
                    let colour = MODEL_COLOURS[m % MODEL_COLOURS.len()];
                    for sub in &measured.distribution.subspaces {
                        let q = &sub.summary;
                        let (cx, width) = lane(q.s, m, models);
                        let (Some(q1), Some(q3), Some(median)) =
                            (y_of64(q.q1, log), y_of64(q.q3, log), y_of64(q.median, log))
                        else {
                            continue;
                        };
                        let half = width * 0.22;
                        // Boxes and medians stay out of the legend (an empty name), so its
                        // swatch has the model's colour, not the median's.
                        plot.polygon(
                            Polygon::new(
                                "",
                                PlotPoints::from(vec![
                                    [cx - half, q1],
                                    [cx + half, q1],
                                    [cx + half, q3],
                                    [cx - half, q3],
                                ]),
                            )
                            .id(("freq box", m, q.s))
                            .fill_color(colour.gamma_multiply(0.5))
                            .stroke(egui::Stroke::new(1.2, median_colour))
                            .allow_hover(false),
                        );
                        let wide = width * 0.4;
                        plot.line(
                            Line::new(
                                "",
                                PlotPoints::from(vec![[cx - wide, median], [cx + wide, median]]),
                            )
                            .id(("freq median", m, q.s))
                            .color(median_colour)
                            .width(2.4)
                            .allow_hover(false),
                        );
                    }
                }
                if let Some(sel) = selected
                    && let Some((p, _)) = drawn.iter().find(|(_, d)| *d == sel)
                {
                    plot.points(
                        Points::new("", PlotPoints::from(vec![[p.x, p.y]]))
                            .id("freq selected")
                            .color(Color32::RED)
                            .filled(false)
                            .radius(6.0),
                    );
                }
            });
        self.hits = drawn
            .iter()
            .map(|(p, sel)| (response.transform.position_from_point(p), *sel))
            .collect();
        if response.response.clicked()
            && let Some(pos) = response.response.interact_pointer_pos()
        {
            let nearest = self
                .hits
                .iter()
                .map(|(p, sel)| (p.distance(pos), *sel))
                .filter(|(d, _)| *d <= PICK_RADIUS)
                .min_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((_, sel)) = nearest {
                f.selected = Some(sel);
            }
        }
    }
}

/// The clicked point: the sample, its perturbation (scaled for display) and log|DCT2| of it.
#[derive(Default)]
pub struct PointView {
    /// The spectrum of the shown selection, computed once per selection.
    spectrum: Option<(Selection, Result<Vec<f32>, String>)>,
}

pub const DETAIL_HEADING: &str = "Selected point";

impl PointView {
    pub fn ui(&mut self, ui: &mut Ui, f: &FrequencyState, textures: &mut Textures) {
        let Some(sel) = f.selected else {
            ui.label(
                RichText::new("Click a point of the plot to see its sample and perturbation.")
                    .weak(),
            );
            return;
        };
        let (Some(d), Some(samples), Some(measured)) = (
            f.detail(sel),
            f.sample_data.as_ref(),
            f.measured.get(sel.model),
        ) else {
            return;
        };
        let shape = samples.shape;
        let Some(pixels) = samples.pixels.get(sel.sample) else {
            return;
        };
        let class = |k: u32| {
            measured
                .model
                .class_names
                .get(k as usize)
                .cloned()
                .unwrap_or_else(|| format!("class {k}"))
        };
        ui.label(RichText::new(DETAIL_HEADING).strong());
        let name = samples.names.get(sel.sample).cloned().unwrap_or_default();
        let status = match d.status {
            DeepFoolStatus::Converged => "converged",
            DeepFoolStatus::MaxIter => "max iterations reached",
            DeepFoolStatus::Degenerate => "degenerate",
        };
        ui.label(format!(
            "{}: sample {} ({name}), subspace s = {}; {status} after {} iterations",
            measured.model.label, sel.sample, sel.s, d.iterations
        ));
        // The perturbation is tiny next to the image: scaled so its largest entry reaches the
        // end of the grey range, 0 at mid-grey.
        let peak = d.perturbation.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let gain = if peak > 0.0 { 0.5 / peak } else { 1.0 };
        let shown: Vec<f32> = d.perturbation.iter().map(|v| 0.5 + v * gain).collect();
        let side = 150.0;
        let key = format!("freq {} {} {}", sel.model, sel.s, sel.sample);
        let spectrum = self.spectrum(sel, d.perturbation, shape);
        // A model trained on transformed images is measured on T(x): show what it sees, so the
        // perturbation beside it is in the same space.
        let transform = measured.model.transform;
        let seen = transform.and_then(|t| transformed_for_display(t, pixels, shape));
        let (sample_pixels, sample_title) = match (&seen, transform) {
            (Some(seen), Some(t)) => (seen.as_slice(), format!("T(x) = {t}(sample)")),
            _ => (pixels.as_slice(), "Sample".to_string()),
        };
        ui.horizontal(|ui| {
            image_card(
                ui,
                textures,
                Pixels {
                    key: &format!(
                        "freq sample {} {}",
                        sel.sample,
                        transform.map_or_else(String::new, |t| t.to_string())
                    ),
                    data: sample_pixels,
                    shape,
                },
                side,
                &sample_title,
                seen.is_some()
                    .then(|| RichText::new("what the model sees, clipped to [0, 1]").weak()),
            );
            image_card(
                ui,
                textures,
                Pixels {
                    key: &format!("{key} perturbation"),
                    data: &shown,
                    shape,
                },
                side,
                "Minimal perturbation",
                Some(RichText::new(format!(
                    "L2 norm {:.4} · shown ×{gain:.1} around grey\nnew label: {}",
                    d.margin,
                    d.new_label.map_or_else(|| "n/a".into(), class)
                ))),
            );
            match spectrum {
                Ok(values) => {
                    let image = viridis_image(&values, shape[1]);
                    image_card(
                        ui,
                        textures,
                        Pixels {
                            key: &format!("{key} spectrum"),
                            data: &image,
                            shape: [3, shape[1], shape[2]],
                        },
                        side,
                        "log|DCT2| of the perturbation",
                        Some(RichText::new("top left: low frequencies").weak()),
                    );
                }
                Err(e) => {
                    ui.label(format!("no spectrum: {e}"));
                }
            }
        });
    }

    fn spectrum(
        &mut self,
        sel: Selection,
        perturbation: &[f32],
        shape: [usize; 3],
    ) -> Result<Vec<f32>, String> {
        if self.spectrum.as_ref().is_none_or(|(s, _)| *s != sel) {
            let computed = (|| -> Result<Vec<f32>, String> {
                let device = candle_core::Device::Cpu;
                let dct = Dct2::new(shape[1], candle_core::DType::F32, &device)
                    .map_err(|e| e.to_string())?;
                let r = candle_core::Tensor::from_vec(perturbation.to_vec(), &shape[..], &device)
                    .map_err(|e| e.to_string())?;
                log_spectrum(&dct, &r).map_err(|e| e.to_string())
            })();
            self.spectrum = Some((sel, computed));
        }
        self.spectrum
            .as_ref()
            .map_or_else(|| Err("not computed".into()), |(_, r)| r.clone())
    }
}

/// log-magnitudes N×N as a [3, N, N] viridis image in [0, 1], min to max.
fn viridis_image(values: &[f32], n: usize) -> Vec<f32> {
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let range = (hi - lo).max(1e-6);
    let mut out = vec![0.0f32; 3 * n * n];
    for (i, &v) in values.iter().enumerate().take(n * n) {
        let rgb = crate::figures::viridis((v - lo) / range);
        for (c, value) in rgb.iter().enumerate() {
            out[c * n * n + i] = f32::from(*value) / 255.0;
        }
    }
    out
}

/// T(x) of one sample [C·N·N], clipped to [0, 1] for display; None if the transform fails
/// (it was checked before the run, so it does not).
fn transformed_for_display(
    transform: FrequencyTransform,
    pixels: &[f32],
    shape: [usize; 3],
) -> Option<Vec<f32>> {
    let x = candle_core::Tensor::from_slice(pixels, &shape[..], &candle_core::Device::Cpu).ok()?;
    let seen = transform.apply_once(&x).ok()?;
    let values = seen.flatten_all().ok()?.to_vec1::<f32>().ok()?;
    Some(values.into_iter().map(|v| v.clamp(0.0, 1.0)).collect())
}
