//! `blindspot eval`: the full evaluation of §1.3 over an image folder: Table 1, Table 2, a CSV
//! row per pair and a Markdown summary. Stopped runs continue with `--resume`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use blindspot::eval::{EvalOptions, EvalRun, PoolOrder, run_eval, summary_markdown};
use blindspot::images;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::lst_args::LstArgs;
use super::{LpipsArgs, ModelArgs};

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    lpips: LpipsArgs,
    /// ImageFolder tree or folder with labels.tsv.
    #[arg(long)]
    images: PathBuf,
    /// Source -> target pairs to run.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    pairs: usize,
    /// Pool size: images of distinct classes (each is a source in every round).
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    pool: usize,
    /// Pairs per LST batch.
    #[arg(long, default_value_t = 16, allow_negative_numbers = true)]
    batch: usize,
    /// How the data set is scanned for the pool: in data-set order, taking each class's first
    /// image every model gets right (ALGORITHMS.md §1.3), or in a seeded random order
    /// (--seed), so other seeds give other pools.
    #[arg(long, value_enum, default_value_t = PoolOrderArg::DataSet)]
    pool_order: PoolOrderArg,
    #[arg(long)]
    out: PathBuf,
    /// Continue an evaluation in --out: finished pairs are kept.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    shard: super::ShardArgs,
    /// Another model of the comparison (repeatable): pool images must be classified correctly,
    /// with confidence above the pool threshold, by these too (ALGORITHMS.md §1.3), so that
    /// every model's evaluation runs on the same pool. A checkpoint path, or demo:standard /
    /// demo:robust.
    #[arg(long = "pool-model")]
    pool_models: Vec<String>,
    #[command(flatten)]
    lst: LstArgs,
}

/// `--pool-order` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PoolOrderArg {
    DataSet,
    Shuffled,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    super::stop_after_step_on_ctrl_c();
    let model = args.model.load()?;
    let config = args.lst.config(model.spec().input_size)?;
    let run = args.shard.batch_run(args.resume)?;
    if args.out.join("pool.json").exists() && !args.resume && run.shard.is_none() {
        bail!(
            "{} already holds an evaluation: pass --resume to continue it, or choose another --out",
            args.out.display()
        );
    }
    let dataset = images::list_dataset(&args.images)?;
    let others = args
        .pool_models
        .iter()
        .map(|m| super::load_named_model(m, &args.model))
        .collect::<Result<Vec<_>>>()?;
    let others: Vec<&blindspot::models::Classifier> = others.iter().collect();
    let opts = EvalOptions {
        pairs: args.pairs,
        pool: args.pool,
        batch: args.batch,
        pool_order: match args.pool_order {
            PoolOrderArg::DataSet => PoolOrder::DataSet,
            PoolOrderArg::Shuffled => PoolOrder::Shuffled,
        },
        config,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} {pos}/{len}  elapsed {elapsed}  eta {eta}")
            .context("progress template")?,
    );
    let lpips = args.lpips.load()?;
    let tables = run_eval(
        &model,
        lpips.as_ref(),
        &others,
        &dataset.images,
        &opts,
        &args.out,
        &run,
        |what, done, total| {
            bar.set_message(what.to_string());
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    let tables = match tables {
        EvalRun::Complete(tables) => tables,
        EvalRun::ShardDone(message) => {
            println!("{message}");
            return Ok(());
        }
    };
    println!("{}", summary_markdown(&tables));
    println!("written to {}", args.out.display());
    Ok(())
}
