//! The background worker: one thread that owns the model and does every model computation the
//! app asks for, so the UI thread never waits on it.
//!
//! Commands go in over an unbounded channel (sending never blocks the UI). Events come back over
//! a bounded channel, and every event wakes the UI with `request_repaint`. When the UI drops its
//! end (the window closed), the next send fails and the worker stops, mid-run if need be; when it
//! drops the command sender, the worker's wait for the next command ends and so does the thread.
//!
//! Long jobs share a [`JobControl`]: pause blocks the worker between two steps, cancel stops it
//! at the next step boundary (one LST iteration, or one forward pass of hull points).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::analysis::confidence::{logits_rows, top_k};
use crate::analysis::hull::HullEvaluation;
use crate::analysis::{LstConfig, SampleStep, WalkConfig};
use crate::demo::DemoModel;
use crate::eval::ExamplesGrid;
use crate::history::History;
use crate::models::{Classifier, LoadOptions, Lpips, ModelSpec, load_classifier, load_lpips};
use crate::record::{RunPixels, RunRecord};
use crate::run::{HullInputs, HullReport, InputImage, traverse_live};

mod frequency;
mod reach;
mod semantic;
pub use frequency::{
    FrequencyImages, FrequencyModel, FrequencyRequest, FrequencySamples, FrequencyUpdate,
    MeasuredModel,
};
pub use reach::{ReachFinished, ReachRequest, ReachUpdate};
pub use semantic::{
    MapSlot, ModelBExport, SemanticRequest, SemanticSetup, SemanticTask, SemanticUpdate,
    in_app_words,
};

/// Where a model comes from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ModelSource {
    Demo(DemoModel),
    File(PathBuf),
}

impl ModelSource {
    pub fn label(&self) -> String {
        match self {
            Self::Demo(d) => d.label().to_string(),
            Self::File(p) => p.display().to_string(),
        }
    }

    /// Loads the model: the embedded demo weights or a checkpoint file.
    pub fn load(&self, opts: &LoadOptions) -> crate::models::Result<Classifier> {
        match self {
            Self::Demo(demo) => demo.load(opts),
            Self::File(path) => load_classifier(path, opts),
        }
    }
}

/// Models besides the loaded one kept loaded for comparisons (a view comparing two or three
/// models asks for the same ones again and again).
const COMPARISON_MODELS_KEPT: usize = 3;

/// Where an image comes from: the embedded gallery or a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ImageSource {
    Gallery(String),
    File(PathBuf),
}

impl ImageSource {
    /// The path form `InputImage::load` reads (`gallery:NAME` for the gallery).
    pub fn as_path(&self) -> PathBuf {
        match self {
            Self::Gallery(name) => PathBuf::from(format!("{}{name}", crate::run::GALLERY_PREFIX)),
            Self::File(p) => p.clone(),
        }
    }

    /// Parses what a user typed or pasted: `gallery:NAME`, or a path.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        match text.strip_prefix(crate::run::GALLERY_PREFIX) {
            Some(name) => Self::Gallery(name.to_string()),
            None => Self::File(PathBuf::from(text)),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Gallery(name) => name.clone(),
            Self::File(p) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }
}

/// Which of the two picked images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    Source,
    Target,
    /// The second target of a hull.
    SecondTarget,
}

/// An image as the model sees it (after resize and crop), with the model's top classes.
#[derive(Clone, Debug)]
pub struct Preview {
    pub source: ImageSource,
    /// [C, H, W] in [0, 1].
    pub pixels: Vec<f32>,
    pub shape: [usize; 3],
    /// (class index, class name, probability), best first.
    pub top: Vec<(u32, String, f32)>,
}

/// Identifies one job, so that late events of an older job are told apart.
pub type JobId = u64;

/// Pause and cancel for the running job, shared by the UI and the worker.
#[derive(Debug, Default)]
pub struct JobControl {
    cancelled: AtomicBool,
    paused: Mutex<bool>,
    wake: Condvar,
    /// Steps the worker has completed (updated before each event is sent).
    steps_done: AtomicUsize,
    /// The worker is waiting between two steps because the job is paused.
    holding: AtomicBool,
}

