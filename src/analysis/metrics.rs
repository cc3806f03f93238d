//! Table 1 distances between an LST output and its target (ALGORITHMS.md §1.6).
//!
//! Images are host slices of one [C, H, W] image in row-major order. Everything is accumulated
//! in f64 and reported as f32.

use serde::{Deserialize, Serialize};

use super::error::{Result, invalid};
use crate::models::Lpips;

/// The four Table 1 distances of one pair. `None` means "n/a".
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distances {
    /// ‖a − b‖₂ / √(C·H·W): the RMS pixel difference.
    pub l2: f32,
    /// max |a − b|.
    pub linf: f32,
    /// SSIM (§1.6); n/a when H or W < 11.
    pub ssim: Option<f32>,
    /// LPIPS-Alex v0.1; n/a without its weights, or for images it cannot compare (not RGB,
    /// or smaller than 32x32).
    pub lpips: Option<f32>,
}

impl Distances {
    /// The row [L2_norm, L∞, SSIM, LPIPS] of §1.4.
    pub fn to_array(&self) -> [Option<f32>; 4] {
        [Some(self.l2), Some(self.linf), self.ssim, self.lpips]
    }
}

fn check_pair(a: &[f32], b: &[f32], shape: [usize; 3]) -> Result<()> {
    let n = shape.iter().product::<usize>();
    if a.len() != n || b.len() != n {
        return Err(invalid(format!(
            "images have {} and {} values, shape {shape:?} needs {n}",
            a.len(),
            b.len()
        )));
    }
    if n == 0 {
        return Err(invalid("empty image"));
    }
    Ok(())
}

/// ‖a − b‖₂ / √n for two equally long, non-empty slices.
pub fn l2_normalized(a: &[f32], b: &[f32]) -> f32 {
    let ss: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    (ss / a.len().max(1) as f64).sqrt() as f32
}

/// max |a − b| (0 for empty slices).
pub fn linf(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
        .fold(0.0f64, f64::max) as f32
}

/// SSIM window half-width: the window is 11×11.
const SSIM_RADIUS: usize = 5;
const SSIM_SIGMA: f64 = 1.5;
/// C1 = (0.01·L)², C2 = (0.03·L)² with data range L = 1.
const SSIM_C1: f64 = 0.01 * 0.01;
const SSIM_C2: f64 = 0.03 * 0.03;

