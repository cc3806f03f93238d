//! The Semantic view's worker jobs (ALGORITHMS.md §3): a Network Semantic Map of the loaded
//! model (and of a model B on the same image, class and grid), regions grown from a clicked
//! point (on model B too, for the same class), and the export of what the view shows as the
//! CLI's record folders. Everything goes through the same analysis and record functions as
//! `blindspot semantic map | regions`, so the numbers and the folders are the CLI's.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::analysis::semantic::{
    Domain, ParamSpace, RegionConfig, RegionMethod, RegionResult, SemanticMap, SemanticObjective,
    SemanticParam, compute_map, grow_region, map_grid,
};
use crate::models::Classifier;
use crate::run::InputImage;
use crate::semantic::{
    ClassChoice, MapRecord, RegionRecord, RegionsRecord, SEMANTIC_VERSION, SemanticRunError,
};

use super::{Event, ImageSource, JobControl, JobId, ModelSource, WorkerState, describe};

/// What every semantic job works on: one image, its parameter space and the class.
#[derive(Clone, Debug)]
pub struct SemanticSetup {
    pub image: ImageSource,
    pub params: Vec<SemanticParam>,
    /// Domain overrides in natural units (the view's edited domains).
    pub domains: Vec<(SemanticParam, Domain)>,
    /// None: the loaded model's prediction.
    pub class: Option<u32>,
    /// Transformed images per forward pass.
    pub batch: usize,
}

/// What the UI asks for.
pub struct SemanticRequest {
    pub job: JobId,
    pub setup: SemanticSetup,
    pub task: SemanticTask,
    pub control: Arc<JobControl>,
}

// The request travels boxed (`Command::Semantic(Box<_>)`), so the size of the export variant
// costs nothing on the channel.
#[allow(clippy::large_enum_variant)]
pub enum SemanticTask {
    /// The map of the loaded model, then of `model_b` (same class, same grid) when given.
    Map {
        points: usize,
        model_b: Option<ModelSource>,
    },
    /// Regions grown from `start_u` (natural units), one per method, with the loaded model,
    /// then with `model_b` for the class given beside it (model B's map's) when given.
    Regions {
        start_u: Vec<f64>,
        methods: Vec<RegionMethod>,
        config: RegionConfig,
        model_b: Option<(ModelSource, u32)>,
    },
    /// The record folders of what the view shows: `out` gets the loaded model's map (or its
    /// regions with the map), `b.out` model B's.
    Export {
        out: PathBuf,
        map: Option<SemanticMap>,
        regions: Vec<RegionResult>,
        config: RegionConfig,
        b: Option<ModelBExport>,
        seconds: f64,
    },
}

/// Model B's part of an export: its map and the regions grown on it, into `out`.
pub struct ModelBExport {
    pub source: ModelSource,
    pub map: SemanticMap,
    pub regions: Vec<RegionResult>,
    pub out: PathBuf,
}

/// Which model a map belongs to: 0 the loaded one, 1 model B.
pub type MapSlot = usize;

#[derive(Debug)]
pub enum SemanticUpdate {
    /// A map starts: its model, class, space and grid, and the image as the model sees it
    /// (for the hover's T(x, u), rendered on the UI thread).
    MapStarted {
        slot: MapSlot,
        model: String,
        class: Box<ClassChoice>,
        space: ParamSpace,
        grid: Vec<Vec<f64>>,
        image: Vec<f64>,
        shape: [usize; 3],
    },
    /// The values of the batch just computed (appended, row-major).
    MapBatch {
        slot: MapSlot,
        values: Vec<f64>,
        done: usize,
        total: usize,
    },
    /// A region of the map in `slot` starts.
    RegionStarted {
        slot: MapSlot,
        index: usize,
        method: RegionMethod,
        start_z: Vec<f64>,
        iterations: usize,
    },
    /// One update of the box (z-units).
    RegionStep {
        slot: MapSlot,
        index: usize,
        iteration: usize,
        a: Vec<f64>,
        b: Vec<f64>,
    },
    RegionDone {
        slot: MapSlot,
        index: usize,
        result: Box<RegionResult>,
    },
    Exported(Vec<PathBuf>),
    /// The job ended; `stopped` when it was cancelled.
    Done(Result<bool, String>),
}