impl JobControl {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    pub fn set_paused(&self, paused: bool) {
        if let Ok(mut p) = self.paused.lock() {
            *p = paused;
        }
        self.wake.notify_all();
    }

    pub fn is_paused(&self) -> bool {
        self.paused.lock().map(|p| *p).unwrap_or(false)
    }

    pub fn steps_done(&self) -> usize {
        self.steps_done.load(Ordering::SeqCst)
    }

    /// Whether the worker is held by a pause now (between two steps, computing nothing):
    /// what a pause has taken effect means, for the status line and for tests that wait on
    /// it instead of sleeping.
    pub fn is_holding(&self) -> bool {
        self.holding.load(Ordering::SeqCst)
    }

    /// Called by the worker between two steps: waits while paused, then says whether to go on.
    fn checkpoint(&self, steps_done: usize) -> ControlFlow<()> {
        self.steps_done.store(steps_done, Ordering::SeqCst);
        if let Ok(mut paused) = self.paused.lock() {
            while *paused && !self.is_cancelled() {
                self.holding.store(true, Ordering::SeqCst);
                match self.wake.wait(paused) {
                    Ok(p) => paused = p,
                    Err(_) => break,
                }
            }
            self.holding.store(false, Ordering::SeqCst);
        }
        if self.is_cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// A finished run, as shared between the app's views (runs are never mutated after they end).
#[derive(Debug)]
pub struct FinishedRun {
    pub record: RunRecord,
    pub pixels: RunPixels,
    /// Its folder in the history (None if saving failed; the error is reported separately).
    pub dir: Option<PathBuf>,
}

pub enum Command {
    LoadModel(ModelSource),
    Preview {
        slot: Slot,
        request: u64,
        source: ImageSource,
    },
    Traverse {
        job: JobId,
        source: ImageSource,
        target: ImageSource,
        /// LST or NSPGD: the same live loop and the same run record either way.
        config: WalkConfig,
        /// The model to walk on: None for the loaded one, or model B of a comparison.
        model: Option<ModelSource>,
        control: Arc<JobControl>,
    },
    /// The hull of two runs of one source, at each resolution of `levels` in turn (the first
    /// one also gives the metrics and profiles), on the model that made the runs.
    Hull {
        job: JobId,
        runs: [Arc<FinishedRun>; 2],
        levels: Vec<usize>,
        /// None for the loaded model, or model B of a comparison.
        model: Option<ModelSource>,
        control: Arc<JobControl>,
    },
    Grid {
        job: JobId,
        images: Vec<ImageSource>,
        config: LstConfig,
        control: Arc<JobControl>,
    },
    /// A reach evaluation (§2.3) with the loaded model, into a folder the CLI can read.
    Reach(Box<ReachRequest>),
    /// A semantic map, region or export of the Semantic view (§3).
    Semantic(Box<SemanticRequest>),
    /// Frequency margins (§4) of the loaded model and up to two more on the same samples.
    Frequency(Box<FrequencyRequest>),
}

/// Whether LPIPS can be reported (Table 1's last column).
#[derive(Clone, Debug, PartialEq)]
pub enum LpipsStatus {
    Loaded(PathBuf),
    /// No weights given or found: LPIPS reads n/a.
    Missing,
    /// Weights were named but could not be read.
    Failed(String),
}

pub enum Event {
    /// The worker's LPIPS weights, reported once at start.
    Lpips(LpipsStatus),
    ModelReady {
        source: ModelSource,
        spec: Box<ModelSpec>,
    },
    ModelFailed {
        source: ModelSource,
        error: String,
    },
    Preview {
        slot: Slot,
        request: u64,
        result: Result<Box<Preview>, String>,
    },
    RunStarted {
        job: JobId,
        /// The walk being made, so the live view shows its settings.
        config: Box<WalkConfig>,
        source: Box<Preview>,
        target: Box<Preview>,
        p0: f32,
    },
    RunStep {
        job: JobId,
        step: usize,
        sample: Box<SampleStep>,
        /// The iterate after this step, sent at most every [`LIVE_IMAGE_INTERVAL`].
        iterate: Option<Vec<f32>>,
        elapsed: Duration,
    },
    RunDone {
        job: JobId,
        result: Result<Arc<FinishedRun>, String>,
        /// Saving to the history failed (the run itself is fine and shown).
        history_error: Option<String>,
    },
    HullReport {
        job: JobId,
        report: Box<HullReport>,
    },
    HullRefined {
        job: JobId,
        evaluation: Box<HullEvaluation>,
    },
    HullProgress {
        job: JobId,
        n: usize,
        done: usize,
        total: usize,
    },
    HullDone {
        job: JobId,
        result: Result<(), String>,
    },
    GridProgress {
        job: JobId,
        step: usize,
        total: usize,
    },
    GridDone {
        job: JobId,
        result: Result<Box<ExamplesGrid>, String>,
    },
    Reach {
        job: JobId,
        update: ReachUpdate,
    },
    Semantic {
        job: JobId,
        update: SemanticUpdate,
    },
    Frequency {
        job: JobId,
        update: FrequencyUpdate,
    },
}

/// How often a live view gets the current iterate (the metrics come every step).
pub const LIVE_IMAGE_INTERVAL: Duration = Duration::from_millis(40);

/// Events in flight at most; a full channel makes the worker wait for the UI.
const EVENT_CAPACITY: usize = 256;

/// The UI's handle on the worker thread.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
}

impl Worker {
    /// Starts the worker. `wake` is called after every event (the UI's `request_repaint`).
    /// `lpips` names the LPIPS weights (else `$BLINDSPOT_LPIPS` or the data folder's copy);
    /// the worker loads them first and reports the outcome as `Event::Lpips`.
    pub fn spawn(
        history: Option<History>,
        lpips: Option<PathBuf>,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (commands, command_rx) = std::sync::mpsc::channel();
        let (event_tx, events) = std::sync::mpsc::sync_channel(EVENT_CAPACITY);
        std::thread::Builder::new()
            .name("blindspot-worker".into())
            .spawn(move || {
                let (lpips, lpips_status) = match load_lpips(lpips.as_deref()) {
                    Ok(Some(metric)) => {
                        let path = metric.path().to_path_buf();
                        (Some(metric), LpipsStatus::Loaded(path))
                    }
                    Ok(None) => (None, LpipsStatus::Missing),
                    Err(e) => (None, LpipsStatus::Failed(describe(&e))),
                };
                let mut state = WorkerState {
                    model: None,
                    comparison_models: Vec::new(),
                    lpips,
                    history,
                    events: event_tx,
                    wake: Box::new(wake),
                };
                if state.emit(Event::Lpips(lpips_status)).is_break() {
                    return;
                }
                while let Ok(command) = command_rx.recv() {
                    if state.handle(command).is_break() {
                        break;
                    }
                }
            })?;
        Ok(Self { commands, events })
    }

