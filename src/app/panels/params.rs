//! LST parameters (ALGORITHMS.md §1.1): a preset, and every value editable with a tooltip that
//! says what it does. Editing a value makes the preset "Custom".

use egui::Ui;

use crate::app::state::{AppState, Preset};

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
                ui.add_enabled_ui(!busy, |ui| self.contents(ui, state));
            });
    }

    fn contents(&mut self, ui: &mut Ui, state: &mut AppState) {
        /// One labelled row; the widget is named by its label for screen readers and tests.
        fn row(ui: &mut Ui, name: &str, tip: &str, add: impl FnOnce(&mut Ui) -> egui::Response) {
            let label = ui.label(name).on_hover_text(tip);
            add(ui).labelled_by(label.id).on_hover_text(tip);
            ui.end_row();
        }
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
        let before = state.config.clone();
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

                row(
                    ui,
                    "Seed",
                    "Seeds the initial noise and the width directions; the same seed gives \
                     the same run bit for bit.",
                    |ui| ui.add(egui::DragValue::new(&mut c.seed)),
                );

                row(
                    ui,
                    "Path widths",
                    "At every kept frame, probe 256 random directions orthogonal to the path \
                     at each radius and record the 5% and 95% quantiles of the confidence \
                     (§1.5). Costs 256 forward passes per radius per frame.",
                    |ui| ui.checkbox(&mut c.width.enabled, "measure"),
                );
            });
        if c.width.enabled {
            let text = self.radii_text.get_or_insert_with(|| {
                c.width
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
                        c.width.radii = radii;
                    }
                }
            });
        }
        if state.config != before {
            state.preset = Preset::Custom;
        }
        if let Err(e) = state.config.validate() {
            ui.colored_label(ui.visuals().error_fg_color, e.to_string());
        }
    }
}