/// The normalised 1-D Gaussian g[k] = exp(−k²/(2·1.5²)), k = −5..5.
pub fn ssim_window() -> [f64; 2 * SSIM_RADIUS + 1] {
    let mut g = [0.0; 2 * SSIM_RADIUS + 1];
    for (i, v) in g.iter_mut().enumerate() {
        let k = i as f64 - SSIM_RADIUS as f64;
        *v = (-k * k / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let sum: f64 = g.iter().sum();
    g.iter_mut().for_each(|v| *v /= sum);
    g
}

/// Valid 2-D filtering of an h×w plane by the separable window: (h−10)×(w−10) outputs.
fn filter_valid(plane: &[f64], h: usize, w: usize, g: &[f64]) -> Vec<f64> {
    let k = g.len();
    let (ho, wo) = (h + 1 - k, w + 1 - k);
    let mut rows = vec![0.0; h * wo];
    for r in 0..h {
        for c in 0..wo {
            rows[r * wo + c] = (0..k).map(|t| g[t] * plane[r * w + c + t]).sum();
        }
    }
    let mut out = vec![0.0; ho * wo];
    for r in 0..ho {
        for c in 0..wo {
            out[r * wo + c] = (0..k).map(|t| g[t] * rows[(r + t) * wo + c]).sum();
        }
    }
    out
}

/// SSIM of two [C, H, W] images with data range 1 (§1.6): Gaussian window 11×11, σ = 1.5,
/// valid positions only, per channel, averaged over channels and positions. `None` when
/// H or W < 11. Computed in f64.
pub fn ssim(a: &[f32], b: &[f32], shape: [usize; 3]) -> Result<Option<f64>> {
    check_pair(a, b, shape)?;
    let [c, h, w] = shape;
    let size = 2 * SSIM_RADIUS + 1;
    if h < size || w < size {
        return Ok(None);
    }
    let g = ssim_window();
    let plane = h * w;
    let mut total = 0.0;
    let mut count = 0usize;
    for ch in 0..c {
        let x: Vec<f64> = a[ch * plane..(ch + 1) * plane]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let y: Vec<f64> = b[ch * plane..(ch + 1) * plane]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
        let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
        let xy: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p * q).collect();
        let mx = filter_valid(&x, h, w, &g);
        let my = filter_valid(&y, h, w, &g);
        let exx = filter_valid(&xx, h, w, &g);
        let eyy = filter_valid(&yy, h, w, &g);
        let exy = filter_valid(&xy, h, w, &g);
        for i in 0..mx.len() {
            let (ux, uy) = (mx[i], my[i]);
            let sxx = exx[i] - ux * ux;
            let syy = eyy[i] - uy * uy;
            let sxy = exy[i] - ux * uy;
            let num = (2.0 * ux * uy + SSIM_C1) * (2.0 * sxy + SSIM_C2);
            let den = (ux * ux + uy * uy + SSIM_C1) * (sxx + syy + SSIM_C2);
            total += num / den;
            count += 1;
        }
    }
    Ok(Some(total / count as f64))
}

/// The Table 1 distances of `output` to `target`, both [C, H, W] host images. LPIPS is left
/// n/a here: it needs its weights, and is filled in batches by `lpips_distances`.
pub fn distances(output: &[f32], target: &[f32], shape: [usize; 3]) -> Result<Distances> {
    check_pair(output, target, shape)?;
    Ok(Distances {
        l2: l2_normalized(output, target),
        linf: linf(output, target),
        ssim: ssim(output, target, shape)?.map(|s| s as f32),
        lpips: None,
    })
}

/// Whether LPIPS-Alex can compare images of `shape` ([C, H, W]): RGB, at least 32x32.
pub fn lpips_applies(shape: [usize; 3]) -> bool {
    shape[0] == 3 && shape[1] >= 32 && shape[2] >= 32
}

/// How many pairs one LPIPS call takes: bounds the feature maps held at once (a 224x224
/// pair's first layer is 1.5 MB) while keeping the per-call overhead small.
const LPIPS_BATCH: usize = 32;

/// LPIPS(a_i, b_i) for host images of `shape`, in batches; all `None` when the metric does not
/// apply to the shape.
pub fn lpips_distances(
    lpips: &Lpips,
    shape: [usize; 3],
    pairs: &[(&[f32], &[f32])],
) -> Result<Vec<Option<f32>>> {
    if !lpips_applies(shape) {
        return Ok(vec![None; pairs.len()]);
    }
    let n = shape.iter().product::<usize>();
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(LPIPS_BATCH) {
        let mut pixels = Vec::with_capacity(2 * chunk.len() * n);
        for (a, b) in chunk {
            check_pair(a, b, shape)?;
        }
        for (a, _) in chunk {
            pixels.extend_from_slice(a);
        }
        for (_, b) in chunk {
            pixels.extend_from_slice(b);
        }
        let d = lpips.distances_host(&pixels, (chunk.len(), shape[0], shape[1], shape[2]))?;
        out.extend(d.into_iter().map(|v| Some(v as f32)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::rng::{self, fill_uniform};
    use super::*;

    const SHAPE: [usize; 3] = [3, 12, 14];

    fn image(seed: u64) -> Vec<f32> {
        let mut v = vec![0f32; SHAPE.iter().product()];
        fill_uniform(&mut rng::stream(seed, 99, 0, 0), 0.0, 1.0, &mut v);
        v
    }

    #[test]
    fn window_is_normalised_and_symmetric() {
        let g = ssim_window();
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        for k in 0..5 {
            assert_eq!(g[k], g[10 - k]);
            assert!(g[k] < g[k + 1]);
        }
        assert!((g[5] / g[4] - (1.0f64 / 4.5).exp()).abs() < 1e-12);
    }

    #[test]
    fn identical_images() {
        let x = image(1);
        let d = distances(&x, &x, SHAPE).expect("shape");
        assert_eq!(d.l2, 0.0);
        assert_eq!(d.linf, 0.0);
        assert!((d.ssim.expect("large enough") - 1.0).abs() <= 1e-6);
        assert_eq!(d.lpips, None);
    }

    #[test]
    fn constant_offset() {
        let x: Vec<f32> = image(2).iter().map(|v| v * 0.5).collect();
        for c in [0.25f32, -0.125, 0.1] {
            let y: Vec<f32> = x.iter().map(|v| v + c).collect();
            let d = distances(&y, &x, SHAPE).expect("shape");
            assert!((d.l2 - c.abs()).abs() <= 1e-6, "{} vs {c}", d.l2);
            assert!((d.linf - c.abs()).abs() <= 1e-6, "{} vs {c}", d.linf);
        }
    }

    #[test]
    fn ssim_properties() {
        let x = image(3);
        let y = image(4);
        let s_xy = ssim(&x, &y, SHAPE).expect("shape").expect("large");
        let s_yx = ssim(&y, &x, SHAPE).expect("shape").expect("large");
        assert_eq!(s_xy, s_yx);
        assert!(s_xy < 0.5, "{s_xy}");
        // A slightly noisy copy is close to 1 but below.
        let z: Vec<f32> = x.iter().zip(&y).map(|(a, b)| 0.95 * a + 0.05 * b).collect();
        let s = ssim(&x, &z, SHAPE).expect("shape").expect("large");
        assert!(s < 1.0 && s > 0.9, "{s}");
        // Constant images of equal value.
        let c = vec![0.7f32; SHAPE.iter().product()];
        assert_eq!(ssim(&c, &c, SHAPE).expect("shape"), Some(1.0));
        let zero = vec![0f32; SHAPE.iter().product()];
        assert_eq!(ssim(&zero, &zero, SHAPE).expect("shape"), Some(1.0));
        // Random pairs never exceed 1.
        for s in 0..20 {
            let (a, b) = (image(10 + s), image(40 + s));
            let v = ssim(&a, &b, SHAPE).expect("shape").expect("large");
            assert!(v <= 1.0 && v.is_finite());
        }
    }

    #[test]
    fn ssim_matches_direct_2d_window_and_single_position() {
        // 11×11 image: exactly one valid position, computed by hand with the 2-D window.
        let shape = [1, 11, 11];
        let mut a = vec![0f32; 121];
        let mut b = vec![0f32; 121];
        fill_uniform(&mut rng::stream(1, 98, 0, 0), 0.0, 1.0, &mut a);
        fill_uniform(&mut rng::stream(2, 98, 0, 0), 0.0, 1.0, &mut b);
        let g = ssim_window();
        let (mut ux, mut uy, mut exx, mut eyy, mut exy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for r in 0..11 {
            for c in 0..11 {
                let wgt = g[r] * g[c];
                let (x, y) = (f64::from(a[r * 11 + c]), f64::from(b[r * 11 + c]));
                ux += wgt * x;
                uy += wgt * y;
                exx += wgt * x * x;
                eyy += wgt * y * y;
                exy += wgt * x * y;
            }
        }
        let (sxx, syy, sxy) = (exx - ux * ux, eyy - uy * uy, exy - ux * uy);
        let expected = (2.0 * ux * uy + SSIM_C1) * (2.0 * sxy + SSIM_C2)
            / ((ux * ux + uy * uy + SSIM_C1) * (sxx + syy + SSIM_C2));
        let got = ssim(&a, &b, shape).expect("shape").expect("large");
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn small_images_have_no_ssim_and_bad_shapes_fail() {
        let a = vec![0.5f32; 3 * 10 * 32];
        assert_eq!(ssim(&a, &a, [3, 10, 32]).expect("shape"), None);
        let d = distances(&a, &a, [3, 10, 32]).expect("shape");
        assert_eq!(d.to_array(), [Some(0.0), Some(0.0), None, None]);
        assert!(distances(&a, &a[1..], [3, 10, 32]).is_err());
        assert!(distances(&a, &a, [3, 10, 31]).is_err());
    }
}
