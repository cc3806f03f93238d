//! The desktop app: a thin, responsive view over the analysis engine.
//!
//! - `worker`: the thread that owns the model and runs traversals, hulls and grids through the
//!   library (`run`, `eval`), streaming events back over a bounded channel.
//! - `state`: what the app knows; panels read it and push [`state::Action`]s.
//! - `panels/`: one small struct per panel with a `ui` method; this file only lays them out,
//!   turns actions into worker commands and applies worker events.
//! - `heatmap`: the hull heatmap's WGSL pipeline (paint callback and offscreen render).
//! - `background`: file dialogs, exports and history I/O off the UI thread.
//! - `export`: figures, run records and heatmap renders written atomically.
//! - `reach_state`, `reach_job`: the Reach tab's data, and starting and following its evaluation.
//! - `semantic_state`, `semantic_job`, `semantic_heatmap`: the Semantic view's data, its jobs,
//!   and its maps drawn through the hull heatmap's shader.
//! - `frequency_state`, `frequency_job`: the Frequency tab's data, and starting and following its margins.
//! - `events`, `actions`, `exports`: the app's halves of the worker protocol (applying its
//!   events, turning panel actions into commands) and of exports and background results.

mod actions;
pub mod background;
pub mod compare;
mod events;
pub mod export;
mod exports;
mod frequency_job;
pub mod frequency_state;
pub mod heatmap;
pub mod hull_state;
pub mod panels;
mod reach_job;
pub mod reach_state;
pub mod semantic_heatmap;
mod semantic_job;
pub mod semantic_state;
pub mod state;
pub mod textures;
pub mod worker;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::{Key, RichText, Ui};

use crate::history::History;

use background::{Background, DialogPurpose};
use state::{Action, ActiveJob, AppState, HullSide, JobKind, PendingHull, Tab};
use worker::{Command, FinishedRun, ImageSource, ModelSource, Slot, Worker};

/// Lattice resolutions of the hull, coarse first (§1.7's n = 10 gives the metrics).
pub const HULL_LEVELS: [usize; 3] = [10, 20, 40];

/// How the app starts.
#[derive(Clone, Debug)]
pub struct AppOptions {
    /// The run history folder; `None` keeps runs in memory only.
    pub history_dir: Option<PathBuf>,
    pub model: ModelSource,
    pub source: ImageSource,
    pub target: ImageSource,
    pub second_target: ImageSource,
    /// The export folder preset in the export fields.
    pub export_dir: Option<PathBuf>,
    /// Read and write the persisted settings (off in tests).
    pub persist: bool,
    /// LPIPS weights; None looks at `$BLINDSPOT_LPIPS` and the data folder.
    pub lpips: Option<PathBuf>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            history_dir: default_history_dir(),
            model: ModelSource::Demo(crate::demo::DemoModel::Standard),
            source: ImageSource::Gallery("circle_1".into()),
            target: ImageSource::Gallery("star_1".into()),
            second_target: ImageSource::Gallery("square_1".into()),
            export_dir: default_export_dir(),
            persist: true,
            lpips: None,
        }
    }
}

/// `$BLINDSPOT_DATA_DIR/runs`, else the platform data folder's `runs`
/// (e.g. `~/.local/share/blindspot/runs`).
pub fn default_history_dir() -> Option<PathBuf> {
    crate::paths::data_dir().map(|d| d.join("runs"))
}

/// `~/Documents/blindspot` (or `~/blindspot` without a documents folder).
pub fn default_export_dir() -> Option<PathBuf> {
    let user = directories::UserDirs::new()?;
    Some(user.document_dir().map_or_else(
        || user.home_dir().join("blindspot"),
        |d| d.join("blindspot"),
    ))
}

