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
    #[arg(long)]
    pub step_size: Option<f32>,
    /// Iterations m (every one runs; there is no early stop).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// pthresh delta: the largest allowed drop of source confidence below p0.
    #[arg(long)]
    pub pthresh: Option<f32>,
    /// Turn the adversarial accumulator off.
    #[arg(long)]
    pub no_adv: bool,
    /// Adversarial step epsilon.
    #[arg(long)]
    pub adv_step: Option<f32>,
    /// Half-width nu of the uniform initial noise.
    #[arg(long)]
    pub noise: Option<f32>,
    /// Keep a frame every this many iterations.
    #[arg(long)]
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
        if let Some(v) = self.step_size {
            c.step_size = v;
        }
        if let Some(v) = self.iterations {
            c.iterations = v;
        }
        if let Some(v) = self.pthresh {
            c.pthresh = v;
        }
        if self.no_adv {
            c.adversarial = false;
        }
        if let Some(v) = self.adv_step {
            c.adv_step = v;
        }
        if let Some(v) = self.noise {
            c.init_noise = v;
        }
        if let Some(v) = self.log_step {
            c.log_step = v;
        }
        c.seed = self.seed;
        c.width.enabled = self.widths;
        c.validate()?;
        Ok(c)
    }
}
