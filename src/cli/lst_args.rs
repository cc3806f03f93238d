//! LST settings on the command line: a preset plus any override (ALGORITHMS.md §1.1).

use anyhow::Result;
use blindspot::analysis::lst::LstConfig;
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Preset {
    Cifar,
    Imagenet,
}

#[derive(Args, Clone, Debug)]
pub struct LstArgs {
    /// Preset; by default chosen from the input size (ImageNet-scale when min(H, W) >= 128).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Step size eta along the projected direction.
    #[arg(long, allow_negative_numbers = true)]
    pub step_size: Option<f32>,
    /// Iterations m (every one runs; there is no early stop).
    #[arg(long, allow_negative_numbers = true)]
    pub iterations: Option<usize>,
    /// pthresh delta: the largest allowed drop of source confidence below p0.
    #[arg(long, allow_negative_numbers = true)]
    pub pthresh: Option<f32>,
    /// Turn the adversarial accumulator off.
    #[arg(long)]
    pub no_adv: bool,
    /// Adversarial step epsilon.
    #[arg(long, allow_negative_numbers = true)]
    pub adv_step: Option<f32>,
    /// Half-width nu of the uniform initial noise.
    #[arg(long, allow_negative_numbers = true)]
    pub noise: Option<f32>,
    /// Keep a frame every this many iterations.
    #[arg(long, allow_negative_numbers = true)]
    pub log_step: Option<usize>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Measure path widths at the logged iterations (256 forward passes per radius each).
    #[arg(long)]
    pub widths: bool,
}

impl LstArgs {
    pub fn config(&self, input_size: [usize; 2]) -> Result<LstConfig> {
        let mut c = match self.preset {
            Some(Preset::Cifar) => LstConfig::cifar(),
            Some(Preset::Imagenet) => LstConfig::imagenet(),
            None => LstConfig::for_input(input_size[0], input_size[1]),
        };
        // Negative numbers are parsed (not mistaken for flags), then refused here with the
        // range the flag needs; NaN fails every comparison, so it is refused too.
        if let Some(v) = self.step_size {
            anyhow::ensure!(
                v > 0.0 && v.is_finite(),
                "--step-size {v}: must be a number > 0"
            );
            c.step_size = v;
        }
        if let Some(v) = self.iterations {
            anyhow::ensure!(v >= 1, "--iterations {v}: must be at least 1");
            c.iterations = v;
        }
        if let Some(v) = self.pthresh {
            anyhow::ensure!(
                (0.0..=1.0).contains(&v),
                "--pthresh {v}: must be between 0 and 1 (the largest allowed drop of the \
                 source confidence below p0)"
            );
            c.pthresh = v;
        }
        if self.no_adv {
            c.adversarial = false;
        }
        if let Some(v) = self.adv_step {
            anyhow::ensure!(
                v >= 0.0 && v.is_finite(),
                "--adv-step {v}: must be a number >= 0"
            );
            c.adv_step = v;
        }
        if let Some(v) = self.noise {
            anyhow::ensure!(
                v >= 0.0 && v.is_finite(),
                "--noise {v}: must be a number >= 0"
            );
            c.init_noise = v;
        }
        if let Some(v) = self.log_step {
            anyhow::ensure!(v >= 1, "--log-step {v}: must be at least 1");
            c.log_step = v;
        }
        c.seed = self.seed;
        c.width.enabled = self.widths;
        c.validate()?;
        Ok(c)
    }
}
