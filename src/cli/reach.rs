//! `blindspot reach`: the NSPGD reach evaluation of §2.3 over a labelled image set, and
//! `blindspot reach-table`, which puts the reach tables of several evaluations side by side.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blindspot::images::LabeledSet;
use blindspot::reach::{
    ReachEvent, ReachOptions, load_summary, reach_table_markdown, run_reach, summary_markdown,
};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{LpipsArgs, ModelArgs, NspgdSettings};

#[derive(Args)]
pub struct ReachArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    lpips: LpipsArgs,
    /// The sources: an ImageFolder tree (DIR/<class>/*.png), a folder with labels.tsv, or a
    /// .safetensors file with `images` U8 [N,H,W,C] at the model's input size and `labels`.
    #[arg(long)]
    images: PathBuf,
    /// Output folder: plan.json, pairs/, reach.json, pairs.csv, summary.md and the figures.
    #[arg(long)]
    out: PathBuf,
    /// Continue the evaluation in --out: finished pairs are kept.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    shard: super::ShardArgs,
    /// Pairs per walker batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Use only the first N images of each class as sources (all by default).
    #[arg(long, value_name = "N")]
    per_class: Option<usize>,
    /// The first N sources of each class also measure path widths (256 directions × 6 radii
    /// at iterations 0, 6, ..., 54: costly), for the width summary.
    #[arg(long, value_name = "N", default_value_t = 0)]
    width_sources: usize,
    /// The classes with a fixed target, comma-separated (default 0,...,9).
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<u32>>,
    /// Another model of the comparison (repeatable): each target must be classified correctly
    /// with confidence > 0.6 by it too, so both evaluations walk toward the same targets. A
    /// checkpoint path, or demo:standard / demo:robust.
    #[arg(long = "pool-model")]
    pool_models: Vec<String>,
    #[command(flatten)]
    nspgd: NspgdSettings,
    /// Print the reach table row as one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ReachArgs) -> Result<()> {
    let model = args.model.load()?;
    let others = args
        .pool_models
        .iter()
        .map(|m| super::load_named_model(m, &args.model))
        .collect::<Result<Vec<_>>>()?;
    let others: Vec<&blindspot::models::Classifier> = others.iter().collect();
    let set = LabeledSet::open(&args.images)
        .with_context(|| format!("opening the image set {}", args.images.display()))?;
    let lpips = args.lpips.load()?;
    let mut opts = ReachOptions {
        batch: args.batch,
        per_class: args.per_class,
        width_sources: args.width_sources,
        ..ReachOptions::default()
    };
    opts.config = args.nspgd.config(false)?;
    opts.config.record_images = false;
    if let Some(classes) = &args.classes {
        opts.classes = classes.clone();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} pairs  {msg}  elapsed {elapsed}  eta {eta}",
        )
        .context("progress template")?,
    );
    super::stop_after_step_on_ctrl_c();
    let result = run_reach(
        &model,
        lpips.as_ref(),
        &others,
        &set,
        &args.images.display().to_string(),
        &opts,
        &args.out,
        &args.shard.batch_run(args.resume)?,
        |event| {
            match event {
                ReachEvent::Started { plan, done } => {
                    bar.set_length(plan.pairs_total() as u64);
                    bar.set_position(done.len() as u64);
                    bar.reset_eta();
                    if !plan.classes_without_target.is_empty() {
                        bar.println(format!(
                            "warning: no target for classes {:?} (no image classified correctly with confidence > 0.6); their sources are left out",
                            plan.classes_without_target
                        ));
                    }
                }
                ReachEvent::Step {
                    step, iterations, ..
                } => bar.set_message(format!("iteration {}/{iterations}", step + 1)),
                ReachEvent::Pairs { done, .. } => bar.set_position(done as u64),
            }
            // Ctrl-C: stop after this iteration; finished batches are on disk.
            blindspot::interrupt::stop_requested()
        },
    )?;
    bar.finish_and_clear();
    if let Some(message) = &result.shard_done {
        println!("{message}");
        return Ok(());
    }
    if !result.summary.complete() {
        return Err(blindspot::run::RunError::Interrupted {
            done: result.summary.pairs_done,
            total: result.summary.pairs_total,
            unit: "pairs",
            out: args.out.clone(),
        }
        .into());
    }
    let summary = &result.summary;
    println!("{}", summary_markdown(&result.plan, summary));
    println!("written to {}", args.out.display());
    if args.json {
        println!("{}", serde_json::to_string(&summary.table)?);
    }
    Ok(())
}

#[derive(Args)]
pub struct ReachTableArgs {
    /// Output folders of `blindspot reach` (each holds reach.json).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
}

pub fn run_table(args: &ReachTableArgs) -> Result<()> {
    let summaries = args
        .runs
        .iter()
        .map(|dir| {
            load_summary(dir)
                .with_context(|| format!("{} is not a finished reach evaluation", dir.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    print!("{}", reach_table_markdown(&summaries));
    Ok(())
}
