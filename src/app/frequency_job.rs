//! The app's side of a frequency-margin measurement: starting it from the Frequency tab's
//! settings, applying the worker's updates, and exporting what it measured as the record
//! folder `blindspot margins` writes (through the shared `frequency_record`).

use std::path::Path;

use candle_core::{Device, Tensor};

use crate::figures::margin_plot;
use crate::frequency_record::{MarginRecord, RecordModel, RecordSamples};

use super::BlindspotApp;
use super::export::{export_stem, free_stem, write_figure};
use super::frequency_state::{FrequencyState, ModelMargins};
use super::state::{ActiveJob, ExportKind, JobKind};
use super::worker::{Command, FrequencyRequest, FrequencySamples, FrequencyUpdate, JobId};
use crate::analysis::frequency::{DeepFoolConfig, SubspacePlan};

impl BlindspotApp {
    /// Starts the measurement of the Frequency tab: the loaded model and models B, C.
    pub(super) fn start_frequency(&mut self) -> Result<(), String> {
        if self.state.model.loaded.is_none() {
            return Err("no model is loaded".into());
        }
        let f = &self.state.frequency;
        let images = f.images()?;
        let models = f.models()?;
        let deepfool = f.deepfool()?;
        if f.samples == 0 {
            return Err("Samples is 0: draw at least one sample".into());
        }
        let (samples, seed, batch) = (f.samples, f.seed, f.batch.max(1));
        let id = self.state.next_id();
        let job = ActiveJob::new(
            id,
            JobKind::Frequency,
            0,
            "frequency margins: loading".into(),
        );
        let control = job.control.clone();
        self.state.job = Some(job);
        self.state.frequency.begin(id, deepfool, batch);
        self.worker
            .send(Command::Frequency(Box::new(FrequencyRequest {
                job: id,
                models,
                images,
                samples,
                seed,
                deepfool,
                batch,
                control,
            })));
        Ok(())
    }

    pub(super) fn apply_frequency(&mut self, job: JobId, update: FrequencyUpdate) {
        let st = &mut self.state;
        let done = matches!(update, FrequencyUpdate::Done(_));
        let Some(progress) = st.frequency.apply(job, update) else {
            return;
        };
        if let Some(j) = st.job.as_mut().filter(|j| j.id == job) {
            j.progress = progress;
            if let (Some((m, s, _)), Some(plan)) = (st.frequency.at, &st.frequency.plan) {
                let label = st
                    .frequency
                    .measured
                    .get(m)
                    .map_or("", |x| x.model.label.as_str());
                j.what = format!(
                    "frequency margins: {label}, subspace {}/{}",
                    s + 1,
                    plan.count
                );
            }
        }
        if let Some(e) = st.frequency.error.take() {
            st.error("The frequency margins did not run", e);
        }
        if done {
            if st.job.as_ref().is_some_and(|j| j.id == job) {
                st.job = None;
            }
            self.start_next();
        }
    }
}

/// The measurement shown, copied out of the state for an export thread.
pub struct FrequencyExport {
    pub kind: ExportKind,
    plan: SubspacePlan,
    seed: u64,
    deepfool: DeepFoolConfig,
    batch: usize,
    samples: FrequencySamples,
    models: Vec<ModelMargins>,
    log_scale: bool,
}

impl FrequencyState {
    /// The export of `kind` (record or plot) of the measurement shown.
    pub fn export(&self, kind: ExportKind) -> Result<FrequencyExport, String> {
        let (Some(plan), Some(samples), Some((deepfool, batch, seed))) =
            (self.plan, &self.sample_data, self.ran_with)
        else {
            return Err("no frequency margins have been measured".into());
        };
        if self.is_running() {
            return Err("the measurement is still running".into());
        }
        // The figure and `margins-plot` expect every subspace of every model: a stopped
        // run exports the models it finished.
        let models: Vec<ModelMargins> = self
            .measured
            .iter()
            .filter(|m| m.distribution.complete())
            .cloned()
            .collect();
        if models.is_empty() {
            return Err("no model has all its subspaces measured: let a measurement finish".into());
        }
        Ok(FrequencyExport {
            kind,
            plan,
            seed,
            deepfool,
            batch,
            samples: samples.clone(),
            models,
            log_scale: self.log_scale,
        })
    }
}

impl FrequencyExport {
    fn record(&self) -> MarginRecord<'_> {
        let s = &self.samples;
        MarginRecord {
            plan: self.plan,
            seed: self.seed,
            samples: RecordSamples {
                images: s.set.clone(),
                indices: s.indices.clone(),
                files: s.names.clone(),
                labels: s.labels.clone(),
            },
            deepfool: self.deepfool,
            batch: self.batch,
            models: self
                .models
                .iter()
                .map(|m| RecordModel {
                    label: m.model.label.clone(),
                    source: m.model.source.clone(),
                    transform: m.model.transform,
                    distribution: &m.distribution,
                    seconds: m.seconds.unwrap_or(f64::NAN),
                })
                .collect(),
        }
    }

    pub fn write(self, dir: &Path, scale: f32) -> Result<String, String> {
        let record = self.record();
        // Named like every export: what, the models measured, and when.
        let models: Vec<&str> = self.models.iter().map(|m| m.model.label.as_str()).collect();
        let now = std::time::SystemTime::now();
        match self.kind {
            ExportKind::FrequencyPlot => write_figure(
                &margin_plot(&record.plot_data(self.log_scale, None)),
                dir,
                &export_stem("margin-plot", None, &models.join("+"), now),
                scale,
            ),
            _ => {
                let stem = export_stem("margins", None, &models.join("+"), now);
                let out = dir.join(free_stem(dir, &stem, &[]));
                let first = self
                    .samples
                    .pixels
                    .first()
                    .ok_or_else(|| "no samples".to_string())?;
                let image = Tensor::from_vec(first.clone(), &self.samples.shape[..], &Device::Cpu)
                    .map_err(|e| e.to_string())?;
                record
                    .write(&out, &image, self.log_scale)
                    .map_err(|e| format!("writing {}: {e}", out.display()))?;
                Ok(format!("wrote the margin record {}", out.display()))
            }
        }
    }
}