/// The keyboard shortcuts, as Help lists them.
const SHORTCUTS: [(&str, &str); 9] = [
    ("Space", "run / pause / resume"),
    ("Esc", "cancel the running job"),
    ("← →", "previous / next frame"),
    ("Home / End", "first / last frame (x*)"),
    ("1 … 8", "switch tab"),
    ("Ctrl+O", "open a checkpoint"),
    ("Ctrl+E", "export the run record"),
    ("Ctrl+Shift+P", "pin the hull beside"),
    ("F11", "presentation mode"),
];

/// Settings kept between sessions.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Settings {
    recent_models: Vec<PathBuf>,
    recent_images: Vec<PathBuf>,
    dark: bool,
    export_dir: String,
    export_scale: f32,
    /// The session: where the user left off. Absent in settings of older versions.
    #[serde(default)]
    session: Option<Session>,
}

/// What the next start restores: the pair, the tab, the walk's settings, the hull's drawing
/// settings and model B. (The model itself comes from the command line or the default.)
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Session {
    images: [ImageSource; 3],
    tab: Tab,
    method: crate::analysis::Method,
    preset: state::Preset,
    config: crate::analysis::LstConfig,
    nspgd: crate::analysis::NspgdConfig,
    contours: String,
    colormap: crate::figures::Colormap,
    model_b: Option<ModelSource>,
    zoom: f32,
}

impl Session {
    fn of(state: &AppState) -> Self {
        Self {
            images: state.images.clone().map(|s| s.source),
            tab: state.tab,
            method: state.method,
            preset: state.preset,
            config: state.config.clone(),
            nspgd: state.nspgd.clone(),
            contours: state.hull.contours_text.clone(),
            colormap: state.hull.colormap,
            model_b: state.compare.model_b.clone(),
            zoom: state.zoom,
        }
    }

    /// Restores the session; settings that no longer validate are left at their defaults.
    fn restore(self, state: &mut AppState) {
        for (slot, source) in state.images.iter_mut().zip(self.images) {
            *slot = state::ImageSlot::new(source);
        }
        state.tab = self.tab;
        state.method = self.method;
        if self.config.validate().is_ok() && self.nspgd.validate().is_ok() {
            state.preset = self.preset;
            state.config = self.config;
            state.nspgd = self.nspgd;
        }
        state.hull.contours_text = self.contours;
        state.hull.colormap = self.colormap;
        state.compare.model_b = self.model_b;
        state.zoom = self.zoom;
    }
}

const SETTINGS_KEY: &str = "blindspot settings";

/// Work waiting for the worker to be free.
enum Planned {
    Traverse {
        source: ImageSource,
        target: ImageSource,
        /// None: the loaded model; else model B of a comparison.
        model: Option<ModelSource>,
        /// This run is a corner of the pending hull of that side.
        for_hull: Option<HullSide>,
    },
}

#[derive(Default)]
pub struct Panels {
    pub model: panels::model::ModelPanel,
    pub compare: panels::compare::ComparePanel,
    pub images: panels::images::ImagesPanel,
    pub params: panels::params::ParamsPanel,
    pub traversal: panels::traversal::TraversalPanel,
    pub hull: panels::hull::HullPanel,
    pub widths: panels::widths::WidthsPanel,
    pub grid: panels::grid::GridPanel,
    pub reach: panels::reach::ReachPanel,
    pub semantic: panels::semantic::SemanticPanel,
    pub frequency: panels::frequency::FrequencyPanel,
    pub history: panels::history::HistoryPanel,
}

pub struct BlindspotApp {
    pub state: AppState,
    pub panels: Panels,
    worker: Worker,
    background: Background,
    history: Option<History>,
    textures: textures::Textures,
    queue: VecDeque<Planned>,
    /// The window title last sent, so it is sent only when it changes.
    title: String,
    /// GPU device for offscreen renders (the one the window renders with).
    wgpu: Option<eframe::egui_wgpu::RenderState>,
    persist: bool,
}

