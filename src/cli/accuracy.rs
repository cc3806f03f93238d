//! `blindspot accuracy`: top-1 / top-5 over an ImageFolder tree, a folder with `labels.tsv`,
//! or a safetensors file holding `images` (U8 [N, H, W, C]) and `labels`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use blindspot::analysis::accuracy::accuracy;
use blindspot::images;
use candle_core::{Device, Tensor};
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
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &AccuracyArgs) -> Result<()> {
    let model = args.model.load()?;
    let device = model.device().clone();
    let source = Source::open(&args.images)?;
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
        |i| source.get(i, model.spec(), &device),
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

enum Source {
    Files(Vec<images::LabeledImage>),
    /// Pixels already at input size: [N, H, W, C] u8 and labels.
    Tensors(images::TensorDataset),
}

impl Source {
    fn open(path: &Path) -> Result<Self> {
        if path.is_file() {
            Ok(Self::Tensors(images::TensorDataset::open(path)?))
        } else {
            let dataset = images::list_dataset(path)?;
            Ok(Self::Files(dataset.images))
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Files(files) => files.len(),
            Self::Tensors(data) => data.len(),
        }
    }

    fn get(
        &self,
        i: usize,
        spec: &blindspot::models::ModelSpec,
        device: &Device,
    ) -> Result<(Tensor, u32)> {
        match self {
            Self::Files(files) => {
                let item = &files[i];
                let x =
                    images::load_for_channels(&item.path, &spec.preprocess, spec.channels, device)?;
                Ok((x, item.label as u32))
            }
            Self::Tensors(data) => {
                let x = data.batch(i..i + 1, device)?.squeeze(0)?;
                Ok((x, data.labels()[i]))
            }
        }
    }
}
