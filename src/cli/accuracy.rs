//! `blindspot accuracy`: top-1 / top-5 over an ImageFolder tree, a folder with `labels.tsv`,
//! or a safetensors file holding `images` (U8 [N, H, W, C]) and `labels`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blindspot::analysis::accuracy::accuracy;
use blindspot::images;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::ModelArgs;

#[derive(Args)]
pub struct AccuracyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// An ImageFolder tree (DIR/<class>/*.png), a folder with labels.tsv, or a .safetensors
    /// file with `images` U8 [N,H,W,C] already at the model's input size and `labels`.
    #[arg(long)]
    images: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32, allow_negative_numbers = true)]
    batch: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &AccuracyArgs) -> Result<()> {
    anyhow::ensure!(args.batch >= 1, "--batch 0: must be at least 1");
    let model = args.model.load()?;
    let device = model.device().clone();
    let source = images::LabeledSet::open(&args.images)?;
    source.check_labels(model.spec().num_classes())?;
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(source.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
            .context("progress bar template")?,
    );
    let report = accuracy(
        &model,
        source.len(),
        args.batch,
        |i| {
            let spec = model.spec();
            let x = source.get(i, &spec.preprocess, spec.channels, &device)?;
            Ok::<_, anyhow::Error>((x, source.label(i)))
        },
        |done| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["model"] = model.spec().architecture.clone().into();
        value["images"] = args.images.display().to_string().into();
        println!("{value}");
    } else {
        println!(
            "{}: top-1 {}/{} = {:.2}%, top-5 {}/{} = {:.2}%",
            model.spec().architecture,
            report.correct,
            report.total,
            100.0 * report.top1,
            report.top5_correct,
            report.total,
            100.0 * report.top5
        );
    }
    Ok(())
}
