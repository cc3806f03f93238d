//! The NSPGD reach evaluation (ALGORITHMS.md §2.3–§2.4): every source of a labelled image set
//! walked toward one fixed target per class, the hit test (LPIPS < 0.03, or the relative-L2
//! fallback), the reach table, the hit-rate matrix, the examples grid and the width summary.
//!
//! Every finished batch of pairs is written to `pairs/` at once (one JSON and one tensor file
//! per pair), so a stopped or killed evaluation loses at most one batch and a resumed one
//! walks only the pairs that are missing. The plan (`plan.json`: model, data set, options,
//! targets, sources, criterion) is written first; a resume checks that it still holds.

mod outputs;
mod plan;
mod store;

use std::ops::ControlFlow;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::analysis::metrics::lpips_applies;
use crate::analysis::reach::{
    HitCriterion, ReachOutcome, ReachTable, WidthSummary, hit_matrix, reach_table, relative_l2,
    width_summary,
};
use crate::analysis::{NspgdConfig, PairStatus, Traversal, WalkConfig, WalkPair};
use crate::images::LabeledSet;
use crate::models::{Classifier, Lpips};
use crate::record::RecordError;
use crate::run::{Result, RunError};
use crate::run_folder::BatchRun;

pub use outputs::{hit_matrix_figure, reach_table_markdown, summary_markdown, write_outputs};
pub use plan::{ModelIdentity, ReachPlanRecord, ReachSource, ReachTarget, TargetRule, plan_reach};
pub use store::{PLAN_JSON, PairFiles, load_pair_records, pair_files};

/// One fixed target per class of ten classes (§2.3).
pub const DEFAULT_CLASSES: usize = 10;
/// §1.3's pool rule, used for the targets when the full test set is not there.
pub const TARGET_MIN_CONFIDENCE: f32 = 0.6;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReachOptions {
    /// NSPGD's settings (§2.1); widths are switched on per source by `width_sources`.
    pub config: NspgdConfig,
    /// Pairs per walker batch (results do not depend on it beyond float round-off).
    pub batch: usize,
    /// The classes with a fixed target, whose images are the sources (default 0..=9).
    pub classes: Vec<u32>,
    /// Sources: the first this many images of each class, in data-set order (all by default).
    pub per_class: Option<usize>,
    /// The first this many sources of each class measure path widths on every pair (§2.2: at
    /// iterations 0, 6, …, 54). Each measurement costs 256 forward passes per radius.
    pub width_sources: usize,
}

impl Default for ReachOptions {
    fn default() -> Self {
        let config = NspgdConfig {
            record_images: false,
            ..NspgdConfig::default()
        };
        Self {
            config,
            batch: 32,
            classes: (0..DEFAULT_CLASSES as u32).collect(),
            per_class: None,
            width_sources: 0,
        }
    }
}

/// One pair's outcome, as written to `pairs/pair_NNNNNN.json`; its x_final (unclamped) and,
/// when measured, its width blocks are in the pair's tensor file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReachPairRecord {
    pub pair_id: u64,
    /// Index into the plan's sources.
    pub source: usize,
    /// Index into the plan's targets.
    pub target: usize,
    pub source_class: u32,
    pub target_class: u32,
    pub status: PairStatus,
    /// p(clamp(x_s))[y] (0 when undefined).
    pub p0: f32,
    pub final_source_confidence: f32,
    pub final_target_confidence: f32,
    /// LPIPS(x_final, x_t), unclamped inputs; None without weights or for invalid pairs.
    pub lpips: Option<f32>,
    /// ‖x_final − x_t‖ / ‖x_s − x_t‖ (0 when x_s = x_t).
    pub relative_l2: f32,
    pub l2_normalized: f32,
    pub linf: f32,
    pub accepted_steps: usize,
    /// Width blocks (|R_w| + 1 rows of q05, q95), when this source measured widths.
    #[serde(default)]
    pub widths: Option<Vec<crate::analysis::WidthMeasurement>>,
}

impl ReachPairRecord {
    pub fn valid(&self) -> bool {
        !self.status.is_skipped()
    }

    pub fn outcome(&self) -> ReachOutcome {
        ReachOutcome {
            source_class: self.source_class,
            target_class: self.target_class,
            valid: self.valid(),
            lpips: self.lpips,
            relative_l2: self.relative_l2,
        }
    }
}

/// What a reach evaluation found, as written to `reach.json` (and read back by `reach-table`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReachSummary {
    pub model: ModelIdentity,
    pub dataset: String,
    pub criterion: HitCriterion,
    pub table: ReachTable,
    /// The classes of the matrix rows and columns, with their names.
    pub classes: Vec<u32>,
    pub class_names: Vec<String>,
    /// H[s][t] over `classes` positions: row = source class, column = target class.
    pub hit_matrix: Vec<Vec<Option<f64>>>,
    pub width_summary: Option<WidthSummary>,
    pub pairs_done: usize,
    pub pairs_total: usize,
}

