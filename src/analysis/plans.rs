//! Which pairs a run mode walks (ALGORITHMS.md §1.3, §2.3) and which logged frames a path
//! strip shows (§1.9).

use serde::{Deserialize, Serialize};

use super::rng::derangement;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairPlan {
    pub source: usize,
    pub target: usize,
    pub pair_id: u64,
    /// Derangement round (0 in examples mode).
    pub round: usize,
}

/// Examples mode: every ordered pair s ≠ t of a pool of k images, pair_id = s·k + t.
pub fn examples_pairs(k: usize) -> Vec<PairPlan> {
    (0..k)
        .flat_map(|s| {
            (0..k).filter(move |&t| t != s).map(move |t| PairPlan {
                source: s,
                target: t,
                pair_id: (s * k + t) as u64,
                round: 0,
            })
        })
        .collect()
}

/// Full evaluation: for each round r, the pairs i → π_r(i) with pair_id = r·N + i, π_r the
/// derangement drawn from stream(seed, DERANGEMENT, r, attempt). `None` for N < 2.
pub fn evaluation_pairs(n: usize, rounds: usize, seed: u64) -> Option<Vec<PairPlan>> {
    let mut out = Vec::with_capacity(n * rounds);
    for r in 0..rounds {
        let pi = derangement(seed, r as u64, n)?;
        out.extend(pi.iter().enumerate().map(|(i, &t)| PairPlan {
            source: i,
            target: t,
            pair_id: (r * n + i) as u64,
            round: r,
        }));
    }
    Some(out)
}

/// Log indices shown in a path strip (§1.9): round(k·(L−1)/6) for k = 1..6, or all when L ≤ 6.
pub fn path_strip_frames(num_logs: usize) -> Vec<usize> {
    if num_logs <= 6 {
        return (0..num_logs).collect();
    }
    (1..=6)
        .map(|k| (k as f64 * (num_logs - 1) as f64 / 6.0).round() as usize)
        .collect()
}

/// The reference's fixed NSPGD targets (§2.3): the k_c-th test image of class c, 0-based within
/// the class in test-set order, used when the full CIFAR-10/MNIST test set is present.
pub const REACH_TARGET_RANKS: [usize; 10] = [474, 385, 884, 133, 381, 408, 641, 613, 384, 240];

/// A planned pair of the reach evaluation: source image `source` toward the fixed target of
/// class `target_class`, pair_id = target·N + index (§2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachPlan {
    pub source: usize,
    pub target_class: usize,
    pub pair_id: u64,
}

/// Every one of `n` sources toward each of `targets` fixed targets, target-major.
pub fn reach_pairs(n: usize, targets: usize) -> Vec<ReachPlan> {
    (0..targets)
        .flat_map(|t| {
            (0..n).map(move |i| ReachPlan {
                source: i,
                target_class: t,
                pair_id: (t * n + i) as u64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_pairs_are_target_major() {
        let p = reach_pairs(3, 2);
        assert_eq!(p.len(), 6);
        assert_eq!(
            p[4],
            ReachPlan {
                source: 1,
                target_class: 1,
                pair_id: 4
            }
        );
        assert!(
            p.iter()
                .all(|q| q.pair_id == (q.target_class * 3 + q.source) as u64)
        );
    }
}
