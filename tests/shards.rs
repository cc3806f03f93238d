//! Sharded batch commands (`eval`, `reach`, `margins`, `semantic eval`; `--shard I/N`, or a
//! Slurm job array's environment) fill one folder
//! together, and `blindspot merge` makes it the folder an unsharded run makes: every table,
//! tensor, figure and item the same. A shard killed midway leaves `merge` naming its missing
//! items and the shard to resubmit; running only that shard again completes it. (The same on a
//! real Slurm cluster: tests/slurm/run.sh.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::folders::{assert_same_files, files};
use common::{arg, blindspot, demo_set};

fn with_out(args: &[&str], out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.extend(["--out".to_string(), out.display().to_string()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run(args: &[String], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_blindspot"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn ok(args: &[String], env: &[(&str, &str)]) -> String {
    let (ok, stdout, stderr) = run(args, env);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stdout
}

fn merge(out: &Path) -> (bool, String, String) {
    blindspot(&["merge", arg(out)])
}

/// The merged folder holds every file of the unsharded run's, the same (its own command
/// line aside, which names its own --out), plus the shards' records.
fn assert_merged_equals_whole(whole: &Path, merged: &Path) {
    let names: Vec<PathBuf> = files(whole)
        .into_iter()
        .filter(|n| n != Path::new("command.json"))
        .collect();
    assert_same_files(whole, merged, names);
}

#[test]
fn reach_in_three_shards_one_killed_and_resubmitted_merges_to_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let images = demo_set(dir.path(), 30);
    let args = [
        "reach",
        "--images",
        arg(&images),
        "--per-class",
        "1",
        "--iterations",
        "20",
        "--batch",
        "2",
    ];
    let whole = dir.path().join("whole");
    ok(&with_out(&args, &whole, &[]), &[]);

    let sharded = dir.path().join("sharded");
    let stdout = ok(&with_out(&args, &sharded, &["--shard", "0/3"]), &[]);
    assert!(
        stdout.contains("shard 0/3 done: 17 of 50 units"),
        "{stdout}"
    );
    // Shard 2 from a Slurm job array's environment (task 3 of an array 1-3).
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_MAX", "3"),
    ];
    let stdout = ok(&with_out(&args, &sharded, &[]), &slurm);
    assert!(stdout.contains("shard 2/3 done"), "{stdout}");
    // Shard 1 killed once some of its pairs are on disk.
    let mut child = Command::new(env!("CARGO_BIN_EXE_blindspot"))
        .args(with_out(&args, &sharded, &["--shard", "1/3"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pairs = |d: &Path| {
        std::fs::read_dir(d.join("pairs")).map_or(0, |r| {
            r.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
            })
            .count()
        })
    };
    let start = Instant::now();
    while pairs(&sharded) < 70 && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(child.try_wait().unwrap().is_none(), "shard 1 ended first");
    child.kill().unwrap();
    child.wait().unwrap();

    // merge names what is missing and which shard to run again, and writes nothing.
    let (merged, _, stderr) = merge(&sharded);
    assert!(!merged, "{stderr}");
    assert!(
        stderr.contains("items missing") && stderr.contains("pairs/pair_0000"),
        "{stderr}"
    );
    assert!(stderr.contains("shard(s) 1 of 3"), "{stderr}");
    assert!(!sharded.join("reach.json").exists());
    // Only shard 1 again, then merge: the unsharded run's folder.
    let stdout = ok(&with_out(&args, &sharded, &["--shard", "1/3"]), &[]);
    assert!(stdout.contains("shard 1/3 done"), "{stdout}");
    let (merged, _, stderr) = merge(&sharded);
    assert!(merged, "{stderr}");
    assert_merged_equals_whole(&whole, &sharded);

    // A shard with another setting is refused, naming it.
    let (ok_other, _, stderr) = run(
        &with_out(
            &[
                "reach",
                "--images",
                arg(&images),
                "--per-class",
                "1",
                "--iterations",
                "21",
                "--batch",
                "2",
            ],
            &sharded,
            &["--shard", "1/3"],
        ),
        &[],
    );
    assert!(
        !ok_other && stderr.contains("options.config.iterations is 20 but this run's is 21"),
        "{stderr}"
    );
    // Another splitting of the same work in the same folder: merge names both.
    ok(&with_out(&args, &sharded, &["--shard", "0/2"]), &[]);
    let (merged, _, stderr) = merge(&sharded);
    assert!(
        !merged && stderr.contains("several splittings") && stderr.contains("0/2"),
        "{stderr}"
    );
}

#[test]
fn margins_semantic_eval_and_eval_in_shards_merge_to_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let images = demo_set(dir.path(), 30);
    let margins = [
        "margins",
        "--images",
        arg(&images),
        "--samples",
        "4",
        "--batch",
        "2",
        "--also",
        "demo:robust",
    ];
    let semantic = [
        "semantic",
        "eval",
        "--images",
        arg(&images),
        "--per-class",
        "1",
        "--params",
        "rot,scale",
        "--iterations",
        "8",
        "--maps",
        "--points",
        "5",
    ];
    let gallery = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/gallery");
    let eval = [
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
        "40",
    ];
    for args in [&margins[..], &semantic[..], &eval[..]] {
        let whole = dir.path().join(format!("{}_whole", args[0]));
        ok(&with_out(args, &whole, &[]), &[]);
        let sharded = dir.path().join(format!("{}_sharded", args[0]));
        // Merging before every shard is done is refused.
        ok(&with_out(args, &sharded, &["--shard", "1/2"]), &[]);
        let (merged, _, stderr) = merge(&sharded);
        assert!(
            !merged && stderr.contains("shard(s) 0 of 2"),
            "{}: {stderr}",
            args[0]
        );
        ok(&with_out(args, &sharded, &["--shard", "0/2"]), &[]);
        let (merged, _, stderr) = merge(&sharded);
        assert!(merged, "{}: {stderr}", args[0]);
        assert_merged_equals_whole(&whole, &sharded);
    }
}
