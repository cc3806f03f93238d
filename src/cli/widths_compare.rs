//! `blindspot widths-compare`: one pair walked by NSPGD with path widths on two models (for
//! instance a standard model and its adversarially trained twin), each written as a run record,
//! and their q05/q95 width heatmaps side by side on one colour scale (§2.4): the seed's finding
//! that robust models have much wider equi-confidence paths.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blindspot::run::InputImage;
use clap::Args;

use super::traverse::walk_with_progress;
use super::{LpipsArgs, ModelArgs, NspgdSettings, PairArgs};

#[derive(Args)]
pub struct WidthsCompareArgs {
    /// The first model (--weights, or the embedded demo model).
    #[command(flatten)]
    model: ModelArgs,
    /// The second model: a checkpoint path, or demo:standard / demo:robust.
    #[arg(long)]
    against: String,
    #[command(flatten)]
    lpips: LpipsArgs,
    #[command(flatten)]
    pair: PairArgs,
    /// Output folder: a run record per model (model_a/, model_b/) and widths_compare.png/svg.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    nspgd: NspgdSettings,
}

pub fn run(args: &WidthsCompareArgs) -> Result<()> {
    let config = args.nspgd.config(true)?;
    let models = [
        args.model.load()?,
        super::load_named_model(&args.against, &args.model)?,
    ];
    let lpips = args.lpips.load()?;
    let mut runs = Vec::with_capacity(2);
    let mut label = args.pair.label;
    for (model, dir) in models.iter().zip(["model_a", "model_b"]) {
        let source = InputImage::load(&args.pair.source, model)?;
        let target = InputImage::load(&args.pair.target, model)?;
        let (record, pixels) =
            walk_with_progress(model, lpips.as_ref(), &config, &source, &target, label)?;
        // Both walks keep the same class: the first model's choice.
        label = Some(record.source.label);
        let out = args.out.join(dir);
        record.save(&pixels, &out)?;
        blindspot::report::write_run_figures(&record, &pixels, &out)?;
        println!(
            "{}: {} -> {}: {}, p0 {:.4}",
            model.spec().short_name(),
            record.source.class_name,
            record.target.class_name,
            record.status.label(),
            record.p0
        );
        runs.push((model.spec().short_name(), record));
    }
    if runs[0].0 == runs[1].0 {
        runs[0].0.push_str(" (a)");
        runs[1].0.push_str(" (b)");
    }
    let labelled: Vec<(&str, &blindspot::record::RunRecord)> =
        runs.iter().map(|(l, r)| (l.as_str(), r)).collect();
    let figure =
        blindspot::report::width_compare(&labelled).context("drawing the width comparison")?;
    blindspot::report::write_figure(&figure, &args.out, "widths_compare", 2.0)?;
    for (name, record) in &runs {
        if let Some(w) = record
            .measured_widths()
            .iter()
            .find(|(_, w)| w.status == blindspot::analysis::WidthStatus::Measured)
        {
            let row = |k: usize| {
                w.1.rows
                    .get(k)
                    .map_or("n/a".into(), |r| format!("{:.3}/{:.3}", r[0], r[1]))
            };
            println!(
                "{name}: first measured block (step {}): q05/q95 at r=5 {}, r=10 {}",
                w.0,
                row(1),
                row(2)
            );
        }
    }
    println!("written to {}", args.out.display());
    Ok(())
}
