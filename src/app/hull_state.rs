//! The Hull tab's data: the hull shown, the hull beside it (model B's, or one the user pinned),
//! the hulls waiting for their traversals, and the drawing settings both hulls share.

use std::sync::Arc;

use crate::analysis::hull::HullEvaluation;
use crate::run::HullReport;

use super::worker::{FinishedRun, JobId, ModelSource};

/// Which of the two hulls of the tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HullSide {
    /// The hull of the loaded model (or the last one made).
    Main,
    /// The hull beside it: model B's hull of the same triangle, or a pinned one.
    Compare,
}

/// One hull: its two runs, the n = 10 report and the finest lattice so far. It carries its own
/// runs, so what it shows names the model and pair that made it, whatever is loaded now.
#[derive(Default)]
pub struct HullResult {
    /// The two runs the triangle is made of.
    pub runs: Option<[Arc<FinishedRun>; 2]>,
    /// n = 10: the spec's lattice, metrics and profiles.
    pub report: Option<HullReport>,
    /// The finest lattice so far (n = 20, then 40).
    pub refined: Option<HullEvaluation>,
    pub job: Option<JobId>,
    /// (n, done, total) of the lattice being computed.
    pub progress: Option<(usize, usize, usize)>,
}

impl HullResult {
    /// The finest lattice available: (n, confidences).
    pub fn finest(&self) -> Option<(usize, &[f32])> {
        match (&self.refined, &self.report) {
            (Some(r), _) => Some((r.n, &r.confidences)),
            (None, Some(r)) => Some((r.n, &r.confidences)),
            _ => None,
        }
    }

    /// The model that made this hull's runs, as tables name it ("demo-robust").
    pub fn model_name(&self) -> Option<String> {
        self.runs.as_ref().map(|[a, _]| a.record.model.short_name())
    }

    /// Whether `job` fills this hull.
    pub fn is_job(&self, job: JobId) -> bool {
        self.job == Some(job)
    }
}

/// The hull tab's data.
#[derive(Default)]
pub struct HullState {
    pub main: HullResult,
    /// Shown beside `main` on the same colour scale, with its own Table 2 column.
    pub compare: HullResult,
    /// The contour field of the panel.
    pub contours_text: String,
    pub colormap: crate::figures::Colormap,
    /// Hulls waiting for traversals still to run (model A's first, then model B's).
    pub pending: Vec<PendingHull>,
    /// Picked second run (index into `AppState::runs`).
    pub second_run: Option<usize>,
}

impl HullState {
    pub fn side(&self, side: HullSide) -> &HullResult {
        match side {
            HullSide::Main => &self.main,
            HullSide::Compare => &self.compare,
        }
    }

    pub fn side_mut(&mut self, side: HullSide) -> &mut HullResult {
        match side {
            HullSide::Main => &mut self.main,
            HullSide::Compare => &mut self.compare,
        }
    }

    /// The side a hull job fills, if any.
    pub fn side_of(&self, job: JobId) -> Option<HullSide> {
        [HullSide::Main, HullSide::Compare]
            .into_iter()
            .find(|s| self.side(*s).is_job(job))
    }

    /// The contour levels typed into the panel (the lowest 8 when more are typed), or why the
    /// text is not a list of levels in (0, 1).
    pub fn contour_levels(&self) -> Result<Vec<f32>, String> {
        let mut levels = Vec::new();
        for word in self
            .contours_text
            .split([',', ' ', ';'])
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            let v: f32 = word
                .parse()
                .map_err(|_| format!("“{word}” is not a number"))?;
            if !(v > 0.0 && v < 1.0) {
                return Err(format!("{word} is not between 0 and 1"));
            }
            levels.push(v);
        }
        levels.sort_by(f32::total_cmp);
        levels.dedup();
        // The shader draws at most this many; the field's tooltip says so.
        levels.truncate(super::heatmap::MAX_CONTOURS);
        Ok(levels)
    }

    /// The levels to draw: the valid ones typed, else none.
    pub fn drawn_contours(&self) -> Vec<f32> {
        self.contour_levels().unwrap_or_default()
    }

    /// Moves the shown hull beside, so the next hull can be compared with it.
    pub fn pin(&mut self) {
        if self.main.report.is_some() && self.main.job.is_none() {
            self.compare = std::mem::take(&mut self.main);
        }
    }
}

/// Traversals that a hull waits for, and the runs already done.
#[derive(Debug)]
pub struct PendingHull {
    /// Which hull it becomes.
    pub side: HullSide,
    /// The model its traversals and lattice run on (None: the loaded one).
    pub model: Option<ModelSource>,
    pub jobs: Vec<JobId>,
    pub done: Vec<Arc<FinishedRun>>,
    /// Reuse this run as the first corner (the "second target" flow).
    pub first: Option<Arc<FinishedRun>>,
}

impl PendingHull {
    pub fn new(side: HullSide, model: Option<ModelSource>) -> Self {
        Self {
            side,
            model,
            jobs: Vec::new(),
            done: Vec::new(),
            first: None,
        }
    }

    /// The two corners, once both runs are there.
    pub fn corners(&self) -> Option<[Arc<FinishedRun>; 2]> {
        let mut corners: Vec<Arc<FinishedRun>> = self.first.iter().cloned().collect();
        corners.extend(self.done.iter().cloned());
        match corners.as_slice() {
            [a, b, ..] => Some([a.clone(), b.clone()]),
            _ => None,
        }
    }
}
