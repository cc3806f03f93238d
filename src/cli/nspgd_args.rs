//! NSPGD's settings on the command line (§2.1), shared by `nspgd`, `reach` and
//! `widths-compare`. Unset values keep the defaults of `NspgdConfig`.

use anyhow::Result;
use blindspot::analysis::NspgdConfig;
use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct NspgdSettings {
    /// Step size eta along the one-sided projected direction (default 0.05).
    #[arg(long, allow_negative_numbers = true)]
    step_size: Option<f32>,
    /// Iterations at most (default 100); a walk finishes at its first rejected step.
    #[arg(long)]
    iterations: Option<usize>,
    /// tau: a step is accepted while p0 - p(clamp(x'))[y] < tau (default 0.05).
    #[arg(long, allow_negative_numbers = true)]
    tau: Option<f32>,
    /// Keep a frame every this many iterations (default 6, the width schedule).
    #[arg(long)]
    log_step: Option<usize>,
    /// Seed of the width directions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl NspgdSettings {
    /// The walk's settings; `widths` switches the width measurements on.
    pub fn config(&self, widths: bool) -> Result<NspgdConfig> {
        let mut c = NspgdConfig::default();
        if let Some(v) = self.step_size {
            anyhow::ensure!(v > 0.0, "--step-size {v}: must be > 0");
            c.step_size = v;
        }
        if let Some(v) = self.iterations {
            anyhow::ensure!(v >= 1, "--iterations {v}: must be at least 1");
            c.iterations = v;
        }
        if let Some(v) = self.tau {
            anyhow::ensure!(v >= 0.0, "--tau {v}: must be >= 0");
            c.tau = v;
        }
        if let Some(v) = self.log_step {
            anyhow::ensure!(v >= 1, "--log-step {v}: must be at least 1");
            c.log_step = v;
        }
        c.seed = self.seed;
        c.width.enabled = widths;
        c.validate()?;
        Ok(c)
    }
}
