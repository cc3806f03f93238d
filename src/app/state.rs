//! What the app knows: the model, the picked images, the run being made, the finished runs, the
//! hull, the grid and the history. Panels read it and ask for work by pushing [`Action`]s; the
//! app turns actions into worker commands and applies the worker's events here. Nothing in this
//! file draws.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::analysis::{LstConfig, Method, NspgdConfig, PairStatus, WalkConfig};
use crate::app::worker::LpipsStatus;
use crate::demo::DemoModel;
use crate::eval::ExamplesGrid;
use crate::history::{HistoryEntry, HistoryProblem};
use crate::models::ModelSpec;
use crate::record::{FinalRecord, FrameRecord, RunRecorder, StepRecord};

pub use super::hull_state::{HullResult, HullSide, HullState, PendingHull};
use super::worker::{FinishedRun, ImageSource, JobControl, JobId, ModelSource, Preview, Slot};

/// The views of the central area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tab {
    Traversal,
    Hull,
    Widths,
    Grid,
    Reach,
    Semantic,
    Frequency,
    History,
}

impl Tab {
    pub const ALL: [Tab; 8] = [
        Tab::Traversal,
        Tab::Hull,
        Tab::Widths,
        Tab::Grid,
        Tab::Reach,
        Tab::Semantic,
        Tab::Frequency,
        Tab::History,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Tab::Traversal => "Traversal",
            Tab::Hull => "Hull",
            Tab::Widths => "Widths",
            Tab::Grid => "Grid",
            Tab::Reach => "Reach",
            Tab::Semantic => "Semantic",
            Tab::Frequency => "Frequency",
            Tab::History => "History",
        }
    }
}

/// LST presets (§1.1); `Custom` once a value was edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Preset {
    Cifar,
    ImageNet,
    /// A quick look: the CIFAR preset with 30 iterations.
    Quick,
    Custom,
}

impl Preset {
    pub fn label(self) -> &'static str {
        match self {
            Preset::Cifar => "CIFAR-scale",
            Preset::ImageNet => "ImageNet-scale",
            Preset::Quick => "Quick look",
            Preset::Custom => "Custom",
        }
    }

    pub fn config(self) -> Option<LstConfig> {
        match self {
            Preset::Cifar => Some(LstConfig::cifar()),
            Preset::ImageNet => Some(LstConfig::imagenet()),
            Preset::Quick => Some(LstConfig {
                iterations: 30,
                log_step: 3,
                ..LstConfig::cifar()
            }),
            Preset::Custom => None,
        }
    }

    /// The §1.1 preset for a model input: ImageNet-scale from 128 px.
    pub fn for_input(size: [usize; 2]) -> Self {
        if size[0].min(size[1]) >= crate::analysis::lst::IMAGENET_MIN_SIDE {
            Preset::ImageNet
        } else {
            Preset::Cifar
        }
    }
}

/// A problem shown to the user until dismissed: what failed, and why.
#[derive(Clone, Debug)]
pub struct Notice {
    pub title: String,
    pub detail: String,
    pub error: bool,
    /// How many times it was raised (the same notice again is counted, not stacked).
    pub count: usize,
    /// When it was last raised: information fades after [`INFO_SECONDS`].
    pub raised: Instant,
}

/// Seconds an information notice stays (errors stay until dismissed).
pub const INFO_SECONDS: u64 = 8;

/// Notices shown at once; older ones are summed up in a line.
pub const NOTICES_SHOWN: usize = 3;

/// One of the picked images.
#[derive(Clone, Debug)]
pub struct ImageSlot {
    pub source: ImageSource,
    /// What the model sees, once the worker has answered for the current model.
    pub preview: Option<Arc<Preview>>,
    pub error: Option<String>,
    /// The request the slot waits for (older answers are dropped).
    pub request: u64,
    /// The path field of the slot.
    pub path_text: String,
    /// The image this slot showed before the pick now loading: a pick that fails goes back to
    /// it instead of leaving the slot empty.
    pub previous: Option<(ImageSource, Arc<Preview>)>,
}

