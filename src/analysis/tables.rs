//! Table 1 (ALGORITHMS.md §1.6): distances between walk outputs and their targets, per model.

use serde::{Deserialize, Serialize};

use super::metrics::Distances;
use super::stats::{MeanStd, mean_std_f32};
use super::walker::{PairOutput, PairResult};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table1 {
    pub l2: Option<MeanStd>,
    pub linf: Option<MeanStd>,
    pub ssim: Option<MeanStd>,
    pub lpips: Option<MeanStd>,
    pub pairs: usize,
    pub skipped_pairs: usize,
}

/// Table 1 from per-pair outputs; a distance that is n/a for a pair is left out of its column.
pub fn table1(outputs: &[PairOutput]) -> Table1 {
    let results: Vec<&PairResult> = outputs.iter().filter_map(|o| o.result.as_ref()).collect();
    let column = |f: &dyn Fn(&Distances) -> Option<f32>| {
        let v: Vec<f32> = results.iter().filter_map(|r| f(&r.distances)).collect();
        mean_std_f32(&v)
    };
    Table1 {
        l2: column(&|d| Some(d.l2)),
        linf: column(&|d| Some(d.linf)),
        ssim: column(&|d| d.ssim),
        lpips: column(&|d| d.lpips),
        pairs: results.len(),
        skipped_pairs: outputs.iter().filter(|o| o.status.is_skipped()).count(),
    }
}