/// The CLI's flags in an error message, said the way the Semantic view says them.
pub fn in_app_words(message: &str) -> String {
    message
        .replace(
            "name one or two, e.g. --params rot,scale",
            "pick one or two in Parameter 1 / Parameter 2",
        )
        .replace("--params", "the parameter choice")
}

fn err(e: impl std::error::Error) -> String {
    in_app_words(&describe(&e))
}

/// The image as `model` sees it, the space checked against it, and the class.
struct Prepared {
    image: InputImage,
    space: ParamSpace,
    class: ClassChoice,
}

fn prepare(
    model: &Classifier,
    setup: &SemanticSetup,
    class: Option<u32>,
) -> Result<Prepared, String> {
    let space =
        ParamSpace::new(&setup.params, &setup.domains, model.spec().channels).map_err(err)?;
    let image = InputImage::load(&setup.image.as_path(), model)
        .map_err(|e| format!("cannot use image {}: {}", setup.image.label(), describe(&e)))?;
    let class = ClassChoice::new(model, &image.pixels, class).map_err(err)?;
    Ok(Prepared {
        image,
        space,
        class,
    })
}

fn objective<'a>(
    model: &'a Classifier,
    p: &Prepared,
    batch: usize,
    config: Option<&RegionConfig>,
) -> Result<SemanticObjective<'a>, String> {
    let o = SemanticObjective::new(
        model,
        &p.image.pixels,
        p.class.class,
        p.space.clone(),
        batch,
    )
    .map_err(err)?;
    Ok(match config {
        Some(c) => o.with_gradient(c.oir_w_gradient),
        None => o,
    })
}

/// How a job ended short of completing.
enum Stop {
    UiGone,
    Cancelled,
    Failed(String),
}

impl From<String> for Stop {
    fn from(e: String) -> Self {
        Stop::Failed(e)
    }
}

