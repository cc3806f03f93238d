//! Full evaluation (ALGORITHMS.md §1.3): a pool of correctly classified images of distinct
//! classes, R rounds of derangements as source -> target pairs, LST in batches, Table 1 over
//! all pairs and Table 2 over each source's triangles. Every finished batch is written to
//! disk at once, so a stopped evaluation loses at most one batch and `resume` continues it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::analysis::AnalysisError;
use crate::analysis::confidence::{argmax, logits_rows, softmax_at};
use crate::analysis::hull::{TriangleMetrics, aggregate_triangles, evaluate_hull, table2};
use crate::analysis::lst::LstConfig;
use crate::analysis::plans::{PairPlan, evaluation_pairs, examples_pairs};
use crate::analysis::rng::{SAMPLE_SELECT, permutation, stream};
use crate::analysis::stats::{MeanStd, mean_std_f32};
use crate::analysis::{PairStatus, Traversal, WalkPair};
use crate::images::{self, LabeledImage};
use crate::models::{Classifier, Lpips};
use crate::record::{RecordError, save_tensors_atomic, write_atomic};
use crate::run::{Result, RunError};

mod resume;
use crate::run_folder::{BatchRun, ModelFingerprint, Opening, RunFolder};
use resume::{EvalIdentity, check_resume_identity, check_resume_pool, stored_pool_json};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Pairs wanted; rounds = ceil(pairs / pool size).
    pub pairs: usize,
    /// Pool size K (distinct classes); at most the number of classes.
    pub pool: usize,
    /// Pairs per LST batch (results do not depend on it).
    pub batch: usize,
    /// The order the pool is taken in (§1.3: data-set order).
    pub pool_order: PoolOrder,
    pub config: LstConfig,
}

/// The order in which the data set is scanned for the pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolOrder {
    /// The first image of each class in data-set order, as ALGORITHMS.md §1.3 and the seed's
    /// code take it.
    #[default]
    DataSet,
    /// A seeded random order (stream(seed, SAMPLE_SELECT, 0, 0)): another seed, another pool.
    Shuffled,
}

