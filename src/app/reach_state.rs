//! What the Reach tab knows: its settings, and the evaluation being made or last made (plan,
//! the pairs so far and their summary), filled from the worker's [`ReachUpdate`]s. The live
//! hit-rate matrix is `reach::summarize` over the pairs so far, the same function that writes
//! `reach.json`. Nothing in this file draws.

use std::path::{Path, PathBuf};

use crate::analysis::NspgdConfig;
use crate::reach::{
    DEFAULT_CLASSES, ReachOptions, ReachPairRecord, ReachPlanRecord, ReachSummary, summarize,
};

use super::worker::{JobId, ModelSource, ReachUpdate};

/// The folder of the runs folder that holds the app's reach evaluations (the history skips it).
pub const REACH_DIR: &str = crate::history::REACH_DIR;

pub struct ReachState {
    /// The labelled image set: an ImageFolder tree, a folder with labels.tsv, or .safetensors.
    pub images_text: String,
    /// Sources per class (the first N of each class); 0 takes them all.
    pub per_class: usize,
    pub batch: usize,
    /// The first this many sources of each class also measure path widths.
    pub width_sources: usize,
    /// The classes with a target, comma-separated; empty is 0..=9.
    pub classes_text: String,
    /// Another model whose targets must suit too: empty, demo:standard, demo:robust or a path.
    pub pool_text: String,
    /// The evaluation folder; empty picks one in the runs folder from the settings.
    pub out_text: String,

    /// The running evaluation.
    pub job: Option<JobId>,
    pub plan: Option<Box<ReachPlanRecord>>,
    pub out: Option<PathBuf>,
    /// The pairs so far, in the order they finished.
    pub records: Vec<ReachPairRecord>,
    /// `summarize(plan, records)`, refreshed as pairs arrive.
    pub summary: Option<ReachSummary>,
    /// Pairs that were on disk when it started (a resume).
    pub resumed: usize,
    /// (iteration, iterations, pairs walking) of the current batch.
    pub step: Option<(usize, usize, usize)>,
    /// How the last evaluation ended; None while one runs or before the first.
    pub ended: Option<Ended>,
    /// Why the last start or run failed, shown in the tab.
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every pair is done; the tables and figures are written.
    Complete,
    /// Cancelled; the folder resumes.
    Stopped,
}

impl Default for ReachState {
    fn default() -> Self {
        Self {
            images_text: String::new(),
            per_class: 10,
            batch: ReachOptions::default().batch,
            width_sources: 0,
            classes_text: String::new(),
            pool_text: String::new(),
            out_text: String::new(),
            job: None,
            plan: None,
            out: None,
            records: Vec::new(),
            summary: None,
            resumed: 0,
            step: None,
            ended: None,
            error: None,
        }
    }
}

