//! The reach evaluation of NSPGD (ALGORITHMS.md §2.3–§2.4): hits, the reach table, the
//! hit-rate matrix and the width summary, from per-pair outcomes. No I/O.

use serde::{Deserialize, Serialize};

use super::stats::quantile;
use super::width::{WidthMeasurement, WidthStatus};

/// The hit threshold of §2.3 and the stricter one reported beside it.
pub const HIT_LPIPS: f32 = 0.03;
pub const HIT_LPIPS_STRICT: f32 = 0.02;
/// The fallback without LPIPS weights: ‖x_final − x_t‖ ≤ 0.05·‖x_s − x_t‖.
pub const HIT_RELATIVE_L2: f32 = 0.05;

/// What decides a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HitCriterion {
    /// LPIPS(x_final, x_t) < 0.03 (AlexNet, v0.1).
    Lpips,
    /// ‖x_final − x_t‖ ≤ 0.05·‖x_s − x_t‖, labelled as such and not comparable with LPIPS.
    RelativeL2,
}

impl HitCriterion {
    pub fn label(self) -> &'static str {
        match self {
            Self::Lpips => "LPIPS < 0.03",
            Self::RelativeL2 => "reach (relative L2 ≤ 0.05)",
        }
    }
}

/// One pair's outcome, as the reach tables need it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReachOutcome {
    pub source_class: u32,
    pub target_class: u32,
    /// The source was classified correctly at the start.
    pub valid: bool,
    /// LPIPS(x_final, x_t), unclamped inputs; None when not computed.
    pub lpips: Option<f32>,
    /// ‖x_final − x_t‖ / ‖x_s − x_t‖; 0 when x_s = x_t (such a pair is a hit).
    pub relative_l2: f32,
}

impl ReachOutcome {
    pub fn off_diagonal(&self) -> bool {
        self.source_class != self.target_class
    }

    /// Whether the pair is a hit at `threshold` (LPIPS) or at the relative-L2 fallback.
    pub fn is_hit(&self, criterion: HitCriterion, threshold: f32) -> bool {
        match criterion {
            HitCriterion::Lpips => self.lpips.is_some_and(|d| d < threshold),
            HitCriterion::RelativeL2 => self.relative_l2 <= HIT_RELATIVE_L2,
        }
    }
}

/// ‖a − t‖ / ‖s − t‖ in f64, 0 when s = t.
pub fn relative_l2(final_image: &[f32], source: &[f32], target: &[f32]) -> f32 {
    let norm = |a: &[f32]| -> f64 {
        a.iter()
            .zip(target)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let (num, den) = (norm(final_image), norm(source));
    if den <= f64::from(f32::MIN_POSITIVE) {
        0.0
    } else {
        (num / den) as f32
    }
}

/// The reach table row of one model (§2.4). A fraction whose denominator is zero is None
/// ("n/a").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReachTable {
    pub valid_pairs: usize,
    pub off_diagonal_pairs: usize,
    /// Hits / valid off-diagonal pairs at LPIPS < 0.03 (or at the fallback criterion).
    pub reach_003: Option<f64>,
    /// The same at LPIPS < 0.02 (None under the fallback).
    pub reach_002: Option<f64>,
    /// LPIPS < 0.02 over all valid pairs, any class (None under the fallback).
    pub frac_lt_002_all: Option<f64>,
    /// Over valid off-diagonal pairs.
    pub median_lpips: Option<f64>,
    pub mean_lpips: Option<f64>,
    pub criterion: HitCriterion,
}

fn fraction(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

pub fn reach_table(outcomes: &[ReachOutcome], criterion: HitCriterion) -> ReachTable {
    let valid: Vec<&ReachOutcome> = outcomes.iter().filter(|o| o.valid).collect();
    let off: Vec<&ReachOutcome> = valid.iter().copied().filter(|o| o.off_diagonal()).collect();
    let hits =
        |set: &[&ReachOutcome], t: f32| set.iter().filter(|o| o.is_hit(criterion, t)).count();
    let lpips: Vec<f64> = off.iter().filter_map(|o| o.lpips.map(f64::from)).collect();
    let lpips_rows = criterion == HitCriterion::Lpips;
    ReachTable {
        valid_pairs: valid.len(),
        off_diagonal_pairs: off.len(),
        reach_003: fraction(hits(&off, HIT_LPIPS), off.len()),
        reach_002: lpips_rows
            .then(|| fraction(hits(&off, HIT_LPIPS_STRICT), off.len()))
            .flatten(),
        frac_lt_002_all: lpips_rows
            .then(|| fraction(hits(&valid, HIT_LPIPS_STRICT), valid.len()))
            .flatten(),
        median_lpips: quantile(&lpips, 0.5),
        mean_lpips: (!lpips.is_empty()).then(|| lpips.iter().sum::<f64>() / lpips.len() as f64),
        criterion,
    }
}

/// H[s][t]: the fraction of valid sources of class s whose walk toward the class-t target is a
/// hit at 0.03 (or the fallback); None where class s has no valid source.
pub fn hit_matrix(
    outcomes: &[ReachOutcome],
    classes: usize,
    criterion: HitCriterion,
) -> Vec<Vec<Option<f64>>> {
    let mut hits = vec![vec![0usize; classes]; classes];
    let mut counts = vec![vec![0usize; classes]; classes];
    for o in outcomes.iter().filter(|o| o.valid) {
        let (s, t) = (o.source_class as usize, o.target_class as usize);
        if s < classes && t < classes {
            counts[s][t] += 1;
            hits[s][t] += usize::from(o.is_hit(criterion, HIT_LPIPS));
        }
    }
    hits.iter()
        .zip(&counts)
        .map(|(h, c)| h.iter().zip(c).map(|(&h, &c)| fraction(h, c)).collect())
        .collect()
}

/// Per radius: the mean over measured blocks of q05 and of q95 (§2.4's width summary). Row 0
/// is the on-path confidence. None where no block was measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WidthSummary {
    pub radii: Vec<f32>,
    /// [|R_w| + 1] rows of (mean q05, mean q95).
    pub rows: Vec<Option<[f64; 2]>>,
    pub measurements: usize,
}

