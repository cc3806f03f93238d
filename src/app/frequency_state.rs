//! The Frequency tab's data: its settings, and the margins of each model as the worker reports
//! them, subspace by subspace. Nothing here draws.

use std::path::PathBuf;

use crate::analysis::frequency::{
    DeepFoolConfig, DeepFoolStatus, FrequencyTransform, MarginDistribution, SubspaceMargins,
    SubspacePlan,
};

use super::worker::{
    FrequencyImages, FrequencyModel, FrequencySamples, FrequencyUpdate, JobId, MeasuredModel,
    ModelSource,
};

/// Samples drawn by default: enough for quartiles, few enough to watch the plot fill.
pub const DEFAULT_SAMPLES: usize = 10;

/// How a measurement ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Complete,
    Stopped,
    Failed,
}

/// One model's margins so far.
#[derive(Clone, Debug)]
pub struct ModelMargins {
    pub model: MeasuredModel,
    /// The finished subspaces, low to high.
    pub distribution: MarginDistribution,
    /// [s][k]: the label of sample k at its perturbed input in subspace s.
    pub labels: Vec<Vec<u32>>,
    /// Set once every subspace is done.
    pub seconds: Option<f64>,
}

/// A clicked point: model, subspace, sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub model: usize,
    pub s: usize,
    pub sample: usize,
}

/// What one clicked point shows.
#[derive(Clone, Debug)]
pub struct PointDetail<'a> {
    pub margin: f32,
    pub status: DeepFoolStatus,
    pub iterations: u32,
    /// [C, N, N] (1+os)·r.
    pub perturbation: &'a [f32],
    pub new_label: Option<u32>,
}

pub struct FrequencyState {
    /// The embedded gallery (else the folder).
    pub use_gallery: bool,
    pub folder_text: String,
    pub samples: usize,
    pub seed: u64,
    pub overshoot: f64,
    pub max_iter: usize,
    pub batch: usize,
    /// Models B and C (None: not used); the loaded model is always model A.
    pub extra: [Option<ModelSource>; 2],
    /// Input transform of models A, B, C as typed (empty: none).
    pub transform_text: [String; 3],
    pub log_scale: bool,

    pub job: Option<JobId>,
    pub plan: Option<SubspacePlan>,
    pub measured: Vec<ModelMargins>,
    pub sample_data: Option<FrequencySamples>,
    /// (model, subspace, samples done) of the latest batch.
    pub at: Option<(usize, usize, usize)>,
    pub ended: Option<Ended>,
    /// Why the last measurement failed (shown as a notice by the app).
    pub error: Option<String>,
    pub selected: Option<Selection>,
    /// The settings of the measurement shown (for the record).
    pub ran_with: Option<(DeepFoolConfig, usize, u64)>,
}

impl Default for FrequencyState {
    fn default() -> Self {
        let deepfool = DeepFoolConfig::default();
        Self {
            use_gallery: true,
            folder_text: String::new(),
            samples: DEFAULT_SAMPLES,
            seed: 0,
            overshoot: deepfool.overshoot,
            max_iter: deepfool.max_iter,
            batch: 16,
            extra: [None, None],
            transform_text: Default::default(),
            log_scale: false,
            job: None,
            plan: None,
            measured: Vec::new(),
            sample_data: None,
            at: None,
            ended: None,
            error: None,
            selected: None,
            ran_with: None,
        }
    }
}

/// A typed transform: empty or "none" is no transform.
pub fn parse_transform(text: &str) -> Result<Option<FrequencyTransform>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    text.parse::<FrequencyTransform>()
        .map(Some)
        .map_err(|e| e.to_string())
}

impl FrequencyState {
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    pub fn images(&self) -> Result<FrequencyImages, String> {
        if self.use_gallery {
            return Ok(FrequencyImages::Gallery);
        }
        let text = self.folder_text.trim();
        if text.is_empty() {
            return Err("choose the images: the gallery, or a folder".into());
        }
        Ok(FrequencyImages::Folder(PathBuf::from(text)))
    }

