//! Summary statistics (ALGORITHMS.md §0.3).

use serde::{Deserialize, Serialize};

/// Mean and sample standard deviation (denominator N − 1) of N ≥ 1 values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    /// Sample standard deviation; 0 when N = 1.
    pub std: f64,
    pub n: usize,
}

/// Mean ± std of `values`; `None` ("n/a") for no values.
pub fn mean_std(values: &[f64]) -> Option<MeanStd> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n == 1 {
        0.0
    } else {
        let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        (ss / (n - 1) as f64).sqrt()
    };
    Some(MeanStd { mean, std, n })
}

/// Mean ± std of f32 values, accumulated in f64.
pub fn mean_std_f32(values: &[f32]) -> Option<MeanStd> {
    let v: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
    mean_std(&v)
}

/// Quantile `q` ∈ [0, 1] of values already sorted ascending, by linear interpolation:
/// pos = q·(N − 1), lo = ⌊pos⌋, v_lo + (pos − lo)·(v_{lo+1} − v_lo), with v_{lo+1} := v_lo at the
/// end. `None` for no values. The result is kept inside [v_lo, v_{lo+1}] against rounding.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = (pos.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let v = a + (pos - lo as f64) * (b - a);
    Some(v.clamp(a.min(b), a.max(b)))
}

/// Quantile `q` of unsorted values (sorted with `total_cmp`; callers filter NaN first).
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

/// Several quantiles of f32 values, computed in f64 and returned as f32.
pub fn quantiles_f32(values: &[f32], qs: &[f64]) -> Option<Vec<f32>> {
    let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    sorted.sort_by(f64::total_cmp);
    qs.iter()
        .map(|&q| quantile_sorted(&sorted, q).map(|v| v as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_cases() {
        assert_eq!(mean_std(&[]), None);
        let one = mean_std(&[3.5]).expect("one value");
        assert_eq!((one.mean, one.std, one.n), (3.5, 0.0, 1));
        let m = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).expect("values");
        assert_eq!(m.mean, 5.0);
        // Σ(v − 5)² = 32, N − 1 = 7.
        assert!((m.std - (32.0f64 / 7.0).sqrt()).abs() < 1e-15);
        let f = mean_std_f32(&[1.0, 3.0]).expect("values");
        assert_eq!((f.mean, f.n), (2.0, 2));
        assert!((f.std - 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn quantile_positions_for_256_values() {
        // v_k = k², so the interpolation is visible.
        let v: Vec<f64> = (0..256).map(|k| f64::from(k * k)).collect();
        let q05 = quantile(&v, 0.05).expect("values");
        let q95 = quantile(&v, 0.95).expect("values");
        // pos 12.75: 144 + 0.75·(169 − 144); pos 242.25: 58564 + 0.25·(59049 − 58564).
        assert!((q05 - (144.0 + 0.75 * 25.0)).abs() < 1e-9, "{q05}");
        assert!((q95 - (58564.0 + 0.25 * 485.0)).abs() < 1e-9, "{q95}");
        // Identity values give the positions themselves.
        let id: Vec<f64> = (0..256).rev().map(f64::from).collect();
        assert!((quantile(&id, 0.05).expect("values") - 12.75).abs() < 1e-12);
        assert!((quantile(&id, 0.95).expect("values") - 242.25).abs() < 1e-12);
    }

    #[test]
    fn quantile_edges() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7.0], 0.05), Some(7.0));
        assert_eq!(quantile(&[1.0, 2.0], 1.0), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0], 0.0), Some(1.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        let c = [0.3f32; 256];
        assert_eq!(quantiles_f32(&c, &[0.05, 0.95]), Some(vec![0.3, 0.3]));
    }
}
