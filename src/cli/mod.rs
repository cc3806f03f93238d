//! Subcommands. Each file is one command; `ModelArgs` is how every command picks a model.

mod accuracy;
#[cfg(feature = "app")]
mod app;
mod bench;
mod classify;
mod demo;
mod eval;
mod grid;
mod hull;
mod lst_args;
mod margins;
mod merge;
mod nspgd;
mod nspgd_args;
mod reach;
mod semantic;
mod traverse;
mod widths_compare;

use std::path::PathBuf;

use anyhow::{Context, Result};
use blindspot::demo::DemoModel;
use blindspot::models::{Architecture, Classifier, LoadOptions, load_classifier};
use blindspot::run_folder::{BatchRun, CommandLine, Shard};
use clap::{Args, Parser, Subcommand};
pub use nspgd_args::NspgdSettings;

#[derive(Parser)]
#[command(
    name = "blindspot",
    version,
    about = "Find where vision models are blind"
)]
struct Cli {
    /// Without a command, the desktop app opens (on the embedded demo model).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Open the desktop app (what `blindspot` with no command does).
    #[cfg(feature = "app")]
    App(app::AppArgs),
    /// Print the top-5 classes of each image.
    Classify(classify::ClassifyArgs),
    /// Top-1 / top-5 accuracy over a labelled image folder.
    Accuracy(accuracy::AccuracyArgs),
    /// Time LST iterations (forward + input gradient + forward) of standard models.
    Bench(bench::BenchArgs),
    /// Level Set Traversal from a source toward a target image; writes a run record.
    Traverse(traverse::TraverseArgs),
    /// NSPGD, the one-sided null-space walk, from a source toward a target; writes a run record.
    Nspgd(nspgd::NspgdArgs),
    /// NSPGD reach evaluation: every source toward one fixed target per class; reach table,
    /// hit-rate matrix, examples grid and width summary. Stopped runs continue with --resume.
    Reach(reach::ReachArgs),
    /// The reach tables of several `reach` output folders as one table, one row per model.
    ReachTable(reach::ReachTableArgs),
    /// NSPGD path widths of two models on one pair, side by side on one colour scale.
    WidthsCompare(widths_compare::WidthsCompareArgs),
    /// Decision-boundary margins in DCT frequency subspaces (subspace DeepFool, "Hold me
    /// tight"): margin tables, tensors and the margin distribution plot.
    Margins(margins::MarginsArgs),
    /// Redraw the margin distribution plot of a `margins` run (e.g. with --log-scale).
    MarginsPlot(margins::MarginsPlotArgs),
    /// The triangular hull of a source and two LST outputs.
    Hull(hull::HullArgs),
    /// Complete a folder that shards (`--shard I/N`, a Slurm job array) of `eval`, `reach`,
    /// `margins` or `semantic eval` filled: checks that every item is there, made under one
    /// plan, then writes the tables and figures.
    Merge(merge::MergeArgs),
    /// Full evaluation over an image folder: Table 1 and Table 2.
    Eval(eval::EvalArgs),
    /// The all-pairs grid: every image traversed toward every other.
    Grid(grid::GridArgs),
    /// Semantic robustness (rotation, scale, shifts, colour, blur): maps, regions, SRVR.
    Semantic(semantic::SemanticArgs),
    /// Write the synthetic shapes data set (or the gallery) the demo models learn from.
    DemoData(demo::DemoDataArgs),
    /// Train a demo model on the synthetic shapes (standard, or --robust).
    TrainDemo(demo::TrainDemoArgs),
}

/// How a command picks its model.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Checkpoint: safetensors, PyTorch zip `.pth` or legacy `.pth`/`.th`. Without it, the
    /// embedded demo model (see --demo).
    #[arg(long, short = 'w')]
    pub weights: Option<PathBuf>,
    /// Which embedded demo model to use when no --weights is given.
    #[arg(
        long,
        value_enum,
        default_value = "standard",
        conflicts_with = "weights"
    )]
    pub demo: DemoChoice,
    /// Architecture, when detection from tensor names is not wanted:
    /// cifar_resnet, resnet, vit, efficientnet_lite, plain_cnn.
    #[arg(long)]
    pub arch: Option<Architecture>,
    /// Sidecar JSON (normalisation, input size, class names, tensor `rename`) to use instead
    /// of `<weights>.json` beside the checkpoint.
    #[arg(long, requires = "weights")]
    pub sidecar: Option<PathBuf>,
    /// Compute device: cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DemoChoice {
    Standard,
    Robust,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Classifier> {
        let opts = LoadOptions {
            architecture: self.arch,
            device: device(&self.device)?,
            sidecar: self.sidecar.clone(),
            ..LoadOptions::default()
        };
        match &self.weights {
            Some(w) => {
                load_classifier(w, &opts).with_context(|| format!("loading model {}", w.display()))
            }
            None => {
                let demo = match self.demo {
                    DemoChoice::Standard => DemoModel::Standard,
                    DemoChoice::Robust => DemoModel::Robust,
                };
                Ok(demo.load(&opts)?)
            }
        }
    }
}

/// The one pair a single walk runs on (traverse, nspgd, widths-compare).
#[derive(clap::Args, Clone, Debug)]
pub struct PairArgs {
    /// The source image (its class is the one kept).
    #[arg(long)]
    pub source: PathBuf,
    /// The target image the walk moves toward.
    #[arg(long)]
    pub target: PathBuf,
    /// Source class index; by default the (first) model's prediction on the source.
    #[arg(long)]
    pub label: Option<u32>,
}

