//! What a walk takes and gives: pairs, statuses, per-step events and per-pair outputs. The
//! same types serve LST and NSPGD (ALGORITHMS.md §1.4, §2.2).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::super::error::Result;
use super::super::metrics::Distances;
use super::super::width::WidthMeasurement;

/// One (source, target) pair to traverse.
#[derive(Clone, Debug)]
pub struct WalkPair {
    /// x_s, [C, H, W] in [0, 1].
    pub source: Tensor,
    /// y, the source class.
    pub label: u32,
    /// x_t, [C, H, W] in [0, 1].
    pub target: Tensor,
    /// y_t, used for logging only.
    pub target_label: u32,
    /// Index of the pair within the run (§1.3); keys the noise and the width directions.
    pub pair_id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SkipReason {
    /// argmax p(x_s) ≠ y.
    MisclassifiedSource,
    /// The source's logits are not all finite, so it has no prediction.
    NonFiniteSourceLogits,
}

impl SkipReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::MisclassifiedSource => "misclassified source",
            Self::NonFiniteSourceLogits => "non-finite source logits",
        }
    }
}

/// How a pair's walk ended. LST pairs end `Done` or `Skipped`; NSPGD pairs `Completed`,
/// `Finished` or `Invalid` (the names of ALGORITHMS.md §1.4 and §2.2); either can be `Stopped`
/// by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PairStatus {
    /// LST: all m iterations ran.
    Done,
    /// The caller stopped the run after `steps` iterations; the outputs describe that iterate.
    Stopped { steps: usize },
    /// LST: the source was not run.
    Skipped(SkipReason),
    /// NSPGD: all iterations were accepted.
    Completed,
    /// NSPGD: the step of iteration `steps` was rejected, so the walk finished there with
    /// `steps` accepted steps (Finished(k) of §2.2).
    Finished { steps: usize },
    /// NSPGD: the source was not run (scored as an invalid pair).
    Invalid(SkipReason),
}

impl PairStatus {
    /// True when the pair never ran (a misclassified source, or undefined logits).
    pub fn is_skipped(self) -> bool {
        matches!(self, Self::Skipped(_) | Self::Invalid(_))
    }

    /// A short human label: "done", "finished at 12", "stopped at 7", "skipped (…)".
    pub fn label(self) -> String {
        match self {
            Self::Done => "done".into(),
            Self::Completed => "completed".into(),
            Self::Finished { steps } => format!("finished at {steps}"),
            Self::Stopped { steps } => format!("stopped at {steps}"),
            Self::Skipped(reason) => format!("skipped ({})", reason.label()),
            Self::Invalid(reason) => format!("invalid ({})", reason.label()),
        }
    }
}

/// What is known about a pair before the loop starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairStart {
    /// Index of the pair in the input slice.
    pub pair_index: usize,
    pub pair_id: u64,
    /// p0 = p(x_s)[y] of the un-noised source (0 when undefined).
    pub p0: f32,
    /// argmax p(x_s), when the logits are finite.
    pub predicted: Option<u32>,
    pub skipped: Option<SkipReason>,
}

/// A logged iterate (§1.4): the iterate x BEFORE the step of iteration `step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedIterate {
    pub step: usize,
    /// step / log_step.
    pub log_index: usize,
    /// p(x)[y].
    pub source_conf: f32,
    /// p(x)[y_t].
    pub target_conf: f32,
    /// x, [C, H, W] row-major.
    pub image: Vec<f32>,
    /// The §1.5 width block at x, when widths are on.
    pub width: Option<WidthMeasurement>,
}

/// One sample's part of a step event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleStep {
    pub pair_index: usize,
    pub pair_id: u64,
    /// p(x)[y] of the current iterate, after the accept/reject decision.
    pub source_conf: f32,
    /// p(x)[y_t] of the current iterate.
    pub target_conf: f32,
    /// ‖x − x_t‖₂ / √(C·H·W) of the current iterate.
    pub l2: f32,
    /// max |x − x_t| of the current iterate.
    pub linf: f32,
    pub accepted: bool,
    /// At logged iterations: the iterate before this step.
    pub logged: Option<LoggedIterate>,
}

/// Everything one iteration produced, for every sample that runs (skipped pairs never appear).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepEvent {
    /// Iteration index i, 0-based.
    pub step: usize,
    pub samples: Vec<SampleStep>,
}

/// The outputs of one pair that ran (§1.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairResult {
    /// [C, H, W].
    pub shape: [usize; 3],
    /// x*, row-major.
    pub x_star: Vec<f32>,
    /// [L + 1] rows of (p(·)[y], p(·)[y_t]); the last row is x*.
    pub confs: Vec<[f32; 2]>,
    /// The iteration of each logged row.
    pub logged_steps: Vec<usize>,
    /// Table 1 distances of x* to x_t.
    pub distances: Distances,
    /// [L] logged iterates, when `record_images`.
    pub images: Option<Vec<Vec<f32>>>,
    /// [L] width blocks, when widths are on.
    pub widths: Option<Vec<WidthMeasurement>>,
    /// Iterations that ran and how many of them were accepted.
    pub steps: usize,
    pub accepted_steps: usize,
}

impl PairResult {
    /// x* as a [C, H, W] tensor.
    pub fn x_star_tensor(&self, device: &candle_core::Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.x_star,
            self.shape.as_slice(),
            device,
        )?)
    }
}

/// The per-pair output. Skipped pairs are reported with `result: None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairOutput {
    pub pair_index: usize,
    pub pair_id: u64,
    pub label: u32,
    pub target_label: u32,
    /// p0 = p(x_s)[y] (0 when undefined).
    pub p0: f32,
    pub status: PairStatus,
    pub result: Option<PairResult>,
}