    /// Queues a command; false when the worker has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }
}

struct WorkerState {
    model: Option<Arc<Classifier>>,
    /// Models B, C of comparing views, oldest first (see `comparison_model`).
    comparison_models: Vec<(ModelSource, Arc<Classifier>)>,
    /// LPIPS-Alex for Table 1's last column; None reads n/a.
    lpips: Option<Lpips>,
    history: Option<History>,
    events: SyncSender<Event>,
    wake: Box<dyn Fn() + Send>,
}

/// The text of an error with its causes, for the UI.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl WorkerState {
    /// Sends an event and wakes the UI; `Break` when the UI is gone.
    fn emit(&self, event: Event) -> ControlFlow<()> {
        if self.events.send(event).is_err() {
            return ControlFlow::Break(());
        }
        (self.wake)();
        ControlFlow::Continue(())
    }

    fn model(&self) -> Result<&Classifier, String> {
        self.model
            .as_deref()
            .ok_or_else(|| "no model is loaded".to_string())
    }

    /// The model a job runs on: the loaded one (None), or a comparison model.
    fn model_for(&mut self, source: Option<&ModelSource>) -> Result<Arc<Classifier>, String> {
        match source {
            None => self
                .model
                .clone()
                .ok_or_else(|| "no model is loaded".to_string()),
            Some(source) => self.comparison_model(source),
        }
    }

