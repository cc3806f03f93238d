//! The Semantic view's data (ALGORITHMS.md §3): its settings, the maps as they fill (the
//! loaded model's and model B's), the regions as they grow, and how the last job ended. The
//! worker's updates are applied here; the panel only reads it and pushes actions.

use std::path::PathBuf;
use std::time::Instant;

use crate::analysis::semantic::{
    Domain, ParamSpace, RegionConfig, RegionMethod, RegionResult, SemanticMap, SemanticParam,
    SemanticTransform, default_points, map_grid,
};
use crate::semantic::ClassChoice;

use super::worker::{
    ImageSource, JobId, MapSlot, ModelSource, SemanticSetup, SemanticUpdate, in_app_words,
};

/// What the Semantic view asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum SemanticAction {
    /// Compute the map (and model B's) with the view's settings.
    Map,
    /// Grow regions from this point (natural units) with the view's method(s).
    Grow(Vec<f64>),
    /// Write the record folders of what the view shows into the export folder.
    Export,
}

/// Which region method(s) a click grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodChoice {
    Naive,
    OirB,
    OirW,
    All,
}

impl MethodChoice {
    pub const ALL: [MethodChoice; 4] = [Self::Naive, Self::OirB, Self::OirW, Self::All];

    pub fn methods(self) -> Vec<RegionMethod> {
        match self {
            Self::Naive => vec![RegionMethod::Naive],
            Self::OirB => vec![RegionMethod::OirB],
            Self::OirW => vec![RegionMethod::OirW],
            Self::All => RegionMethod::ALL.to_vec(),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Naive => "Naive",
            Self::OirB => "OIR_B",
            Self::OirW => "OIR_W",
            Self::All => "all three",
        }
    }
}

/// One model's map as it fills.
pub struct MapView {
    /// The model's name, shown above its map.
    pub model: String,
    pub class: ClassChoice,
    pub space: ParamSpace,
    pub grid: Vec<Vec<f64>>,
    /// Row-major, first parameter along rows; shorter than `total` while filling.
    pub values: Vec<f64>,
    pub total: usize,
    /// T(x, ·) of the image this model saw, for the hover's render (None if it failed).
    pub transform: Option<SemanticTransform>,
}

impl MapView {
    pub fn is_complete(&self) -> bool {
        self.values.len() == self.total
    }

    /// Points per axis.
    pub fn points(&self) -> usize {
        self.grid.first().map_or(0, Vec::len)
    }

    /// The grid point of flat index `k` (natural units).
    pub fn point(&self, k: usize) -> Vec<f64> {
        match self.grid.as_slice() {
            [axis] => vec![axis[k.min(axis.len() - 1)]],
            [rows, cols] if !cols.is_empty() => {
                vec![
                    rows[(k / cols.len()).min(rows.len() - 1)],
                    cols[k % cols.len()],
                ]
            }
            _ => Vec::new(),
        }
    }

    /// As the analysis' map (what the record stores).
    pub fn map(&self) -> SemanticMap {
        SemanticMap {
            params: self.space.params().to_vec(),
            domains: self.space.domains().to_vec(),
            grid: self.grid.clone(),
            values: self.values.clone(),
            class: self.class.class,
        }
    }
}

/// A region growing from a clicked point.
pub struct LiveRegion {
    pub method: RegionMethod,
    pub start_z: Vec<f64>,
    pub iterations: usize,
    /// The box after each update so far (z-units), the initial one first.
    pub boxes: Vec<[Vec<f64>; 2]>,
    /// Set when it ended (complete or cancelled).
    pub result: Option<RegionResult>,
}

