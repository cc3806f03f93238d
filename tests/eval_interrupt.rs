//! `eval` stopped at random moments and resumed writes the same tables, byte for byte, as a
//! run that was never stopped: five SIGKILLs (a crash, a killed job) and then Ctrl-C (SIGINT),
//! which stops after the current step with exit code 130 and a message saying how to resume.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ctrl_c, run_to_end, spawn};

/// A quick evaluation on the demo model and gallery: many small batches, so a stop lands
/// between some of them.
fn eval_args(out: &Path, resume: bool) -> Vec<String> {
    let gallery = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/gallery");
    let mut a: Vec<String> = [
        "eval",
        "--images",
        gallery,
        "--pairs",
        "24",
        "--pool",
        "6",
        "--batch",
        "2",
        "--iterations",
        "60",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(out.display().to_string());
    if resume {
        a.push("--resume".into());
    }
    a
}

fn pairs_done(out: &Path) -> usize {
    std::fs::read_dir(out.join("pairs")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
    })
}

/// The files an evaluation's result is read from.
const RESULTS: [&str; 3] = ["tables.json", "pairs.csv", "summary.md"];

fn results(out: &Path) -> Vec<Vec<u8>> {
    RESULTS
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect()
}

fn whole_run(dir: &Path) -> PathBuf {
    let whole = dir.join("whole");
    run_to_end(&eval_args(&whole, false));
    whole
}

#[test]
fn sigkill_five_times_then_resume_gives_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let whole = whole_run(dir.path());
    let killed = dir.path().join("killed");
    // Fixed "random" moments (a test must not depend on luck), spread over a run.
    let mut landed = 0;
    for (k, wait_ms) in [180u64, 90, 260, 140, 330].into_iter().enumerate() {
        let mut child = spawn(&eval_args(&killed, k > 0));
        std::thread::sleep(Duration::from_millis(wait_ms));
        if child.try_wait().unwrap().is_none() {
            landed += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(landed >= 1, "no kill landed while the evaluation ran");
    run_to_end(&eval_args(&killed, true));
    assert_eq!(results(&whole), results(&killed));
}

#[test]
fn ctrl_c_stops_after_a_step_and_resume_gives_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let whole = whole_run(dir.path());
    let stopped = dir.path().join("stopped");
    let mut child = spawn(&eval_args(&stopped, false));
    // Once some pairs are on disk, and the run is still going.
    let start = Instant::now();
    while pairs_done(&stopped) < 4 && start.elapsed() < Duration::from_secs(120) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the evaluation ended before Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, stderr) = ctrl_c(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted (Ctrl-C)") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(!stopped.join("tables.json").exists());
    let kept = pairs_done(&stopped);
    assert!((4..24).contains(&kept), "{kept} pairs kept");
    run_to_end(&eval_args(&stopped, true));
    assert_eq!(results(&whole), results(&stopped));
}

#[test]
fn a_second_process_on_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("busy");
    let mut first = spawn(&eval_args(&out, false));
    let start = Instant::now();
    while !out.join(".lock").exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = Command::new(env!("CARGO_BIN_EXE_blindspot"))
        .args(eval_args(&out, true))
        .output()
        .unwrap();
    let running = first.try_wait().unwrap().is_none();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        running,
        "the first evaluation ended before the second started"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains(".lock") && stderr.contains("another blindspot process"),
        "{stderr}"
    );
    // The killed holder left no stale lock: a resume runs.
    run_to_end(&eval_args(&out, true));
    assert!(out.join("tables.json").is_file());
}
