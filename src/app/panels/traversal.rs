//! The traversal view: source, current (or scrubbed) frame, target and |difference| side by
//! side, a scrubber over the kept frames, and the confidence and distance curves with accepted
//! and rejected steps told apart. Live while a run streams in; the same view for finished runs.

use egui::{RichText, Ui};
use egui_plot::{Legend, Line, MarkerShape, Plot, PlotPoints, Points, VLine};

use std::sync::Arc;

use crate::app::state::{AppState, ExportKind, RunView};
use crate::app::textures::{Textures, difference, difference_gain, max_difference};
use crate::app::worker::{FinishedRun, Slot};

use super::{
    L2_COLOUR, LINF_COLOUR, Pixels, REJECTED_COLOUR, SOURCE_COLOUR, TARGET_COLOUR, conf,
    export_bar, image_card, placeholder,
};

#[derive(Default)]
pub struct TraversalPanel {
    /// The run the |difference| gain was found for, and the largest |frame − source| in it
    /// (for a live run, so far).
    difference_max: Option<(String, f32)>,
}

/// The other run on the plots: its curves and the model that made it.
struct Overlay {
    run: Arc<FinishedRun>,
    name: String,
}

/// What the images row shows at the scrub position.
struct Shown<'a> {
    pixels: &'a [f32],
    caption: String,
    key: String,
    step: usize,
}

impl TraversalPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState, textures: &mut Textures) {
        let live = state.live.is_some();
        let presenting = state.presentation;
        let mut follow = state.follow_live;
        let mut zoom = state.zoom;
        let scrub_before = state.scrub;
        let run_key = match (&state.live, state.shown_run) {
            (Some(l), _) => format!("live {}", l.job),
            (None, Some(i)) => format!("run {i}"),
            (None, None) => "none".into(),
        };
        let paused = state.job.as_ref().is_some_and(|j| j.is_paused());
        // The shown result's own record heads the view; a finished run is marked when the
        // loaded model or the picked pair have changed since it was made.
        let mut overlay = None;
        if let Some(job) = state.job.as_ref().filter(|_| live) {
            let verb = if paused { "Paused" } else { "Running" };
            ui.label(RichText::new(format!("{verb}: {}", job.what)).strong());
        } else if let Some(run) = state.shown_finished().cloned() {
            ui.horizontal(|ui| {
                ui.add(egui::Label::new(RichText::new(run_heading(&run)).strong()).truncate())
                    .on_hover_text(run.record.model.weights_path.clone());
            });
            if let Some(why) = state.stale_reason(&run.record) {
                super::stale_note(ui, &why);
            }
            if !presenting {
                super::compare::comparison_picker(ui, state, &run);
            }
            overlay = state.comparison_for(&run).map(|other| Overlay {
                name: other.record.model.short_name(),
                run: other,
            });
        }
        let Some(view) = state.shown() else {
            empty(ui, state, textures);
            return;
        };
        let scrub_len = view.scrub_len();
        // A live run follows its newest frame unless the user scrubbed away.
        let mut scrub = scrub_before.min(scrub_len.saturating_sub(1));
        if live && follow {
            scrub = scrub_len.saturating_sub(1);
        }
        let shown = shown_image(&view, scrub, live && follow, paused, &run_key);
        let gain = self.difference_gain(&view, &shown, &run_key);
        images_row(ui, textures, &view, &shown, zoom, &run_key, gain);

        // Scrubber.
        let mut new_scrub = scrub;
        ui.horizontal(|ui| {
            let frame_label = ui.label("Frame");
            let max = scrub_len.saturating_sub(1);
            let has_output = view.output.is_some();
            let steps: Vec<usize> = (0..scrub_len).map(|i| view.scrub_step(i)).collect();
            // While following a live run the slider names the step the image shows, so the
            // caption, the slider and the status bar agree.
            let live_step = (live && follow).then_some(shown.step);
            let slider =
                egui::Slider::new(&mut new_scrub, 0..=max).custom_formatter(move |v, _| {
                    let i = v as usize;
                    if has_output && i + 1 == scrub_len {
                        "x*".to_string()
                    } else if let (Some(step), true) = (live_step, i + 1 == scrub_len) {
                        format!("step {step}")
                    } else {
                        format!("step {}", steps.get(i).copied().unwrap_or(0))
                    }
                });
            ui.add_enabled(scrub_len > 1, slider)
                .labelled_by(frame_label.id)
                .on_hover_text("Move through the kept frames (← →, Home, End)");
            if live {
                ui.checkbox(&mut follow, "follow")
                    .on_hover_text("Keep showing the newest frame while the run goes on");
            }
            if !presenting {
                ui.separator();
                let zoom_label = ui.label("Zoom");
                let mut fit = zoom <= 0.0;
                if ui
                    .checkbox(&mut fit, "fit")
                    .on_hover_text("Images as large as the window allows")
                    .changed()
                {
                    zoom = if fit { 0.0 } else { 8.0 };
                }
                if !fit {
                    ui.add(
                        egui::Slider::new(&mut zoom, 1.0..=24.0)
                            .step_by(1.0)
                            .suffix("×"),
                    )
                    .labelled_by(zoom_label.id)
                    .on_hover_text("Image magnification, nearest-neighbour so pixels stay visible");
                }
            }
        });

