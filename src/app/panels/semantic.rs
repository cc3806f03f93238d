//! The Semantic view (ALGORITHMS.md §3): how robust the loaded model is to rotation, scale,
//! translation, brightness, contrast, hue and blur of one image. Pick an image, one or two
//! parameters and their domains, and the map f(u) = p(T(x, u))[c] fills as its batches finish;
//! hover to see T(x, u) and f there, click to grow a region (Naive, OIR_B, OIR_W) from that
//! point and watch its box grow, and pick a model B to see its map beside, on the same [0, 1]
//! scale. The export writes the record folders `blindspot semantic map | regions` write.

use egui::{RichText, Ui};

use crate::analysis::semantic::{Domain, SemanticParam};
use crate::app::semantic_state::{
    Ended, LiveRegion, MapView, MethodChoice, SemanticAction, SemanticJob, SemanticState,
};
use crate::app::state::{Action, AppState};
use crate::app::textures::Textures;
use crate::app::worker::Slot;

use super::model_choice::ModelChoice;
use super::semantic_map::{DrawnMap, colour_bar, map_1d, map_2d, method_colour};
use super::{JobButtons, Pixels, export_bar, image_card, job_buttons, job_progress, placeholder};

pub const START: &str = "▶ Compute map";
pub const CANCEL: &str = "■ Cancel semantic";
pub const EXPORT: &str = "Export semantic record";
pub const IMAGE_HINT: &str = "gallery:NAME or a path; empty: the source image";

#[derive(Default)]
pub struct SemanticPanel {
    model_b: ModelChoice,
    /// Where each 2-D map was drawn last frame (tests find grid points through it).
    pub drawn: [Option<DrawnMap>; 2],
    /// The grid point under the pointer: (map, flat index).
    pub hovered: Option<(usize, usize)>,
}

/// One labelled row of a settings grid; the widget is named by its label.
fn row(ui: &mut Ui, name: &str, tip: &str, add: impl FnOnce(&mut Ui) -> egui::Response) {
    let label = ui.label(name).on_hover_text(tip);
    add(ui).labelled_by(label.id).on_hover_text(tip);
    ui.end_row();
}

fn param_combo(ui: &mut Ui, name: &str, value: &mut Option<SemanticParam>, channels: usize) {
    let label = ui.label(name);
    let text = value.map_or("none".to_string(), |p| {
        format!("{} ({})", p.name(), p.unit())
    });
    egui::ComboBox::from_id_salt(("semantic param", name))
        .selected_text(text)
        .width(150.0)
        .show_ui(ui, |ui| {
            ui.selectable_value(value, None, "none");
            for p in SemanticParam::ALL {
                let text = format!("{} ({})", p.name(), p.unit());
                let r = ui.selectable_value(value, Some(p), text);
                if p == SemanticParam::Hue && channels != 3 {
                    r.on_hover_text("hue needs a 3-channel model");
                }
            }
        })
        .response
        .labelled_by(label.id)
        .on_hover_text("A semantic parameter of T(x, u); a map takes one or two");
}

fn domain_fields(ui: &mut Ui, name: &str, domain: &mut Domain) {
    let speed = (domain.width().abs() / 200.0).max(1e-3);
    let lo = ui.label("from");
    ui.add(egui::DragValue::new(&mut domain.lo).speed(speed))
        .labelled_by(lo.id)
        .on_hover_text(format!("Lower bound of {name} (natural units)"));
    let hi = ui.label("to");
    ui.add(egui::DragValue::new(&mut domain.hi).speed(speed))
        .labelled_by(hi.id)
        .on_hover_text(format!("Upper bound of {name} (natural units)"));
}