    /// A model for a comparison (model B, C of a view), loaded once and kept: the
    /// `COMPARISON_MODELS_KEPT` most recently asked for stay loaded. The error names the source.
    fn comparison_model(&mut self, source: &ModelSource) -> Result<Arc<Classifier>, String> {
        if let Some(i) = self.comparison_models.iter().position(|(s, _)| s == source) {
            let entry = self.comparison_models.remove(i);
            let model = Arc::clone(&entry.1);
            self.comparison_models.push(entry);
            return Ok(model);
        }
        let model = source
            .load(&LoadOptions::default())
            .map(Arc::new)
            .map_err(|e| {
                let error = describe(&e);
                let label = source.label();
                // Loader errors name the file already; the demo models' do not.
                if error.contains(&label) {
                    error
                } else {
                    format!("{label}: {error}")
                }
            })?;
        if self.comparison_models.len() >= COMPARISON_MODELS_KEPT {
            self.comparison_models.remove(0);
        }
        self.comparison_models
            .push((source.clone(), Arc::clone(&model)));
        Ok(model)
    }

    fn handle(&mut self, command: Command) -> ControlFlow<()> {
        match command {
            Command::LoadModel(source) => self.load_model(source),
            Command::Preview {
                slot,
                request,
                source,
            } => {
                let result = self.preview(&source).map(Box::new);
                self.emit(Event::Preview {
                    slot,
                    request,
                    result,
                })
            }
            Command::Traverse {
                job,
                source,
                target,
                config,
                model,
                control,
            } => match self.model_for(model.as_ref()) {
                Ok(model) => self.traverse(job, &model, &source, &target, &config, &control),
                Err(e) => self.emit(Event::RunDone {
                    job,
                    result: Err(e),
                    history_error: None,
                }),
            },
            Command::Hull {
                job,
                runs,
                levels,
                model,
                control,
            } => match self.model_for(model.as_ref()) {
                Ok(model) => self.hull(job, &model, &runs, &levels, &control),
                Err(e) => self.emit(Event::HullDone {
                    job,
                    result: Err(e),
                }),
            },
            Command::Grid {
                job,
                images,
                config,
                control,
            } => self.grid(job, &images, &config, &control),
            Command::Reach(request) => self.reach(&request),
            Command::Semantic(request) => self.semantic(&request),
            Command::Frequency(request) => self.frequency(&request),
        }
    }

    fn load_model(&mut self, source: ModelSource) -> ControlFlow<()> {
        match source.load(&LoadOptions::default()) {
            Ok(model) => {
                let spec = Box::new(model.spec().clone());
                // The old model stays until the new one has loaded, so a failure keeps the app
                // usable with what it had.
                self.model = Some(Arc::new(model));
                self.emit(Event::ModelReady { source, spec })
            }
            Err(e) => {
                let error = describe(&e);
                self.emit(Event::ModelFailed { source, error })
            }
        }
    }

    fn load_image(&self, source: &ImageSource) -> Result<InputImage, String> {
        load_image_for(self.model()?, source)
    }

    fn preview_of(&self, source: &ImageSource, image: &InputImage) -> Result<Preview, String> {
        preview_on(self.model()?, source, image)
    }

    fn preview(&self, source: &ImageSource) -> Result<Preview, String> {
        let image = self.load_image(source)?;
        self.preview_of(source, &image)
    }