        // Plots; a click jumps to the nearest kept frame.
        if let Some(step) = plots(ui, &view, shown.step, overlay.as_ref()) {
            new_scrub = view.scrub_index_near(step);
            follow = false;
        } else if new_scrub != scrub {
            // Scrubbing back to the newest frame follows again.
            follow = live && new_scrub + 1 >= scrub_len;
        }
        summary(ui, &view, paused);
        if let Some(o) = &overlay {
            overlay_summary(ui, o);
        }
        state.scrub = new_scrub;
        state.follow_live = follow;
        state.zoom = zoom;
        if !live && !presenting {
            export_bar(
                ui,
                state,
                &[
                    (ExportKind::PathStrip, "Path strip"),
                    (ExportKind::Confidence, "Confidence plot"),
                    (ExportKind::Run, "Run record"),
                ],
            );
        }
    }
}

impl TraversalPanel {
    /// One |difference| gain per run: from its largest |frame − source| (x* included); for a
    /// live run the largest so far, which settles as the run goes on.
    fn difference_gain(&mut self, view: &RunView<'_>, shown: &Shown<'_>, run_key: &str) -> f32 {
        let known = self
            .difference_max
            .as_ref()
            .filter(|(k, _)| k == run_key)
            .map(|(_, m)| *m);
        let fits = |p: &&[f32]| p.len() == view.source.len();
        let max = match known {
            // A finished run's largest difference is known once found.
            Some(m) if view.current.is_none() => m,
            // A live run adds only what is new: the newest iterate and the shown frame.
            Some(m) => view
                .current
                .map(|(_, p)| p)
                .into_iter()
                .chain(std::iter::once(shown.pixels))
                .filter(fits)
                .map(|p| max_difference(p, view.source))
                .fold(m, f32::max),
            None => view
                .frame_pixels
                .iter()
                .map(Vec::as_slice)
                .chain(view.output)
                .chain(view.current.map(|(_, p)| p))
                .chain(std::iter::once(shown.pixels))
                .filter(fits)
                .map(|p| max_difference(p, view.source))
                .fold(0.0, f32::max),
        };
        self.difference_max = Some((run_key.to_string(), max));
        difference_gain(max)
    }
}

/// A finished run's own record in a line: pair, classes, walk and model.
fn run_heading(run: &FinishedRun) -> String {
    let r = &run.record;
    format!(
        "{} · {} {} iterations · {} · {}",
        run.title(),
        r.config.method().name(),
        r.config.iterations(),
        r.model.architecture,
        super::status::seconds(r.timing.seconds)
    )
}

/// Before the first run: the picked pair, large, and what Run will do.
fn empty(ui: &mut Ui, state: &AppState, textures: &mut Textures) {
    ui.add_space(16.0);
    let side = ((ui.available_width() - 160.0) / 2.0).clamp(96.0, 320.0);
    ui.horizontal(|ui| {
        for (slot, caption) in [(Slot::Source, "Source"), (Slot::Target, "Target")] {
            match &state.slot(slot).preview {
                Some(p) => {
                    let top = p
                        .top
                        .first()
                        .map_or(String::new(), |t| format!("{} · p = {}", t.1, conf(t.2)));
                    image_card(
                        ui,
                        textures,
                        Pixels {
                            key: &format!("empty {slot:?} {}", state.slot(slot).request),
                            data: &p.pixels,
                            shape: p.shape,
                        },
                        side,
                        caption,
                        Some(RichText::new(top)),
                    );
                }
                None => placeholder(ui, side, caption),
            }
            if slot == Slot::Source {
                ui.add_space(12.0);
                ui.label(RichText::new("→").size(40.0).weak());
                ui.add_space(12.0);
            }
        }
    });
    ui.add_space(12.0);
    ui.label(RichText::new("No traversal yet").heading());
    ui.label(if state.spec().is_some() {
        "Run (Space) walks from the source toward the target, each step orthogonal to the \
         gradient, so the model keeps its confidence in the source class while the image turns \
         into the target."
    } else {
        "Loading the model…"
    });
}