impl SemanticPanel {
    pub fn ui(&mut self, ui: &mut Ui, state: &mut AppState, textures: &mut Textures) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.label(RichText::new("Semantic robustness (§3)").heading());
            ui.label(
                RichText::new(
                    "f(u) = p(T(x, u))[class] over one or two semantic parameters. Hover over \
                     a map to see the transformed image, click to grow a region from that point.",
                )
                .weak(),
            );
            ui.add_space(4.0);
            let busy = state.is_busy();
            ui.add_enabled_ui(!busy, |ui| self.settings(ui, state));
            controls(ui, state);
            self.maps(ui, state, textures);
            regions_table(ui, &state.semantic);
            if state.semantic.maps[0].is_some() {
                ui.add_space(4.0);
                export_bar(ui, state, &[]);
                let ready = !state.is_busy();
                if ui
                    .add_enabled(ready, egui::Button::new(EXPORT))
                    .on_hover_text(
                        "Write the record folder `blindspot semantic map` (or `regions`, once a \
                         region was grown) writes: semantic.json, tensors, figures; model B's \
                         map in a folder of its own",
                    )
                    .clicked()
                {
                    state.act(Action::Semantic(SemanticAction::Export));
                }
                if let Some(last) = &state.export.last {
                    ui.label(RichText::new(last).weak());
                }
            }
        });
    }

    fn settings(&mut self, ui: &mut Ui, state: &mut AppState) {
        let channels = state.spec().map_or(3, |s| s.channels);
        let source = state.slot(Slot::Source).source.label();
        // Two columns, so the map stays in view below on a laptop screen: what is mapped on
        // the left, model B and the regions on the right.
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| map_settings(ui, &mut state.semantic, channels, &source));
            // Not a separator: in a horizontal layout it would take the whole height.
            ui.add_space(24.0);
            ui.vertical(|ui| {
                if self.model_b.ui(ui, "Model B", state) {
                    state.semantic.model_b = self.model_b.source.clone();
                }
                region_settings(ui, &mut state.semantic);
            });
        });
    }

    fn maps(&mut self, ui: &mut Ui, state: &mut AppState, textures: &mut Textures) {
        let count = state.semantic.maps.iter().flatten().count();
        self.drawn = [None, None];
        if count == 0 {
            return;
        }
        ui.separator();
        if state
            .semantic
            .maps
            .iter()
            .flatten()
            .any(|m| m.grid.len() == 2)
        {
            ui.checkbox(&mut state.semantic.contour, "f = 0.5 contour")
                .on_hover_text("Draw where the confidence crosses one half");
        }
        let s = &state.semantic;
        let hover_side = 150.0;
        let avail = ui.available_width() - hover_side - 80.0;
        // As wide as two maps side by side allow, and no taller than the view below here.
        let room = (ui.clip_rect().bottom() - ui.cursor().top() - 110.0).max(160.0);
        let side = ((avail / count as f32) - 70.0)
            .clamp(160.0, 420.0)
            .min(room);
        let mut hovered = None;
        let mut clicked = None;
        let marked = self.hovered;
        ui.horizontal_top(|ui| {
            for (slot, view) in s.maps.iter().enumerate() {
                let Some(view) = view else { continue };
                ui.vertical(|ui| {
                    ui.label(RichText::new(map_title(view)).strong());
                    let regions: &[_] = &s.regions[slot];
                    let mark = marked
                        .filter(|m| {
                            m.0 == slot
                                || s.maps[m.0]
                                    .as_ref()
                                    .is_some_and(|o| o.points() == view.points())
                        })
                        .map(|m| m.1);
                    let input = if view.grid.len() == 2 {
                        map_2d(ui, view, slot, side, regions, mark, s.contour)
                    } else {
                        map_1d(
                            ui,
                            view,
                            slot,
                            egui::vec2(side + 50.0, side * 0.75),
                            regions,
                            mark,
                        )
                    };
                    self.drawn[slot] = input.drawn;
                    ui.label(RichText::new(progress_text(view)).weak().small());
                    if let Some(k) = input.hovered.filter(|k| *k < view.values.len()) {
                        hovered = Some((slot, k));
                    }
                    // Both maps share one grid: a click on either grows on both.
                    if let Some(k) = input.clicked.filter(|k| *k < view.values.len()) {
                        clicked = Some(k);
                    }
                });
            }
            colour_bar(ui, side.min(240.0));
            self.hover_card(ui, s, hovered.or(self.hovered), hover_side, textures);
        });
        self.hovered = hovered;
        if let (Some(k), Some(view)) = (clicked, &s.maps[0])
            && view.is_complete()
            && !state.is_busy()
        {
            let u = view.point(k);
            state.act(Action::Semantic(SemanticAction::Grow(u)));
        }
    }

    /// T(x, u) at the hovered grid point with f there (both models' when two are shown).
    fn hover_card(
        &self,
        ui: &mut Ui,
        s: &SemanticState,
        hovered: Option<(usize, usize)>,
        side: f32,
        textures: &mut Textures,
    ) {
        ui.vertical(|ui| {
            let Some((slot, k)) = hovered else {
                placeholder(ui, side, "hover over a map");
                return;
            };
            let Some(view) = &s.maps[slot] else { return };
            let u = view.point(k);
            let Some(t) = &view.transform else {
                placeholder(ui, side, "no render");
                return;
            };
            let shape = t.shape();
            let pixels: Vec<f32> = t
                .apply(&view.space.full(&u), &[])
                .pixels
                .iter()
                .map(|v| *v as f32)
                .collect();
            let key = format!("semantic hover {} {slot} {k}", s.generation);
            let at: Vec<String> = view
                .space
                .params()
                .iter()
                .zip(&u)
                .map(|(p, v)| format!("{} = {v:.3} {}", p.name(), p.unit()))
                .collect();
            image_card(
                ui,
                textures,
                Pixels {
                    key: &key,
                    data: &pixels,
                    shape,
                },
                side,
                "T(x, u)",
                Some(RichText::new(at.join("\n")).small()),
            );
            for m in s.maps.iter().flatten() {
                if let Some(f) = m.values.get(k).filter(|_| m.points() == view.points()) {
                    ui.label(RichText::new(format!("{}: f = {f:.3}", m.model)).monospace());
                }
            }
        });
    }
}

