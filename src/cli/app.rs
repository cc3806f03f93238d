//! `blindspot` / `blindspot app`: the desktop app, on the embedded demo model unless told
//! otherwise.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use blindspot::app::worker::{ImageSource, ModelSource};
use blindspot::app::{AppOptions, run_native};
use clap::Args;

use super::DemoChoice;

#[derive(Args, Default)]
pub struct AppArgs {
    /// Open this checkpoint instead of the demo model.
    #[arg(long, short = 'w')]
    weights: Option<PathBuf>,
    /// Which demo model to open when no --weights is given.
    #[arg(long, value_enum, conflicts_with = "weights")]
    demo: Option<DemoChoice>,
    /// The source image (a path or gallery:NAME).
    #[arg(long)]
    source: Option<String>,
    /// The target image (a path or gallery:NAME).
    #[arg(long)]
    target: Option<String>,
    /// Keep the run history here instead of the platform data folder.
    #[arg(long)]
    history: Option<PathBuf>,
    /// LPIPS-Alex weights for Table 1's last column (default: $BLINDSPOT_LPIPS, else
    /// lpips_alex.safetensors in the data folder; n/a without them).
    #[arg(long, value_name = "PATH")]
    lpips: Option<PathBuf>,
}

pub fn run(args: &AppArgs) -> Result<()> {
    let mut options = AppOptions::default();
    if let Some(w) = &args.weights {
        options.model = ModelSource::File(w.clone());
    } else if let Some(DemoChoice::Robust) = args.demo {
        options.model = ModelSource::Demo(blindspot::demo::DemoModel::Robust);
    }
    if let Some(s) = &args.source {
        options.source = ImageSource::parse(s);
    }
    if let Some(t) = &args.target {
        options.target = ImageSource::parse(t);
    }
    if let Some(h) = &args.history {
        options.history_dir = Some(h.clone());
    }
    options.lpips = args.lpips.clone();
    run_native(options).map_err(|e| anyhow!("the app window failed: {e}"))
}