impl ImageSlot {
    pub fn new(source: ImageSource) -> Self {
        let path_text = match &source {
            ImageSource::Gallery(n) => format!("{}{n}", crate::run::GALLERY_PREFIX),
            ImageSource::File(p) => p.display().to_string(),
        };
        Self {
            source,
            preview: None,
            error: None,
            request: 0,
            path_text,
            previous: None,
        }
    }
}

/// The model the app works with.
#[derive(Clone, Debug)]
pub struct ModelState {
    /// The loaded model (None until the first load succeeds).
    pub loaded: Option<(ModelSource, Arc<ModelSpec>)>,
    /// A load in flight.
    pub loading: Option<ModelSource>,
    /// The worker's LPIPS weights; None until it reports.
    pub lpips: Option<LpipsStatus>,
}

/// What the running job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    Traverse,
    Hull,
    Grid,
    /// A reach evaluation; its progress is in pairs.
    Reach,
    /// A semantic map (grid points), region (updates) or export of the Semantic view.
    Semantic,
    /// Frequency margins; progress in sample-subspaces.
    Frequency,
}

#[derive(Debug)]
pub struct ActiveJob {
    pub id: JobId,
    pub kind: JobKind,
    pub control: Arc<JobControl>,
    /// (done, total) in the job's own unit (iterations, lattice points, pairs).
    pub progress: (usize, usize),
    /// Units done before this job started (a resumed reach), left out of the rate.
    pub already_done: usize,
    pub started: Instant,
    /// Time spent paused, kept out of the rate.
    pub paused_for: Duration,
    pub paused_since: Option<Instant>,
    /// What it is doing, for the status bar.
    pub what: String,
    /// A traversal on the second model of a comparison (its run is shown beside, not instead).
    pub on_second_model: bool,
}

impl ActiveJob {
    pub fn new(id: JobId, kind: JobKind, total: usize, what: String) -> Self {
        Self {
            id,
            kind,
            control: Arc::new(JobControl::default()),
            progress: (0, total),
            already_done: 0,
            started: Instant::now(),
            paused_for: Duration::ZERO,
            paused_since: None,
            what,
            on_second_model: false,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Seconds of work, pauses excluded.
    pub fn busy_seconds(&self) -> f64 {
        let paused = self.paused_for + self.paused_since.map_or(Duration::ZERO, |t| t.elapsed());
        self.started.elapsed().saturating_sub(paused).as_secs_f64()
    }

    /// Units per second so far.
    pub fn rate(&self) -> Option<f64> {
        let s = self.busy_seconds();
        let done = self.progress.0.saturating_sub(self.already_done);
        (s > 0.05 && done > 0).then(|| done as f64 / s)
    }

    /// Seconds left at the rate so far.
    pub fn eta(&self) -> Option<f64> {
        let (done, total) = self.progress;
        self.rate()
            .map(|r| total.saturating_sub(done) as f64 / r.max(1e-9))
    }
}

/// A traversal being made, filled from the worker's step events through the same
/// [`RunRecorder`] that builds the finished record.
pub struct LiveRun {
    pub job: JobId,
    pub config: WalkConfig,
    pub source: Arc<Preview>,
    pub target: Arc<Preview>,
    pub p0: f32,
    pub recorder: RunRecorder,
    /// The latest iterate the worker sent, and its step.
    pub current: Option<(usize, Vec<f32>)>,
}

/// What the traversal views show: a finished run, or the one being made. Both read the same
/// record types, so the live view and the finished view are one view.
pub struct RunView<'a> {
    pub steps: &'a [StepRecord],
    pub frames: &'a [FrameRecord],
    pub frame_pixels: &'a [Vec<f32>],
    pub shape: [usize; 3],
    pub source: &'a [f32],
    pub target: &'a [f32],
    /// x*, once finished.
    pub output: Option<&'a [f32]>,
    /// The newest iterate (live runs).
    pub current: Option<(usize, &'a [f32])>,
    pub p0: f32,
    pub source_class: &'a str,
    pub target_class: &'a str,
    pub iterations: usize,
    /// Which walk made the run (it names the acceptance threshold: δ or τ).
    pub method: Method,
    /// The acceptance threshold: δ for LST, τ for NSPGD.
    pub threshold: f32,
    pub status: Option<PairStatus>,
    pub model: &'a str,
    /// Table 1's distances of x* to the target, once finished.
    pub final_output: Option<&'a FinalRecord>,
}

impl RunView<'_> {
    /// Frames a user can scrub through: the kept iterates, then x* when there is one.
    pub fn scrub_len(&self) -> usize {
        self.frames.len() + usize::from(self.output.is_some())
    }

    /// The step a scrub position stands for (x* stands at the number of steps run).
    pub fn scrub_step(&self, index: usize) -> usize {
        match self.frames.get(index) {
            Some(f) => f.step,
            None => self.steps.len(),
        }
    }

    /// The image at a scrub position.
    pub fn scrub_image(&self, index: usize) -> Option<&[f32]> {
        match self.frame_pixels.get(index) {
            Some(p) => Some(p.as_slice()),
            None => self.output,
        }
    }

    /// The scrub position closest to `step`.
    pub fn scrub_index_near(&self, step: f64) -> usize {
        (0..self.scrub_len())
            .min_by(|&a, &b| {
                let da = (self.scrub_step(a) as f64 - step).abs();
                let db = (self.scrub_step(b) as f64 - step).abs();
                da.total_cmp(&db)
            })
            .unwrap_or(0)
    }
}

impl LiveRun {
    pub fn view(&self) -> RunView<'_> {
        let (frames, frame_pixels) = self.recorder.frames();
        RunView {
            steps: self.recorder.steps(),
            frames,
            frame_pixels,
            shape: self.source.shape,
            source: &self.source.pixels,
            target: &self.target.pixels,
            output: None,
            current: self.current.as_ref().map(|(s, p)| (*s, p.as_slice())),
            p0: self.p0,
            source_class: self.source.top.first().map_or("?", |t| t.1.as_str()),
            target_class: self.target.top.first().map_or("?", |t| t.1.as_str()),
            iterations: self.config.iterations(),
            method: self.config.method(),
            threshold: self.config.threshold(),
            status: None,
            model: "",
            final_output: None,
        }
    }
}