    fn traverse(
        &self,
        job: JobId,
        model: &Classifier,
        source: &ImageSource,
        target: &ImageSource,
        config: &WalkConfig,
        control: &JobControl,
    ) -> ControlFlow<()> {
        let result = self.traverse_inner(job, model, source, target, config, control);
        let (result, history_error) = match result {
            Ok(Some(run)) => (Ok(run.0), run.1),
            // The UI went away mid-run.
            Ok(None) => return ControlFlow::Break(()),
            Err(e) => (Err(e), None),
        };
        self.emit(Event::RunDone {
            job,
            result,
            history_error,
        })
    }

    /// `Ok(None)` when the UI is gone.
    #[allow(clippy::type_complexity)]
    fn traverse_inner(
        &self,
        job: JobId,
        model: &Classifier,
        source: &ImageSource,
        target: &ImageSource,
        config: &WalkConfig,
        control: &JobControl,
    ) -> Result<Option<(Arc<FinishedRun>, Option<String>)>, String> {
        config.validate().map_err(|e| describe(&e))?;
        let source_image = load_image_for(model, source)?;
        let target_image = load_image_for(model, target)?;
        let source_preview = preview_on(model, source, &source_image)?;
        let target_preview = preview_on(model, target, &target_image)?;
        let p0 = source_preview.top.first().map(|t| t.2).unwrap_or_default();
        if self
            .emit(Event::RunStarted {
                job,
                config: Box::new(config.clone()),
                source: Box::new(source_preview),
                target: Box::new(target_preview),
                p0,
            })
            .is_break()
        {
            return Ok(None);
        }
        let started = Instant::now();
        let mut last_image: Option<Instant> = None;
        let mut ui_gone = false;
        let outcome = traverse_live(
            model,
            self.lpips.as_ref(),
            config.clone(),
            &source_image,
            &target_image,
            None,
            0,
            |view| {
                // The last step, and a step after which the run pauses or stops, always show
                // their iterate, so a paused view is up to date.
                let last = view.step + 1 == config.iterations()
                    || control.is_paused()
                    || control.is_cancelled();
                let due = last_image.is_none_or(|t| t.elapsed() >= LIVE_IMAGE_INTERVAL);
                let iterate = if due || last {
                    last_image = Some(Instant::now());
                    view.iterate().ok()
                } else {
                    None
                };
                let event = Event::RunStep {
                    job,
                    step: view.step,
                    sample: Box::new(view.sample.clone()),
                    iterate,
                    elapsed: started.elapsed(),
                };
                if self.emit(event).is_break() {
                    ui_gone = true;
                    return ControlFlow::Break(());
                }
                control.checkpoint(view.step + 1)
            },
        );
        if ui_gone {
            return Ok(None);
        }
        let (record, pixels) = outcome.map_err(|e| describe(&e))?;
        let (dir, history_error) = match &self.history {
            Some(h) => match h.save(&record, &pixels) {
                Ok(dir) => (Some(dir), None),
                Err(e) => (None, Some(describe(&e))),
            },
            None => (None, None),
        };
        Ok(Some((
            Arc::new(FinishedRun {
                record,
                pixels,
                dir,
            }),
            history_error,
        )))
    }

    fn hull(
        &self,
        job: JobId,
        model: &Classifier,
        runs: &[Arc<FinishedRun>; 2],
        levels: &[usize],
        control: &JobControl,
    ) -> ControlFlow<()> {
        let result = self.hull_inner(job, model, runs, levels, control);
        match result {
            Err(HullStop::UiGone) => ControlFlow::Break(()),
            Err(HullStop::Failed(e)) => self.emit(Event::HullDone {
                job,
                result: Err(e),
            }),
            Ok(()) => self.emit(Event::HullDone {
                job,
                result: Ok(()),
            }),
        }
    }

