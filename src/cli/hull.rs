//! `blindspot hull`: the triangle spanned by a source and two LST outputs (§1.7), from two
//! saved runs, or from one source and two targets (both traversals run first).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use blindspot::models::{Classifier, LoadOptions, load_classifier};
use blindspot::record::{RunPixels, RunRecord, write_atomic};
use blindspot::report;
use blindspot::run::{InputImage, hull_from_runs, traverse};
use clap::Args;

use super::lst_args::LstArgs;

#[derive(Args)]
pub struct HullArgs {
    /// A run folder written by `traverse` (give two, from the same source).
    #[arg(long = "run")]
    runs: Vec<PathBuf>,
    /// Or: the source image, with two `--target`s (needs --weights).
    #[arg(long)]
    source: Option<PathBuf>,
    #[arg(long = "target")]
    targets: Vec<PathBuf>,
    /// The model; by default the one recorded in the runs.
    #[arg(long)]
    weights: Option<PathBuf>,
    #[arg(long)]
    arch: Option<blindspot::models::Architecture>,
    /// Lattice resolution n: (n+1)(n+2)/2 points (66 for 10).
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Output folder for hull.json and the figures.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    lst: LstArgs,
}

fn load_model(weights: &Path, arch: Option<blindspot::models::Architecture>) -> Result<Classifier> {
    let opts = LoadOptions {
        architecture: arch,
        ..LoadOptions::default()
    };
    load_classifier(weights, &opts).with_context(|| format!("loading model {}", weights.display()))
}

pub fn run(args: &HullArgs) -> Result<()> {
    let (model, runs): (Classifier, Vec<(RunRecord, RunPixels)>) =
        match (&args.runs[..], &args.source, &args.targets[..]) {
            ([a, b], None, []) => {
                let runs = [a, b]
                    .iter()
                    .map(|dir| {
                        RunRecord::load_with_pixels(dir)
                            .with_context(|| format!("reading run {}", dir.display()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let weights = args
                    .weights
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(&runs[0].0.model.weights_path));
                (load_model(&weights, args.arch)?, runs)
            }
            ([], Some(source), [t1, t2]) => {
                let weights = args
                    .weights
                    .as_ref()
                    .context("--weights is needed to run the two traversals")?;
                let model = load_model(weights, args.arch)?;
                let config = args.lst.config(model.spec().input_size)?;
                let source_image = InputImage::load(source, &model)?;
                let mut runs = Vec::new();
                for (k, target) in [t1, t2].iter().enumerate() {
                    eprintln!("traversal {} of 2: toward {}", k + 1, target.display());
                    let target_image = InputImage::load(target, &model)?;
                    // The hull reads confidences only: no LPIPS.
                    let run = traverse(
                        &model,
                        None,
                        &config,
                        &source_image,
                        &target_image,
                        None,
                        k as u64,
                        |_, _| ControlFlow::Continue(()),
                    )?;
                    let dir = args.out.join(format!("run_{}", ["a", "b"][k]));
                    run.0.save(&run.1, &dir)?;
                    runs.push(run);
                }
                (model, runs)
            }
            _ => bail!("give either two --run folders, or --source with two --target images"),
        };
    let report = hull_from_runs(
        &model,
        (&runs[0].0, &runs[0].1),
        (&runs[1].0, &runs[1].1),
        args.n,
    )?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_atomic(
        &args.out.join("hull.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    let shape = runs[0].1.shape;
    fn out(r: &RunPixels) -> Result<&[f32]> {
        r.output.as_deref().context("a run without output")
    }
    let corners = [
        report::rgb(&runs[0].1.source, shape)?,
        report::rgb(out(&runs[0].1)?, shape)?,
        report::rgb(out(&runs[1].1)?, shape)?,
    ];
    report::write_figure(
        &report::hull_heatmap(&report, corners)?,
        &args.out,
        "hull",
        2.0,
    )?;
    report::write_figure(
        &report::interpolation_profile(&report)?,
        &args.out,
        "profile",
        2.0,
    )?;
    let m = &report.metrics;
    println!(
        "hull of {} (n = {}, {} points), {}",
        report.source_class,
        report.n,
        report.confidences.len(),
        report.model
    );
    println!(
        "p_src | mean hull conf | frac > p_src | frac > p_src-0.1 | frac > p_src-0.2 | frac > p_src-0.3 | mean conf on the two linear paths"
    );
    println!(
        "{:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}   (edge_min {:.2})",
        m.p_src, m.mean_hull, m.frac[0], m.frac[1], m.frac[2], m.frac[3], m.mean_edges, m.edge_min
    );
    println!("written to {}", args.out.display());
    Ok(())
}