impl BlindspotApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        let mut notices = Vec::new();
        match &cc.wgpu_render_state {
            Some(rs) => {
                if let Err(e) = heatmap::register(rs) {
                    notices.push((
                        "The hull heatmap and the semantic maps are unavailable".to_string(),
                        e.to_string(),
                    ));
                }
            }
            None => notices.push((
                "The hull heatmap is unavailable".to_string(),
                "the window has no wgpu renderer".to_string(),
            )),
        }
        let mut state = AppState::new(options.source, options.target, options.second_target);
        let history = match &options.history_dir {
            Some(dir) => match History::open(dir) {
                Ok(h) => {
                    // Runs deleted in an earlier session go for good now (Undo lasts a session).
                    if let Err(e) = h.purge_deleted() {
                        notices.push((
                            "Deleted runs could not be removed".to_string(),
                            e.to_string(),
                        ));
                    }
                    Some(h)
                }
                Err(e) => {
                    notices.push((
                        "Run history unavailable: runs will not be saved".to_string(),
                        e.to_string(),
                    ));
                    None
                }
            },
            None => None,
        };
        if let Some(dir) = &options.export_dir {
            state.export.dir_text = dir.display().to_string();
        }
        if options.persist
            && let Some(storage) = cc.storage
            && let Some(s) = eframe::get_value::<Settings>(storage, SETTINGS_KEY)
        {
            state.recent_models = s.recent_models;
            state.recent_images = s.recent_images;
            state.dark = s.dark;
            if !s.export_dir.is_empty() {
                state.export.dir_text = s.export_dir;
            }
            if s.export_scale >= 1.0 {
                state.export.scale = s.export_scale;
            }
            if let Some(session) = s.session {
                session.restore(&mut state);
            }
        }
        for (title, detail) in notices {
            state.error(title, detail);
        }
        let ctx = cc.egui_ctx.clone();
        let wake = ctx.clone();
        let worker = match Worker::spawn(history.clone(), options.lpips.clone(), move || {
            wake.request_repaint();
        }) {
            Ok(w) => w,
            Err(e) => {
                // Without a worker thread nothing can run; say so instead of failing silently.
                state.error("Cannot start the worker thread", e.to_string());
                Worker::spawn(None, None, || {}).unwrap_or_else(|_| std::process::abort())
            }
        };
        let mut app = Self {
            state,
            panels: Panels::default(),
            worker,
            background: Background::new(ctx.clone()),
            history,
            textures: textures::Textures::default(),
            queue: VecDeque::new(),
            title: String::new(),
            wgpu: cc.wgpu_render_state.clone(),
            persist: options.persist,
        };
        install_fonts(&ctx);
        ctx.set_theme(if app.state.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        app.load_model(options.model);
        app
    }

    fn load_model(&mut self, source: ModelSource) {
        self.state.model.loading = Some(source.clone());
        self.worker.send(Command::LoadModel(source));
    }

    fn request_preview(&mut self, slot: Slot) {
        let request = self.state.next_id();
        let s = self.state.slot_mut(slot);
        s.request = request;
        s.error = None;
        let source = s.source.clone();
        self.worker.send(Command::Preview {
            slot,
            request,
            source,
        });
    }

    fn pick_image(&mut self, slot: Slot, source: ImageSource) {
        if let ImageSource::File(p) = &source {
            AppState::remember(&mut self.state.recent_images, p);
        }
        let s = self.state.slot_mut(slot);
        let previous = s
            .preview
            .clone()
            .map(|p| (s.source.clone(), p))
            .or_else(|| s.previous.take());
        *s = state::ImageSlot::new(source);
        s.previous = previous;
        if self.state.spec().is_some() {
            self.request_preview(slot);
        }
    }

    // ----- worker events ---------------------------------------------------------------------

    fn drain_worker(&mut self) {
        while let Some(event) = self.worker.try_recv() {
            self.apply(event);
        }
    }

    fn start_traverse(
        &mut self,
        source: ImageSource,
        target: ImageSource,
        model: Option<ModelSource>,
        for_hull: Option<HullSide>,
    ) {
        let id = self.state.next_id();
        let config = self.state.traverse_config(for_hull.is_some());
        let method = config.method().name();
        let on = model.as_ref().map_or_else(String::new, |m| {
            format!(" on {}", panels::model_choice::short_label(m))
        });
        let what = format!("{method} {} → {}{on}", source.label(), target.label());
        let mut job = ActiveJob::new(id, JobKind::Traverse, config.iterations(), what);
        job.on_second_model = model.is_some();
        let control = job.control.clone();
        self.state.job = Some(job);
        if let Some(side) = for_hull
            && let Some(p) = self.state.hull.pending.iter_mut().find(|p| p.side == side)
        {
            p.jobs.push(id);
        }
        self.worker.send(Command::Traverse {
            job: id,
            source,
            target,
            config,
            model,
            control,
        });
    }

    /// Plans a traversal on model B after the one just started, when compare mode is on.
    fn plan_on_model_b(&mut self, source: ImageSource, target: ImageSource) {
        if let Some(b) = self.state.compare.model_b.clone() {
            self.queue.push_back(Planned::Traverse {
                source,
                target,
                model: Some(b),
                for_hull: None,
            });
        }
    }

    /// Starts the next planned job when the worker is free.
    fn start_next(&mut self) {
        if self.state.job.is_some() {
            return;
        }
        if let Some(Planned::Traverse {
            source,
            target,
            model,
            for_hull,
        }) = self.queue.pop_front()
        {
            self.start_traverse(source, target, model, for_hull);
        }
    }

    /// Starts the first waiting hull whose runs are all there.
    fn start_pending_hull(&mut self) {
        if self.state.job.is_some() {
            return;
        }
        let pending = &mut self.state.hull.pending;
        let Some(i) = pending.iter().position(|p| p.corners().is_some()) else {
            return;
        };
        let p = pending.remove(i);
        if let Some(runs) = p.corners() {
            self.start_hull(runs, p.side, p.model);
        }
    }

    /// Computes the hull of two runs on the model that made them, into one side of the tab.
    fn start_hull(
        &mut self,
        runs: [Arc<FinishedRun>; 2],
        side: HullSide,
        model: Option<ModelSource>,
    ) {
        if self.state.job.is_some() {
            // The worker is busy with the traversal this hull follows; it goes next.
            let mut p = PendingHull::new(side, model);
            p.done = runs.to_vec();
            self.state.hull.pending.insert(0, p);
            return;
        }
        let id = self.state.next_id();
        let total = crate::analysis::hull::lattice_len(HULL_LEVELS[0]);
        let what = format!(
            "hull lattice n = 10 · {}",
            runs[0].record.model.short_name()
        );
        let job = ActiveJob::new(id, JobKind::Hull, total, what);
        let control = job.control.clone();
        self.state.job = Some(job);
        *self.state.hull.side_mut(side) = state::HullResult {
            runs: Some(runs.clone()),
            report: None,
            refined: None,
            job: Some(id),
            progress: Some((HULL_LEVELS[0], 0, total)),
        };
        self.state.tab = Tab::Hull;
        self.worker.send(Command::Hull {
            job: id,
            runs,
            levels: HULL_LEVELS.to_vec(),
            model,
            control,
        });
    }

    // ----- input -----------------------------------------------------------------------------

    fn shortcuts(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let pressed = |k: Key| ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, k));
        if pressed(Key::Space) {
            if self.state.is_busy() {
                self.state.act(Action::PauseResume);
            } else {
                self.state.act(Action::Run);
            }
        }
        if pressed(Key::Escape) {
            if self.state.is_busy() {
                self.state.act(Action::Cancel);
            } else if self.state.presentation {
                self.state.presentation = false;
            }
        }
        if pressed(Key::F11) {
            self.state.presentation = !self.state.presentation;
        }
        let command = |k: Key| ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, k));
        if command(Key::O) {
            self.state.act(Action::Dialog(DialogPurpose::Model));
        }
        if command(Key::E) && self.state.shown_finished().is_some() {
            self.state.act(Action::Export(state::ExportKind::Run));
        }
        let pin = egui::Modifiers::COMMAND | egui::Modifiers::SHIFT;
        if ctx.input_mut(|i| i.consume_key(pin, Key::P)) {
            self.state.act(Action::PinHull);
        }
        const TAB_KEYS: [Key; 8] = [
            Key::Num1,
            Key::Num2,
            Key::Num3,
            Key::Num4,
            Key::Num5,
            Key::Num6,
            Key::Num7,
            Key::Num8,
        ];
        for (key, tab) in TAB_KEYS.into_iter().zip(Tab::ALL) {
            if pressed(key) {
                self.state.tab = tab;
            }
        }
        let len = self.state.shown().map_or(0, |v| v.scrub_len());
        if len > 0 {
            let last = len - 1;
            let current = if self.state.live.is_some() && self.state.follow_live {
                last
            } else {
                self.state.scrub.min(last)
            };
            let moved = if pressed(Key::ArrowLeft) {
                Some(current.saturating_sub(1))
            } else if pressed(Key::ArrowRight) {
                Some((current + 1).min(last))
            } else if pressed(Key::Home) {
                Some(0)
            } else if pressed(Key::End) {
                Some(last)
            } else {
                None
            };
            if let Some(m) = moved {
                self.state.scrub = m;
                self.state.follow_live = self.state.live.is_some() && m == last;
            }
        }
    }

    /// Files dropped on the window: a checkpoint loads, a run folder opens, images go to the
    /// card they were dropped on (source or target; two images fill both).
    fn dropped_files(&mut self, ctx: &egui::Context) {
        let (files, pos) = ctx.input(|i| (i.raw.dropped_files.clone(), i.pointer.latest_pos()));
        if files.is_empty() {
            return;
        }
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|f| f.path().to_path_buf())
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        let mut images = Vec::new();
        for path in paths {
            if path.is_dir()
                || path
                    .file_name()
                    .is_some_and(|n| n == crate::record::RUN_JSON)
            {
                let dir = if path.is_dir() {
                    path
                } else {
                    path.parent().map_or_else(PathBuf::new, Path::to_path_buf)
                };
                self.state.act(Action::OpenRun(dir));
            } else if is_checkpoint(&path) {
                self.state.act(Action::LoadModel(ModelSource::File(path)));
            } else {
                images.push(path);
            }
        }
        match images.as_slice() {
            [] => {}
            [one] => {
                let on_source = match (pos, self.panels.images.source_rect) {
                    (Some(p), Some(r)) => r.contains(p),
                    _ => false,
                };
                let slot = if on_source {
                    Slot::Source
                } else {
                    Slot::Target
                };
                self.state
                    .act(Action::PickImage(slot, ImageSource::File(one.clone())));
            }
            [a, b, ..] => {
                self.state.act(Action::PickImage(
                    Slot::Source,
                    ImageSource::File(a.clone()),
                ));
                self.state.act(Action::PickImage(
                    Slot::Target,
                    ImageSource::File(b.clone()),
                ));
            }
        }
    }

    /// The window title: the app and the model it works with.
    pub fn title(&self) -> &str {
        &self.title
    }

    fn update_title(&mut self, ctx: &egui::Context) {
        let title = match &self.state.model.loaded {
            Some((source, spec)) => format!(
                "blindspot — {} ({}, {} classes)",
                source.label(),
                spec.architecture,
                spec.num_classes()
            ),
            None => "blindspot".to_string(),
        };
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    // ----- layout ----------------------------------------------------------------------------

    fn menu_bar(&mut self, ui: &mut Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open checkpoint…").clicked() {
                    self.state.act(Action::Dialog(DialogPurpose::Model));
                }
                if ui.button("Open source image…").clicked() {
                    self.state
                        .act(Action::Dialog(DialogPurpose::Image(Slot::Source)));
                }
                if ui.button("Open target image…").clicked() {
                    self.state
                        .act(Action::Dialog(DialogPurpose::Image(Slot::Target)));
                }
                if ui.button("Open run folder…").clicked() {
                    self.state.act(Action::Dialog(DialogPurpose::Run));
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                if ui
                    .checkbox(&mut self.state.dark, "Dark theme")
                    .on_hover_text("Dark or light")
                    .changed()
                {
                    ui.ctx().set_theme(if self.state.dark {
                        egui::Theme::Dark
                    } else {
                        egui::Theme::Light
                    });
                }
                ui.checkbox(&mut self.state.presentation, "Presentation mode (F11)");
            });
            ui.menu_button("Help", |ui| {
                ui.label(RichText::new("Shortcuts").strong());
                // A grid, not padded text: the proportional font does not line columns up.
                egui::Grid::new("shortcuts")
                    .num_columns(2)
                    .spacing([16.0, 4.0])
                    .show(ui, |ui| {
                        for (k, v) in SHORTCUTS {
                            ui.label(RichText::new(k).monospace());
                            ui.label(v);
                            ui.end_row();
                        }
                    });
                ui.separator();
                ui.label("Drop a checkpoint, an image or a run folder on the window.");
            });
            ui.separator();
            for tab in Tab::ALL {
                ui.selectable_value(&mut self.state.tab, tab, tab.label());
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                // Plain words: egui's and DejaVu's fonts have ☀ but no moon glyph.
                let label = if self.state.dark { "☀ Light" } else { "Dark" };
                if ui
                    .button(label)
                    .on_hover_text("Switch between the dark and the light theme")
                    .clicked()
                {
                    self.state.dark = !self.state.dark;
                    ui.ctx().set_theme(if self.state.dark {
                        egui::Theme::Dark
                    } else {
                        egui::Theme::Light
                    });
                }
                if ui
                    .button("Present")
                    .on_hover_text("Presentation mode: images and heatmap fill the window (F11)")
                    .clicked()
                {
                    self.state.presentation = true;
                }
            });
        });
    }

    /// Run controls and what they act on, always in view above the tabs.
    fn toolbar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            panels::status::run_controls(ui, &mut self.state);
            ui.separator();
            // Elided: a long file name must not widen the view past the window.
            let summary = self.state.run_summary();
            ui.add(egui::Label::new(RichText::new(&summary).weak()).truncate())
                .on_hover_text(summary);
        });
        ui.add_space(2.0);
    }

    fn notices(&mut self, ui: &mut Ui) {
        let mut dismiss = None;
        let total = self.state.notices.len();
        let hidden = total.saturating_sub(state::NOTICES_SHOWN);
        if hidden > 0 {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(format!("{hidden} older notices"))
                        .small()
                        .weak(),
                );
                if ui.small_button("Dismiss all").clicked() {
                    self.state.act(Action::DismissAll);
                }
            });
        }
        // The newest few; the rest wait in the line above.
        for (i, n) in self.state.notices.iter().enumerate().skip(hidden) {
            let (fill, text) = if n.error {
                (
                    ui.visuals().error_fg_color.gamma_multiply(0.18),
                    ui.visuals().error_fg_color,
                )
            } else {
                (
                    ui.visuals().selection.bg_fill.gamma_multiply(0.3),
                    ui.visuals().text_color(),
                )
            };
            egui::Frame::new()
                .fill(fill)
                .corner_radius(4.0)
                .inner_margin(6.0)
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.horizontal(|ui| {
                        ui.vertical(|ui| {
                            let title = if n.count > 1 {
                                format!("{} (×{})", n.title, n.count)
                            } else {
                                n.title.clone()
                            };
                            ui.label(RichText::new(title).strong().color(text));
                            ui.label(RichText::new(&n.detail).color(text));
                        });
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Min), |ui| {
                            if ui.button("Dismiss").clicked() {
                                dismiss = Some(i);
                            }
                        });
                    });
                });
        }
        if let Some(i) = dismiss {
            self.state.act(Action::Dismiss(i));
        }
    }

    fn presentation(&mut self, ui: &mut Ui) {
        // Numbers a room can read: every text style 1.6 times its size.
        for font in ui.style_mut().text_styles.values_mut() {
            font.size *= 1.6;
        }
        ui.horizontal(|ui| {
            for tab in [Tab::Traversal, Tab::Hull] {
                ui.selectable_value(&mut self.state.tab, tab, tab.label());
            }
            ui.separator();
            if let Some((s, spec)) = &self.state.model.loaded {
                ui.label(RichText::new(format!("{} · {}", s.label(), spec.architecture)).weak());
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Exit presentation (F11)").clicked() {
                    self.state.presentation = false;
                }
                panels::status::run_controls(ui, &mut self.state);
            });
        });
        let show_hull = self.state.tab == Tab::Hull;
        if show_hull {
            self.panels.hull.ui(ui, &mut self.state, &mut self.textures);
        } else {
            let zoom = self.state.zoom;
            // Let the images fill the window.
            self.state.zoom = 64.0;
            self.panels
                .traversal
                .ui(ui, &mut self.state, &mut self.textures);
            self.state.zoom = zoom;
        }
    }

    fn save_settings(&self, storage: &mut dyn eframe::Storage) {
        let s = Settings {
            recent_models: self.state.recent_models.clone(),
            recent_images: self.state.recent_images.clone(),
            dark: self.state.dark,
            export_dir: self.state.export.dir_text.clone(),
            export_scale: self.state.export.scale,
            session: Some(Session::of(&self.state)),
        };
        eframe::set_value(storage, SETTINGS_KEY, &s);
    }
}

