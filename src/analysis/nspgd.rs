//! NSPGD, the null-space projected walk of "Are Neural Networks Excessively Invariant?"
//! (ALGORITHMS.md §2.1–§2.2): its settings. The loop itself is the shared walker's
//! (`walker`), with NSPGD's rules: the gradient of the softmax probability at clamp(x), a
//! one-sided projection, no noise, no iterate clamp, no adversarial term, acceptance against
//! τ at clamp(x'), and a sample finishes at its first rejection.

use serde::{Deserialize, Serialize};

use super::error::{Result, invalid};
use super::width::WidthConfig;

/// Widths are measured at iterations i with i mod WIDTH_EVERY == 0 and i < WIDTH_UNTIL (§2.2):
/// at most 10 measurements per pair.
pub const WIDTH_EVERY: usize = 6;
pub const WIDTH_UNTIL: usize = 60;

/// NSPGD hyperparameters (§2.1). Every value can be overridden.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NspgdConfig {
    /// η.
    pub step_size: f32,
    pub iterations: usize,
    /// τ: a step is accepted when p0 − p(clamp(x'))[y] < τ.
    pub tau: f32,
    /// The path is recorded at iterations i with i mod log_step == 0. Widths are measured at
    /// the recorded iterations among 0, 6, …, 54, so the default of 6 measures all ten.
    pub log_step: usize,
    pub seed: u64,
    /// Radii {5, …, 30} and 256 directions whatever the input size (§2.2).
    pub width: WidthConfig,
    /// Keep the logged iterates in the per-pair output.
    pub record_images: bool,
    /// Finish a sample at its first rejection (§2.1). Off only to check that finishing early
    /// changes nothing: a rejected sample then stays where it is until the last iteration.
    pub early_finish: bool,
}

impl Default for NspgdConfig {
    fn default() -> Self {
        Self {
            step_size: 5e-2,
            iterations: 100,
            tau: 0.05,
            log_step: WIDTH_EVERY,
            seed: 0,
            width: WidthConfig::cifar(),
            record_images: true,
            early_finish: true,
        }
    }
}

impl NspgdConfig {
    /// The number of logged iterates of a walk that runs every iteration.
    pub fn num_logs(&self) -> usize {
        self.iterations.div_ceil(self.log_step.max(1))
    }

    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("step_size", self.step_size), ("tau", self.tau)] {
            if !v.is_finite() {
                return Err(invalid(format!("NSPGD {name} = {v} must be finite")));
            }
        }
        if self.iterations == 0 {
            return Err(invalid("NSPGD iterations must be at least 1"));
        }
        if self.log_step == 0 {
            return Err(invalid("NSPGD log_step must be at least 1"));
        }
        self.width.validate()
    }

    /// The width measurement index of iteration i, when one is due there.
    pub fn width_index(&self, step: usize) -> Option<usize> {
        (self.width.enabled
            && step.is_multiple_of(WIDTH_EVERY)
            && step < WIDTH_UNTIL
            && step.is_multiple_of(self.log_step))
        .then_some(step / WIDTH_EVERY)
    }
}