impl FinishedRun {
    pub fn view(&self) -> RunView<'_> {
        let r = &self.record;
        RunView {
            steps: &r.steps,
            frames: &r.frames,
            frame_pixels: &self.pixels.frames,
            shape: self.pixels.shape,
            source: &self.pixels.source,
            target: &self.pixels.target,
            output: self.pixels.output.as_deref(),
            current: None,
            p0: r.p0,
            source_class: &r.source.class_name,
            target_class: &r.target.class_name,
            iterations: r.config.iterations(),
            method: r.config.method(),
            threshold: r.config.threshold(),
            status: Some(r.status),
            model: &r.model.architecture,
            final_output: r.final_output.as_ref(),
        }
    }

    /// A short name for lists, with the model that made it: "circle_1 → star_1 (circle →
    /// star) · demo-robust".
    pub fn title(&self) -> String {
        let name = |p: &str| super::worker::ImageSource::parse(p).label();
        format!(
            "{} → {}  ({} → {}) · {}",
            name(&self.record.source.path),
            name(&self.record.target.path),
            self.record.source.class_name,
            self.record.target.class_name,
            self.record.model.short_name()
        )
    }
}

/// The grid tab's data.
#[derive(Default)]
pub struct GridState {
    /// The 3-5 images of the grid.
    pub images: Vec<ImageSource>,
    pub result: Option<(Box<ExamplesGrid>, String)>,
    pub job: Option<JobId>,
    pub progress: Option<(usize, usize)>,
    /// The path field for adding an image.
    pub add_text: String,
}

/// The history tab's data.
#[derive(Default)]
pub struct HistoryState {
    pub entries: Vec<HistoryEntry>,
    pub problems: Vec<HistoryProblem>,
    /// A delete waiting for its confirmation.
    pub confirm_delete: Option<PathBuf>,
    /// The run deleted last, which Undo brings back.
    pub last_deleted: Option<PathBuf>,
    pub loaded_once: bool,
}