/// egui's default fonts lack symbols the app uses (▶ ⏸ ⇄ ▾ ☀ ✕); DejaVu Sans, which the
/// figures already embed, backs them up.
fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    fonts.font_data.insert(
        "dejavu".into(),
        Arc::new(egui::FontData::from_static(dejavu::sans::regular())),
    );
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        fonts
            .families
            .entry(family)
            .or_default()
            .push("dejavu".into());
    }
    ctx.set_fonts(fonts);
}

fn is_checkpoint(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        matches!(
            e.to_ascii_lowercase().as_str(),
            "safetensors" | "pth" | "th" | "pt" | "bin" | "ckpt"
        )
    })
}

impl eframe::App for BlindspotApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain_worker();
        self.drain_background();
        self.dropped_files(ctx);
        self.shortcuts(ctx);
        self.process_actions(ctx);
        self.state.expire_notices();
        if self.state.notices.iter().any(|n| !n.error) {
            // Wake up to let information notices fade even when nothing else happens.
            ctx.request_repaint_after(std::time::Duration::from_secs(1));
        }
        if self.state.is_busy() {
            // The ETA and rate tick even when no event arrives (e.g. while paused).
            ctx.request_repaint_after(std::time::Duration::from_millis(250));
        }
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.update_title(ui.ctx());
        if self.state.presentation {
            egui::CentralPanel::default().show(ui, |ui| self.presentation(ui));
        } else {
            egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
            egui::Panel::bottom("status")
                .show(ui, |ui| panels::status::status_bar(ui, &mut self.state));
            egui::Panel::left("controls")
                .default_size(300.0)
                .min_size(260.0)
                .max_size(420.0)
                .resizable(true)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        self.panels.model.ui(ui, &mut self.state);
                        self.panels.compare.ui(ui, &mut self.state);
                        ui.separator();
                        self.panels
                            .images
                            .ui(ui, &mut self.state, &mut self.textures);
                        ui.separator();
                        self.panels.params.ui(ui, &mut self.state);
                    });
                });
            egui::CentralPanel::default().show(ui, |ui| {
                self.toolbar(ui);
                self.notices(ui);
                match self.state.tab {
                    Tab::Traversal => {
                        self.panels
                            .traversal
                            .ui(ui, &mut self.state, &mut self.textures);
                    }
                    Tab::Hull => self.panels.hull.ui(ui, &mut self.state, &mut self.textures),
                    Tab::Widths => self.panels.widths.ui(ui, &mut self.state),
                    Tab::Grid => self.panels.grid.ui(ui, &mut self.state, &mut self.textures),
                    Tab::Reach => self.panels.reach.ui(ui, &mut self.state),
                    Tab::Semantic => {
                        self.panels
                            .semantic
                            .ui(ui, &mut self.state, &mut self.textures);
                    }
                    Tab::Frequency => {
                        self.panels
                            .frequency
                            .ui(ui, &mut self.state, &mut self.textures);
                    }
                    Tab::History => {
                        let root = self.history.as_ref().map(|h| h.root().to_path_buf());
                        self.panels.history.ui(ui, &mut self.state, root.as_deref());
                    }
                }
            });
        }
        self.textures.end_frame();
        // What the panels asked for this frame takes effect now, not a frame later.
        if !self.state.actions.is_empty() {
            let ctx = ui.ctx().clone();
            self.process_actions(&ctx);
            ctx.request_repaint();
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.persist {
            self.save_settings(storage);
        }
    }
}