/// A run's plan and what it found.
#[derive(Clone, Debug)]
pub struct ReachResult {
    pub plan: ReachPlanRecord,
    pub summary: ReachSummary,
    /// For a shard that did all its units: what to tell the user (merge comes next).
    pub shard_done: Option<String>,
}

impl ReachSummary {
    pub fn complete(&self) -> bool {
        self.pairs_done == self.pairs_total
    }
}

/// The summary of `records` (any subset of the plan's pairs, e.g. while it runs).
pub fn summarize(plan: &ReachPlanRecord, records: &[ReachPairRecord]) -> ReachSummary {
    let position = |c: u32| plan.classes.iter().position(|&k| k == c);
    // The matrix is indexed by class position, so re-key the outcomes.
    let outcomes: Vec<ReachOutcome> = records
        .iter()
        .filter_map(|r| {
            let mut o = r.outcome();
            o.source_class = position(o.source_class)? as u32;
            o.target_class = position(o.target_class)? as u32;
            Some(o)
        })
        .collect();
    let widths = records
        .iter()
        .filter(|r| r.valid())
        .filter_map(|r| r.widths.as_ref())
        .flatten();
    let width = plan.options.width_sources > 0;
    ReachSummary {
        model: plan.model.clone(),
        dataset: plan.dataset.clone(),
        criterion: plan.criterion,
        table: reach_table(&outcomes, plan.criterion),
        classes: plan.classes.clone(),
        class_names: plan.class_names.clone(),
        hit_matrix: hit_matrix(&outcomes, plan.classes.len(), plan.criterion),
        width_summary: width.then(|| width_summary(&plan.options.config.width.radii, widths)),
        pairs_done: records.len(),
        pairs_total: plan.pairs_total(),
    }
}

/// What a running evaluation reports.
pub enum ReachEvent<'a> {
    /// The plan is fixed; `done` pairs were already on disk (a resume).
    Started {
        plan: &'a ReachPlanRecord,
        done: &'a [ReachPairRecord],
    },
    /// Iteration `step` of the current batch of `walking` pairs ran.
    Step {
        step: usize,
        iterations: usize,
        walking: usize,
    },
    /// These pairs finished and are on disk; `done` of `total` in all.
    Pairs {
        new: &'a [ReachPairRecord],
        done: usize,
        total: usize,
    },
}

fn invalid(m: String) -> RunError {
    RunError::Analysis(crate::analysis::AnalysisError::Invalid(m))
}