/// The export settings shared by every view.
pub struct ExportState {
    pub dir_text: String,
    /// PNG scale (1-8).
    pub scale: f32,
    /// Heatmap offscreen render size in pixels.
    pub heatmap_px: u32,
    /// The last export's message.
    pub last: Option<String>,
    pub in_flight: usize,
}

/// What panels ask the app to do.
#[derive(Clone, Debug)]
pub enum Action {
    LoadModel(ModelSource),
    PickImage(Slot, ImageSource),
    SwapImages,
    Run,
    PauseResume,
    Cancel,
    /// Hull of the shown run and a second run (index into `runs`).
    HullWithRun(usize),
    /// Traverse source → second target, then the hull with the shown run.
    HullWithSecondTarget,
    /// Traverse source → target and source → second target, then the hull.
    HullRunBoth,
    /// Make the shown hull's triangle on model B too (its two traversals, then its hull).
    HullOnModelB,
    /// Move the shown hull beside, to compare the next one with it.
    PinHull,
    Grid,
    /// Start (or resume) the reach evaluation set up in the Reach tab.
    Reach,
    /// A map, region or export of the Semantic view.
    Semantic(super::semantic_state::SemanticAction),
    /// Start the frequency-margin measurement set up in the Frequency tab.
    Frequency,
    /// Show a folder in the system's file manager.
    OpenFolder(PathBuf),
    OpenRun(PathBuf),
    ShowRun(usize),
    DeleteRun(PathBuf),
    /// Bring back a run deleted in this session.
    UndoDelete(PathBuf),
    RefreshHistory,
    /// List a labelled folder for the target-class picker (off the UI thread).
    ReadDataFolder(PathBuf),
    Export(ExportKind),
    Dismiss(usize),
    DismissAll,
    /// Open a native file dialog.
    Dialog(super::background::DialogPurpose),
}

/// The things a user can export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// The run record folder (run.json, tensors, frames) plus its figures.
    Run,
    PathStrip,
    Confidence,
    HullFigure,
    /// The GPU heatmap, rendered offscreen at `heatmap_px`.
    HullRender,
    Profile,
    Widths,
    Grid,
    /// The figures a finished reach evaluation wrote (hit-rate matrix, examples grid).
    ReachFigures,
    /// The frequency-margin record folder (as `blindspot margins` writes it).
    FrequencyRecord,
    /// The frequency margin plot.
    FrequencyPlot,
}

impl ExportKind {
    pub fn label(self) -> &'static str {
        match self {
            ExportKind::Run => "run record",
            ExportKind::PathStrip => "path strip",
            ExportKind::Confidence => "confidence plot",
            ExportKind::HullFigure => "hull figure",
            ExportKind::HullRender => "heatmap render",
            ExportKind::Profile => "profile plot",
            ExportKind::Widths => "width plot",
            ExportKind::Grid => "grid figure",
            ExportKind::ReachFigures => "reach figures",
            ExportKind::FrequencyRecord => "margin record",
            ExportKind::FrequencyPlot => "margin plot",
        }
    }
}

