//! The walk Run makes, LST or NSPGD, and its parameters: LST's (ALGORITHMS.md §1.1) with a
//! preset, or NSPGD's (§2.1); every value editable with a tooltip that says what it does.
//! Editing an LST value makes the preset "Custom".

use egui::Ui;

use crate::analysis::{Method, WidthConfig};
use crate::app::state::{AppState, Preset, Tab};

/// One labelled row of a parameter grid; the widget is named by its label for screen readers
/// and tests.
fn row(ui: &mut Ui, name: &str, tip: &str, add: impl FnOnce(&mut Ui) -> egui::Response) {
    let label = ui.label(name).on_hover_text(tip);
    add(ui).labelled_by(label.id).on_hover_text(tip);
    ui.end_row();
}

const SEED_TIP: &str = "Seeds the initial noise (LST) and the width directions; the same seed \
                        gives the same run bit for bit.";

#[derive(Default)]
pub struct ParamsPanel {
    radii_text: Option<String>,
}

impl ParamsPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState) {
        let busy = state.is_busy();
        egui::CollapsingHeader::new("Parameters")
            .default_open(true)
            .show(ui, |ui| {
                ui.add_enabled_ui(!busy, |ui| {
                    if state.tab == Tab::Reach {
                        // The reach evaluation is an NSPGD evaluation (§2.3): show what it
                        // walks with, whichever walk Run makes.
                        ui.label(
                            egui::RichText::new("The reach evaluation walks with NSPGD:").weak(),
                        );
                        Self::nspgd(ui, state, false);
                        return;
                    }
                    self.method_choice(ui, state);
                    match state.method {
                        Method::Lst => {
                            self.preset(ui, state);
                            // Any value edited below, the radii included, makes it Custom.
                            let before = state.config.clone();
                            Self::lst(ui, state);
                            self.radii(ui, &mut state.config.width);
                            if state.config != before {
                                state.preset = Preset::Custom;
                            }
                        }
                        Method::Nspgd => {
                            Self::nspgd(ui, state, true);
                            self.radii(ui, &mut state.nspgd.width);
                        }
                    }
                    if let Err(e) = state.walk_config().validate() {
                        ui.colored_label(ui.visuals().error_fg_color, e.to_string());
                    }
                });
            });
    }

    /// LST or NSPGD, as two selectable labels (clickable by their names).
    fn method_choice(&mut self, ui: &mut Ui, state: &mut AppState) {
        ui.horizontal(|ui| {
            ui.label("Method");
            let before = state.method;
            ui.selectable_value(&mut state.method, Method::Lst, Method::Lst.name())
                .on_hover_text(
                    "Level Set Traversal (§1): a two-sided projection keeps the source \
                     confidence within δ for all m iterations; the hull and grid use it.",
                );
            ui.selectable_value(&mut state.method, Method::Nspgd, Method::Nspgd.name())
                .on_hover_text(
                    "Null-space projected walk (§2): the gradient of p(source) itself, a \
                     one-sided projection, no clamp, no noise, no adversarial term; the walk \
                     finishes at its first step that loses τ of confidence.",
                );
            if state.method != before {
                // The two walks keep their own radii; the field shows the chosen one's.
                self.radii_text = None;
            }
        });
        if state.method == Method::Nspgd {
            ui.label(
                egui::RichText::new("Hull and grid stay LST: they use the LST settings.")
                    .weak()
                    .small(),
            );
        }
    }

    /// LST's presets (§1.1): picking one replaces every LST value but the widths switch.
    fn preset(&mut self, ui: &mut Ui, state: &mut AppState) {
        ui.horizontal(|ui| {
            ui.label("Preset");
            egui::ComboBox::from_id_salt("preset")
                .selected_text(state.preset.label())
                .show_ui(ui, |ui| {
                    for p in [Preset::Cifar, Preset::ImageNet, Preset::Quick] {
                        if ui.selectable_label(state.preset == p, p.label()).clicked() {
                            if let Some(c) = p.config() {
                                let widths = state.config.width.enabled;
                                state.config = c;
                                state.config.width.enabled = widths;
                                self.radii_text = None;
                            }
                            state.preset = p;
                        }
                    }
                })
                .response
                .on_hover_text(
                    "CIFAR-scale for inputs under 128 px, ImageNet-scale above (the paper's \
                     settings); Quick look is CIFAR-scale with 30 iterations",
                );
        });
    }

    fn lst(ui: &mut Ui, state: &mut AppState) {
        let c = &mut state.config;
        egui::Grid::new("lst params")
            .num_columns(2)
            .spacing([8.0, 3.0])
            .show(ui, |ui| {
                row(
                    ui,
                    "Step size η",
                    "How far each iteration moves along the part of (target − x) orthogonal \
                     to the gradient. Larger reaches the target sooner but leaves the level \
                     set more often (more rejected steps).",
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut c.step_size)
                                .speed(0.001)
                                .range(0.0..=1.0),
                        )
                    },
                );

                row(
                    ui,
                    "Iterations m",
                    "Every iteration runs (no early stop): one forward + input gradient and \
                     one forward pass each.",
                    |ui| ui.add(egui::DragValue::new(&mut c.iterations).range(1..=100_000)),
                );

                row(
                    ui,
                    "pthresh δ",
                    "A step is accepted only while p0 − p(x')[source] < δ: the largest drop of \
                     source confidence below the start that the path may take.",
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut c.pthresh)
                                .speed(0.005)
                                .range(-1.0..=2.0),
                        )
                    },
                );

                row(
                    ui,
                    "Adversarial term",
                    "Subtract the clamped accumulator A of (ε/2)·gradient from every \
                     proposal, countering the second-order loss of confidence (§1.2).",
                    |ui| ui.checkbox(&mut c.adversarial, "on"),
                );

                row(
                    ui,
                    "Adversarial step ε",
                    "Bound of the accumulator A per pixel; it moves each pixel by at most ε \
                     per step toward higher source confidence.",
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut c.adv_step)
                                .speed(0.0005)
                                .range(0.0..=1.0),
                        )
                    },
                );

                row(
                    ui,
                    "Initial noise ν",
                    "Half-width of the uniform noise added to the source before the first \
                     step (seeded).",
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut c.init_noise)
                                .speed(0.001)
                                .range(0.0..=1.0),
                        )
                    },
                );

                row(
                    ui,
                    "Log every",
                    "Keep a frame (image and confidences) every this many iterations: the \
                     frames you can scrub and export.",
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut c.log_step)
                                .range(1..=10_000)
                                .suffix(" steps"),
                        )
                    },
                );

                row(ui, "Seed", SEED_TIP, |ui| {
                    ui.add(egui::DragValue::new(&mut c.seed))
                });

                row(
                    ui,
                    "Path widths",
                    "At every kept frame, probe 256 random directions orthogonal to the path \
                     at each radius and record the 5% and 95% quantiles of the confidence \
                     (§1.5). Costs 256 forward passes per radius per frame.",
                    |ui| ui.checkbox(&mut c.width.enabled, "measure"),
                );
            });
    }

    fn nspgd(ui: &mut Ui, state: &mut AppState, path_widths: bool) {
        let c = &mut state.nspgd;
        egui::Grid::new("nspgd params")
            .num_columns(2)
            .spacing([8.0, 3.0])
            .show(ui, |ui| {
                row(
                    ui,
                    "Step size η",
                    "How far each iteration moves along (target − x), with the gradient's \
                     component removed only when it would lower the confidence. The iterate \
                     is not clamped; the model sees clamp(x).",
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut c.step_size)
                                .speed(0.001)
                                .range(0.0..=1.0),
                        )
                    },
                );

                row(
                    ui,
                    "Iterations",
                    "At most this many iterations: the walk finishes at its first rejected \
                     step (\"finished at k\"), or completes them all.",
                    |ui| ui.add(egui::DragValue::new(&mut c.iterations).range(1..=100_000)),
                );

                row(
                    ui,
                    "τ",
                    "A step is accepted only while p0 − p(clamp(x'))[source] < τ; a drop of \
                     exactly τ is rejected and finishes the walk.",
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut c.tau)
                                .speed(0.005)
                                .range(0.0..=1.0),
                        )
                    },
                );

                row(
                    ui,
                    "Log every",
                    "Keep a frame (image and confidences) every this many iterations. Widths \
                     are measured at the kept frames among iterations 0, 6, …, 54, so 6 (or \
                     2, 3) measures all ten.",
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut c.log_step)
                                .range(1..=10_000)
                                .suffix(" steps"),
                        )
                    },
                );

                row(ui, "Seed", SEED_TIP, |ui| {
                    ui.add(egui::DragValue::new(&mut c.seed))
                });

                // The reach evaluation picks its width sources in its own tab.
                if path_widths {
                    row(
                        ui,
                        "Path widths",
                        "At iterations 0, 6, …, 54, probe 256 random directions orthogonal to \
                         the path at each radius and record the 5% and 95% quantiles of the \
                         confidence (§2.2, no confidence skip). Costs 256 forward passes per \
                         radius per measurement.",
                        |ui| ui.checkbox(&mut c.width.enabled, "measure"),
                    );
                }
            });
    }

    /// The radii field of the chosen walk's width measurement, while widths are on.
    fn radii(&mut self, ui: &mut Ui, width: &mut WidthConfig) {
        if width.enabled {
            let text = self.radii_text.get_or_insert_with(|| {
                width
                    .radii
                    .iter()
                    .map(|r| format!("{r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            ui.horizontal(|ui| {
                let label = ui
                    .label("Radii")
                    .on_hover_text("L2 radii in pixel space, comma-separated");
                if ui
                    .add(egui::TextEdit::singleline(text).desired_width(140.0))
                    .labelled_by(label.id)
                    .changed()
                {
                    let radii: Vec<f32> = text
                        .split([',', ' '])
                        .filter_map(|s| s.trim().parse::<f32>().ok())
                        .filter(|r| r.is_finite() && *r > 0.0)
                        .collect();
                    if !radii.is_empty() {
                        width.radii = radii;
                    }
                }
            });
        }
    }
}
