//! `blindspot grid`: the all-pairs grid of 3-5 (or more) images (examples mode, §1.3).

use std::path::PathBuf;

use anyhow::{Result, bail};
use blindspot::eval::examples_grid;
use blindspot::report;
use blindspot::run::InputImage;
use clap::Args;

use super::ModelArgs;
use super::lst_args::LstArgs;

#[derive(Args)]
pub struct GridArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Output folder for grid.png and grid.svg.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    lst: LstArgs,
    /// The pool images; each is traversed toward every other.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(args: &GridArgs) -> Result<()> {
    if args.images.len() < 2 {
        bail!("give at least 2 images");
    }
    let model = args.model.load()?;
    let config = args.lst.config(model.spec().input_size)?;
    let pool = args
        .images
        .iter()
        .map(|p| InputImage::load(p, &model))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    eprintln!("{} traversals in one batch", pool.len() * (pool.len() - 1));
    let grid = examples_grid(&model, &config, &pool)?;
    std::fs::create_dir_all(&args.out)?;
    report::write_figure(
        &report::pairs_grid(&grid, &model.spec().architecture)?,
        &args.out,
        "grid",
        2.0,
    )?;
    println!(
        "grid of {} images written to {}",
        grid.k,
        args.out.display()
    );
    Ok(())
}