/// Everything the panels share.
pub struct AppState {
    pub model: ModelState,
    pub recent_models: Vec<PathBuf>,
    pub recent_images: Vec<PathBuf>,
    pub images: [ImageSlot; 3],
    /// Which walk Run makes. Hull and grid always use LST (`config`).
    pub method: Method,
    pub preset: Preset,
    /// LST's settings (the traversal when `method` is LST, and always the hull's and grid's).
    pub config: LstConfig,
    /// NSPGD's settings (§2.1 defaults; they do not depend on the input size).
    pub nspgd: NspgdConfig,
    pub job: Option<ActiveJob>,
    /// Commands the worker will take after the running job (a hull after its traversals).
    pub live: Option<LiveRun>,
    /// Finished runs of this session and runs opened from the history, oldest first.
    pub runs: Vec<Arc<FinishedRun>>,
    /// The run the traversal view shows when nothing is running.
    pub shown_run: Option<usize>,
    /// Scrub position, and whether it follows the newest frame.
    pub scrub: usize,
    pub follow_live: bool,
    /// Image zoom factor of the traversal view; 0 fits the images to the window.
    pub zoom: f32,
    pub hull: HullState,
    /// Model B and the run shown beside the shown one.
    pub compare: super::compare::CompareState,
    pub grid: GridState,
    pub reach: super::reach_state::ReachState,
    pub semantic: super::semantic_state::SemanticState,
    pub frequency: super::frequency_state::FrequencyState,
    pub history: HistoryState,
    pub export: ExportState,
    pub notices: Vec<Notice>,
    /// The labelled folder the target-class picker draws from.
    pub data_folder: Option<super::panels::target_class::DataFolder>,
    pub tab: Tab,
    pub dark: bool,
    pub presentation: bool,
    pub actions: Vec<Action>,
    next_id: u64,
}

