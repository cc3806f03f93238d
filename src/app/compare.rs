//! Comparing two models on the same inputs, the seeds' central finding (a robust model's paths
//! are wider and its hulls more confident). Model B runs beside the loaded model: Run walks the
//! pair on both, "Run both + hull" makes both hulls. Each view then finds the run to show beside
//! the shown one: the one the user picked, or by default the newest run of the same pair and
//! walk on another model. Also the rules that keep a shown result honest about what made it.

use std::sync::Arc;

use crate::models::ModelSpec;
use crate::record::RunRecord;

use super::state::AppState;
use super::worker::{FinishedRun, ImageSource, ModelSource, Slot};

/// Which run the traversal and widths views show beside the shown one.
#[derive(Clone, Debug, Default)]
pub enum ComparePick {
    /// The newest run of the same pair and walk on another model, if there is one.
    #[default]
    Auto,
    /// The shown run alone.
    Off,
    /// A run the user picked (pinned).
    Run(Arc<FinishedRun>),
}

/// The compare mode's settings.
#[derive(Clone, Debug, Default)]
pub struct CompareState {
    /// Model B: Run and the hull's "Run both + hull" also run on it, right after model A.
    pub model_b: Option<ModelSource>,
    /// The second model's weights, once one of its runs has come back.
    pub model_b_sha: Option<String>,
    pub pick: ComparePick,
}

/// Whether two records are the same walk of the same pair (images by content).
pub fn same_pair(a: &RunRecord, b: &RunRecord) -> bool {
    a.source.sha256 == b.source.sha256
        && a.target.sha256 == b.target.sha256
        && a.config.method() == b.config.method()
}

impl AppState {
    /// The newest finished run of `run`'s pair and walk made with another model.
    pub fn counterpart(&self, run: &FinishedRun) -> Option<&Arc<FinishedRun>> {
        self.runs.iter().rev().find(|r| {
            same_pair(&r.record, &run.record)
                && r.record.model.weights_sha256 != run.record.model.weights_sha256
        })
    }

    /// The run to show beside `shown`, as the compare pick says.
    pub fn comparison_for(&self, shown: &Arc<FinishedRun>) -> Option<Arc<FinishedRun>> {
        match &self.compare.pick {
            ComparePick::Off => None,
            ComparePick::Auto => self.counterpart(shown).cloned(),
            ComparePick::Run(r) => (!Arc::ptr_eq(r, shown)).then(|| r.clone()),
        }
    }

    /// Why a finished result no longer matches what is picked now, in a line; None while it
    /// does. A result keeps showing (it carries its own record), marked, until the user runs
    /// again: clearing it would lose what a user is looking at.
    pub fn stale_reason(&self, record: &RunRecord) -> Option<String> {
        let mut reasons: Vec<String> = self.model_stale_reason(&record.model).into_iter().collect();
        let picked = |slot: Slot| &self.slot(slot).source;
        let differs = |path: &str, slot: Slot| ImageSource::parse(path) != *picked(slot);
        if differs(&record.source.path, Slot::Source) || differs(&record.target.path, Slot::Target)
        {
            reasons.push(format!(
                "the picked pair is {} → {} now",
                picked(Slot::Source).label(),
                picked(Slot::Target).label()
            ));
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// Why a result made with `made_with` is not the current models' (neither the loaded one
    /// nor the second model of a comparison), if it is not.
    pub fn model_stale_reason(&self, made_with: &ModelSpec) -> Option<String> {
        let sha = &made_with.weights_sha256;
        let by_second = self.compare.model_b_sha.as_ref() == Some(sha);
        let spec = self.spec()?;
        (spec.weights_sha256 != *sha && !by_second).then(|| {
            format!(
                "made with {}, and {} is loaded now",
                made_with.short_name(),
                spec.short_name()
            )
        })
    }
}
