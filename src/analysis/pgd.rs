//! L2 projected gradient ascent on the cross-entropy (Madry et al. 2018), used for adversarial
//! training of the robust demo model and for measuring robust accuracy.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PgdConfig {
    /// L2 radius in pixel space ([0, 1] images).
    pub epsilon: f32,
    pub steps: usize,
    /// Step length as a multiple of epsilon / steps (2.5 as in Madry et al.).
    pub step_scale: f32,
}

impl Default for PgdConfig {
    fn default() -> Self {
        Self {
            epsilon: 1.0,
            steps: 5,
            step_scale: 2.5,
        }
    }
}

/// Per-sample L2 PGD from a zero start. `gradient(x)` returns d loss / d x for the batch.
/// Each step moves along the normalised gradient, then projects onto the epsilon-ball around
/// `x` and the [0, 1] box. A zero gradient leaves the sample where it is (no NaN).
pub fn pgd_l2(
    x: &Tensor,
    cfg: &PgdConfig,
    mut gradient: impl FnMut(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let alpha = (cfg.step_scale * cfg.epsilon / cfg.steps.max(1) as f32) as f64;
    let mut adv = x.clone();
    for _ in 0..cfg.steps {
        let g = gradient(&adv)?;
        let g_norm = (g.sqr()?.sum_keepdim((1, 2, 3))?.sqrt()? + 1e-12)?;
        let stepped = (&adv + g.broadcast_div(&g_norm)?.affine(alpha, 0.0)?)?;
        let delta = (stepped - x)?;
        let d_norm = delta.sqr()?.sum_keepdim((1, 2, 3))?.sqrt()?;
        let shrink = d_norm
            .affine(1.0 / cfg.epsilon as f64, 0.0)?
            .maximum(1.0)?
            .recip()?;
        adv = (x + delta.broadcast_mul(&shrink)?)?
            .clamp(0f32, 1f32)?
            .detach();
    }
    Ok(adv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn stays_in_ball_and_box_and_follows_the_gradient() {
        let x = Tensor::full(0.5f32, (2, 3, 4, 4), &Device::Cpu).unwrap();
        let cfg = PgdConfig {
            epsilon: 0.3,
            steps: 4,
            step_scale: 2.5,
        };
        let direction = Tensor::ones((2, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let adv = pgd_l2(&x, &cfg, |_| Ok(direction.clone())).unwrap();
        let delta = (&adv - &x).unwrap();
        let norms = delta
            .sqr()
            .unwrap()
            .sum((1, 2, 3))
            .unwrap()
            .sqrt()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for n in norms {
            assert!((n - 0.3).abs() < 1e-5, "L2 norm {n}");
        }
        assert!(delta.min_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
        // A zero gradient leaves the input unchanged, without NaN.
        let same = pgd_l2(&x, &cfg, |a| a.zeros_like()).unwrap();
        assert_eq!(
            (same - &x)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
    }
}