pub fn width_summary<'a>(
    radii: &[f32],
    blocks: impl IntoIterator<Item = &'a WidthMeasurement>,
) -> WidthSummary {
    let mut sums = vec![[0f64; 2]; radii.len() + 1];
    let mut n = 0usize;
    for b in blocks {
        if b.status != WidthStatus::Measured || b.rows.len() != sums.len() {
            continue;
        }
        n += 1;
        for (s, r) in sums.iter_mut().zip(&b.rows) {
            s[0] += f64::from(r[0]);
            s[1] += f64::from(r[1]);
        }
    }
    WidthSummary {
        radii: radii.to_vec(),
        rows: sums
            .iter()
            .map(|s| (n > 0).then(|| [s[0] / n as f64, s[1] / n as f64]))
            .collect(),
        measurements: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(s: u32, t: u32, valid: bool, lpips: f32) -> ReachOutcome {
        ReachOutcome {
            source_class: s,
            target_class: t,
            valid,
            lpips: Some(lpips),
            relative_l2: 1.0,
        }
    }

    #[test]
    fn invalid_and_same_class_pairs_never_enter_the_off_diagonal_denominator() {
        let o = [
            outcome(0, 1, true, 0.01),
            outcome(0, 2, true, 0.025),
            outcome(1, 2, true, 0.5),
            outcome(1, 1, true, 0.0),
            outcome(2, 0, false, 0.0),
            outcome(2, 2, false, 0.0),
        ];
        let t = reach_table(&o, HitCriterion::Lpips);
        assert_eq!((t.valid_pairs, t.off_diagonal_pairs), (4, 3));
        assert_eq!(t.reach_003, Some(2.0 / 3.0));
        assert_eq!(t.reach_002, Some(1.0 / 3.0));
        assert_eq!(t.frac_lt_002_all, Some(2.0 / 4.0));
        assert_eq!(t.median_lpips, Some(f64::from(0.025f32)));
        let h = hit_matrix(&o, 3, HitCriterion::Lpips);
        assert_eq!(h[0][1], Some(1.0));
        assert_eq!(h[1][1], Some(1.0));
        assert_eq!(h[1][2], Some(0.0));
        assert_eq!(h[2][0], None, "no valid source of class 2");
    }

    #[test]
    fn a_zero_denominator_is_none_never_nan() {
        let t = reach_table(&[outcome(0, 1, false, 0.0)], HitCriterion::Lpips);
        assert_eq!(t.reach_003, None);
        assert_eq!(t.reach_002, None);
        assert_eq!(t.frac_lt_002_all, None);
        assert_eq!(t.median_lpips, None);
        assert_eq!(t.mean_lpips, None);
        let json = serde_json::to_string(&t).expect("json");
        assert!(!json.contains("NaN"));
    }

    #[test]
    fn relative_l2_fallback() {
        let s = [0.0f32, 0.0];
        let t = [1.0f32, 0.0];
        assert!((relative_l2(&[0.96, 0.0], &s, &t) - 0.04).abs() < 1e-6);
        assert_eq!(relative_l2(&[0.5, 0.5], &t, &t), 0.0, "x_s = x_t");
        let mut o = outcome(0, 1, true, 1.0);
        o.lpips = None;
        o.relative_l2 = 0.05;
        assert!(o.is_hit(HitCriterion::RelativeL2, HIT_LPIPS));
        o.relative_l2 = 0.0501;
        assert!(!o.is_hit(HitCriterion::RelativeL2, HIT_LPIPS));
        let t = reach_table(&[o], HitCriterion::RelativeL2);
        assert_eq!((t.reach_003, t.reach_002), (Some(0.0), None));
    }

    #[test]
    fn width_summary_means_measured_blocks() {
        let m = |a: f32| WidthMeasurement {
            status: WidthStatus::Measured,
            rows: vec![[1.0, 1.0], [a, a + 0.5]],
            directions_used: 256,
        };
        let blocks = [m(0.2), m(0.4), WidthMeasurement::skipped(1)];
        let s = width_summary(&[5.0], &blocks);
        assert_eq!(s.measurements, 2);
        let r = s.rows[1].expect("measured");
        assert!((r[0] - 0.3).abs() < 1e-6 && (r[1] - 0.8).abs() < 1e-6);
    }
}