/// Opens the app window (blocks until it is closed).
pub fn run_native(options: AppOptions) -> eframe::Result {
    // Model compute gets every core but one, so the UI thread always has one to draw on.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    crate::models::set_compute_threads(cores.saturating_sub(1).max(1));
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("blindspot")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    eframe::run_native(
        "blindspot",
        native,
        Box::new(move |cc| Ok(Box::new(BlindspotApp::new(cc, options)))),
    )
}

#[cfg(test)]
mod tests {
    use super::{Session, Settings, state::AppState, state::Tab, worker::ImageSource};

    fn gallery(name: &str) -> ImageSource {
        ImageSource::Gallery(name.into())
    }

    #[test]
    fn the_session_comes_back_at_the_next_start() {
        let mut state = AppState::new(gallery("circle_1"), gallery("star_1"), gallery("square_1"));
        state.images[1] = super::state::ImageSlot::new(gallery("heart_2"));
        state.tab = Tab::Hull;
        state.method = crate::analysis::Method::Nspgd;
        state.config.iterations = 77;
        state.hull.contours_text = "0.3".into();
        state.hull.colormap = crate::figures::Colormap::Magma;
        state.compare.model_b = Some(super::ModelSource::Demo(crate::demo::DemoModel::Robust));
        let saved = Settings {
            session: Some(Session::of(&state)),
            ..Settings::default()
        };
        let text = serde_json::to_string(&saved).unwrap();
        let read: Settings = serde_json::from_str(&text).unwrap();
        let mut again = AppState::new(gallery("circle_1"), gallery("star_1"), gallery("square_1"));
        read.session.unwrap().restore(&mut again);
        assert_eq!(again.images[1].source, gallery("heart_2"));
        assert_eq!(again.tab, Tab::Hull);
        assert_eq!(again.method, crate::analysis::Method::Nspgd);
        assert_eq!(again.config.iterations, 77);
        assert_eq!(again.hull.contours_text, "0.3");
        assert_eq!(again.hull.colormap, crate::figures::Colormap::Magma);
        assert_eq!(again.compare.model_b, state.compare.model_b);
        // Settings written before sessions existed still read.
        let old: Settings = serde_json::from_str(
            r#"{"recent_models":[],"recent_images":[],"dark":true,"export_dir":"","export_scale":2.0}"#,
        )
        .unwrap();
        assert!(old.session.is_none());
        // Settings that no longer validate stay at their defaults.
        let mut bad = Session::of(&state);
        bad.config.log_step = 0;
        let mut fresh = AppState::new(gallery("circle_1"), gallery("star_1"), gallery("square_1"));
        bad.restore(&mut fresh);
        assert_eq!(
            fresh.config.iterations,
            crate::analysis::LstConfig::cifar().iterations
        );
    }
}
