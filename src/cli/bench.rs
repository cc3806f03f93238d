//! `blindspot bench`: milliseconds per LST iteration for standard layouts with seeded random
//! weights, optionally beside the PyTorch reference (`--vs-json`, written by
//! `benches/pytorch_reference.py`).
//!
//! One LST iteration is what ALGORITHMS.md §1.2 costs per step, and what the reference script
//! times in PyTorch: a forward pass that records what the gradient needs, the input gradient
//! (frozen weights), and one more forward pass: `input_gradient` (which returns the logits of
//! its forward pass) then `forward`. That is three forward passes' worth of FLOPs, the "bound"
//! of the issue when divided by the machine's peak GEMM rate.
//!
//! `--lpips PATH` adds one row: LPIPS-Alex of one 224×224 pair (kind "lpips_pair"), beside the
//! reference script's `--lpips` row (PyTorch's `lpips` package with the same weights).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use blindspot::models::zoo::ZooModel;
use blindspot::models::{
    Classifier, LoadOptions, Lpips, Objective, classifier_from_checkpoint, compute_threads,
    set_compute_threads,
};
use candle_core::Tensor;
use clap::Args;
use serde::{Deserialize, Serialize};

#[derive(Args)]
pub struct BenchArgs {
    /// One model (resnet20, resnet18, resnet50, efficientnet_lite0, vit_s16, vit_ti16); all
    /// when absent.
    #[arg(long)]
    model: Option<String>,
    /// One batch size; 1 and 8 when absent.
    #[arg(long)]
    batch: Option<usize>,
    /// Stop timing a configuration after this many seconds (at least `min_iters` run).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    #[arg(long, default_value_t = 3)]
    min_iters: usize,
    #[arg(long, default_value_t = 50)]
    max_iters: usize,
    /// Keep batch norm as a separate op (the no-folding baseline) instead of folding it.
    #[arg(long)]
    no_fold: bool,
    /// Time both: batch norm folded and the no-folding baseline.
    #[arg(long, conflicts_with = "no_fold")]
    with_no_fold: bool,
    /// Candle's autograd instead of our kernels (the old path, for comparison).
    #[arg(long)]
    autograd: bool,
    /// Also time a forward-only batch of this many images, as the hull heatmap runs it
    /// (resnet20, resnet50; 66 in the issue); 0 skips it.
    #[arg(long, default_value_t = 0)]
    hull_batch: usize,
    /// Also time a semantic map (ALGORITHMS.md §3.2) of this many points per axis over rot ×
    /// scale on resnet20 (61 in the issue: 3721 warped images, batches of --map-batch); 0 skips.
    #[arg(long, default_value_t = 0)]
    semantic_map: usize,
    /// Transformed images per model call in the semantic map (`semantic map --batch`).
    #[arg(long, default_value_t = 64)]
    map_batch: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Compute threads (`models::set_compute_threads`); all cores when absent.
    #[arg(long)]
    threads: Option<usize>,
    /// LPIPS-Alex weights: also time one 224×224 pair (CPU).
    #[arg(long, value_name = "PATH")]
    lpips: Option<PathBuf>,
    /// Time only the LPIPS pair (with --lpips), no classifier.
    #[arg(long, requires = "lpips")]
    lpips_only: bool,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Reference timings (`benches/pytorch_reference.py --out FILE`) to print ours beside;
    /// may be given more than once (rows are merged, the first match wins).
    #[arg(long, value_name = "FILE")]
    vs_json: Vec<PathBuf>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
struct Stats {
    min: f64,
    median: f64,
}

#[derive(Serialize)]
struct Record {
    kind: &'static str,
    model: &'static str,
    input: usize,
    batch: usize,
    batch_norm: &'static str,
    kernels: &'static str,
    device: String,
    threads: usize,
    iterations: usize,
    /// The LST iteration (kind "lst_iteration"), or the forward-only batch (kind
    /// "hull_forward"; the name is kept so scripts reading lst_iter_ms keep working).
    lst_iter_ms: Stats,
    forward_ms: Stats,
    /// Convolution and linear FLOPs of the timed work.
    gflop: Option<f64>,
    /// Achieved GFLOP/s over this run's measured peak GEMM rate.
    peak_fraction: Option<f64>,
    /// The bound: the timed FLOPs at peak GEMM rate, ms.
    bound_ms: Option<f64>,
    pytorch_ms: Option<f64>,
    /// Ours over PyTorch's median; below 1 is faster.
    ratio: Option<f64>,
    /// Peak resident set of this process so far (VmHWM), MiB.
    peak_rss_mib: Option<f64>,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(default)]
    peak_gemm_gflops: Option<f64>,
    #[serde(default)]
    threads: Option<usize>,
    #[serde(default)]
    malloc_tuned: Option<bool>,
    rows: Vec<ReferenceRow>,
    #[serde(default)]
    hull_forward: Vec<ReferenceHull>,
    #[serde(default)]
    lpips: Vec<ReferenceLpips>,
    #[serde(default)]
    semantic_map: Vec<ReferenceHull>,
}

