//! `blindspot bench`: milliseconds per LST iteration (forward + input gradient + forward, the
//! cost of one step in ALGORITHMS.md §1.2) for standard layouts with seeded random weights.
//! One JSON object per configuration and line with `--json`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use blindspot::models::zoo::ZooModel;
use blindspot::models::{LoadOptions, Objective, classifier_from_checkpoint};
use candle_core::Tensor;
use clap::Args;
use serde::Serialize;

#[derive(Args)]
pub struct BenchArgs {
    /// One model (resnet20, resnet18, resnet50, efficientnet_lite0); all when absent.
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
    /// Keep batch norm as a separate op (the no-folding baseline).
    #[arg(long)]
    no_fold: bool,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Stats {
    min: f64,
    median: f64,
}

#[derive(Serialize)]
struct Record {
    model: &'static str,
    input: usize,
    batch: usize,
    batch_norm: &'static str,
    device: String,
    threads: usize,
    iterations: usize,
    lst_iter_ms: Stats,
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
    let device = super::device(&args.device)?;
    let threads = candle_core::utils::get_num_threads();
    for model_kind in models {
        let opts = LoadOptions {
            device: device.clone(),
            fold_batch_norm: !args.no_fold,
            ..LoadOptions::default()
        };
        let model = classifier_from_checkpoint(model_kind.checkpoint()?, String::new(), &opts)?;
        let size = model_kind.input_size();
        for &batch in &batches {
            let x = Tensor::rand(0f32, 1f32, (batch, 3, size, size), &device)?;
            let labels = Objective::CrossEntropy(vec![0; batch]);
            let sync = || device.synchronize();
            let one_iteration = || -> Result<(f64, f64)> {
                let start = Instant::now();
                let _ = model.forward(&x)?;
                sync()?;
                let forward = start.elapsed().as_secs_f64() * 1e3;
                let _ = model.input_gradient(&x, &labels)?;
                let _ = model.forward(&x)?;
                sync()?;
                Ok((start.elapsed().as_secs_f64() * 1e3, forward))
            };
            one_iteration()?; // warm-up: allocator, thread pool, caches
            let (mut iter_ms, mut fwd_ms) = (Vec::new(), Vec::new());
            let started = Instant::now();
            while iter_ms.len() < args.max_iters
                && (iter_ms.len() < args.min_iters
                    || started.elapsed() < Duration::from_secs_f64(args.seconds))
            {
                let (total, forward) = one_iteration()?;
                iter_ms.push(total);
                fwd_ms.push(forward);
            }
            let record = Record {
                model: model_kind.name(),
                input: size,
                batch,
                batch_norm: if args.no_fold { "separate" } else { "folded" },
                device: args.device.clone(),
                threads,
                iterations: iter_ms.len(),
                lst_iter_ms: stats(iter_ms),
                forward_ms: stats(fwd_ms),
            };
            if args.json {
                println!("{}", serde_json::to_string(&record)?);
            } else {
                println!(
                    "{:<20} {:>3}px batch {:<2} {:>9}: LST iteration median {:>9.1} ms (min {:>9.1}), forward {:>8.1} ms, {} iters, {} threads",
                    record.model,
                    size,
                    batch,
                    record.batch_norm,
                    record.lst_iter_ms.median,
                    record.lst_iter_ms.min,
                    record.forward_ms.median,
                    record.iterations,
                    threads
                );
            }
        }
    }
    Ok(())
}
