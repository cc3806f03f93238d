//! `blindspot traverse`: one Level Set Traversal from a source toward a target image, written
//! as a run record with its frames and figures.

use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::{Context, Result};
use blindspot::analysis::WalkConfig;
use blindspot::models::{Classifier, Lpips};
use blindspot::record::{RunPixels, RunRecord};
use blindspot::run::{InputImage, kept_source_class, traverse};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::lst_args::LstArgs;
use super::{LpipsArgs, ModelArgs, PairArgs};

#[derive(Args)]
pub struct TraverseArgs {
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
    lst: LstArgs,
}

/// One walk (LST or NSPGD) of a single pair with a terminal progress bar; the bar's length
/// is the walk's iteration count (an NSPGD walk may finish before it).
pub(super) fn walk_with_progress(
    model: &Classifier,
    lpips: Option<&Lpips>,
    config: impl Into<WalkConfig>,
    source: &InputImage,
    target: &InputImage,
    label: Option<u32>,
) -> Result<(RunRecord, RunPixels)> {
    let config: WalkConfig = config.into();
    let bar = ProgressBar::new(config.iterations() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} step {pos}/{len}  {msg}  {per_sec}  eta {eta}")
            .context("progress template")?,
    );
    let walked = traverse(model, lpips, config, source, target, label, 0, |step, s| {
        bar.set_position(step as u64 + 1);
        bar.set_message(format!(
            "p(src) {:.3}  p(tgt) {:.3}  L2 {:.4}",
            s.source_conf, s.target_conf, s.l2
        ));
        ControlFlow::Continue(())
    })?;
    bar.finish_and_clear();
    Ok(walked)
}

pub fn run(args: &TraverseArgs) -> Result<()> {
    let model = args.model.load()?;
    let config = args.lst.config(model.spec().input_size)?;
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
    let name = |i: u32| model.spec().class_name(i as usize).to_string();
    println!(
        "{} -> {} with {} ({})",
        record.source.class_name,
        name(record.target.label),
        record.model.architecture,
        record.status.label()
    );
    match &record.final_output {
        Some(f) => {
            println!(
                "p0 {:.4}; final p(source) {:.4}, p(target) {:.4}; predicted {} ({})",
                record.p0,
                f.source_confidence,
                f.target_confidence,
                f.predicted_name,
                if kept_source_class(&record) {
                    "kept"
                } else {
                    "changed"
                }
            );
            println!(
                "to target: L2 (normalised) {:.4}, Linf {:.4}, SSIM {}, LPIPS {}; {} of {} steps accepted; {:.1} steps/s",
                f.l2_normalized,
                f.linf,
                f.ssim.map_or("n/a".into(), |s| format!("{s:.4}")),
                f.lpips.map_or("n/a".into(), |s| format!("{s:.4}")),
                f.accepted_steps,
                record.steps.len(),
                record.timing.steps_per_second
            );
        }
        None => println!("skipped: the model does not predict the source's class"),
    }
    println!("run written to {}", args.out.display());
    Ok(())
}