fn map_title(view: &MapView) -> String {
    format!(
        "{} · p({} = {})",
        view.model, view.class.class_name, view.class.class
    )
}

fn progress_text(view: &MapView) -> String {
    let stats = crate::analysis::semantic::MapStats::of(&view.values);
    let head = if view.is_complete() {
        format!("{} points", view.total)
    } else {
        format!("{} of {} points", view.values.len(), view.total)
    };
    match stats {
        Some(st) => format!(
            "{head}: mean f {:.3}, f ≥ 0.5 on {:.1} %",
            st.mean,
            100.0 * st.fraction_at_least_0_5
        ),
        None => head,
    }
}

fn controls(ui: &mut Ui, state: &mut AppState) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let running = state.semantic.is_running();
        job_buttons(
            ui,
            state,
            JobButtons {
                running,
                start: START,
                cancel: CANCEL,
                start_tip: "Compute the map with the loaded model (and model B)",
                cancel_tip: "Stop after the batch (or region update) being computed",
                start_action: Action::Semantic(SemanticAction::Map),
            },
        );
        let s = &state.semantic;
        let (done, total) = s.progress;
        if let Some((_, kind)) = s.job {
            let unit = match kind {
                SemanticJob::Map => "points",
                SemanticJob::Regions => "updates",
                SemanticJob::Export => "",
            };
            job_progress(ui, (done, total), unit, "starting", 240.0);
        }
        match s.ended {
            Some(Ended::Stopped) => {
                ui.label(format!("Stopped at {done} of {total}"));
            }
            Some(Ended::Complete) if s.job.is_none() => {
                ui.label(RichText::new("Complete").weak());
            }
            _ => {}
        }
    });
    if let Some(c) = state.semantic.maps[0].as_ref().map(|m| &m.class)
        && let Some(w) = c.warning()
    {
        ui.colored_label(ui.visuals().warn_fg_color, w);
    }
}

fn regions_table(ui: &mut Ui, s: &SemanticState) {
    let Some(view) = &s.maps[0] else { return };
    if s.regions.iter().all(Vec::is_empty) {
        if view.is_complete() {
            let text = if s.maps[1].is_some() {
                "Click on a map to grow regions from that point on both models."
            } else {
                "Click on the map to grow a region from that point."
            };
            ui.label(RichText::new(text).weak());
        }
        return;
    }
    // A model column only when model B has regions too (one model needs no label).
    let both = !s.regions[1].is_empty();
    ui.add_space(4.0);
    ui.label(RichText::new("Regions").strong());
    egui::Grid::new("semantic regions")
        .num_columns(if both { 5 } else { 4 })
        .striped(true)
        .spacing([14.0, 2.0])
        .show(ui, |ui| {
            if both {
                ui.label(RichText::new("model").weak());
            }
            for h in ["method", "box (natural units)", "volume", "updates"] {
                ui.label(RichText::new(h).weak());
            }
            ui.end_row();
            for (slot, regions) in s.regions.iter().enumerate() {
                let Some(map) = &s.maps[slot] else { continue };
                for r in regions {
                    let Some((a, b)) = r.current() else { continue };
                    if both {
                        ui.label(&map.model);
                    }
                    region_row(ui, view, r, a, b);
                    ui.end_row();
                }
            }
        });
}

