//! The per-variant rules of the one walker: which gradient, which projection, whether the
//! iterate is clamped, the initial noise, the adversarial accumulator, acceptance, stopping
//! and when widths are measured (ALGORITHMS.md §2.1's table, row by row).

use serde::{Deserialize, Serialize};

use super::super::error::Result;
use super::super::lst::LstConfig;
use super::super::nspgd::NspgdConfig;
use super::super::width::WidthConfig;
use super::projection::Sidedness;
use crate::models::Objective;

/// A walk's method and settings. Serialised with a `method` tag beside the settings, so a
/// run record says which walk made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum WalkConfig {
    Lst(LstConfig),
    Nspgd(NspgdConfig),
}

/// The two walks, for menus and labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    #[default]
    Lst,
    Nspgd,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Self::Lst => "LST",
            Self::Nspgd => "NSPGD",
        }
    }

    /// The symbol of the acceptance threshold (§1.1's δ, §2.1's τ), for labels.
    pub fn threshold_symbol(self) -> &'static str {
        match self {
            Self::Lst => "δ",
            Self::Nspgd => "τ",
        }
    }
}

impl From<LstConfig> for WalkConfig {
    fn from(c: LstConfig) -> Self {
        Self::Lst(c)
    }
}

impl From<&LstConfig> for WalkConfig {
    fn from(c: &LstConfig) -> Self {
        Self::Lst(c.clone())
    }
}

impl From<NspgdConfig> for WalkConfig {
    fn from(c: NspgdConfig) -> Self {
        Self::Nspgd(c)
    }
}

impl From<&NspgdConfig> for WalkConfig {
    fn from(c: &NspgdConfig) -> Self {
        Self::Nspgd(c.clone())
    }
}

/// What a rejection does to a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnReject {
    /// Nothing: the next proposal differs (LST with the adversarial term).
    Continue,
    /// The sample can never move again, but it keeps being logged (LST without the
    /// adversarial term; NSPGD without the early finish).
    Freeze,
    /// The sample's walk ends here (NSPGD).
    Finish,
}

impl WalkConfig {
    pub fn method(&self) -> Method {
        match self {
            Self::Lst(_) => Method::Lst,
            Self::Nspgd(_) => Method::Nspgd,
        }
    }

    pub fn lst(&self) -> Option<&LstConfig> {
        match self {
            Self::Lst(c) => Some(c),
            Self::Nspgd(_) => None,
        }
    }

    pub fn nspgd(&self) -> Option<&NspgdConfig> {
        match self {
            Self::Nspgd(c) => Some(c),
            Self::Lst(_) => None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Lst(c) => c.validate(),
            Self::Nspgd(c) => c.validate(),
        }
    }

    pub fn iterations(&self) -> usize {
        match self {
            Self::Lst(c) => c.iterations,
            Self::Nspgd(c) => c.iterations,
        }
    }

    pub fn step_size(&self) -> f32 {
        match self {
            Self::Lst(c) => c.step_size,
            Self::Nspgd(c) => c.step_size,
        }
    }

    pub fn log_step(&self) -> usize {
        match self {
            Self::Lst(c) => c.log_step,
            Self::Nspgd(c) => c.log_step,
        }
    }

    pub fn num_logs(&self) -> usize {
        match self {
            Self::Lst(c) => c.num_logs(),
            Self::Nspgd(c) => c.num_logs(),
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            Self::Lst(c) => c.seed,
            Self::Nspgd(c) => c.seed,
        }
    }

    pub fn width(&self) -> &WidthConfig {
        match self {
            Self::Lst(c) => &c.width,
            Self::Nspgd(c) => &c.width,
        }
    }

    pub fn width_mut(&mut self) -> &mut WidthConfig {
        match self {
            Self::Lst(c) => &mut c.width,
            Self::Nspgd(c) => &mut c.width,
        }
    }

    pub fn record_images(&self) -> bool {
        match self {
            Self::Lst(c) => c.record_images,
            Self::Nspgd(c) => c.record_images,
        }
    }

    /// The acceptance threshold: δ (pthresh) for LST, τ for NSPGD.
    pub fn threshold(&self) -> f32 {
        match self {
            Self::Lst(c) => c.pthresh,
            Self::Nspgd(c) => c.tau,
        }
    }

    /// The objective whose input gradient J is: CE for LST, the probability for NSPGD.
    pub(crate) fn objective(&self, labels: &[u32]) -> Objective {
        match self {
            Self::Lst(_) => Objective::CrossEntropy(labels.to_vec()),
            Self::Nspgd(_) => Objective::Probability(labels.to_vec()),
        }
    }

    /// NSPGD's iterate may leave [0, 1]: the model sees clamp(x), and J is the gradient
    /// through that clamp. LST's iterate is clamped after every step.
    pub(crate) fn clamps_iterate(&self) -> bool {
        matches!(self, Self::Lst(_))
    }

    pub(crate) fn sidedness(&self) -> Sidedness {
        match self {
            Self::Lst(_) => Sidedness::TwoSided,
            Self::Nspgd(_) => Sidedness::OneSided,
        }
    }

    /// ν of the initial U(±ν) noise, for LST only.
    pub(crate) fn initial_noise(&self) -> Option<f32> {
        match self {
            Self::Lst(c) => Some(c.init_noise),
            Self::Nspgd(_) => None,
        }
    }

    /// ε when the walk keeps the adversarial accumulator A (LST, updated even with adv off),
    /// and whether A is subtracted from the proposals.
    pub(crate) fn accumulator(&self) -> Option<(f32, bool)> {
        match self {
            Self::Lst(c) => Some((c.adv_step, c.adversarial)),
            Self::Nspgd(_) => None,
        }
    }

    pub(crate) fn on_reject(&self) -> OnReject {
        match self {
            Self::Lst(c) if c.adversarial => OnReject::Continue,
            Self::Lst(_) => OnReject::Freeze,
            Self::Nspgd(c) if c.early_finish => OnReject::Finish,
            Self::Nspgd(_) => OnReject::Freeze,
        }
    }

    /// The width measurement due at iteration `step` (a logged one), as (key, skip threshold):
    /// the key picks the directions' stream; a measurement whose on-path confidence is below
    /// the threshold is skipped (LST: the absolute pthresh test of §1.5; NSPGD: none).
    pub(crate) fn width_at(&self, step: usize) -> Option<(u64, f32)> {
        match self {
            Self::Lst(c) => (c.width.enabled && step.is_multiple_of(c.log_step))
                .then(|| ((step / c.log_step) as u64, c.pthresh)),
            Self::Nspgd(c) => c.width_index(step).map(|k| (k as u64, f32::NEG_INFINITY)),
        }
    }
}
