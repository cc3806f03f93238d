//! `semantic eval`: SRVR (ALGORITHMS.md §3.6) of one model over a labelled image set. Each
//! image the model classifies correctly at the identity grows the three regions from every
//! initial point (and, if asked, gets a map); misclassified images are skipped and listed.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{
    ClassChoice, RECORD_JSON, Result, SEMANTIC_VERSION, TENSORS_FILE, create_dir, map_figure,
    param_names, write_figure, write_json,
};
use crate::analysis::semantic::{
    ImageSrvr, ParamSpace, RegionConfig, RegionMethod, SemanticMap, SemanticObjective, SrvrConfig,
    SrvrSummary, evaluate_image, summarize,
};
use crate::figures;
use crate::images::LabeledSet;
use crate::models::{Classifier, ModelSpec};
use crate::record;
use crate::run_folder::{BatchRun, ModelFingerprint, Opening, RunFolder, item_file};

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub config: SrvrConfig,
    /// Transformed images per model call.
    pub batch: usize,
    /// Only the first N images of each class.
    pub per_class: Option<usize>,
}

/// What the progress callback sees.
pub enum EvalEvent<'a> {
    Started {
        total: usize,
    },
    /// An image is done (`skipped` when the model misclassifies it).
    Image {
        done: usize,
        total: usize,
        source: &'a str,
        skipped: bool,
    },
    /// One region update of the current image.
    Step {
        method: RegionMethod,
        iteration: usize,
        iterations: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedImage {
    pub source: String,
    pub label: u32,
    pub reason: String,
}

/// `semantic eval`'s record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub version: u32,
    pub kind: String,
    pub model: ModelSpec,
    pub images_path: String,
    pub space: ParamSpace,
    pub config: SrvrConfig,
    /// `None` when no image was evaluated.
    pub summary: Option<SrvrSummary>,
    pub images: Vec<ImageSrvr>,
    pub skipped: Vec<SkippedImage>,
    /// Whether the callback stopped the evaluation early.
    pub stopped: bool,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// The indices of `set` to evaluate: all, or the first `per_class` of each class.
fn selection(set: &LabeledSet, per_class: Option<usize>) -> Vec<usize> {
    let mut taken: HashMap<u32, usize> = HashMap::new();
    (0..set.len())
        .filter(|&i| {
            let count = taken.entry(set.label(i)).or_insert(0);
            *count += 1;
            per_class.is_none_or(|n| *count <= n)
        })
        .collect()
}

/// What `plan.json` of a `semantic eval` folder holds: everything that decides its items,
/// checked by `--resume` (the batch only groups model calls, so a resume may change it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct EvalPlan {
    kind: String,
    model: ModelFingerprint,
    images_path: String,
    /// The selected images, in order: their source and label.
    images: Vec<(String, u32)>,
    space: ParamSpace,
    config: SrvrConfig,
    batch: usize,
}

/// One finished image, as its item file holds it. (One per image, read or written once:
/// the size difference of the variants costs nothing worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum ImageItem {
    Evaluated {
        summary: ImageSrvr,
        map: Option<SemanticMap>,
    },
    Skipped(SkippedImage),
}

fn item_name(position: usize) -> String {
    format!("image_{position:06}")
}