    pub fn deepfool(&self) -> Result<DeepFoolConfig, String> {
        let config = DeepFoolConfig {
            overshoot: self.overshoot,
            max_iter: self.max_iter,
            ..DeepFoolConfig::default()
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Model A (the loaded one), then B and C where chosen, each with its transform.
    pub fn models(&self) -> Result<Vec<FrequencyModel>, String> {
        let names = ["model A", "model B", "model C"];
        let sources = [None, self.extra[0].clone(), self.extra[1].clone()];
        let mut out = Vec::new();
        for (k, source) in sources.into_iter().enumerate() {
            if k > 0 && source.is_none() {
                continue;
            }
            let transform = parse_transform(&self.transform_text[k])
                .map_err(|e| format!("the input transform of {}: {e}", names[k]))?;
            out.push(FrequencyModel { source, transform });
        }
        Ok(out)
    }

    /// Forgets the last measurement and waits for job `id`.
    pub fn begin(&mut self, id: JobId, config: DeepFoolConfig, batch: usize) {
        self.job = Some(id);
        self.ran_with = Some((config, batch, self.seed));
        self.plan = None;
        self.measured.clear();
        self.sample_data = None;
        self.at = None;
        self.ended = None;
        self.error = None;
        self.selected = None;
    }

    /// Sample-subspaces done and in all, over every model.
    pub fn progress(&self) -> (usize, usize) {
        let (Some(plan), Some(samples)) = (&self.plan, &self.sample_data) else {
            return (0, 0);
        };
        let per_model = plan.count * samples.pixels.len();
        let total = per_model * self.measured.len();
        let done = match self.at {
            None => 0,
            Some((m, s, done)) => m * per_model + s * samples.pixels.len() + done,
        };
        (done.min(total), total)
    }

    /// Applies a worker update of job `job`; None when it is not this tab's job.
    pub fn apply(&mut self, job: JobId, update: FrequencyUpdate) -> Option<(usize, usize)> {
        if self.job != Some(job) {
            return None;
        }
        match update {
            FrequencyUpdate::Started {
                plan,
                models,
                samples,
            } => {
                let n = samples.pixels.len();
                self.plan = Some(plan);
                self.measured = models
                    .into_iter()
                    .map(|model| ModelMargins {
                        model,
                        distribution: MarginDistribution {
                            plan,
                            samples: n,
                            subspaces: Vec::new(),
                        },
                        labels: Vec::new(),
                        seconds: None,
                    })
                    .collect();
                self.sample_data = Some(*samples);
            }
            FrequencyUpdate::Batch { model, s, done } => self.at = Some((model, s, done)),
            FrequencyUpdate::Subspace {
                model,
                subspace,
                labels,
            } => {
                if let Some(m) = self.measured.get_mut(model) {
                    m.distribution.subspaces.push(*subspace);
                    m.labels.push(labels);
                }
            }
            FrequencyUpdate::ModelDone { model, seconds } => {
                if let Some(m) = self.measured.get_mut(model) {
                    m.seconds = Some(seconds);
                }
            }
            FrequencyUpdate::Done(result) => {
                self.job = None;
                self.ended = Some(match result {
                    Ok(true) => Ended::Complete,
                    Ok(false) => Ended::Stopped,
                    Err(e) => {
                        self.error = Some(e);
                        Ended::Failed
                    }
                });
            }
        }
        Some(self.progress())
    }

    /// Every model has every subspace.
    pub fn complete(&self) -> bool {
        !self.measured.is_empty() && self.measured.iter().all(|m| m.distribution.complete())
    }

    /// What the selected point shows, if it exists.
    pub fn detail(&self, sel: Selection) -> Option<PointDetail<'_>> {
        let m = self.measured.get(sel.model)?;
        let sub: &SubspaceMargins = m.distribution.subspaces.get(sel.s)?;
        Some(PointDetail {
            margin: *sub.margins.get(sel.sample)?,
            status: *sub.statuses.get(sel.sample)?,
            iterations: *sub.iterations.get(sel.sample)?,
            perturbation: sub.perturbations.as_ref()?.get(sel.sample)?,
            new_label: m.labels.get(sel.s).and_then(|l| l.get(sel.sample)).copied(),
        })
    }
}