impl PoolOrder {
    /// What a `pool.json` written before the option existed used.
    pub fn before_the_option() -> Self {
        PoolOrder::Shuffled
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolImage {
    pub path: String,
    pub label: u32,
    pub class_name: String,
    pub confidence: f32,
}

/// One finished pair, as written to `pairs/pair_NNNNN.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairSummary {
    pub pair_id: u64,
    pub round: usize,
    pub source: usize,
    pub target: usize,
    pub status: PairStatus,
    pub p0: f32,
    pub final_source_confidence: f32,
    pub final_target_confidence: f32,
    pub l2_normalized: f32,
    pub linf: f32,
    pub ssim: Option<f32>,
    /// n/a without LPIPS weights (and in pair files written before LPIPS existed).
    #[serde(default)]
    pub lpips: Option<f32>,
    pub accepted_steps: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalTables {
    pub model: String,
    pub pairs: usize,
    pub skipped_pairs: usize,
    /// Table 1: L2 (normalised), L∞, SSIM and LPIPS over pairs (LPIPS n/a without weights;
    /// over the pairs that have it when a resumed run mixes both).
    pub l2: Option<MeanStd>,
    pub linf: Option<MeanStd>,
    pub ssim: Option<MeanStd>,
    #[serde(default)]
    pub lpips: Option<MeanStd>,
    /// Pairs with an LPIPS value.
    #[serde(default)]
    pub lpips_pairs: usize,
    /// Table 2, over sources: p_src, mean hull conf, frac > p_src − {0, 0.1, 0.2, 0.3},
    /// mean conf on the two linear paths, edge_min (extra column).
    pub table2: Vec<Option<MeanStd>>,
    pub triangles: usize,
    pub per_source: Vec<Option<TriangleMetrics>>,
}

impl EvalOptions {
    /// Refuses settings that cannot make an evaluation, before any work: no pairs, an empty
    /// batch, a pool of fewer than 2 classes or of more classes than the model has or the
    /// data set holds. Labels outside the model's classes are refused too, naming their line.
    pub fn validate(&self, model: &Classifier, dataset: &[LabeledImage]) -> Result<()> {
        if self.pairs == 0 {
            return Err(invalid("--pairs 0: must be at least 1".into()));
        }
        if self.batch == 0 {
            return Err(invalid("--batch 0: must be at least 1".into()));
        }
        if self.pool < 2 {
            return Err(invalid(format!(
                "--pool {}: must be at least 2 (a pair is two images of different classes)",
                self.pool
            )));
        }
        let classes = model.spec().num_classes();
        if self.pool > classes {
            return Err(invalid(format!(
                "--pool {}: the pool takes one image per class, and {} has only {classes} classes",
                self.pool,
                model.spec().short_name()
            )));
        }
        images::check_labels(dataset, classes)?;
        let present = dataset
            .iter()
            .map(|im| im.label)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if self.pool > present {
            return Err(invalid(format!(
                "--pool {}: the pool takes one image per class, and the data set has images of \
                 only {present} classes",
                self.pool
            )));
        }
        Ok(())
    }
}

fn invalid(m: String) -> RunError {
    RunError::Analysis(AnalysisError::Invalid(m))
}

/// Picks up to `k` images of distinct classes that the model, and every model of `also` (the
/// other models of a comparison, §1.3), classifies correctly with confidence above
/// `min_confidence`, scanning the data set in `order`: data-set order (§1.3), or a seeded random
/// order (stream(seed, SAMPLE_SELECT, 0, 0)) where another seed gives another pool. With the
/// same `also`, the evaluations of the models of a comparison share one pool.
pub fn select_pool(
    classifier: &Classifier,
    also: &[&Classifier],
    dataset: &[LabeledImage],
    k: usize,
    min_confidence: f32,
    order: PoolOrder,
    seed: u64,
) -> Result<Vec<PoolImage>> {
    for model in std::iter::once(&classifier).chain(also) {
        images::check_labels(dataset, model.spec().num_classes())?;
    }
    let order: Vec<usize> = match order {
        PoolOrder::DataSet => (0..dataset.len()).collect(),
        PoolOrder::Shuffled => permutation(&mut stream(seed, SAMPLE_SELECT, 0, 0), dataset.len()),
    };
    let spec = classifier.spec();
    let mut pool: Vec<PoolImage> = Vec::new();
    for chunk in order.chunks(32) {
        if pool.len() >= k {
            break;
        }
        let wanted: Vec<&LabeledImage> = chunk
            .iter()
            .map(|&i| &dataset[i])
            .filter(|im| !pool.iter().any(|p| same_class(p.label, im.label)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let xs = wanted
            .iter()
            .map(|im| {
                images::load_for_channels(&im.path, &spec.preprocess, spec.channels, &Device::Cpu)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = Tensor::stack(&xs, 0)?;
        let rows = logits_rows(&classifier.forward(&batch)?)?;
        let mut others = Vec::with_capacity(also.len());
        for model in also {
            if model.spec().input_size != spec.input_size || model.spec().channels != spec.channels
            {
                return Err(invalid(format!(
                    "the models of a comparison need one input shape: {} takes {:?}, {} takes {:?}",
                    spec.architecture,
                    spec.input_size,
                    model.spec().architecture,
                    model.spec().input_size
                )));
            }
            others.push(logits_rows(&model.forward(&batch)?)?);
        }
        for (k_im, (im, row)) in wanted.iter().zip(&rows).enumerate() {
            let conf = softmax_at(row, im.label);
            let taken = pool.iter().any(|p| same_class(p.label, im.label));
            let everyone = others.iter().all(|rows| {
                argmax(&rows[k_im]) == Some(im.label)
                    && softmax_at(&rows[k_im], im.label) > min_confidence
            });
            if !taken
                && argmax(row) == Some(im.label)
                && conf > min_confidence
                && everyone
                && pool.len() < k
            {
                let label = u32::try_from(im.label).map_err(|_| {
                    invalid(format!(
                        "{}: label {} is out of range for a class id",
                        im.path.display(),
                        im.label
                    ))
                })?;
                pool.push(PoolImage {
                    path: im.path.display().to_string(),
                    label,
                    class_name: spec.class_name(im.label).to_string(),
                    confidence: conf,
                });
            }
        }
    }
    Ok(pool)
}

/// Whether a pool image's class id is the data set label `label`, without a cast.
fn same_class(id: u32, label: usize) -> bool {
    usize::try_from(id).is_ok_and(|id| id == label)
}

fn pair_paths(out: &Path, id: u64) -> (PathBuf, PathBuf) {
    let json = out.join(pair_json_file(id));
    let tensors = json.with_extension("safetensors");
    (json, tensors)
}

/// A pair's JSON file, relative to the folder (what `units.json` lists).
fn pair_json_file(id: u64) -> String {
    format!("pairs/pair_{id:05}.json")
}

fn load_done(out: &Path, plan: &PairPlan) -> Option<(PairSummary, Option<Vec<f32>>)> {
    let (json, tensors) = pair_paths(out, plan.pair_id);
    let summary: PairSummary = serde_json::from_slice(&std::fs::read(json).ok()?).ok()?;
    let x_star = candle_core::safetensors::load(tensors, &Device::Cpu)
        .ok()
        .and_then(|t| {
            t.get("x_star")
                .and_then(|x| x.flatten_all().ok()?.to_vec1::<f32>().ok())
        });
    (summary.pair_id == plan.pair_id).then_some((summary, x_star))
}

/// Runs (or resumes) the evaluation into `out`. `progress(done, total)` is told after every
/// batch of pairs and again while hulls are evaluated. Table 1's LPIPS column needs `lpips`.
#[allow(clippy::too_many_arguments)]
pub fn run_eval(
    classifier: &Classifier,
    lpips: Option<&Lpips>,
    pool_models: &[&Classifier],
    dataset: &[LabeledImage],
    opts: &EvalOptions,
    out: &Path,
    run: &BatchRun,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<EvalRun> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Record(RecordError::Io { path, source })
    };
    opts.validate(classifier, dataset)?;
    let cfg = &opts.config;
    let identity = EvalIdentity {
        model: ModelFingerprint::of(classifier),
        pool_models: pool_models
            .iter()
            .map(|m| ModelFingerprint::of(m))
            .collect(),
        pairs: opts.pairs,
        pool: opts.pool,
        pool_order: opts.pool_order,
        config: cfg.clone(),
    };
    let stored = stored_pool_json(out)?;
    if let Some(stored) = &stored {
        check_resume_identity(out, stored, &identity)?;
    }
    let pool = select_pool(
        classifier,
        pool_models,
        dataset,
        opts.pool,
        cfg.pool_min_confidence,
        opts.pool_order,
        cfg.seed,
    )?;
    if let Some(stored) = &stored {
        check_resume_pool(out, stored, &pool)?;
    }
    std::fs::create_dir_all(out.join("pairs")).map_err(io(out))?;
    if pool.len() < 2 {
        return Err(invalid(format!(
            "only {} image(s) of distinct classes are classified correctly with confidence > {}; need 2",
            pool.len(),
            cfg.pool_min_confidence
        )));
    }
    let n = pool.len();
    let rounds = opts.pairs.div_ceil(n).max(1);
    let mut plans = evaluation_pairs(n, rounds, cfg.seed)
        .ok_or_else(|| invalid("no derangement of the pool".into()))?;
    plans.truncate(opts.pairs.max(1));
    let pool_json = serde_json::to_vec_pretty(
        &serde_json::json!({"pool": pool, "rounds": rounds, "options": opts, "identity": identity}),
    )
    .map_err(|e| invalid(e.to_string()))?;
    // The same plan as a run folder's, so that shards share the pairs by batch (unit u is
    // batch u) and `merge` can check the folder; pool.json stays the resume record.
    let batch_size = opts.batch.max(1);
    let units: Vec<Vec<String>> = plans
        .chunks(batch_size)
        .map(|b| b.iter().map(|p| pair_json_file(p.pair_id)).collect())
        .collect();
    let folder = RunFolder::open(
        out,
        &serde_json::json!({"kind": "eval", "identity": identity, "pool": pool, "rounds": rounds}),
        Opening {
            what: "evaluation",
            // The command line refused a folder without --resume already.
            resume: true,
            shard: run.shard,
            units,
            command: run.command.clone(),
            ..Opening::default()
        },
    )?;
    write_atomic(&out.join("pool.json"), &pool_json)?;

    let spec = classifier.spec();
    let pixels = pool
        .iter()
        .map(|p| {
            images::load_for_channels(
                Path::new(&p.path),
                &spec.preprocess,
                spec.channels,
                &Device::Cpu,
            )
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut done: BTreeMap<u64, (PairSummary, Option<Vec<f32>>)> = BTreeMap::new();
    for plan in &plans {
        if let Some(d) = load_done(out, plan) {
            done.insert(plan.pair_id, d);
        }
    }
    progress("pairs", done.len(), plans.len());
    // A batch walks whole, with the batch-mates the plan gave it, even when some of its pairs
    // are on disk (a kill while it was being written): batched kernels round by the batch's
    // shape, so only then is a resumed or sharded pair the uninterrupted run's to the last
    // digit. Pairs on disk keep their files; a shard walks only its own batches.
    for (unit, batch) in plans.chunks(batch_size).enumerate() {
        if !folder.owns(unit) || batch.iter().all(|p| done.contains_key(&p.pair_id)) {
            continue;
        }
        let pairs: Vec<WalkPair> = batch
            .iter()
            .map(|p| WalkPair {
                source: pixels[p.source].clone(),
                label: pool[p.source].label,
                target: pixels[p.target].clone(),
                target_label: pool[p.target].label,
                pair_id: p.pair_id,
            })
            .collect();
        let mut traversal = Traversal::new(classifier, cfg, &pairs)?.with_lpips(lpips);
        while traversal.step()?.is_some() {
            // Ctrl-C: stop after this step. The batch's pairs are not written (they are
            // unfinished); every pair of the batches before is, so --resume redoes only these.
            if crate::interrupt::requested() {
                return Err(RunError::Interrupted {
                    done: done.len(),
                    total: plans.len(),
                    unit: "pairs",
                    out: out.to_path_buf(),
                });
            }
        }
        for (plan, output) in batch.iter().zip(traversal.finish()?) {
            if done.contains_key(&plan.pair_id) {
                continue;
            }
            let (last, distances, accepted, x_star) = match &output.result {
                Some(r) => (
                    r.confs.last().copied().unwrap_or([0.0; 2]),
                    Some(r.distances),
                    r.accepted_steps,
                    Some(r.x_star.clone()),
                ),
                None => ([0.0; 2], None, 0, None),
            };
            let summary = PairSummary {
                pair_id: plan.pair_id,
                round: plan.round,
                source: plan.source,
                target: plan.target,
                status: output.status,
                p0: output.p0,
                final_source_confidence: last[0],
                final_target_confidence: last[1],
                l2_normalized: distances.map_or(0.0, |d| d.l2),
                linf: distances.map_or(0.0, |d| d.linf),
                ssim: distances.and_then(|d| d.ssim),
                lpips: distances.and_then(|d| d.lpips),
                accepted_steps: accepted,
            };
            let (json_path, tensor_path) = pair_paths(out, plan.pair_id);
            if let Some(x) = &x_star {
                let t = Tensor::from_slice(x, x.len(), &Device::Cpu)?;
                save_tensors_atomic(&tensor_path, &[("x_star".to_string(), t)].into())?;
            }
            let json = serde_json::to_vec_pretty(&summary).map_err(|e| invalid(e.to_string()))?;
            write_atomic(&json_path, &json)?;
            done.insert(plan.pair_id, (summary, x_star));
        }
        progress("pairs", done.len(), plans.len());
    }
    // A shard writes no tables: `merge` does, once every shard is done.
    if let Some(message) = folder.finish_shard()? {
        return Ok(EvalRun::ShardDone(message));
    }

    // Table 2: for each source, the triangles over pairs of its rounds' outputs.
    let shape = pixels[0].dims().to_vec();
    let mut per_source: Vec<Option<TriangleMetrics>> = Vec::with_capacity(n);
    let mut triangles = 0;
    for (i, xs) in pixels.iter().enumerate() {
        let outputs: Vec<&Vec<f32>> = plans
            .iter()
            .filter(|p| p.source == i)
            .filter_map(|p| done.get(&p.pair_id).and_then(|d| d.1.as_ref()))
            .collect();
        let mut metrics = Vec::new();
        for a in 0..outputs.len() {
            for b in a + 1..outputs.len() {
                let x1 = Tensor::from_slice(outputs[a], shape.as_slice(), &Device::Cpu)?;
                let x2 = Tensor::from_slice(outputs[b], shape.as_slice(), &Device::Cpu)?;
                let hull = evaluate_hull(
                    classifier,
                    xs,
                    &x1,
                    &x2,
                    pool[i].label,
                    cfg.hull_resolution,
                    66,
                )?;
                metrics.push(hull.metrics);
            }
        }
        triangles += metrics.len();
        per_source.push(aggregate_triangles(&metrics));
        progress("hull sources", i + 1, n);
    }
    let summaries: Vec<&PairSummary> = plans
        .iter()
        .filter_map(|p| done.get(&p.pair_id).map(|d| &d.0))
        .collect();
    let ran: Vec<&&PairSummary> = summaries
        .iter()
        .filter(|s| !matches!(s.status, PairStatus::Skipped(_)))
        .collect();
    let column = |f: &dyn Fn(&PairSummary) -> Option<f32>| {
        mean_std_f32(&ran.iter().filter_map(|s| f(s)).collect::<Vec<_>>())
    };
    let sources: Vec<TriangleMetrics> = per_source.iter().flatten().copied().collect();
    let tables = EvalTables {
        model: spec.architecture.clone(),
        pairs: ran.len(),
        skipped_pairs: summaries.len() - ran.len(),
        l2: column(&|s| Some(s.l2_normalized)),
        linf: column(&|s| Some(s.linf)),
        ssim: column(&|s| s.ssim),
        lpips: column(&|s| s.lpips),
        lpips_pairs: ran.iter().filter(|s| s.lpips.is_some()).count(),
        table2: table2(&sources).to_vec(),
        triangles,
        per_source,
    };
    write_outputs(out, &tables, &pool, &summaries)?;
    Ok(EvalRun::Complete(Box::new(tables)))
}

/// How [`run_eval`] ended.
#[derive(Debug)]
pub enum EvalRun {
    /// Every pair is done and the tables are written.
    Complete(Box<EvalTables>),
    /// A shard did all its pairs; what to tell the user (merge comes next).
    ShardDone(String),
}

fn fmt_ms(m: &Option<MeanStd>, decimals: usize) -> String {
    m.map_or("n/a".into(), |m| {
        format!("{:.*} ± {:.*}", decimals, m.mean, decimals, m.std)
    })
}

fn write_outputs(
    out: &Path,
    tables: &EvalTables,
    pool: &[PoolImage],
    summaries: &[&PairSummary],
) -> Result<()> {
    let json = serde_json::to_vec_pretty(tables).map_err(|e| invalid(e.to_string()))?;
    write_atomic(&out.join("tables.json"), &json)?;
    let mut csv = String::from(
        "pair_id,round,source_path,source_class,target_path,target_class,status,p0,final_source_confidence,final_target_confidence,l2_normalized,linf,ssim,lpips,accepted_steps\n",
    );
    for s in summaries {
        let (src, tgt) = (&pool[s.source], &pool[s.target]);
        let _ = writeln!(
            csv,
            "{},{},\"{}\",{},\"{}\",{},{:?},{},{},{},{},{},{},{},{}",
            s.pair_id,
            s.round,
            src.path,
            src.class_name,
            tgt.path,
            tgt.class_name,
            s.status,
            s.p0,
            s.final_source_confidence,
            s.final_target_confidence,
            s.l2_normalized,
            s.linf,
            s.ssim.map_or(String::new(), |v| v.to_string()),
            s.lpips.map_or(String::new(), |v| v.to_string()),
            s.accepted_steps
        );
    }
    write_atomic(&out.join("pairs.csv"), csv.as_bytes())?;
    Ok(write_atomic(
        &out.join("summary.md"),
        summary_markdown(tables).as_bytes(),
    )?)
}

/// Tables 1 and 2 as Markdown, with the exact column names of ALGORITHMS.md.
pub fn summary_markdown(t: &EvalTables) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# LST evaluation: {}\n", t.model);
    let _ = writeln!(
        md,
        "## Table 1: distance between the LST output and its target\n"
    );
    let _ = writeln!(
        md,
        "| model | L2 (normalised) | L∞ | SSIM | LPIPS | pairs | skipped |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        t.model,
        fmt_ms(&t.l2, 3),
        fmt_ms(&t.linf, 3),
        fmt_ms(&t.ssim, 3),
        fmt_ms(&t.lpips, 3),
        t.pairs,
        t.skipped_pairs
    );
    let _ = writeln!(
        md,
        "## Table 2: the triangular convex hull ({} triangles)\n",
        t.triangles
    );
    let _ = writeln!(
        md,
        "| model | p_src | mean hull conf | frac > p_src | frac > p_src−0.1 | frac > p_src−0.2 | frac > p_src−0.3 | mean conf on the two linear paths | edge_min |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    let cols: Vec<String> = t.table2.iter().map(|c| fmt_ms(c, 2)).collect();
    let _ = writeln!(md, "| {} | {} |", t.model, cols.join(" | "));
    md
}

/// One cell of the grid: x* pixels and p(class of its source).
pub type GridOutput = (Vec<f32>, f32);

/// The examples mode of §1.3: every pool image toward every other, K(K−1) pairs in one batch.
#[derive(Clone, Debug)]
pub struct ExamplesGrid {
    pub k: usize,
    /// Predicted class of each pool image (used as its source class).
    pub labels: Vec<u32>,
    pub class_names: Vec<String>,
    pub shape: [usize; 3],
    /// `outputs[target][source]`: x* of source toward target (the unmodified image on the
    /// diagonal), with p(class of source); `None` when the source was skipped.
    pub outputs: Vec<Vec<Option<GridOutput>>>,
}

pub fn examples_grid(
    classifier: &Classifier,
    config: &LstConfig,
    pool: &[crate::run::InputImage],
) -> Result<ExamplesGrid> {
    examples_grid_live(classifier, config, pool, |_| ControlFlow::Continue(()))
}

/// [`examples_grid`], with `on_step(i)` called after every iteration i of the one batched
/// traversal; breaking stops all pairs there, and the grid then shows those iterates.
pub fn examples_grid_live(
    classifier: &Classifier,
    config: &LstConfig,
    pool: &[crate::run::InputImage],
    mut on_step: impl FnMut(usize) -> ControlFlow<()>,
) -> Result<ExamplesGrid> {
    let k = pool.len();
    if k < 2 {
        return Err(invalid("the all-pairs grid needs at least 2 images".into()));
    }
    let batch = Tensor::stack(
        &pool.iter().map(|p| p.pixels.clone()).collect::<Vec<_>>(),
        0,
    )?;
    let rows = logits_rows(&classifier.forward(&batch)?)?;
    let labels: Vec<u32> = rows.iter().map(|r| argmax(r).unwrap_or(0) as u32).collect();
    let plans = examples_pairs(k);
    let pairs: Vec<WalkPair> = plans
        .iter()
        .map(|p| WalkPair {
            source: pool[p.source].pixels.clone(),
            label: labels[p.source],
            target: pool[p.target].pixels.clone(),
            target_label: labels[p.target],
            pair_id: p.pair_id,
        })
        .collect();
    let mut traversal = Traversal::new(classifier, config, &pairs)?;
    while let Some(event) = traversal.step()? {
        if on_step(event.step).is_break() {
            break;
        }
    }
    let spec = classifier.spec();
    let mut outputs: Vec<Vec<Option<GridOutput>>> = vec![vec![None; k]; k];
    for (j, row) in rows.iter().enumerate() {
        let host = pool[j].host()?;
        outputs[j][j] = Some((host, softmax_at(row, labels[j] as usize)));
    }
    for (plan, out) in plans.iter().zip(traversal.finish()?) {
        if let Some(r) = out.result {
            let conf = r.confs.last().map_or(0.0, |c| c[0]);
            outputs[plan.target][plan.source] = Some((r.x_star, conf));
        }
    }
    Ok(ExamplesGrid {
        k,
        class_names: labels
            .iter()
            .map(|&l| spec.class_name(l as usize).to_string())
            .collect(),
        labels,
        shape: [spec.channels, spec.input_size[0], spec.input_size[1]],
        outputs,
    })
}