fn shown_image<'a>(
    view: &'a RunView<'a>,
    scrub: usize,
    live_newest: bool,
    paused: bool,
    run: &str,
) -> Shown<'a> {
    if live_newest && let Some((step, pixels)) = view.current {
        let state = if paused { "paused" } else { "live" };
        return Shown {
            pixels,
            caption: format!("step {} ({state})", step + 1),
            key: format!("{run} current {step}"),
            step: step + 1,
        };
    }
    match view.scrub_image(scrub) {
        Some(pixels) => {
            let is_output = view.output.is_some() && scrub + 1 == view.scrub_len();
            Shown {
                pixels,
                caption: if is_output {
                    "x* (output)".into()
                } else {
                    format!("step {}", view.scrub_step(scrub))
                },
                key: format!("{run} frame {scrub}"),
                step: view.scrub_step(scrub),
            }
        }
        None => Shown {
            pixels: view.source,
            caption: "start".into(),
            key: format!("{run} source"),
            step: 0,
        },
    }
}

fn images_row(
    ui: &mut Ui,
    textures: &mut Textures,
    view: &RunView<'_>,
    shown: &Shown<'_>,
    zoom: f32,
    run: &str,
    gain: f32,
) {
    let h = view.shape[1].max(1) as f32;
    // Four images side by side, each at most a quarter of the width.
    let spacing = ui.spacing().item_spacing.x * 3.0;
    let fit = ((ui.available_width() - spacing) / 4.0).max(48.0);
    // At most 40% of the height, so the plots keep room on short windows.
    // Zoom 0 is "fit": the images grow with the window (a 2560 px screen gets large images).
    let wanted = if zoom <= 0.0 { f32::INFINITY } else { h * zoom };
    let side = wanted.min(fit).min(ui.available_height() * 0.4);
    // The step metrics of the shown image: at a frame, its logged confidences.
    let shown_conf = view
        .frames
        .iter()
        .find(|f| f.step == shown.step)
        .map(|f| (f.source_confidence, f.target_confidence))
        .or_else(|| {
            shown
                .step
                .checked_sub(1)
                .and_then(|s| view.steps.get(s))
                .map(|s| (s.source_confidence, s.target_confidence))
        });
    let detail = |p_src: f32, p_tgt: f32| {
        RichText::new(format!(
            "p({}) {}  ·  p({}) {}",
            view.source_class,
            conf(p_src),
            view.target_class,
            conf(p_tgt)
        ))
        .small()
    };
    ui.horizontal(|ui| {
        image_card(
            ui,
            textures,
            Pixels {
                key: &format!("{run} source"),
                data: view.source,
                shape: view.shape,
            },
            side,
            "Source",
            Some(RichText::new(format!("{} · p0 {}", view.source_class, conf(view.p0))).small()),
        );
        let d = shown_conf.map(|(a, b)| detail(a, b));
        image_card(
            ui,
            textures,
            Pixels {
                key: &shown.key,
                data: shown.pixels,
                shape: view.shape,
            },
            side,
            &shown.caption,
            d,
        );
        image_card(
            ui,
            textures,
            Pixels {
                key: &format!("{run} target"),
                data: view.target,
                shape: view.shape,
            },
            side,
            "Target",
            Some(RichText::new(view.target_class.to_string()).small()),
        );
        if shown.pixels.len() == view.source.len() {
            let diff = difference(shown.pixels, view.source, gain);
            image_card(
                ui,
                textures,
                Pixels {
                    key: &format!("{} diff", shown.key),
                    data: &diff,
                    shape: view.shape,
                },
                side,
                "|difference|",
                Some(RichText::new(format!("|shown − source| × {gain:.1}")).small()),
            )
            .on_hover_text(
                "One gain for the whole run (its largest difference is white), so frames compare",
            );
        } else {
            placeholder(ui, side, "");
        }
    });
}