/// Runs (or, with `resume`, continues) the reach evaluation into `out`. `also` are the other
/// models of a comparison: a target must be classified correctly with confidence > 0.6 by
/// each of them too, so that every model of the comparison walks toward the same targets.
/// Breaking from `on_event` stops between two iterations; the pairs finished so far are kept
/// and the summary says how many are done. The outputs (tables, figures) are written only
/// when every pair is done.
#[allow(clippy::too_many_arguments)]
pub fn run_reach(
    classifier: &Classifier,
    lpips: Option<&Lpips>,
    also: &[&Classifier],
    set: &LabeledSet,
    dataset_name: &str,
    opts: &ReachOptions,
    out: &Path,
    run: &BatchRun,
    mut on_event: impl FnMut(ReachEvent<'_>) -> ControlFlow<()>,
) -> Result<ReachResult> {
    let spec = classifier.spec();
    let shape = [spec.channels, spec.input_size[0], spec.input_size[1]];
    let criterion = match lpips {
        Some(_) if lpips_applies(shape) => HitCriterion::Lpips,
        _ => HitCriterion::RelativeL2,
    };
    let plan = plan_reach(classifier, also, set, dataset_name, opts, criterion)?;
    let batch = opts.batch.max(1);
    let all = plan.pairs();
    let units: Vec<Vec<String>> = all
        .chunks(batch)
        .map(|chunk| {
            chunk
                .iter()
                .map(|p| store::pair_json_file(p.pair_id))
                .collect()
        })
        .collect();
    let folder = store::start(out, &plan, run, units)?;
    let lpips = lpips.filter(|_| criterion == HitCriterion::Lpips);

    let load = |i: usize| set.get(i, &spec.preprocess, spec.channels, &Device::Cpu);
    let sources = plan
        .sources
        .iter()
        .map(|s| load(s.dataset_index))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let targets = plan
        .targets
        .iter()
        .map(|t| load(t.dataset_index))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let host = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };

    let mut records = load_pair_records(out, &plan);
    let total = plan.pairs_total();
    if on_event(ReachEvent::Started {
        plan: &plan,
        done: &records,
    })
    .is_break()
    {
        return Ok(ReachResult {
            summary: summarize(&plan, &records),
            plan,
            shard_done: None,
        });
    }
    let done: std::collections::HashSet<u64> = records.iter().map(|r| r.pair_id).collect();
    for (unit, chunk) in all.chunks(batch).enumerate() {
        // A shard walks only its own batches.
        if !folder.owns(unit) {
            continue;
        }
        // Sources that measure widths walk in a batch of their own (widths are a per-run
        // setting of the walker). A batch walks whole, with the batch-mates the plan gave it,
        // even when some of its pairs are on disk already (a kill while it was being
        // written): batched kernels round by the batch's shape, so only then is a resumed
        // pair the uninterrupted run's to the last digit. Pairs on disk keep their files.
        for widths in [false, true] {
            let group: Vec<_> = chunk
                .iter()
                .filter(|p| plan.sources[p.source].widths == widths)
                .collect();
            if group.iter().all(|p| done.contains(&p.pair_id)) {
                continue;
            }
            let pairs: Vec<WalkPair> = group
                .iter()
                .map(|p| WalkPair {
                    source: sources[p.source].clone(),
                    label: plan.sources[p.source].label,
                    target: targets[p.target].clone(),
                    target_label: plan.targets[p.target].class,
                    pair_id: p.pair_id,
                })
                .collect();
            let mut config = opts.config.clone();
            config.width.enabled = widths;
            config.record_images = false;
            let iterations = config.iterations;
            let mut walk =
                Traversal::new(classifier, WalkConfig::Nspgd(config), &pairs)?.with_lpips(lpips);
            while let Some(event) = walk.step()? {
                let step = ReachEvent::Step {
                    step: event.step,
                    iterations,
                    walking: event.samples.len(),
                };
                if on_event(step).is_break() {
                    return Ok(ReachResult {
                        summary: summarize(&plan, &records),
                        plan,
                        shard_done: None,
                    });
                }
            }
            let mut new = Vec::with_capacity(group.len());
            for (p, output) in group.iter().zip(walk.finish()?) {
                if done.contains(&p.pair_id) {
                    continue;
                }
                let source = host(&sources[p.source])?;
                let target = host(&targets[p.target])?;
                let record = ReachPairRecord {
                    pair_id: p.pair_id,
                    source: p.source,
                    target: p.target,
                    source_class: plan.sources[p.source].label,
                    target_class: plan.targets[p.target].class,
                    status: output.status,
                    p0: output.p0,
                    final_source_confidence: 0.0,
                    final_target_confidence: 0.0,
                    lpips: None,
                    relative_l2: 0.0,
                    l2_normalized: 0.0,
                    linf: 0.0,
                    accepted_steps: 0,
                    widths: None,
                };
                let (record, x_final) = match output.result {
                    Some(r) => {
                        let last = r.confs.last().copied().unwrap_or([0.0; 2]);
                        let record = ReachPairRecord {
                            final_source_confidence: last[0],
                            final_target_confidence: last[1],
                            lpips: r.distances.lpips,
                            relative_l2: relative_l2(&r.x_star, &source, &target),
                            l2_normalized: r.distances.l2,
                            linf: r.distances.linf,
                            accepted_steps: r.accepted_steps,
                            widths: r.widths,
                            ..record
                        };
                        (record, Some(r.x_star))
                    }
                    None => (record, None),
                };
                store::save_pair(out, &record, x_final.as_deref(), shape)?;
                new.push(record);
            }
            records.extend(new.iter().cloned());
            let event = ReachEvent::Pairs {
                new: &new,
                done: records.len(),
                total,
            };
            if on_event(event).is_break() {
                return Ok(ReachResult {
                    summary: summarize(&plan, &records),
                    plan,
                    shard_done: None,
                });
            }
        }
    }
    records.sort_by_key(|r| r.pair_id);
    let summary = summarize(&plan, &records);
    // A shard writes no tables: `merge` does, once every shard is done.
    if let Some(message) = folder.finish_shard()? {
        return Ok(ReachResult {
            plan,
            summary,
            shard_done: Some(message),
        });
    }
    let target_pixels = targets.iter().map(host).collect::<Result<Vec<_>>>()?;
    write_outputs(out, &plan, &summary, &records, &target_pixels, shape)?;
    Ok(ReachResult {
        plan,
        summary,
        shard_done: None,
    })
}

/// Reads `reach.json` from an evaluation folder.
pub fn load_summary(dir: &Path) -> Result<ReachSummary> {
    let path = dir.join(outputs::SUMMARY_JSON);
    let bytes = std::fs::read(&path).map_err(|source| {
        RunError::Record(RecordError::Io {
            path: path.clone(),
            source,
        })
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|source| RunError::Record(RecordError::Json { path, source }))
}