/// Runs (or, with `resume`, continues) the evaluation in the folder `out`: each finished
/// image is written there at once (`items/image_NNNNNN.json`), so a stopped or killed run
/// loses at most the image it was on, and a resume with the same plan (model weights, images,
/// space, settings) computes only the rest. Returns the record and the per-image maps (when
/// asked for); the caller writes the outputs when the record is complete (`!stopped`).
#[allow(clippy::too_many_arguments)]
pub fn run_eval(
    classifier: &Classifier,
    set: &LabeledSet,
    images_path: &str,
    space: &ParamSpace,
    options: &EvalOptions,
    out: &Path,
    run: &BatchRun,
    mut on_event: impl FnMut(&EvalEvent<'_>) -> ControlFlow<()>,
) -> Result<EvalOutcome> {
    let started = Instant::now();
    for method in RegionMethod::ALL {
        options
            .config
            .region
            .validate(method, space.dim())
            .map_err(crate::analysis::AnalysisError::from)?;
    }
    let spec = classifier.spec();
    let chosen = selection(set, options.per_class);
    let plan = EvalPlan {
        kind: "semantic eval".into(),
        model: ModelFingerprint::of(classifier),
        images_path: images_path.to_string(),
        images: chosen
            .iter()
            .map(|&i| (set.describe(i), set.label(i)))
            .collect(),
        space: space.clone(),
        config: options.config.clone(),
        batch: options.batch,
    };
    // One unit per image: shards split the images.
    let units = (0..chosen.len())
        .map(|p| vec![item_file(&item_name(p))])
        .collect();
    let folder = RunFolder::open(
        out,
        &plan,
        Opening {
            what: "semantic evaluation",
            resume: run.resume,
            may_differ: &["batch"],
            shard: run.shard,
            units,
            command: run.command.clone(),
        },
    )?;
    let total = chosen.len();
    let mut stopped = on_event(&EvalEvent::Started { total }).is_break();
    let mut images = Vec::new();
    let mut maps = Vec::new();
    let mut skipped = Vec::new();
    let iterations = options.config.region.iterations;
    for (done, &i) in chosen.iter().enumerate() {
        if stopped {
            break;
        }
        if !folder.owns(done) {
            continue;
        }
        let source = set.describe(i);
        let label = set.label(i);
        let name = item_name(done);
        let item = match folder.item::<ImageItem>(&name) {
            Some(item) => item,
            None => {
                let x = set.get(i, &spec.preprocess, spec.channels, &Device::Cpu)?;
                let choice = ClassChoice::new(classifier, &x, Some(label))?;
                let item = if choice.predicted != label {
                    ImageItem::Skipped(SkippedImage {
                        source: source.clone(),
                        label,
                        reason: format!(
                            "misclassified at the identity as `{}` (p = {:.3})",
                            choice.predicted_name, choice.predicted_confidence
                        ),
                    })
                } else {
                    let mut objective = SemanticObjective::new(
                        classifier,
                        &x,
                        label,
                        space.clone(),
                        options.batch,
                    )?
                    .with_gradient(options.config.region.oir_w_gradient);
                    let (evaluation, complete) = evaluate_image(
                        &mut objective,
                        &source,
                        label,
                        &options.config,
                        |method, s| {
                            on_event(&EvalEvent::Step {
                                method,
                                iteration: s.iteration,
                                iterations,
                            })
                        },
                    )?;
                    if !complete {
                        stopped = true;
                        break;
                    }
                    ImageItem::Evaluated {
                        summary: evaluation.summary,
                        map: evaluation.map,
                    }
                };
                folder.save_item(&name, &item)?;
                item
            }
        };
        let is_skipped = matches!(item, ImageItem::Skipped(_));
        match item {
            ImageItem::Evaluated { summary, map } => {
                images.push(summary);
                maps.extend(map);
            }
            ImageItem::Skipped(s) => skipped.push(s),
        }
        let event = EvalEvent::Image {
            done: done + 1,
            total,
            source: &source,
            skipped: is_skipped,
        };
        if on_event(&event).is_break() {
            stopped = true;
        }
    }
    let summary = summarize(&images, |c| spec.class_name(c as usize).to_string());
    let record = EvalRecord {
        version: SEMANTIC_VERSION,
        kind: "eval".into(),
        model: spec.clone(),
        images_path: images_path.to_string(),
        space: space.clone(),
        config: options.config.clone(),
        summary,
        images,
        skipped,
        stopped,
        warnings: RegionConfig::warnings(space.dim()),
        seconds: started.elapsed().as_secs_f64(),
    };
    let shard_done = if record.stopped {
        None
    } else {
        folder.finish_shard()?
    };
    Ok(EvalOutcome {
        record,
        maps,
        total,
        shard_done,
    })
}

/// What [`run_eval`] ends with.
pub struct EvalOutcome {
    /// Complete unless `stopped`, or when a shard ran (its own images only).
    pub record: EvalRecord,
    /// One per evaluated image with a map, in `record.images` order.
    pub maps: Vec<SemanticMap>,
    /// Images selected for the evaluation (evaluated, skipped or not reached).
    pub total: usize,
    /// For a shard that did all its images: what to tell the user (merge comes next).
    pub shard_done: Option<String>,
}

impl EvalRecord {
    /// Writes the folder: the maps as one tensor [images, N(, N)], the mean map figure, the
    /// SRVR table (Markdown and CSV), the cost table, then the JSON.
    pub fn save(&self, dir: &Path, maps: &[SemanticMap]) -> Result<()> {
        create_dir(dir)?;
        let mut tensors = HashMap::new();
        let volumes: Vec<f64> = self
            .images
            .iter()
            .flat_map(|i| {
                RegionMethod::ALL
                    .map(|m| i.volumes(m).iter().sum::<f64>() / i.volumes(m).len().max(1) as f64)
            })
            .collect();
        if !volumes.is_empty() {
            tensors.insert(
                "volume_ratios".to_string(),
                Tensor::from_slice(&volumes, (self.images.len(), 3), &Device::Cpu)?,
            );
        }
        // Maps come one per evaluated image, in `images` order.
        let complete: Vec<(&SemanticMap, &ImageSrvr)> = maps
            .iter()
            .zip(&self.images)
            .filter(|(m, _)| m.is_complete())
            .collect();
        if let Some((first, _)) = complete.first() {
            let mut shape = vec![complete.len()];
            shape.extend(vec![first.points(); first.grid.len()]);
            let values: Vec<f64> = complete
                .iter()
                .flat_map(|(m, _)| m.values.iter().copied())
                .collect();
            tensors.insert(
                "maps".to_string(),
                Tensor::from_slice(&values, shape.as_slice(), &Device::Cpu)?,
            );
            let names = param_names(&self.space);
            let arch = self.model.short_name();
            let title = format!(
                "mean p(true class) over {} images under {names}, {arch}",
                complete.len()
            );
            write_figure(&self.mean_figure(&complete, &title), dir, "mean_map")?;
            let mut classes: Vec<u32> = complete.iter().map(|(_, i)| i.label).collect();
            classes.sort_unstable();
            classes.dedup();
            for class in classes {
                let members: Vec<(&SemanticMap, &ImageSrvr)> = complete
                    .iter()
                    .copied()
                    .filter(|(_, i)| i.label == class)
                    .collect();
                let name = self.model.class_name(class as usize);
                let title = format!(
                    "mean p({name}) over {} {name} images under {names}, {arch}",
                    members.len()
                );
                write_figure(
                    &self.mean_figure(&members, &title),
                    dir,
                    &format!("mean_map_class_{class}"),
                )?;
            }
        }
        if !tensors.is_empty() {
            record::save_tensors_atomic(&dir.join(TENSORS_FILE), &tensors)?;
        }
        let name = self.model.short_name();
        record::write_atomic(
            &dir.join("srvr.md"),
            super::srvr_markdown(&[(name.as_str(), self)]).as_bytes(),
        )?;
        record::write_atomic(
            &dir.join("srvr.csv"),
            super::srvr_csv(&name, self).as_bytes(),
        )?;
        let points = self
            .config
            .map_points
            .unwrap_or(crate::analysis::semantic::default_points(self.space.dim()));
        record::write_atomic(
            &dir.join("cost.md"),
            super::cost_markdown(
                self.space.dim(),
                self.config.region.iterations,
                points,
                self.config.region.log_loss,
            )
            .as_bytes(),
        )?;
        write_json(&dir.join(RECORD_JSON), self)
    }
}

impl EvalRecord {
    /// The class-mean view of §3.8: a 1-D figure with every image's curve and their mean, or
    /// the pointwise mean of the 2-D maps.
    fn mean_figure(&self, maps: &[(&SemanticMap, &ImageSrvr)], title: &str) -> figures::Figure {
        let first = maps[0].0;
        if first.grid.len() == 1 {
            let param = self.space.params()[0];
            return figures::semantic_curve(&figures::SemanticCurveData {
                axis_label: format!("{} ({})", param.name(), param.unit()),
                grid: first.grid[0].clone(),
                curves: maps
                    .iter()
                    .map(|(m, i)| (i.source.clone(), m.values.clone()))
                    .collect(),
                identity: param.identity(),
                intervals: Vec::new(),
                title: title.to_string(),
            });
        }
        let n = maps.len() as f64;
        let mut mean = first.clone();
        for (k, v) in mean.values.iter_mut().enumerate() {
            *v = maps.iter().map(|(m, _)| m.values[k]).sum::<f64>() / n;
        }
        map_figure(&self.space, &mean, &[], None, title)
    }
}