impl LiveRegion {
    /// The current box (z-units).
    pub fn current(&self) -> Option<(&[f64], &[f64])> {
        self.boxes.last().map(|[a, b]| (a.as_slice(), b.as_slice()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SemanticJob {
    Map,
    Regions,
    Export,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Complete,
    Stopped,
}

pub struct SemanticState {
    /// Empty: the source image of the Images panel; else `gallery:NAME` or a path.
    pub image_text: String,
    /// Parameter 1 and 2 (None: not used; a map needs one or two).
    pub params: [Option<SemanticParam>; 2],
    /// The domain of each parameter (index `SemanticParam::index`), editable.
    pub domains: [Domain; 8],
    pub points_1d: usize,
    pub points_2d: usize,
    /// Empty: the model's prediction.
    pub class_text: String,
    pub batch: usize,
    pub method: MethodChoice,
    pub config: RegionConfig,
    pub model_b: Option<ModelSource>,
    /// The model B the current maps were computed with (the picker may have moved since):
    /// what regions grow on and what the export loads.
    pub mapped_b: Option<ModelSource>,
    /// The loaded model's map (0) and model B's (1).
    pub maps: [Option<MapView>; 2],
    /// The regions grown on each map (model B's for model A's class).
    pub regions: [Vec<LiveRegion>; 2],
    /// The image and settings the maps and regions were made with (what an export records).
    pub setup: Option<SemanticSetup>,
    pub job: Option<(JobId, SemanticJob)>,
    pub ended: Option<Ended>,
    pub started: Option<Instant>,
    /// Seconds the last map took (recorded in the export).
    pub seconds: f64,
    pub exported: Vec<PathBuf>,
    /// A failure of the last job, turned into a notice by the app.
    pub error: Option<String>,
    /// Points done and total of the running job.
    pub progress: (usize, usize),
    /// Draw the f = 0.5 contour on 2-D maps.
    pub contour: bool,
    /// Bumped for every new map, so cached renders of an older one are not reused.
    pub generation: u64,
}

impl Default for SemanticState {
    fn default() -> Self {
        Self {
            image_text: String::new(),
            params: [Some(SemanticParam::Rot), Some(SemanticParam::Scale)],
            domains: SemanticParam::ALL.map(SemanticParam::default_domain),
            points_1d: default_points(1),
            points_2d: default_points(2),
            class_text: String::new(),
            batch: 64,
            method: MethodChoice::All,
            config: RegionConfig::default(),
            model_b: None,
            mapped_b: None,
            maps: [None, None],
            regions: [Vec::new(), Vec::new()],
            setup: None,
            job: None,
            ended: None,
            started: None,
            seconds: 0.0,
            exported: Vec::new(),
            error: None,
            progress: (0, 0),
            generation: 0,
            contour: true,
        }
    }
}

impl SemanticState {
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// The chosen parameters, in order.
    pub fn chosen(&self) -> Vec<SemanticParam> {
        self.params.iter().flatten().copied().collect()
    }

    /// Points per axis for the chosen number of parameters.
    pub fn points(&self) -> usize {
        if self.chosen().len() == 1 {
            self.points_1d
        } else {
            self.points_2d
        }
    }

    /// The view's settings checked the way the CLI checks them (the same analysis errors),
    /// for a model with `channels` input channels; `source` is the Images panel's source.
    pub fn setup(&self, source: &ImageSource, channels: usize) -> Result<SemanticSetup, String> {
        let params = self.chosen();
        let domains: Vec<(SemanticParam, Domain)> = params
            .iter()
            .map(|&p| (p, self.domains[p.index()]))
            .collect();
        let space = ParamSpace::new(&params, &domains, channels)
            .map_err(|e| in_app_words(&e.to_string()))?;
        map_grid(&space, self.points()).map_err(|e| in_app_words(&e.to_string()))?;
        let class = match self.class_text.trim() {
            "" => None,
            t => Some(t.parse::<u32>().map_err(|_| {
                format!("class `{t}`: expected a class index (0, 1, …) or empty for the prediction")
            })?),
        };
        let image = match self.image_text.trim() {
            "" => source.clone(),
            t => ImageSource::parse(t),
        };
        if self.batch == 0 {
            return Err("batch = 0: at least one image per forward pass".into());
        }
        Ok(SemanticSetup {
            image,
            params,
            domains,
            class,
            batch: self.batch,
        })
    }

    /// The region settings checked for every method a click grows.
    pub fn region_config(&self, n: usize) -> Result<RegionConfig, String> {
        for m in self.method.methods() {
            self.config
                .validate(m, n)
                .map_err(|e| in_app_words(&e.to_string()))?;
        }
        Ok(self.config.clone())
    }

    pub fn begin(&mut self, job: JobId, kind: SemanticJob) {
        self.job = Some((job, kind));
        self.ended = None;
        self.error = None;
        self.progress = (0, 0);
        match kind {
            SemanticJob::Map => {
                self.maps = [None, None];
                self.regions = [Vec::new(), Vec::new()];
                self.exported.clear();
                self.started = Some(Instant::now());
            }
            SemanticJob::Regions => {
                self.regions = [Vec::new(), Vec::new()];
                self.exported.clear();
            }
            SemanticJob::Export => {}
        }
    }

    /// Applies a worker update of job `job`; returns the job's progress (done, total) when it
    /// is the view's job, None for a stale one.
    pub fn apply(&mut self, job: JobId, update: SemanticUpdate) -> Option<(usize, usize)> {
        let (id, kind) = self.job?;
        if id != job {
            return None;
        }
        match update {
            SemanticUpdate::MapStarted {
                slot,
                model,
                class,
                space,
                grid,
                image,
                shape,
            } => {
                let total = grid.iter().map(Vec::len).product();
                let transform = SemanticTransform::from_host(image, shape, space.blur_max()).ok();
                if let Some(m) = self.maps.get_mut(slot) {
                    *m = Some(MapView {
                        model,
                        class: *class,
                        space,
                        grid,
                        values: Vec::with_capacity(total),
                        total,
                        transform,
                    });
                }
                self.progress = (0, total);
                self.generation += 1;
            }
            SemanticUpdate::MapBatch {
                slot,
                values,
                done,
                total,
            } => {
                if let Some(Some(m)) = self.maps.get_mut(slot) {
                    m.values.extend(values);
                }
                self.progress = (done, total);
            }
            SemanticUpdate::RegionStarted {
                slot,
                index,
                method,
                start_z,
                iterations,
            } => {
                let Some(regions) = self.regions.get_mut(slot) else {
                    return Some(self.progress);
                };
                regions.truncate(index);
                regions.push(LiveRegion {
                    method,
                    start_z,
                    iterations,
                    boxes: Vec::new(),
                    result: None,
                });
                self.progress = (0, iterations);
            }
            SemanticUpdate::RegionStep {
                slot,
                index,
                iteration,
                a,
                b,
            } => {
                if let Some(r) = self.regions.get_mut(slot).and_then(|r| r.get_mut(index)) {
                    r.boxes.push([a, b]);
                    self.progress = (iteration, r.iterations);
                }
            }
            SemanticUpdate::RegionDone {
                slot,
                index,
                result,
            } => {
                if let Some(r) = self.regions.get_mut(slot).and_then(|r| r.get_mut(index)) {
                    r.boxes = result.trace.clone();
                    r.result = Some(*result);
                }
            }
            SemanticUpdate::Exported(paths) => self.exported = paths,
            SemanticUpdate::Done(result) => {
                self.job = None;
                match result {
                    Ok(stopped) => {
                        self.ended = Some(if stopped {
                            Ended::Stopped
                        } else {
                            Ended::Complete
                        });
                    }
                    Err(e) => self.error = Some(e),
                }
                if kind == SemanticJob::Map
                    && let Some(t) = self.started.take()
                {
                    self.seconds = t.elapsed().as_secs_f64();
                }
            }
        }
        Some(self.progress)
    }

    /// The regions of map `slot` that ended, for the record.
    pub fn finished_regions(&self, slot: MapSlot) -> Vec<RegionResult> {
        self.regions
            .get(slot)
            .into_iter()
            .flatten()
            .filter_map(|r| r.result.clone())
            .collect()
    }
}
