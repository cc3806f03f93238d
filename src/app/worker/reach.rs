//! The reach evaluation (ALGORITHMS.md §2.3) as a worker job: the same `run_reach` as
//! `blindspot reach`, so the folder it writes is the CLI's (and `reach-table` reads it), with its
//! events forwarded to the UI. Cancel breaks out of `run_reach` at the next walker iteration;
//! the pairs of finished batches are on disk already, so the folder resumes.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::images::LabeledSet;
use crate::models::{Classifier, LoadOptions, load_classifier};
use crate::reach::{
    ReachEvent, ReachOptions, ReachPairRecord, ReachPlanRecord, ReachSummary, run_reach,
};

use super::{Event, JobControl, JobId, ModelSource, WorkerState, describe};

/// What the UI asks for.
#[derive(Debug)]
pub struct ReachRequest {
    pub job: JobId,
    /// An ImageFolder tree, a folder with labels.tsv, or a .safetensors set.
    pub images: PathBuf,
    pub options: ReachOptions,
    /// The evaluation folder; it is resumed when it already holds a plan.
    pub out: PathBuf,
    /// Another model of the comparison: the targets must suit it too (`--pool-model`).
    pub pool: Option<ModelSource>,
    pub control: Arc<JobControl>,
}

/// How a reach evaluation is getting on.
#[derive(Debug)]
pub enum ReachUpdate {
    /// The plan is fixed; `done` pairs were on disk already (a resume).
    Started {
        plan: Box<ReachPlanRecord>,
        done: Vec<ReachPairRecord>,
        out: PathBuf,
    },
    /// Iteration `step` of the current batch of `walking` pairs ran.
    Step {
        step: usize,
        iterations: usize,
        walking: usize,
    },
    /// These pairs finished and are on disk.
    Pairs {
        new: Vec<ReachPairRecord>,
        done: usize,
        total: usize,
    },
    /// The evaluation ended: complete (the outputs are written), stopped, or failed.
    Done(Result<Box<ReachFinished>, String>),
}

#[derive(Debug)]
pub struct ReachFinished {
    pub summary: ReachSummary,
    pub out: PathBuf,
}

/// The CLI's flags in an error message, said the way the app's Reach tab says them.
fn in_app_words(message: &str) -> String {
    message
        .replace("pass --resume to continue it, or choose", "choose")
        .replace("--classes", "the Classes field")
        .replace("--out", "output folder")
}

impl WorkerState {
    pub(super) fn reach(&self, request: &ReachRequest) -> ControlFlow<()> {
        let job = request.job;
        let mut ui_gone = false;
        let result = self.reach_inner(request, &mut ui_gone);
        if ui_gone {
            return ControlFlow::Break(());
        }
        let update = ReachUpdate::Done(result.map(Box::new).map_err(|e| in_app_words(&e)));
        self.emit(Event::Reach { job, update })
    }

    fn reach_inner(
        &self,
        request: &ReachRequest,
        ui_gone: &mut bool,
    ) -> Result<ReachFinished, String> {
        let model = self.model()?;
        let pool: Option<Classifier> = match &request.pool {
            None => None,
            Some(source) => {
                let opts = LoadOptions::default();
                let loaded = match source {
                    ModelSource::Demo(demo) => demo.load(&opts),
                    ModelSource::File(path) => load_classifier(path, &opts),
                };
                Some(loaded.map_err(|e| {
                    format!(
                        "cannot load the pool model {}: {}",
                        source.label(),
                        describe(&e)
                    )
                })?)
            }
        };
        let also: Vec<&Classifier> = pool.iter().collect();
        let set = LabeledSet::open(&request.images).map_err(|e| {
            format!(
                "cannot open the image set {}: {}",
                request.images.display(),
                describe(&e)
            )
        })?;
        let resume = request.out.join(crate::reach::PLAN_JSON).is_file();
        let job = request.job;
        let control = &request.control;
        let mut steps = 0usize;
        let result = run_reach(
            model,
            self.lpips.as_ref(),
            &also,
            &set,
            &request.images.display().to_string(),
            &request.options,
            &request.out,
            &crate::run_folder::BatchRun::resuming(resume),
            |event| {
                let update = match event {
                    ReachEvent::Started { plan, done } => ReachUpdate::Started {
                        plan: Box::new(plan.clone()),
                        done: done.to_vec(),
                        out: request.out.clone(),
                    },
                    ReachEvent::Step {
                        step,
                        iterations,
                        walking,
                    } => ReachUpdate::Step {
                        step,
                        iterations,
                        walking,
                    },
                    ReachEvent::Pairs { new, done, total } => ReachUpdate::Pairs {
                        new: new.to_vec(),
                        done,
                        total,
                    },
                };
                if self.emit(Event::Reach { job, update }).is_break() {
                    *ui_gone = true;
                    return ControlFlow::Break(());
                }
                // Every event is a walker iteration or a batch boundary: pause waits here and
                // cancel lands here, well within one batch.
                steps += 1;
                control.checkpoint(steps)
            },
        )
        .map_err(|e| describe(&e))?;
        Ok(ReachFinished {
            summary: result.summary,
            out: request.out.clone(),
        })
    }
}
