//! `blindspot merge OUT`: completes a folder that shards filled. Every item of the plan must
//! be there, made under the folder's plan by shards of one splitting (`check_complete` names
//! what is missing, with the shard to resubmit, or what does not match); then the command
//! that made the folder runs once more, unsharded with --resume, which finds every item done
//! and writes the tables and figures exactly as an unsharded run does.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blindspot::run_folder::{COMMAND_JSON, CommandLine, check_complete};
use clap::{Args, Parser};

#[derive(Args)]
pub struct MergeArgs {
    /// The output folder the shards shared (their --out).
    folder: PathBuf,
}

pub fn run(args: &MergeArgs) -> Result<()> {
    let check = check_complete(&args.folder)?;
    let path = args.folder.join(COMMAND_JSON);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "{}: cannot read the command that made this folder",
            path.display()
        )
    })?;
    let command: CommandLine = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a command record", path.display()))?;
    eprintln!(
        "{}: all {} items of {} units are there ({}); writing the tables",
        args.folder.display(),
        check.items,
        check.units,
        if check.shards.is_empty() {
            "no shards".to_string()
        } else {
            format!("{} shards of {}", check.shards.len(), check.shards[0].count)
        }
    );
    // The recorded arguments hold paths relative to where the shards ran.
    std::env::set_current_dir(&command.cwd)
        .with_context(|| format!("entering {}", command.cwd.display()))?;
    let argv = std::iter::once("blindspot".to_string())
        .chain(command.args.iter().cloned())
        .chain(["--resume".to_string(), "--unsharded".to_string()]);
    let cli = super::Cli::try_parse_from(argv)
        .with_context(|| format!("{}: the recorded command no longer parses", path.display()))?;
    super::execute(cli)
}
