//! The resumable batch commands other than `eval` (`reach`, `semantic eval`, `margins`),
//! killed with SIGKILL five times at moments spread over a run, then stopped once with Ctrl-C
//! (SIGINT), and resumed each time, end with the same folder as a run that was never
//! stopped: every file byte for byte (tables, tensors, figures, items), JSON records equal
//! once their wall-clock `seconds` are left out. (`eval` has its own, tests/eval_interrupt.rs.)

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::folders::{assert_same_folders, files};
use common::{arg, blindspot, ctrl_c, demo_set, run_to_end, spawn};

/// A resumable command: its arguments for an output folder, and where its items go.
struct Job {
    args: Box<dyn Fn(&Path, bool) -> Vec<String>>,
    /// The folder (inside the output) holding one JSON file per finished item.
    items: &'static str,
    /// How many items a whole run writes.
    total: usize,
}

fn strings(args: &[&str], out: &Path, resume: bool) -> Vec<String> {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.push("--out".into());
    a.push(out.display().to_string());
    if resume {
        a.push("--resume".into());
    }
    a
}

fn items_done(out: &Path, items: &str) -> usize {
    std::fs::read_dir(out.join(items)).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
    })
}

/// Waits until `out` holds at least `count` items or the process ended; whether it still runs.
fn wait_for_items(child: &mut std::process::Child, out: &Path, items: &str, count: usize) -> bool {
    let start = Instant::now();
    while items_done(out, items) < count && start.elapsed() < Duration::from_secs(300) {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.try_wait().unwrap().is_none()
}

/// The whole check for one command.
fn killed_stopped_and_resumed_equals_whole(job: &Job) {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    run_to_end(&(job.args)(&whole, false));
    assert_eq!(items_done(&whole, job.items), job.total);

    // Five SIGKILLs, each once the run has finished another share of its items, and a few
    // milliseconds after, so that some land while an item is being written.
    let killed = dir.path().join("killed");
    let mut landed = 0;
    for (k, delay_ms) in [0u64, 3, 7, 1, 11].into_iter().enumerate() {
        let mut child = spawn(&(job.args)(&killed, k > 0));
        let want = (job.total * (k + 1) / 8).max(items_done(&killed, job.items) + 1);
        let running = wait_for_items(&mut child, &killed, job.items, want);
        std::thread::sleep(Duration::from_millis(delay_ms));
        if running && child.try_wait().unwrap().is_none() {
            landed += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(landed >= 3, "only {landed} kills landed while the run went");
    let kept = items_done(&killed, job.items);
    assert!(kept < job.total, "the kills left nothing to resume");

    // Ctrl-C once another item is done: stops after the current step, exit code 130.
    let mut child = spawn(&(job.args)(&killed, true));
    assert!(
        wait_for_items(&mut child, &killed, job.items, kept + 1),
        "the resumed run ended before Ctrl-C"
    );
    let (code, stderr) = ctrl_c(child);
    if items_done(&killed, job.items) < job.total {
        assert_eq!(code, Some(130), "{stderr}");
        assert!(
            stderr.contains("interrupted (Ctrl-C)") && stderr.contains("--resume"),
            "{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");

    run_to_end(&(job.args)(&killed, true));
    assert_same_folders(&whole, &killed);
}

/// A quick reach evaluation on the demo model: 10 sources × 10 targets in batches of 2.
fn quick_reach(images: &Path, out: &Path, resume: bool) -> Vec<String> {
    strings(
        &[
            "reach",
            "--images",
            arg(images),
            "--per-class",
            "1",
            "--iterations",
            "20",
            "--batch",
            "2",
        ],
        out,
        resume,
    )
}

#[test]
fn reach_resumes_to_the_last_digit() {
    let dir = tempfile::tempdir().unwrap();
    let images = demo_set(dir.path(), 30);
    killed_stopped_and_resumed_equals_whole(&Job {
        args: Box::new(move |out, resume| quick_reach(&images, out, resume)),
        items: "pairs",
        total: 100,
    });
}

#[test]
fn semantic_eval_resumes_to_the_last_digit() {
    let dir = tempfile::tempdir().unwrap();
    let images = demo_set(dir.path(), 30);
    let images = images.display().to_string();
    killed_stopped_and_resumed_equals_whole(&Job {
        args: Box::new(move |out, resume| {
            strings(
                &[
                    "semantic",
                    "eval",
                    "--images",
                    &images,
                    "--per-class",
                    "2",
                    "--params",
                    "rot,scale",
                    "--iterations",
                    "12",
                    "--maps",
                    "--points",
                    "5",
                ],
                out,
                resume,
            )
        }),
        items: "items",
        total: 20,
    });
}

#[test]
fn margin_sweep_resumes_to_the_last_digit() {
    let dir = tempfile::tempdir().unwrap();
    let images = demo_set(dir.path(), 30);
    let images = images.display().to_string();
    killed_stopped_and_resumed_equals_whole(&Job {
        args: Box::new(move |out, resume| {
            strings(
                &[
                    "margins",
                    "--images",
                    &images,
                    "--samples",
                    "6",
                    "--batch",
                    "2",
                    "--also",
                    "demo:robust",
                ],
                out,
                resume,
            )
        }),
        items: "items",
        total: 26,
    });
}

#[test]
fn resumes_with_another_model_or_setting_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let images = demo_set(dir.path(), 20);
    let images = images.display().to_string();
    let margins = |out: &Path, extra: &[&str], resume: bool| {
        let mut a = vec!["margins", "--images", images.as_str(), "--samples", "2"];
        a.extend_from_slice(extra);
        strings(&a, out, resume)
    };
    let out = dir.path().join("m");
    run_to_end(&margins(&out, &["--batch", "2"], false));
    let run = |args: Vec<String>| blindspot(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // Again without --resume: refused, the folder is kept.
    let (ok, _, stderr) = run(margins(&out, &[], false));
    assert!(!ok && stderr.contains("--resume"), "{stderr}");
    // Another model (by its weights' hash), seed or DeepFool setting: refused, named.
    let (ok, _, stderr) = run(margins(&out, &["--demo", "robust"], true));
    assert!(
        !ok && stderr.contains("weights_sha256") && stderr.contains("plan.json"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(margins(&out, &["--seed", "3"], true));
    assert!(
        !ok && stderr.contains("its seed is 0 but this run's is 3"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(margins(&out, &["--max-iter", "7"], true));
    assert!(!ok && stderr.contains("deepfool.max_iter"), "{stderr}");
    // Another grouping of the work is no change: it resumes (nothing left to do).
    let (ok, _, stderr) = run(margins(&out, &["--batch", "1"], true));
    assert!(ok, "{stderr}");

    let semantic = |out: &Path, iterations: &str, resume: bool| {
        strings(
            &[
                "semantic",
                "eval",
                "--images",
                &images,
                "--per-class",
                "1",
                "--params",
                "rot",
                "--iterations",
                iterations,
            ],
            out,
            resume,
        )
    };
    let out = dir.path().join("s");
    run_to_end(&semantic(&out, "5", false));
    let (ok, _, stderr) = run(semantic(&out, "6", true));
    assert!(
        !ok && stderr.contains("config.region.iterations is 5 but this run's is 6"),
        "{stderr}"
    );
}

/// A full disk: every write past a limit fails. A file-size limit (`ulimit -f`, RLIMIT_FSIZE)
/// stands in for it, since mounting a small file system needs root: the write fails inside
/// write(2) as on a full disk (EFBIG there, ENOSPC here) and goes through the same error path.
#[test]
fn a_failed_write_names_the_file_and_keeps_every_finished_pair() {
    let dir = tempfile::tempdir().unwrap();
    let images = demo_set(dir.path(), 30);
    let args = |out: &Path, resume: bool| quick_reach(&images, out, resume);
    let whole = dir.path().join("whole");
    run_to_end(&args(&whole, false));

    // 30 KiB a file: every pair (12 KiB of tensors) fits, the hit-matrix figure does not.
    let full = dir.path().join("full");
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"trap "" XFSZ; ulimit -f 30; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_blindspot"))
        .args(args(&full, false))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(
        error.contains(&full.join("hit_matrix.png").display().to_string())
            && error.contains("File too large"),
        "{error}"
    );
    assert_eq!(
        error.matches("File too large").count(),
        1,
        "the cause is said once: {error}"
    );
    // Every pair finished before the failure is on disk, whole, and the same as the whole
    // run's; nothing half-written is left beside them.
    assert_eq!(items_done(&full, "pairs"), 100);
    for name in files(&full.join("pairs")) {
        assert!(
            !name.to_string_lossy().contains(".tmp-"),
            "{}",
            name.display()
        );
        assert_eq!(
            std::fs::read(full.join("pairs").join(&name)).unwrap(),
            std::fs::read(whole.join("pairs").join(&name)).unwrap(),
            "{}",
            name.display()
        );
    }
    // Once there is room again, --resume finishes it: the uninterrupted run's folder.
    run_to_end(&args(&full, true));
    assert_same_folders(&whole, &full);
}
