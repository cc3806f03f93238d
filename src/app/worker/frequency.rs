//! Frequency margins (ALGORITHMS.md §4) as a worker job: the same `measure_margins` as
//! `blindspot margins`, on the loaded model and up to two comparison models, with every batch
//! and every finished subspace forwarded to the UI. Cancel lands at the next batch boundary.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use crate::analysis::frequency::{
    DeepFoolConfig, FrequencyError, FrequencyTransform, MarginOptions, MarginProgress,
    SubspaceMargins, SubspacePlan, TransformedModel, measure_margins, select_samples,
};
use crate::frequency_record::model_label;
use crate::images::LabeledSet;
use crate::models::Classifier;
use crate::run::{GALLERY_PREFIX, InputImage};

use super::{Event, JobControl, JobId, ModelSource, WorkerState, describe};

/// Where the samples come from.
#[derive(Clone, Debug, PartialEq)]
pub enum FrequencyImages {
    /// The embedded gallery.
    Gallery,
    /// An ImageFolder tree, a folder with labels.tsv, or a .safetensors set (as the CLI).
    Folder(PathBuf),
}

/// One model of the comparison: None is the loaded model.
#[derive(Clone, Debug)]
pub struct FrequencyModel {
    pub source: Option<ModelSource>,
    pub transform: Option<FrequencyTransform>,
}

/// What the UI asks for.
#[derive(Debug)]
pub struct FrequencyRequest {
    pub job: JobId,
    pub models: Vec<FrequencyModel>,
    pub images: FrequencyImages,
    pub samples: usize,
    pub seed: u64,
    pub deepfool: DeepFoolConfig,
    pub batch: usize,
    pub control: Arc<JobControl>,
}

/// The samples as measured, for the view and the record.
#[derive(Clone, Debug)]
pub struct FrequencySamples {
    /// [C, N, N] of each sample, in [0, 1].
    pub pixels: Vec<Vec<f32>>,
    pub shape: [usize; 3],
    pub names: Vec<String>,
    pub indices: Vec<usize>,
    pub labels: Vec<Option<u32>>,
    /// The set they were drawn from, as config.json names it.
    pub set: String,
}

/// One model as measured.
#[derive(Clone, Debug)]
pub struct MeasuredModel {
    pub label: String,
    /// demo:NAME or a checkpoint path, as config.json names it.
    pub source: String,
    pub transform: Option<FrequencyTransform>,
    pub class_names: Vec<String>,
}

/// How a frequency-margin job is getting on.
#[derive(Debug)]
pub enum FrequencyUpdate {
    Started {
        plan: SubspacePlan,
        models: Vec<MeasuredModel>,
        samples: Box<FrequencySamples>,
    },
    /// `done` samples of subspace `s` of model `model` are finished.
    Batch { model: usize, s: usize, done: usize },
    /// Subspace `subspace.summary.s` of model `model` is finished; `labels` is each sample's
    /// label at its perturbed input.
    Subspace {
        model: usize,
        subspace: Box<SubspaceMargins>,
        labels: Vec<u32>,
    },
    /// A model is finished (every subspace), in `seconds`.
    ModelDone { model: usize, seconds: f64 },
    /// The job ended: Ok(true) complete, Ok(false) cancelled, or failed.
    Done(Result<bool, String>),
}

fn err(e: impl std::error::Error) -> String {
    describe(&e)
}

impl WorkerState {
    pub(super) fn frequency(&mut self, request: &FrequencyRequest) -> ControlFlow<()> {
        let mut ui_gone = false;
        let result = self.frequency_inner(request, &mut ui_gone);
        if ui_gone {
            return ControlFlow::Break(());
        }
        self.emit(Event::Frequency {
            job: request.job,
            update: FrequencyUpdate::Done(result),
        })
    }