    fn hull_inner(
        &self,
        job: JobId,
        model: &Classifier,
        runs: &[Arc<FinishedRun>; 2],
        levels: &[usize],
        control: &JobControl,
    ) -> Result<(), HullStop> {
        let [a, b] = runs;
        let inputs = HullInputs::from_runs(model, (&a.record, &a.pixels), (&b.record, &b.pixels))
            .map_err(|e| HullStop::Failed(describe(&e)))?;
        let mut steps = 0usize;
        for (k, &n) in levels.iter().enumerate() {
            let mut ui_gone = false;
            let on_chunk = |done: usize, total: usize| {
                steps += 1;
                if self
                    .emit(Event::HullProgress {
                        job,
                        n,
                        done,
                        total,
                    })
                    .is_break()
                {
                    ui_gone = true;
                    return ControlFlow::Break(());
                }
                control.checkpoint(steps)
            };
            let event = if k == 0 {
                inputs
                    .report(model, n, on_chunk)
                    .map_err(|e| HullStop::Failed(describe(&e)))?
                    .map(|report| Event::HullReport {
                        job,
                        report: Box::new(report),
                    })
            } else {
                inputs
                    .lattice(model, n, on_chunk)
                    .map_err(|e| HullStop::Failed(describe(&e)))?
                    .map(|evaluation| Event::HullRefined {
                        job,
                        evaluation: Box::new(evaluation),
                    })
            };
            if ui_gone {
                return Err(HullStop::UiGone);
            }
            // None: cancelled; what was sent so far stays shown.
            let Some(event) = event else {
                return Ok(());
            };
            if self.emit(event).is_break() {
                return Err(HullStop::UiGone);
            }
        }
        Ok(())
    }

    fn grid(
        &self,
        job: JobId,
        images: &[ImageSource],
        config: &LstConfig,
        control: &JobControl,
    ) -> ControlFlow<()> {
        let mut ui_gone = false;
        let result = (|| -> Result<ExamplesGrid, String> {
            let model = self.model()?;
            config.validate().map_err(|e| describe(&e))?;
            let pool = images
                .iter()
                .map(|s| self.load_image(s))
                .collect::<Result<Vec<_>, _>>()?;
            crate::eval::examples_grid_live(model, config, &pool, |step| {
                let event = Event::GridProgress {
                    job,
                    step: step + 1,
                    total: config.iterations,
                };
                if self.emit(event).is_break() {
                    ui_gone = true;
                    return ControlFlow::Break(());
                }
                control.checkpoint(step + 1)
            })
            .map_err(|e| describe(&e))
        })();
        if ui_gone {
            return ControlFlow::Break(());
        }
        self.emit(Event::GridDone {
            job,
            result: result.map(Box::new),
        })
    }
}

/// An image as `model` takes it.
fn load_image_for(model: &Classifier, source: &ImageSource) -> Result<InputImage, String> {
    InputImage::load(&source.as_path(), model).map_err(|e| describe(&e))
}

/// What `model` makes of an image: its pixels and top three classes.
fn preview_on(
    model: &Classifier,
    source: &ImageSource,
    image: &InputImage,
) -> Result<Preview, String> {
    let err = |e: &dyn std::error::Error| describe(e);
    let batch = image.pixels.unsqueeze(0).map_err(|e| err(&e))?;
    let logits = model.forward(&batch).map_err(|e| err(&e))?;
    let row = logits_rows(&logits)
        .map_err(|e| err(&e))?
        .into_iter()
        .next()
        .unwrap_or_default();
    let top: Vec<(u32, String, f32)> = top_k(&row, 3)
        .into_iter()
        .map(|(k, p)| (k as u32, model.spec().class_name(k).to_string(), p))
        .collect();
    let pixels = image.host().map_err(|e| err(&e))?;
    let dims = image.pixels.dims();
    let shape = match dims {
        [c, h, w] => [*c, *h, *w],
        other => return Err(format!("image tensor has shape {other:?}")),
    };
    Ok(Preview {
        source: source.clone(),
        pixels,
        shape,
        top,
    })
}

enum HullStop {
    UiGone,
    Failed(String),
}