#[derive(Deserialize)]
struct ReferenceLpips {
    input: usize,
    batch: usize,
    forward_ms: Stats,
}

#[derive(Deserialize)]
struct ReferenceRow {
    model: String,
    batch: usize,
    lst_iter_ms: Stats,
}

#[derive(Deserialize)]
struct ReferenceHull {
    model: String,
    batch: usize,
    forward_ms: Stats,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        0.5 * (ms[n / 2 - 1] + ms[n / 2])
    };
    Stats { min: ms[0], median }
}

/// VmHWM from /proc/self/status, MiB (Linux only).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Times `f` until `seconds` have passed (within the iteration bounds), after one warm-up.
fn time_it(args: &BenchArgs, mut f: impl FnMut() -> Result<f64>) -> Result<(Vec<f64>, Vec<f64>)> {
    f()?; // warm-up: allocator, thread pool, caches, workspace
    let (mut total, mut part) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while total.len() < args.max_iters
        && (total.len() < args.min_iters
            || started.elapsed() < Duration::from_secs_f64(args.seconds))
    {
        let start = Instant::now();
        part.push(f()?);
        total.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok((total, part))
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let models = match &args.model {
        Some(name) => vec![ZooModel::from_name(name).with_context(|| {
            let names: Vec<_> = ZooModel::ALL.iter().map(|m| m.name()).collect();
            format!(
                "unknown model `{name}`; expected one of {}",
                names.join(", ")
            )
        })?],
        None => ZooModel::ALL.to_vec(),
    };
    let batches = args.batch.map_or(vec![1, 8], |b| vec![b]);
    if batches.contains(&0) {
        bail!("--batch must be at least 1");
    }
    let mut reference: Option<Reference> = None;
    for path in &args.vs_json {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let r: Reference =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        match reference.as_mut() {
            None => reference = Some(r),
            Some(all) => {
                all.rows.extend(r.rows);
                all.hull_forward.extend(r.hull_forward);
                all.lpips.extend(r.lpips);
                all.semantic_map.extend(r.semantic_map);
            }
        }
    }
    if let Some(n) = args.threads {
        set_compute_threads(n);
    }
    let device = super::device(&args.device)?;
    let threads = compute_threads();
    let peak = device
        .is_cpu()
        .then(|| blindspot::models::engine::peak_gemm_gflops(2048));
    if let Some(peak) = peak {
        eprintln!("peak fp32 GEMM, ours: {peak:.1} GFLOP/s on {threads} threads");
    }
    if let Some(r) = &reference {
        eprintln!(
            "reference: PyTorch on {} threads, peak GEMM {} GFLOP/s, malloc tuned: {}",
            r.threads.map_or("?".into(), |t| t.to_string()),
            r.peak_gemm_gflops.map_or("?".into(), |p| format!("{p:.1}")),
            r.malloc_tuned.map_or("?".into(), |m| m.to_string()),
        );
    }
    let folds: Vec<bool> = if args.with_no_fold {
        vec![true, false]
    } else {
        vec![!args.no_fold]
    };
    let mut records = Vec::new();
    let models = if args.lpips_only { Vec::new() } else { models };
    for model_kind in models {
        for &fold in &folds {
            let opts = LoadOptions {
                device: device.clone(),
                fold_batch_norm: fold,
                ..LoadOptions::default()
            };
            let mut model =
                classifier_from_checkpoint(model_kind.checkpoint()?, String::new(), &opts)?;
            if args.autograd {
                model = model.with_autograd();
            }
            let kernels = if model.uses_native_kernels() {
                "engine"
            } else {
                "autograd"
            };
            let batch_norm = if fold { "folded" } else { "separate" };
            let size = model_kind.input_size();
            let describe = |kind, batch, (total, fwd): (Vec<f64>, Vec<f64>), passes: f64| {
                let lst_iter_ms = stats(total);
                let gflop = model.forward_flops(batch).map(|f| passes * f / 1e9);
                let pytorch_ms = reference.as_ref().and_then(|r| match kind {
                    "lst_iteration" => r
                        .rows
                        .iter()
                        .find(|row| row.model == model_kind.name() && row.batch == batch)
                        .map(|row| row.lst_iter_ms.median),
                    "semantic_map" => r
                        .semantic_map
                        .iter()
                        .find(|row| row.model == model_kind.name() && row.batch == batch)
                        .map(|row| row.forward_ms.median),
                    _ => r
                        .hull_forward
                        .iter()
                        .find(|row| row.model == model_kind.name() && row.batch == batch)
                        .map(|row| row.forward_ms.median),
                });
                Record {
                    kind,
                    model: model_kind.name(),
                    input: size,
                    batch,
                    batch_norm,
                    kernels,
                    device: args.device.clone(),
                    threads,
                    iterations: fwd.len(),
                    lst_iter_ms,
                    forward_ms: stats(fwd),
                    gflop,
                    peak_fraction: gflop
                        .zip(peak)
                        .map(|(g, p)| g / (lst_iter_ms.median * 1e-3) / p),
                    bound_ms: gflop.zip(peak).map(|(g, p)| g / p * 1e3),
                    pytorch_ms,
                    ratio: pytorch_ms.map(|p| lst_iter_ms.median / p),
                    peak_rss_mib: peak_rss_mib(),
                }
            };
            for &batch in &batches {
                let x = Tensor::rand(0f32, 1f32, (batch, 3, size, size), &device)?;
                let labels = Objective::CrossEntropy(vec![0; batch]);
                let timings = time_it(args, || lst_iteration(&model, &x, &labels, &device))?;
                records.push(describe("lst_iteration", batch, timings, 3.0));
                emit(args, records.last())?;
            }
            let hull_model = matches!(model_kind, ZooModel::Resnet20 | ZooModel::Resnet50);
            if args.hull_batch > 0 && hull_model && fold {
                let xs = Tensor::rand(0f32, 1f32, (args.hull_batch, 3, size, size), &device)?;
                let timings = time_it(args, || {
                    let start = Instant::now();
                    let _ = model.forward(&xs)?;
                    device.synchronize()?;
                    Ok(start.elapsed().as_secs_f64() * 1e3)
                })?;
                records.push(describe("hull_forward", args.hull_batch, timings, 1.0));
                emit(args, records.last())?;
            }
            if args.semantic_map > 0 && model_kind == ZooModel::Resnet20 && fold {
                let timings = semantic_map(args, &model, size, &device)?;
                let points = args.semantic_map * args.semantic_map;
                records.push(describe("semantic_map", points, timings, 1.0));
                emit(args, records.last())?;
            }
        }
    }
    if let Some(path) = &args.lpips {
        records.push(lpips_pair(args, path, reference.as_ref(), threads)?);
        emit(args, records.last())?;
    }
    if reference.is_some() && !args.json {
        print_table(&records);
    }
    Ok(())
}

/// A whole rot × scale semantic map of one random image, as `semantic map` computes it: the
/// warp on the host, then the batched forward and softmax (the reference script does the same
/// with `affine_grid` + `grid_sample`).
fn semantic_map(
    args: &BenchArgs,
    model: &Classifier,
    size: usize,
    device: &candle_core::Device,
) -> Result<(Vec<f64>, Vec<f64>)> {
    use blindspot::analysis::semantic::{
        ParamSpace, SemanticObjective, SemanticParam, compute_map,
    };
    let image = Tensor::rand(0f32, 1f32, (3, size, size), &candle_core::Device::Cpu)?;
    let space = ParamSpace::new(&[SemanticParam::Rot, SemanticParam::Scale], &[], 3)?;
    let objective = SemanticObjective::new(model, &image, 0, space, args.map_batch)?;
    time_it(args, || {
        let start = Instant::now();
        let map = compute_map(&objective, args.semantic_map, |_| {
            std::ops::ControlFlow::Continue(())
        })?;
        device.synchronize()?;
        if !map.is_complete() {
            bail!("the benchmark map stopped early");
        }
        Ok(start.elapsed().as_secs_f64() * 1e3)
    })
}

/// LPIPS-Alex of one 224×224 pair of random images, the whole metric (both feature stacks,
/// normalisation, heads), as `Lpips::distances` runs it.
fn lpips_pair(
    args: &BenchArgs,
    path: &std::path::Path,
    reference: Option<&Reference>,
    threads: usize,
) -> Result<Record> {
    const SIZE: usize = 224;
    let lpips = Lpips::load(path)?;
    let cpu = candle_core::Device::Cpu;
    let a = Tensor::rand(0f32, 1f32, (1, 3, SIZE, SIZE), &cpu)?;
    let b = Tensor::rand(0f32, 1f32, (1, 3, SIZE, SIZE), &cpu)?;
    let (total, _) = time_it(args, || {
        let start = Instant::now();
        let d = lpips.distances(&a, &b)?;
        anyhow::ensure!(d.iter().all(|v| v.is_finite()), "LPIPS gave {d:?}");
        Ok(start.elapsed().as_secs_f64() * 1e3)
    })?;
    let iterations = total.len();
    let ms = stats(total);
    let pytorch_ms = reference.and_then(|r| {
        r.lpips
            .iter()
            .find(|row| row.input == SIZE && row.batch == 1)
            .map(|row| row.forward_ms.median)
    });
    Ok(Record {
        kind: "lpips_pair",
        model: "lpips_alex",
        input: SIZE,
        batch: 1,
        batch_norm: "none",
        kernels: "engine",
        device: "cpu".into(),
        threads,
        iterations,
        lst_iter_ms: ms,
        forward_ms: ms,
        gflop: None,
        peak_fraction: None,
        bound_ms: None,
        pytorch_ms,
        ratio: pytorch_ms.map(|p| ms.median / p),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// One iteration; returns the ms of its final forward pass.
fn lst_iteration(
    model: &Classifier,
    x: &Tensor,
    labels: &Objective,
    device: &candle_core::Device,
) -> Result<f64> {
    let _ = model.input_gradient(x, labels)?;
    device.synchronize()?;
    let start = Instant::now();
    let _ = model.forward(x)?;
    device.synchronize()?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

fn emit(args: &BenchArgs, record: Option<&Record>) -> Result<()> {
    let Some(r) = record else { return Ok(()) };
    if args.json {
        println!("{}", serde_json::to_string(r)?);
    } else if args.vs_json.is_empty() {
        println!(
            "{:<20} {:>3}px batch {:<2} {:>8} {:>8} {:<13}: median {:>9.1} ms (min {:>9.1}), forward {:>8.1} ms, {} iters, {} threads",
            r.model,
            r.input,
            r.batch,
            r.batch_norm,
            r.kernels,
            r.kind,
            r.lst_iter_ms.median,
            r.lst_iter_ms.min,
            r.forward_ms.median,
            r.iterations,
            r.threads
        );
    } else {
        eprintln!(
            "done: {} batch {} {} {}",
            r.model, r.batch, r.batch_norm, r.kind
        );
    }
    Ok(())
}

fn print_table(records: &[Record]) {
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
    println!(
        "| what | model | input | batch | batch norm | ours ms | PyTorch ms | ratio | % peak GEMM | bound ms | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in records {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            r.kind,
            r.model,
            r.input,
            r.batch,
            r.batch_norm,
            r.lst_iter_ms.median,
            opt(r.pytorch_ms, 1),
            opt(r.ratio, 2),
            opt(r.peak_fraction.map(|f| 100.0 * f), 0),
            opt(r.bound_ms, 1),
            opt(r.peak_rss_mib, 0),
        );
    }
}