impl AppState {
    pub fn new(source: ImageSource, target: ImageSource, second: ImageSource) -> Self {
        Self {
            model: ModelState {
                loaded: None,
                loading: None,
                lpips: None,
            },
            recent_models: Vec::new(),
            recent_images: Vec::new(),
            images: [
                ImageSlot::new(source),
                ImageSlot::new(target),
                ImageSlot::new(second),
            ],
            method: Method::Lst,
            preset: Preset::Cifar,
            config: LstConfig::cifar(),
            nspgd: NspgdConfig::default(),
            job: None,
            live: None,
            runs: Vec::new(),
            shown_run: None,
            scrub: 0,
            follow_live: true,
            zoom: 0.0,
            hull: HullState {
                contours_text: "0.5, 0.9".into(),
                ..HullState::default()
            },
            compare: super::compare::CompareState::default(),
            grid: GridState {
                images: ["circle_1", "star_1", "square_1", "heart_1"]
                    .iter()
                    .map(|n| ImageSource::Gallery((*n).into()))
                    .collect(),
                ..GridState::default()
            },
            reach: super::reach_state::ReachState::default(),
            semantic: super::semantic_state::SemanticState::default(),
            frequency: super::frequency_state::FrequencyState::default(),
            history: HistoryState::default(),
            export: ExportState {
                dir_text: String::new(),
                scale: 2.0,
                heatmap_px: 2048,
                last: None,
                in_flight: 0,
            },
            notices: Vec::new(),
            data_folder: None,
            tab: Tab::Traversal,
            dark: true,
            presentation: false,
            actions: Vec::new(),
            next_id: 1,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn act(&mut self, action: Action) {
        self.actions.push(action);
    }

    pub fn error(&mut self, title: impl Into<String>, detail: impl Into<String>) {
        self.notice(title.into(), detail.into(), true);
    }

    pub fn info(&mut self, title: impl Into<String>, detail: impl Into<String>) {
        self.notice(title.into(), detail.into(), false);
    }

    /// Raises a notice; the same one again moves to the end with its count up.
    fn notice(&mut self, title: String, detail: String, error: bool) {
        let same = self
            .notices
            .iter()
            .position(|n| n.title == title && n.detail == detail && n.error == error);
        let count = match same {
            Some(i) => self.notices.remove(i).count + 1,
            None => 1,
        };
        self.notices.push(Notice {
            title,
            detail,
            error,
            count,
            raised: Instant::now(),
        });
    }

    /// Drops information notices older than [`INFO_SECONDS`].
    pub fn expire_notices(&mut self) {
        let keep = Duration::from_secs(INFO_SECONDS);
        self.notices
            .retain(|n| n.error || n.raised.elapsed() < keep);
    }

    pub fn slot(&self, slot: Slot) -> &ImageSlot {
        &self.images[slot_index(slot)]
    }

    pub fn slot_mut(&mut self, slot: Slot) -> &mut ImageSlot {
        &mut self.images[slot_index(slot)]
    }

    pub fn spec(&self) -> Option<&Arc<ModelSpec>> {
        self.model.loaded.as_ref().map(|(_, s)| s)
    }

    /// The settings of the walk Run makes, as the worker and the run record take them.
    pub fn walk_config(&self) -> WalkConfig {
        match self.method {
            Method::Lst => WalkConfig::Lst(self.config.clone()),
            Method::Nspgd => WalkConfig::Nspgd(self.nspgd.clone()),
        }
    }

    /// The walk of a traversal: the chosen one, but LST for a hull's corners (§1.7).
    pub fn traverse_config(&self, for_hull: bool) -> WalkConfig {
        if for_hull {
            WalkConfig::Lst(self.config.clone())
        } else {
            self.walk_config()
        }
    }

    /// What Run would do, in a line: "Next run: circle_1 → star_1 · demo standard · NSPGD,
    /// 100 iterations, τ = 0.05" (the shown result carries its own record).
    pub fn run_summary(&self) -> String {
        let name = |slot: Slot| self.slot(slot).source.label();
        let model = self.model.loaded.as_ref().map_or_else(
            || "no model".to_string(),
            |(s, _)| super::panels::model_choice::short_label(s),
        );
        let walk = self.walk_config();
        let method = walk.method();
        let also = self.compare.model_b.as_ref().map_or_else(String::new, |b| {
            format!(" and {}", super::panels::model_choice::short_label(b))
        });
        format!(
            "Next run: {} → {}  ·  {model}{also}  ·  {}, {} iterations, {} = {}",
            name(Slot::Source),
            name(Slot::Target),
            method.name(),
            walk.iterations(),
            method.threshold_symbol(),
            walk.threshold()
        )
    }

    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// The run the traversal views show: the live one, else the picked finished one.
    pub fn shown(&self) -> Option<RunView<'_>> {
        if let Some(live) = &self.live {
            return Some(live.view());
        }
        self.shown_finished().map(|r| r.view())
    }

    pub fn shown_finished(&self) -> Option<&Arc<FinishedRun>> {
        self.shown_run.and_then(|i| self.runs.get(i))
    }

    /// The shown finished run when it is an LST run: the hull (§1.7) is made of LST outputs.
    pub fn shown_lst_run(&self) -> Option<&Arc<FinishedRun>> {
        self.shown_finished()
            .filter(|r| r.record.config.method() == Method::Lst)
    }

    /// The finished LST runs that share the shown LST run's source (hull partners), with their
    /// index.
    pub fn hull_partners(&self) -> Vec<(usize, &Arc<FinishedRun>)> {
        let Some(shown) = self.shown_lst_run() else {
            return Vec::new();
        };
        self.runs
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                Some(*i) != self.shown_run
                    && r.record.source.sha256 == shown.record.source.sha256
                    && r.record.model.weights_sha256 == shown.record.model.weights_sha256
                    && r.pixels.output.is_some()
                    && r.record.config.method() == Method::Lst
            })
            .collect()
    }

    /// Remembers a file in a most-recent-first list of at most 8.
    pub fn remember(list: &mut Vec<PathBuf>, path: &std::path::Path) {
        list.retain(|p| p != path);
        list.insert(0, path.to_path_buf());
        list.truncate(8);
    }

    /// Keeps finished runs in order and returns the new index.
    pub fn add_run(&mut self, run: Arc<FinishedRun>) -> usize {
        self.runs.push(run);
        self.runs.len() - 1
    }

    /// Why hull and grid cannot start while NSPGD is the chosen walk (they are LST-only).
    pub fn lst_only_reason(&self) -> Option<&'static str> {
        (self.method != Method::Lst).then_some(
            "The hull and the grid are made of LST runs: select LST under Parameters → Method",
        )
    }

    /// Whether the running model is one of the demo models, and which.
    pub fn demo(&self) -> Option<DemoModel> {
        match &self.model.loaded {
            Some((ModelSource::Demo(d), _)) => Some(*d),
            _ => None,
        }
    }
}

fn slot_index(slot: Slot) -> usize {
    match slot {
        Slot::Source => 0,
        Slot::Target => 1,
        Slot::SecondTarget => 2,
    }
}