impl WorkerState {
    pub(super) fn semantic(&mut self, request: &SemanticRequest) -> ControlFlow<()> {
        let job = request.job;
        let result = match &request.task {
            SemanticTask::Map { points, model_b } => self.semantic_maps(request, *points, model_b),
            SemanticTask::Regions {
                start_u,
                methods,
                config,
                model_b,
            } => self.semantic_regions(request, start_u, methods, config, model_b.as_ref()),
            SemanticTask::Export {
                out,
                map,
                regions,
                config,
                b,
                seconds,
            } => self
                .semantic_export(
                    &request.setup,
                    out,
                    map.as_ref(),
                    regions,
                    config,
                    b.as_ref(),
                    *seconds,
                )
                .and_then(|paths| self.send(job, SemanticUpdate::Exported(paths))),
        };
        let done = match result {
            Ok(()) => Ok(false),
            Err(Stop::Cancelled) => Ok(true),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::UiGone) => return ControlFlow::Break(()),
        };
        self.emit(Event::Semantic {
            job,
            update: SemanticUpdate::Done(done),
        })
    }

    fn send(&self, job: JobId, update: SemanticUpdate) -> Result<(), Stop> {
        match self.emit(Event::Semantic { job, update }) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Stop::UiGone),
        }
    }

    fn semantic_maps(
        &mut self,
        request: &SemanticRequest,
        points: usize,
        model_b: &Option<ModelSource>,
    ) -> Result<(), Stop> {
        // Model B first: loading it needs `&mut self`, the loaded model borrows `self`.
        let b = match model_b {
            // Named by the weights' file stem, as the loaded model is (demo-robust, resnet56_…).
            Some(source) => {
                let model = self.comparison_model(source)?;
                Some((model.spec().short_name(), model))
            }
            None => None,
        };
        let a = self.model()?;
        let label_a = a.spec().short_name();
        let class = self.one_map(request, a, &label_a, 0, points, request.setup.class)?;
        if let Some((label, model)) = &b {
            // The same class as the loaded model's map, so both maps show one probability.
            self.one_map(request, model, label, 1, points, Some(class))?;
        }
        Ok(())
    }

    /// One model's map, streamed batch by batch; returns the class it was taken for.
    fn one_map(
        &self,
        request: &SemanticRequest,
        model: &Classifier,
        label: &str,
        slot: MapSlot,
        points: usize,
        class: Option<u32>,
    ) -> Result<u32, Stop> {
        let setup = &request.setup;
        let p = prepare(model, setup, class)?;
        let grid = map_grid(&p.space, points).map_err(err)?;
        let objective = objective(model, &p, setup.batch, None)?;
        let (image, shape) = host_image(&p.image)?;
        let class = p.class.class;
        self.send(
            request.job,
            SemanticUpdate::MapStarted {
                slot,
                model: label.to_string(),
                class: Box::new(p.class.clone()),
                space: p.space.clone(),
                grid,
                image,
                shape,
            },
        )?;
        let mut sent = 0;
        let mut stop = None;
        let map = compute_map(&objective, points, |progress| {
            let update = SemanticUpdate::MapBatch {
                slot,
                values: progress.values[sent..].to_vec(),
                done: progress.done,
                total: progress.total,
            };
            sent = progress.done;
            if let Err(s) = self.send(request.job, update) {
                stop = Some(s);
                return ControlFlow::Break(());
            }
            let flow = request.control.checkpoint(request.control.steps_done() + 1);
            if flow.is_break() {
                stop = Some(Stop::Cancelled);
            }
            flow
        })
        .map_err(err)?;
        if let Some(s) = stop {
            return Err(s);
        }
        debug_assert!(map.is_complete());
        Ok(class)
    }

    fn semantic_regions(
        &mut self,
        request: &SemanticRequest,
        start_u: &[f64],
        methods: &[RegionMethod],
        config: &RegionConfig,
        model_b: Option<&(ModelSource, u32)>,
    ) -> Result<(), Stop> {
        // Model B first: loading it needs `&mut self`, the loaded model borrows `self`.
        let b = match model_b {
            Some((source, class)) => Some((self.comparison_model(source)?, *class)),
            None => None,
        };
        let model = self.model()?;
        self.grow_regions(
            request,
            model,
            0,
            request.setup.class,
            start_u,
            methods,
            config,
        )?;
        if let Some((model, class)) = &b {
            self.grow_regions(request, model, 1, Some(*class), start_u, methods, config)?;
        }
        Ok(())
    }

    /// One model's regions from `start_u`, streamed update by update into map `slot`.
    #[allow(clippy::too_many_arguments)]
    fn grow_regions(
        &self,
        request: &SemanticRequest,
        model: &Classifier,
        slot: MapSlot,
        class: Option<u32>,
        start_u: &[f64],
        methods: &[RegionMethod],
        config: &RegionConfig,
    ) -> Result<(), Stop> {
        let p = prepare(model, &request.setup, class)?;
        for &m in methods {
            config.validate(m, p.space.dim()).map_err(err)?;
        }
        let mut objective = objective(model, &p, request.setup.batch, Some(config))?;
        let start_z = p.space.to_z(start_u);
        for (index, &method) in methods.iter().enumerate() {
            self.send(
                request.job,
                SemanticUpdate::RegionStarted {
                    slot,
                    index,
                    method,
                    start_z: start_z.clone(),
                    iterations: config.iterations,
                },
            )?;
            let mut stop = None;
            let result = grow_region(&mut objective, method, config, &start_z, |s| {
                let update = SemanticUpdate::RegionStep {
                    slot,
                    index,
                    iteration: s.iteration,
                    a: s.a.to_vec(),
                    b: s.b.to_vec(),
                };
                if let Err(e) = self.send(request.job, update) {
                    stop = Some(e);
                    return ControlFlow::Break(());
                }
                let flow = request.control.checkpoint(request.control.steps_done() + 1);
                if flow.is_break() {
                    stop = Some(Stop::Cancelled);
                }
                flow
            })
            .map_err(err)?;
            // A cancelled region is kept (its trace so far), as the CLI's `stopped` records.
            self.send(
                request.job,
                SemanticUpdate::RegionDone {
                    slot,
                    index,
                    result: Box::new(result),
                },
            )?;
            if let Some(s) = stop {
                return Err(s);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn semantic_export(
        &mut self,
        setup: &SemanticSetup,
        out: &std::path::Path,
        map: Option<&SemanticMap>,
        regions: &[RegionResult],
        config: &RegionConfig,
        b: Option<&ModelBExport>,
        seconds: f64,
    ) -> Result<Vec<PathBuf>, Stop> {
        let b_model = match b {
            Some(b) => Some(self.comparison_model(&b.source)?),
            None => None,
        };
        let model = self.model()?;
        let class = map.map(|m| m.class).or(setup.class);
        save_view(model, setup, class, map, regions, config, seconds, out)?;
        let mut written = vec![out.to_path_buf()];
        if let (Some(model_b), Some(b)) = (b_model, b) {
            save_view(
                &model_b,
                setup,
                Some(b.map.class),
                Some(&b.map),
                &b.regions,
                config,
                seconds,
                &b.out,
            )?;
            written.push(b.out.clone());
        }
        Ok(written)
    }
}

/// One model's part of the view as the CLI's record: `semantic map`'s folder, or `semantic
/// regions`' (with the map) once regions were grown.
#[allow(clippy::too_many_arguments)]
fn save_view(
    model: &Classifier,
    setup: &SemanticSetup,
    class: Option<u32>,
    map: Option<&SemanticMap>,
    regions: &[RegionResult],
    config: &RegionConfig,
    seconds: f64,
    out: &std::path::Path,
) -> Result<(), Stop> {
    let p = prepare(model, setup, class)?;
    let save = |e: SemanticRunError| Stop::Failed(err(e));
    if regions.is_empty() {
        let map = map.ok_or_else(|| "nothing to export: no map or region yet".to_string())?;
        return map_record(model, setup, &p, map.clone(), seconds)
            .save(out)
            .map_err(save);
    }
    let objective = objective(model, &p, setup.batch, Some(config))?;
    let record = RegionsRecord {
        version: SEMANTIC_VERSION,
        kind: "regions".into(),
        model: model.spec().clone(),
        image: p.image.name.clone(),
        class: p.class.clone(),
        space: p.space.clone(),
        config: config.clone(),
        regions: regions
            .iter()
            .enumerate()
            .map(|(k, r)| RegionRecord::new(&p.space, r, k))
            .collect(),
        map: map.cloned(),
        warnings: RegionConfig::warnings(p.space.dim()),
        seconds,
    };
    record.save(out, regions, &objective).map_err(save)
}

fn map_record(
    model: &Classifier,
    setup: &SemanticSetup,
    p: &Prepared,
    map: SemanticMap,
    seconds: f64,
) -> MapRecord {
    MapRecord {
        version: SEMANTIC_VERSION,
        kind: "map".into(),
        model: model.spec().clone(),
        image: p.image.name.clone(),
        class: p.class.clone(),
        space: p.space.clone(),
        batch: setup.batch,
        map,
        seconds,
    }
}

/// The image's pixels in f64 and its shape, for the UI's transform.
fn host_image(image: &InputImage) -> Result<(Vec<f64>, [usize; 3]), String> {
    let pixels = image.host().map_err(|e| describe(&e))?;
    let shape = match image.pixels.dims() {
        [c, h, w] => [*c, *h, *w],
        other => return Err(format!("image tensor has shape {other:?}")),
    };
    Ok((pixels.into_iter().map(f64::from).collect(), shape))
}