/// 64-bit FNV-1a, for a short folder suffix that changes with the settings.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Letters, digits, '-' and '_' only, so the name is a plain folder name everywhere.
fn folder_safe(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').to_string()
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl ReachState {
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    pub fn images(&self) -> Result<PathBuf, String> {
        let text = self.images_text.trim();
        if text.is_empty() {
            return Err(
                "choose the images: an ImageFolder tree (one folder per class), a \
                        folder with labels.tsv, or a .safetensors set"
                    .into(),
            );
        }
        Ok(PathBuf::from(text))
    }

    /// The evaluation's options: NSPGD's settings from the Parameters panel (widths are set
    /// per source by `width_sources`), and this tab's.
    pub fn options(&self, nspgd: &NspgdConfig) -> Result<ReachOptions, String> {
        let mut config = nspgd.clone();
        config.width.enabled = false;
        config.record_images = false;
        config.validate().map_err(|e| e.to_string())?;
        let classes = if self.classes_text.trim().is_empty() {
            (0..DEFAULT_CLASSES as u32).collect()
        } else {
            self.classes_text
                .split([',', ' ', ';'])
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    s.trim().parse::<u32>().map_err(|_| {
                        format!("Classes: `{}` is not a class index (0, 1, 2, …)", s.trim())
                    })
                })
                .collect::<Result<Vec<u32>, String>>()?
        };
        if self.batch == 0 {
            return Err("the batch size must be at least 1".into());
        }
        Ok(ReachOptions {
            config,
            batch: self.batch,
            classes,
            per_class: (self.per_class > 0).then_some(self.per_class),
            width_sources: self.width_sources,
        })
    }

    /// The pool model typed in, if any.
    pub fn pool(&self) -> Option<ModelSource> {
        let text = self.pool_text.trim();
        match text {
            "" | "none" => None,
            "demo:standard" => Some(ModelSource::Demo(crate::demo::DemoModel::Standard)),
            "demo:robust" => Some(ModelSource::Demo(crate::demo::DemoModel::Robust)),
            path => Some(ModelSource::File(PathBuf::from(path))),
        }
    }

    /// The folder typed in, else `runs/reach/<model>_<images>_<settings hash>`: the same
    /// settings land in the same folder (and resume), other settings in a new one.
    pub fn out_dir(
        &self,
        runs: Option<&Path>,
        model: &ModelSource,
        options: &ReachOptions,
    ) -> Result<PathBuf, String> {
        let text = self.out_text.trim();
        if !text.is_empty() {
            return Ok(PathBuf::from(text));
        }
        let runs = runs.ok_or_else(|| {
            "this session keeps no runs folder: type an output folder".to_string()
        })?;
        let model = match model {
            ModelSource::Demo(d) => d.label().to_string(),
            ModelSource::File(p) => stem(p),
        };
        let images = self.images()?;
        let key = format!(
            "{}|{}|{}|{}",
            serde_json::to_string(options).map_err(|e| e.to_string())?,
            images.display(),
            self.pool_text.trim(),
            model
        );
        let name = format!(
            "{}_{}_{:08x}",
            folder_safe(&model),
            folder_safe(&stem(&images)),
            fnv1a(key.as_bytes()) as u32
        );
        Ok(runs.join(REACH_DIR).join(name))
    }

    /// A new evaluation is on its way: forget the last one's results.
    pub fn begin(&mut self, job: JobId) {
        self.job = Some(job);
        self.plan = None;
        self.out = None;
        self.records.clear();
        self.summary = None;
        self.resumed = 0;
        self.step = None;
        self.ended = None;
        self.error = None;
    }

    /// Applies an update of job `job`; returns (pairs done, total) for the progress bar, or
    /// None when the update is not for the running evaluation.
    pub fn apply(&mut self, job: JobId, update: ReachUpdate) -> Option<(usize, usize)> {
        if self.job != Some(job) {
            return None;
        }
        match update {
            ReachUpdate::Started { plan, done, out } => {
                self.resumed = done.len();
                self.records = done;
                self.summary = Some(summarize(&plan, &self.records));
                self.plan = Some(plan);
                self.out = Some(out);
            }
            ReachUpdate::Step {
                step,
                iterations,
                walking,
            } => self.step = Some((step, iterations, walking)),
            ReachUpdate::Pairs { new, .. } => {
                self.records.extend(new);
                if let Some(plan) = &self.plan {
                    self.summary = Some(summarize(plan, &self.records));
                }
                self.step = None;
            }
            ReachUpdate::Done(result) => {
                self.job = None;
                self.step = None;
                match result {
                    Ok(finished) => {
                        self.ended = Some(if finished.summary.complete() {
                            Ended::Complete
                        } else {
                            Ended::Stopped
                        });
                        self.out = Some(finished.out);
                        self.summary = Some(finished.summary);
                    }
                    Err(e) => self.error = Some(e),
                }
            }
        }
        Some(self.progress())
    }

    /// (pairs done, pairs total), (0, 0) before the plan is fixed.
    pub fn progress(&self) -> (usize, usize) {
        self.summary
            .as_ref()
            .map_or((0, 0), |s| (s.pairs_done, s.pairs_total))
    }

    /// Valid pairs per matrix cell (row = source class position, column = target position).
    pub fn valid_counts(&self) -> Vec<Vec<usize>> {
        let Some(plan) = &self.plan else {
            return Vec::new();
        };
        let k = plan.classes.len();
        let position = |c: u32| plan.classes.iter().position(|&x| x == c);
        let mut counts = vec![vec![0usize; k]; k];
        for r in self.records.iter().filter(|r| r.valid()) {
            if let (Some(s), Some(t)) = (position(r.source_class), position(r.target_class)) {
                counts[s][t] += 1;
            }
        }
        counts
    }

    /// The figures a complete evaluation wrote.
    pub fn figures(&self) -> Vec<PathBuf> {
        match (&self.out, self.ended) {
            (Some(out), Some(Ended::Complete)) => ["hit_matrix", "examples_grid"]
                .iter()
                .flat_map(|n| ["png", "svg"].map(|e| out.join(format!("{n}.{e}"))))
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_folder_follows_the_settings() {
        let mut s = ReachState {
            images_text: "/data/shapes".into(),
            ..ReachState::default()
        };
        let model = ModelSource::Demo(crate::demo::DemoModel::Standard);
        let nspgd = NspgdConfig::default();
        let runs = Path::new("/runs");
        let a = s.out_dir(Some(runs), &model, &s.options(&nspgd).unwrap());
        let again = s.out_dir(Some(runs), &model, &s.options(&nspgd).unwrap());
        assert_eq!(a, again);
        let a = a.unwrap();
        assert!(a.starts_with("/runs/reach"), "{a:?}");
        assert!(
            a.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("demo-standard_shapes_")
        );
        s.per_class = 3;
        let b = s.out_dir(Some(runs), &model, &s.options(&nspgd).unwrap());
        assert_ne!(Ok(a), b);
        s.out_text = "/elsewhere".into();
        assert_eq!(
            s.out_dir(None, &model, &s.options(&nspgd).unwrap()),
            Ok(PathBuf::from("/elsewhere"))
        );
    }

    #[test]
    fn bad_classes_and_batch_are_refused_with_the_field_named() {
        let nspgd = NspgdConfig::default();
        let mut s = ReachState {
            classes_text: "0, 1, x".into(),
            ..ReachState::default()
        };
        assert!(s.options(&nspgd).unwrap_err().contains("`x`"));
        s.classes_text = "0,1 2".into();
        assert_eq!(s.options(&nspgd).unwrap().classes, vec![0, 1, 2]);
        s.batch = 0;
        assert!(s.options(&nspgd).unwrap_err().contains("batch"));
        assert!(ReachState::default().images().is_err());
    }
}
