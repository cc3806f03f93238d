//! Level Set Traversal (ALGORITHMS.md §1.1–§1.4): its settings and initial noise. The loop is
//! the shared walker's (`walker`), with LST's rules: the CE gradient, the two-sided projection,
//! the initial U(±ν) noise, the clamped iterate and the adversarial accumulator A.
//!
//! Per sample, each step is (§1.2):
//! ```text
//! J  ← ∇_x CE(x, y);  v ← x_t − x;  gg ← ⟨J, J⟩
//! nd ← (gg tiny) ? v : v − (⟨J, v⟩ / gg)·J
//! A  ← clamp(A + (ε/2)·J, −ε, ε)                 # every iteration
//! x' ← clamp(x + η·nd − (adv ? A : 0), 0, 1)
//! if p0 − p(x')[y] < δ: x ← x'
//! ```

use serde::{Deserialize, Serialize};

use super::error::{Result, invalid};
use super::hull::HULL_RESOLUTION;
use super::rng::{LST_NOISE, fill_uniform, stream};
use super::width::WidthConfig;

/// Inputs with min(H, W) at or above this use the ImageNet-scale preset.
pub const IMAGENET_MIN_SIDE: usize = 128;

/// LST hyperparameters (§1.1). Every value can be overridden.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LstConfig {
    /// η.
    pub step_size: f32,
    /// m.
    pub iterations: usize,
    /// δ: the maximum relative confidence drop (pthresh).
    pub pthresh: f32,
    /// Whether A is subtracted from the proposals.
    pub adversarial: bool,
    /// ε.
    pub adv_step: f32,
    /// ν: half-width of the initial uniform noise.
    pub init_noise: f32,
    /// The path is recorded at iterations i with i mod log_step == 0.
    pub log_step: usize,
    pub seed: u64,
    pub width: WidthConfig,
    /// Keep the logged iterates in the per-pair output (the per-step events carry them anyway).
    pub record_images: bool,
    /// Hull lattice resolution n.
    pub hull_resolution: usize,
    /// Pool selection: a pool image needs a confidence above this in every model.
    pub pool_min_confidence: f32,
    /// Derangement rounds R of the full evaluation.
    pub rounds: usize,
}

impl LstConfig {
    /// The ImageNet-scale preset (the paper's ImageNet configuration).
    pub fn imagenet() -> Self {
        Self {
            step_size: 1e-2,
            iterations: 400,
            pthresh: 0.2,
            adversarial: true,
            adv_step: 2e-3,
            init_noise: 2.0 / 255.0,
            log_step: 20,
            seed: 0,
            width: WidthConfig::imagenet(),
            record_images: true,
            hull_resolution: HULL_RESOLUTION,
            pool_min_confidence: 0.6,
            rounds: 5,
        }
    }

    /// The CIFAR-scale preset (the reference's defaults, with the adversarial term on).
    pub fn cifar() -> Self {
        Self {
            step_size: 5e-2,
            iterations: 100,
            pthresh: 0.05,
            adversarial: true,
            adv_step: 1.0 / 255.0,
            init_noise: 2.0 / 255.0,
            log_step: 10,
            seed: 0,
            width: WidthConfig::cifar(),
            record_images: true,
            hull_resolution: HULL_RESOLUTION,
            pool_min_confidence: 0.6,
            rounds: 5,
        }
    }

    /// The preset for an H×W input: ImageNet-scale when min(H, W) ≥ 128.
    pub fn for_input(height: usize, width: usize) -> Self {
        if height.min(width) >= IMAGENET_MIN_SIDE {
            Self::imagenet()
        } else {
            Self::cifar()
        }
    }

    /// L = ⌈m / log_step⌉, the number of logged iterates of a full run.
    pub fn num_logs(&self) -> usize {
        self.iterations.div_ceil(self.log_step.max(1))
    }

    pub fn validate(&self) -> Result<()> {
        let finite = [
            ("step_size", self.step_size),
            ("pthresh", self.pthresh),
            ("adv_step", self.adv_step),
            ("init_noise", self.init_noise),
            ("pool_min_confidence", self.pool_min_confidence),
        ];
        if let Some((name, v)) = finite.iter().find(|(_, v)| !v.is_finite()) {
            return Err(invalid(format!("LST {name} = {v} must be finite")));
        }
        if self.adv_step < 0.0 || self.init_noise < 0.0 {
            return Err(invalid("LST adv_step and init_noise must be >= 0"));
        }
        if self.log_step == 0 {
            return Err(invalid("LST log_step must be at least 1"));
        }
        if self.hull_resolution == 0 {
            return Err(invalid("hull resolution must be at least 1"));
        }
        self.width.validate()
    }
}

/// The initial noise ξ of a pair: `len` uniforms on [−ν, ν) from stream(seed, LST_NOISE,
/// pair_id, 0), row-major.
pub fn initial_noise(seed: u64, pair_id: u64, nu: f32, len: usize) -> Vec<f32> {
    let mut xi = vec![0f32; len];
    fill_uniform(&mut stream(seed, LST_NOISE, pair_id, 0), -nu, nu, &mut xi);
    xi
}