    fn frequency_inner(
        &mut self,
        request: &FrequencyRequest,
        ui_gone: &mut bool,
    ) -> Result<bool, String> {
        // Comparison models first: loading them needs the worker mutably.
        let mut extra: Vec<Option<Arc<Classifier>>> = Vec::with_capacity(request.models.len());
        for m in &request.models {
            extra.push(match &m.source {
                None => None,
                Some(source) => Some(self.comparison_model(source)?),
            });
        }
        let main = self.model()?;
        let mut models: Vec<(&Classifier, MeasuredModel)> = Vec::new();
        for (m, loaded) in request.models.iter().zip(&extra) {
            let classifier: &Classifier = loaded.as_deref().unwrap_or(main);
            let source = match &m.source {
                None => main_source(main),
                Some(ModelSource::Demo(d)) => format!("demo:{d:?}").to_lowercase(),
                Some(ModelSource::File(p)) => p.display().to_string(),
            };
            models.push((
                classifier,
                MeasuredModel {
                    label: model_label(classifier, m.transform),
                    source,
                    transform: m.transform,
                    class_names: classifier.spec().class_names.clone(),
                },
            ));
        }
        let plan = plan_for(&models)?;
        let samples = load_samples(main, request)?;
        let images = Tensor::stack(
            &samples
                .pixels
                .iter()
                .map(|p| Tensor::from_vec(p.clone(), &samples.shape[..], &Device::Cpu))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?,
            0,
        )
        .map_err(err)?;
        let job = request.job;
        let started = FrequencyUpdate::Started {
            plan,
            models: models.iter().map(|(_, m)| m.clone()).collect(),
            samples: Box::new(samples),
        };
        if self
            .emit(Event::Frequency {
                job,
                update: started,
            })
            .is_break()
        {
            *ui_gone = true;
            return Ok(false);
        }
        let options = MarginOptions {
            deepfool: request.deepfool,
            batch: request.batch.max(1),
            // The view shows each sample's perturbation when its point is clicked.
            keep_perturbations: true,
        };
        let control = &request.control;
        let mut steps = 0usize;
        for (k, (classifier, measured)) in models.iter().enumerate() {
            let model = TransformedModel::new(classifier, measured.transform)
                .map_err(|e| format!("{}: {}", measured.label, describe(&e)))?;
            let clock = Instant::now();
            let distribution = measure_margins(&model, &images, &plan, &options, |p| {
                let update = match p {
                    MarginProgress::Batch { s, done } => {
                        FrequencyUpdate::Batch { model: k, s, done }
                    }
                    MarginProgress::Subspace(m) => FrequencyUpdate::Subspace {
                        model: k,
                        subspace: Box::new(m.clone()),
                        labels: m.final_labels.clone(),
                    },
                };
                if self.emit(Event::Frequency { job, update }).is_break() {
                    *ui_gone = true;
                    return ControlFlow::Break(());
                }
                // Every progress report is a batch or subspace boundary: pause waits here and
                // cancel lands here, within one batch.
                steps += 1;
                control.checkpoint(steps)
            })
            .map_err(|e| format!("{}: {}", measured.label, describe(&e)))?;
            if *ui_gone {
                return Ok(false);
            }
            if !distribution.complete() {
                return Ok(false);
            }
            let update = FrequencyUpdate::ModelDone {
                model: k,
                seconds: clock.elapsed().as_secs_f64(),
            };
            if self.emit(Event::Frequency { job, update }).is_break() {
                *ui_gone = true;
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// config.json's source of the loaded model: its checkpoint path, or demo:NAME.
fn main_source(model: &Classifier) -> String {
    let path = &model.spec().weights_path;
    for demo in crate::demo::DemoModel::ALL {
        if path == demo.file() {
            return format!("demo:{demo:?}").to_lowercase();
        }
    }
    path.clone()
}

/// The §4.1 plan of the first model; every model must take the same input and have 2 classes.
fn plan_for(models: &[(&Classifier, MeasuredModel)]) -> Result<SubspacePlan, String> {
    let Some((first, first_m)) = models.first() else {
        return Err("no model to measure".into());
    };
    let spec = first.spec();
    let [h, w] = spec.input_size;
    let plan = SubspacePlan::for_input(spec.channels, h, w)
        .map_err(|e| format!("{}: {}", first_m.label, describe(&e)))?;
    for (c, m) in models {
        let s = c.spec();
        if (s.channels, s.input_size) != (spec.channels, spec.input_size) {
            return Err(format!(
                "{} takes {}×{}×{} images but {} takes {}×{}×{}: overlaid models must share \
                 the input",
                m.label,
                s.channels,
                s.input_size[0],
                s.input_size[1],
                first_m.label,
                spec.channels,
                h,
                w
            ));
        }
        let classes = s.num_classes();
        if classes < 2 {
            return Err(format!(
                "{}: {}",
                m.label,
                FrequencyError::TooFewClasses { classes }
            ));
        }
        if let Some(t) = m.transform {
            t.check(h)
                .map_err(|e| format!("{}: {}", m.label, describe(&e)))?;
        }
    }
    Ok(plan)
}

/// The Ns samples of the seeded draw, at the loaded model's input.
fn load_samples(
    model: &Classifier,
    request: &FrequencyRequest,
) -> Result<FrequencySamples, String> {
    let spec = model.spec();
    let mut out = FrequencySamples {
        pixels: Vec::new(),
        shape: [spec.channels, spec.input_size[0], spec.input_size[1]],
        names: Vec::new(),
        indices: Vec::new(),
        labels: Vec::new(),
        set: String::new(),
    };
    let host = |t: &Tensor| -> Result<Vec<f32>, String> {
        t.to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(err)
    };
    match &request.images {
        FrequencyImages::Gallery => {
            let gallery = crate::demo::gallery();
            if gallery.is_empty() || request.samples == 0 {
                return Err(format!(
                    "no samples: the gallery holds {} images and Samples is {}",
                    gallery.len(),
                    request.samples
                ));
            }
            out.set = "gallery (embedded)".into();
            out.indices = select_samples(request.seed, gallery.len(), request.samples);
            for &i in &out.indices {
                let name = gallery[i].0;
                let path = PathBuf::from(format!("{GALLERY_PREFIX}{name}"));
                let image = InputImage::load(&path, model).map_err(|e| describe(&e))?;
                out.pixels.push(host(&image.pixels)?);
                out.names.push(name.to_string());
                // Gallery names are <class>_<n>: the label where the model knows the class.
                let class = name.rsplit_once('_').map_or(name, |(c, _)| c);
                out.labels.push(
                    spec.class_names
                        .iter()
                        .position(|c| c == class)
                        .map(|k| k as u32),
                );
            }
        }
        FrequencyImages::Folder(path) => {
            let set = LabeledSet::open(path).map_err(|e| {
                format!(
                    "cannot open the image set {}: {}",
                    path.display(),
                    describe(&e)
                )
            })?;
            if set.is_empty() || request.samples == 0 {
                return Err(format!(
                    "no samples: {} holds {} images and Samples is {}",
                    path.display(),
                    set.len(),
                    request.samples
                ));
            }
            out.set = path.display().to_string();
            out.indices = select_samples(request.seed, set.len(), request.samples);
            for &i in &out.indices {
                let x = set
                    .get(i, &spec.preprocess, spec.channels, &Device::Cpu)
                    .map_err(|e| format!("loading {}: {}", set.describe(i), describe(&e)))?;
                out.pixels.push(host(&x)?);
                out.names.push(set.describe(i));
                out.labels.push(Some(set.label(i)));
            }
        }
    }
    Ok(out)
}
