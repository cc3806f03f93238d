//! `blindspot nspgd`: one null-space projected walk (ALGORITHMS.md §2.2) from a source toward
//! a target image, written as a run record in the same layout as `traverse`.

use std::path::PathBuf;

use anyhow::Result;
use blindspot::run::InputImage;
use clap::Args;

use super::traverse::walk_with_progress;
use super::{LpipsArgs, ModelArgs, NspgdSettings, PairArgs};

#[derive(Args)]
pub struct NspgdArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    lpips: LpipsArgs,
    #[command(flatten)]
    pair: PairArgs,
    /// Output folder for run.json, tensors, frames and figures.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    nspgd: NspgdSettings,
    /// Measure path widths at iterations 0, 6, ..., 54 (radii 5..30, 256 directions).
    #[arg(long)]
    widths: bool,
}

pub fn run(args: &NspgdArgs) -> Result<()> {
    let config = args.nspgd.config(args.widths)?;
    let model = args.model.load()?;
    let source = InputImage::load(&args.pair.source, &model)?;
    let target = InputImage::load(&args.pair.target, &model)?;
    let lpips = args.lpips.load()?;
    let (record, pixels) = walk_with_progress(
        &model,
        lpips.as_ref(),
        &config,
        &source,
        &target,
        args.pair.label,
    )?;
    record.save(&pixels, &args.out)?;
    blindspot::report::write_run_figures(&record, &pixels, &args.out)?;
    println!(
        "{} -> {} with {}: {}",
        record.source.class_name,
        record.target.class_name,
        record.model.architecture,
        record.status.label()
    );
    if let Some(f) = &record.final_output {
        println!(
            "p0 {:.4}; final p(source) {:.4}, p(target) {:.4}; to target: L2 (normalised) {:.4}, Linf {:.4}, LPIPS {}; {} steps accepted",
            record.p0,
            f.source_confidence,
            f.target_confidence,
            f.l2_normalized,
            f.linf,
            f.lpips.map_or("n/a".into(), |s| format!("{s:.4}")),
            f.accepted_steps
        );
    }
    println!("run written to {}", args.out.display());
    Ok(())
}