/// The two plots; returns the step clicked on, if any.
fn plots(
    ui: &mut Ui,
    view: &RunView<'_>,
    cursor_step: usize,
    overlay: Option<&Overlay>,
) -> Option<f64> {
    // The curves of the run beside: dotted, named by its model.
    let other = |y: fn(&crate::record::StepRecord) -> f32| -> Option<PlotPoints<'static>> {
        overlay.map(|o| {
            o.run
                .record
                .steps
                .iter()
                .map(|s| [s.step as f64 + 1.0, f64::from(y(s))])
                .collect()
        })
    };
    let other_name = overlay.map_or(String::new(), |o| o.name.clone());
    let iterations_other = overlay.map_or(0, |o| o.run.record.config.iterations());
    let height = (ui.available_height() - 90.0).clamp(140.0, 900.0);
    let width = (ui.available_width() - ui.spacing().item_spacing.x) / 2.0;
    let mut clicked = None;
    let iterations = view.iterations.max(1) as f64;
    ui.horizontal(|ui| {
        // Legends sit where the curves are not: p(source) stays near the top and p(target)
        // rises on the right, the distances fall from the top left.
        let conf_plot = Plot::new("confidence plot")
            .width(width)
            .height(height)
            .legend(
                Legend::default()
                    .follow_insertion_order(true)
                    .position(egui_plot::Corner::LeftBottom),
            )
            .x_axis_label("step")
            .y_axis_label("confidence")
            .include_x(0.0)
            .include_x(iterations.max(iterations_other as f64))
            .include_y(0.0)
            .include_y(1.0)
            .allow_scroll(false)
            .show(ui, |plot| {
                let src: PlotPoints = view
                    .steps
                    .iter()
                    .map(|s| [s.step as f64 + 1.0, f64::from(s.source_confidence)])
                    .collect();
                let tgt: PlotPoints = view
                    .steps
                    .iter()
                    .map(|s| [s.step as f64 + 1.0, f64::from(s.target_confidence)])
                    .collect();
                plot.line(
                    Line::new("p(source class)", src)
                        .color(SOURCE_COLOUR)
                        .width(2.0),
                );
                plot.line(
                    Line::new("p(target class)", tgt)
                        .color(TARGET_COLOUR)
                        .width(2.0),
                );
                if let Some(points) = other(|s| s.source_confidence) {
                    plot.line(
                        Line::new(format!("p(source class) · {other_name}"), points)
                            .color(SOURCE_COLOUR)
                            .style(egui_plot::LineStyle::dotted_dense())
                            .width(2.0),
                    );
                }
                if let Some(points) = other(|s| s.target_confidence) {
                    plot.line(
                        Line::new(format!("p(target class) · {other_name}"), points)
                            .color(TARGET_COLOUR)
                            .style(egui_plot::LineStyle::dotted_dense())
                            .width(2.0),
                    );
                }
                let floor = f64::from(view.p0 - view.threshold);
                let symbol = view.method.threshold_symbol();
                plot.line(
                    Line::new(
                        format!("p0 − {symbol} (acceptance floor)"),
                        PlotPoints::from(vec![[0.0, floor], [iterations, floor]]),
                    )
                    .color(SOURCE_COLOUR.gamma_multiply(0.5))
                    .style(egui_plot::LineStyle::dashed_dense()),
                );
                rejected(plot, view, |s| f64::from(s.source_confidence));
                plot.vline(VLine::new("shown", cursor_step as f64).color(ui_cursor()));
                plot.pointer_coordinate()
            });
        if conf_plot.response.clicked() {
            clicked = conf_plot.inner.map(|p| p.x);
        }
        let dist_plot = Plot::new("distance plot")
            .width(width)
            .height(height)
            .legend(
                Legend::default()
                    .follow_insertion_order(true)
                    .position(egui_plot::Corner::RightTop),
            )
            .x_axis_label("step")
            .y_axis_label("distance to target")
            .include_x(0.0)
            .include_x(iterations.max(iterations_other as f64))
            .include_y(0.0)
            .allow_scroll(false)
            .show(ui, |plot| {
                let l2: PlotPoints = view
                    .steps
                    .iter()
                    .map(|s| [s.step as f64 + 1.0, f64::from(s.l2_normalized)])
                    .collect();
                let linf: PlotPoints = view
                    .steps
                    .iter()
                    .map(|s| [s.step as f64 + 1.0, f64::from(s.linf)])
                    .collect();
                plot.line(Line::new("L2 (normalised)", l2).color(L2_COLOUR).width(2.0));
                plot.line(Line::new("L∞", linf).color(LINF_COLOUR).width(2.0));
                if let Some(points) = other(|s| s.l2_normalized) {
                    plot.line(
                        Line::new(format!("L2 (normalised) · {other_name}"), points)
                            .color(L2_COLOUR)
                            .style(egui_plot::LineStyle::dotted_dense())
                            .width(2.0),
                    );
                }
                rejected(plot, view, |s| f64::from(s.l2_normalized));
                plot.vline(VLine::new("shown", cursor_step as f64).color(ui_cursor()));
                plot.pointer_coordinate()
            });
        if dist_plot.response.clicked() {
            clicked = dist_plot.inner.map(|p| p.x);
        }
    });
    clicked
}