/// One region's cells: method, box in natural units, volume ratio and updates done.
fn region_row(ui: &mut Ui, view: &MapView, r: &LiveRegion, a: &[f64], b: &[f64]) {
    let (ua, ub) = (view.space.to_u(a), view.space.to_u(b));
    ui.colored_label(method_colour(r.method), r.method.label());
    let sides: Vec<String> = view
        .space
        .params()
        .iter()
        .zip(ua.iter().zip(&ub))
        .map(|(p, (a, b))| format!("{} [{a:.3}, {b:.3}]", p.name()))
        .collect();
    ui.label(RichText::new(sides.join("  ")).monospace());
    let volume = crate::analysis::semantic::volume_ratio(a, b);
    ui.label(RichText::new(format!("{:.2} %", 100.0 * volume)).monospace());
    let status = match &r.result {
        Some(res) if res.stopped => format!("{} (stopped)", r.boxes.len() - 1),
        Some(_) => format!("{}", r.boxes.len() - 1),
        None => format!("{}/{}", r.boxes.len().saturating_sub(1), r.iterations),
    };
    ui.label(status);
}

fn map_settings(ui: &mut Ui, s: &mut SemanticState, channels: usize, source: &str) {
    egui::Grid::new("semantic settings")
        .num_columns(2)
        .spacing([8.0, 3.0])
        .show(ui, |ui| {
            row(
                ui,
                "Image",
                "Empty: the source image of the Images panel; else gallery:NAME or a path",
                |ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut s.image_text)
                            .desired_width(250.0)
                            .hint_text(format!("{IMAGE_HINT} ({source})")),
                    )
                },
            );
            for (k, name) in ["Parameter 1", "Parameter 2"].into_iter().enumerate() {
                ui.horizontal(|ui| param_combo(ui, name, &mut s.params[k], channels));
                ui.horizontal(|ui| {
                    if let Some(p) = s.params[k] {
                        domain_fields(ui, p.name(), &mut s.domains[p.index()]);
                        if ui
                            .small_button("reset")
                            .on_hover_text(format!("The default domain, in {}", p.unit()))
                            .clicked()
                        {
                            s.domains[p.index()] = p.default_domain();
                        }
                    }
                });
                ui.end_row();
            }
            let one = s.chosen().len() == 1;
            let label = ui.label("Points per axis");
            ui.horizontal(|ui| {
                let points = if one {
                    &mut s.points_1d
                } else {
                    &mut s.points_2d
                };
                ui.add(egui::DragValue::new(points).range(0..=1001))
                    .labelled_by(label.id)
                    .on_hover_text(
                        "Grid points per parameter (the paper: 181 for one, 61 for two); fewer is \
                         quicker",
                    );
                let class = ui.label("Class");
                ui.add(
                    egui::TextEdit::singleline(&mut s.class_text)
                        .desired_width(70.0)
                        .hint_text("predicted"),
                )
                .labelled_by(class.id)
                .on_hover_text(
                    "The class whose probability is mapped; empty: the model's prediction",
                );
                let batch = ui.label("Batch");
                ui.add(egui::DragValue::new(&mut s.batch).range(0..=4096))
                    .labelled_by(batch.id)
                    .on_hover_text(
                        "Transformed images per forward pass; the map reaches the view after each",
                    );
            });
            ui.end_row();
        });
}

fn region_settings(ui: &mut Ui, s: &mut SemanticState) {
    ui.horizontal(|ui| {
        let label = ui.label("Region method");
        egui::ComboBox::from_id_salt("semantic method")
            .selected_text(s.method.label())
            .show_ui(ui, |ui| {
                for m in MethodChoice::ALL {
                    ui.selectable_value(&mut s.method, m, m.label());
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text("Which method a click on the map grows (§3.3–3.5)");
    });
    egui::CollapsingHeader::new("Region settings")
        .id_salt("semantic region settings")
        .show(ui, |ui| {
            let c = &mut s.config;
            egui::Grid::new("semantic region grid")
                .num_columns(2)
                .show(ui, |ui| {
                    row(ui, "Iterations", "T, updates per region", |ui| {
                        ui.add(egui::DragValue::new(&mut c.iterations).range(1..=100_000))
                    });
                    row(ui, "η", "The step size (z-units)", |ui| {
                        ui.add(egui::DragValue::new(&mut c.eta).speed(0.01))
                    });
                    row(ui, "α", "OIR_B's outer margin", |ui| {
                        ui.add(egui::DragValue::new(&mut c.alpha).speed(0.005))
                    });
                    row(ui, "β", "OIR_W's margin: 0 ≤ β < 2/(2n − 1)", |ui| {
                        ui.add(
                            egui::DragValue::new(&mut c.beta)
                                .speed(0.0001)
                                .max_decimals(5),
                        )
                    });
                    row(ui, "λ", "Naive's side-length penalty", |ui| {
                        ui.add(egui::DragValue::new(&mut c.lambda).speed(0.01))
                    });
                });
        });
}