/// Where the LPIPS-Alex weights are, for commands that report LPIPS.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LpipsArgs {
    /// LPIPS-Alex weights (lpips_alex.safetensors; the README says how to build the file).
    /// Default: $BLINDSPOT_LPIPS, else lpips_alex.safetensors in the data folder. Without
    /// them LPIPS is reported as n/a.
    #[arg(long, value_name = "PATH")]
    pub lpips: Option<PathBuf>,
}

impl LpipsArgs {
    /// The metric, or `None` (LPIPS n/a) when no weights are given or found.
    pub fn load(&self) -> Result<Option<blindspot::models::Lpips>> {
        let lpips = blindspot::models::load_lpips(self.lpips.as_deref())
            .context("loading the LPIPS weights")?;
        if lpips.is_none() {
            eprintln!(
                "note: no LPIPS weights (--lpips, ${}, or {} in the data folder): LPIPS is n/a",
                blindspot::models::lpips::LPIPS_ENV,
                blindspot::models::lpips::LPIPS_FILE_NAME
            );
        }
        Ok(lpips)
    }
}

/// A model named on the command line: `demo:standard`, `demo:robust`, or a checkpoint path
/// (loaded with the device and architecture settings of `like`).
pub fn load_named_model(name: &str, like: &ModelArgs) -> Result<Classifier> {
    let args = match name.strip_prefix("demo:") {
        Some("standard") => ModelArgs {
            weights: None,
            demo: DemoChoice::Standard,
            sidecar: None,
            ..like.clone()
        },
        Some("robust") => ModelArgs {
            weights: None,
            demo: DemoChoice::Robust,
            sidecar: None,
            ..like.clone()
        },
        Some(other) => anyhow::bail!("unknown demo model `{other}`: expected standard or robust"),
        None => ModelArgs {
            weights: Some(PathBuf::from(name)),
            ..like.clone()
        },
    };
    args.load()
}

pub fn device(name: &str) -> Result<candle_core::Device> {
    match name {
        "cpu" => Ok(candle_core::Device::Cpu),
        "cuda" => candle_core::Device::new_cuda(0)
            .context("opening CUDA device 0 (was blindspot built with --features cuda?)"),
        other => anyhow::bail!("unknown device `{other}`: expected cpu or cuda"),
    }
}

pub fn run() -> Result<()> {
    execute(Cli::parse())
}

fn execute(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        #[cfg(feature = "app")]
        return app::run(&app::AppArgs::default());
        #[cfg(not(feature = "app"))]
        anyhow::bail!(
            "this build has no desktop app (built without the `app` feature); see --help"
        );
    };
    match command {
        #[cfg(feature = "app")]
        Command::App(args) => app::run(&args),
        Command::Classify(args) => classify::run(&args),
        Command::Accuracy(args) => accuracy::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Traverse(args) => traverse::run(&args),
        Command::Nspgd(args) => nspgd::run(&args),
        Command::Reach(args) => reach::run(&args),
        Command::ReachTable(args) => reach::run_table(&args),
        Command::WidthsCompare(args) => widths_compare::run(&args),
        Command::Margins(args) => margins::run(&args),
        Command::MarginsPlot(args) => margins::run_plot(&args),
        Command::Hull(args) => hull::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Grid(args) => grid::run(&args),
        Command::Semantic(args) => semantic::run(&args),
        Command::DemoData(args) => demo::demo_data(&args),
        Command::TrainDemo(args) => demo::train_demo(&args),
    }
}

/// How a batch command (`eval`, `reach`, `margins`, `semantic eval`) shares its work out.
#[derive(Args, Clone, Debug)]
pub struct ShardArgs {
    /// Do only shard I of N of the work (0 <= I < N), into an --out that all N shards share;
    /// then `blindspot merge OUT` writes the tables. Without it, a Slurm job array task is its
    /// shard (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT, from SLURM_ARRAY_TASK_MIN). A
    /// shard run again continues its own items.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Ignore a Slurm job array's environment: do all the work (what `merge` runs).
    #[arg(long, hide = true, conflicts_with = "shard")]
    pub unsharded: bool,
}

impl ShardArgs {
    /// This run's use of its folder: `--resume`, the shard, and the command line to record
    /// for `merge`.
    pub fn batch_run(&self, resume: bool) -> Result<BatchRun> {
        let shard = match self.shard {
            Some(s) => Some(s),
            None if self.unsharded => None,
            None => Shard::from_slurm(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?,
        };
        Ok(BatchRun {
            resume,
            shard,
            command: Some(command_line()?),
        })
    }
}

/// This process's command line as `merge` runs it again: the working folder, and the
/// arguments without --shard, --unsharded and --resume.
fn command_line() -> Result<CommandLine> {
    let mut args = Vec::new();
    let mut skip_value = false;
    for a in std::env::args().skip(1) {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if a == "--shard" {
            skip_value = true;
        } else if !(a.starts_with("--shard=") || a == "--resume" || a == "--unsharded") {
            args.push(a);
        }
    }
    Ok(CommandLine {
        cwd: std::env::current_dir().context("reading the working folder")?,
        args,
    })
}

/// The exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED_EXIT: u8 = 130;

/// For the resumable batch commands: the first Ctrl-C asks the job to stop after its current
/// step, leaving a run that --resume finishes (exit code 130); a second one quits at once.
/// (Other commands keep the default: Ctrl-C quits.)
pub fn stop_after_step_on_ctrl_c() {
    let handler = ctrlc::set_handler(|| {
        if blindspot::interrupt::requested() {
            std::process::exit(i32::from(INTERRUPTED_EXIT));
        }
        blindspot::interrupt::request();
        eprintln!("\nstopping after the current step (Ctrl-C again to quit now)");
    });
    if let Err(e) = handler {
        eprintln!("warning: Ctrl-C will quit at once (cannot install its handler: {e})");
    }
}