fn ui_cursor() -> egui::Color32 {
    egui::Color32::from_rgb(150, 150, 150)
}

/// Rejected steps as crosses on a curve.
fn rejected(
    plot: &mut egui_plot::PlotUi<'_>,
    view: &RunView<'_>,
    y: impl Fn(&crate::record::StepRecord) -> f64,
) {
    let points: Vec<[f64; 2]> = view
        .steps
        .iter()
        .filter(|s| !s.accepted)
        .map(|s| [s.step as f64 + 1.0, y(s)])
        .collect();
    if !points.is_empty() {
        plot.points(
            Points::new("rejected step", PlotPoints::from(points))
                .shape(MarkerShape::Cross)
                .radius(3.5)
                .color(REJECTED_COLOUR),
        );
    }
}

/// The run beside, in a line: its model, status and Table 1 distance.
fn overlay_summary(ui: &mut Ui, o: &Overlay) {
    let r = &o.run.record;
    let last = r.steps.last();
    let mut text = format!("dotted: {} · {}", o.name, r.status.label());
    if let Some(s) = last {
        text.push_str(&format!(
            " · p({}) {} · L2 {:.4}",
            r.source.class_name,
            conf(s.source_confidence),
            s.l2_normalized
        ));
    }
    if let Some(f) = &r.final_output {
        text.push_str(&format!(" · x* to target L2 {:.4}", f.l2_normalized));
    }
    ui.label(RichText::new(text).small());
}

fn summary(ui: &mut Ui, view: &RunView<'_>, paused: bool) {
    let accepted = view.steps.iter().filter(|s| s.accepted).count();
    let last = view.steps.last();
    ui.horizontal_wrapped(|ui| {
        let status = match view.status {
            None if paused => "paused".to_string(),
            None => "running".to_string(),
            Some(status) => status.label(),
        };
        ui.label(RichText::new(status).strong());
        ui.label(format!(
            "{} of {} steps · {accepted} accepted",
            view.steps.len(),
            view.iterations
        ));
        if let Some(s) = last {
            ui.label(format!(
                "p({}) {} · L2 {:.4} · L∞ {:.3}",
                view.source_class,
                conf(s.source_confidence),
                s.l2_normalized,
                s.linf
            ));
        }
        if !view.model.is_empty() {
            ui.weak(view.model);
        }
    });
    if let Some(f) = view.final_output {
        let na = |v: Option<f32>, digits: usize| {
            v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
        };
        ui.label(format!(
            "x* to target (Table 1): L2 {:.4} · L∞ {:.3} · SSIM {} · LPIPS {}",
            f.l2_normalized,
            f.linf,
            na(f.ssim, 3),
            na(f.lpips, 4)
        ))
        .on_hover_text(
            "LPIPS-Alex v0.1. It reads n/a without its weights (--lpips, $BLINDSPOT_LPIPS, or \
             lpips_alex.safetensors in the data folder) and for grey or smaller-than-32px images.",
        );
        if !f.top.is_empty() {
            let classes: Vec<String> = f
                .top
                .iter()
                .map(|t| format!("{} {}", t.name, conf(t.probability)))
                .collect();
            ui.label(format!("x* top-{}: {}", f.top.len(), classes.join(" · ")))
                .on_hover_text("The model's most probable classes for the output x*");
        }
    }
}
