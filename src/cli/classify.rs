//! `blindspot classify`: top-5 classes per image.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::ModelArgs;

#[derive(Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Images (PNG, JPEG, WebP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Prediction {
    class: usize,
    name: String,
    probability: f32,
}

#[derive(Serialize)]
struct ImageResult {
    path: String,
    top5: Vec<Prediction>,
}

pub fn run(args: &ClassifyArgs) -> Result<()> {
    let model = args.model.load()?;
    let spec = model.spec();
    let mut results = Vec::with_capacity(args.images.len());
    for path in &args.images {
        let x = blindspot::run::InputImage::load(path, &model)?
            .pixels
            .unsqueeze(0)?;
        let probs = model
            .probabilities(&x)?
            .squeeze(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let top5 = order
            .into_iter()
            .take(5)
            .map(|c| Prediction {
                class: c,
                name: spec.class_name(c).to_string(),
                probability: probs[c],
            })
            .collect();
        results.push(ImageResult {
            path: path.display().to_string(),
            top5,
        });
    }
    if args.json {
        let out = serde_json::json!({
            "model": spec.architecture,
            "weights": spec.weights_path,
            "images": results,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).context("serialising results")?
        );
    } else {
        println!("model: {} ({})", spec.architecture, spec.weights_path);
        for r in &results {
            println!("{}", r.path);
            for p in &r.top5 {
                println!(
                    "  {:>6.2}%  {:>4}  {}",
                    100.0 * p.probability,
                    p.class,
                    p.name
                );
            }
        }
    }
    Ok(())
}
