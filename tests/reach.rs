//! `blindspot reach` end to end (ALGORITHMS.md §2.3–§2.4): the outputs and the `--json` line on
//! real CIFAR-10 images with ResNet-20 and real LPIPS, a killed evaluation that resumes to the
//! result of an uninterrupted one, the two-model width comparison, and bad inputs.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{arg as s, blindspot, demo_set, shared};

#[test]
fn reach_on_cifar10_with_resnet20_and_lpips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reach");
    let w = shared("weights/resnet20_cifar10.safetensors");
    let (ok, stdout, stderr) = blindspot(&[
        "reach",
        "-w",
        s(&w),
        "--images",
        s(&shared("data/cifar10_test_png")),
        "--per-class",
        "1",
        "--iterations",
        "12",
        "--width-sources",
        "1",
        "--classes",
        "0,1,3",
        "--lpips",
        s(&shared("weights/lpips_alex.safetensors")),
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let last = stdout.lines().last().unwrap();
    let json: serde_json::Value = serde_json::from_str(last).unwrap();
    for key in [
        "valid_pairs",
        "off_diagonal_pairs",
        "reach_003",
        "reach_002",
        "frac_lt_002_all",
        "median_lpips",
        "mean_lpips",
        "criterion",
    ] {
        assert!(json.get(key).is_some(), "{key} missing in {last}");
    }
    assert_eq!(json["criterion"], "lpips");
    let summary = blindspot::reach::load_summary(&out).unwrap();
    assert_eq!(summary.pairs_total, 9, "3 sources × 3 targets");
    assert!(summary.complete());
    assert_eq!(summary.class_names, ["airplane", "automobile", "cat"]);
    let t = &summary.table;
    // Every valid pair has LPIPS; the off-diagonal ones are those of distinct classes.
    assert_eq!(t.off_diagonal_pairs, t.valid_pairs - t.valid_pairs / 3);
    // Twelve steps of 5% leave x_final far from a target of another class.
    assert_eq!(t.reach_003, Some(0.0));
    assert!(t.median_lpips.unwrap() > 0.03);
    // The diagonal: a source walking toward its own class's target; hits there only when it
    // is the target itself, so each diagonal cell is 0, 1 or in between, never n/a for a
    // valid source.
    for (k, row) in summary.hit_matrix.iter().enumerate() {
        assert_eq!(row.len(), 3);
        assert!(row[k].is_some());
    }
    let widths = summary.width_summary.as_ref().expect("width sources");
    assert_eq!(widths.radii, [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
    assert!(widths.measurements >= 3, "{}", widths.measurements);
    for name in [
        "plan.json",
        "reach.json",
        "pairs.csv",
        "summary.md",
        "hit_matrix.png",
        "hit_matrix.svg",
        "examples_grid.png",
        "examples_grid.svg",
    ] {
        assert!(out.join(name).is_file(), "{name}");
    }
    let csv = std::fs::read_to_string(out.join("pairs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 10, "header + 9 pairs");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("reach @0.03") && md.contains("Width summary"),
        "{md}"
    );
    let png = image::open(out.join("hit_matrix.png")).unwrap();
    assert!(png.width() > 300 && png.height() > 200);

    // reach-table puts the evaluation's row into one table.
    let (ok, table, stderr) = blindspot(&["reach-table", s(&out)]);
    assert!(ok, "{stderr}");
    assert!(table.contains("| resnet20_cifar10 | 9 |"), "{table}");

    // Running into the same folder again without --resume is refused.
    let (ok, _, stderr) = blindspot(&[
        "reach",
        "-w",
        s(&w),
        "--images",
        s(&shared("data/cifar10_test_png")),
        "--out",
        s(&out),
    ]);
    assert!(!ok && stderr.contains("--resume"), "{stderr}");
}

fn reach_args(images: &Path, out: &Path) -> Vec<String> {
    let lpips = shared("weights/lpips_alex.safetensors");
    [
        "reach",
        "--images",
        s(images),
        "--per-class",
        "2",
        "--iterations",
        "30",
        "--batch",
        "4",
        "--lpips",
        s(&lpips),
        "--out",
        s(out),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

fn run_strings(args: &[String]) -> (bool, String, String) {
    blindspot(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn a_killed_reach_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let images = demo_set(dir.path(), 60);
    let whole = dir.path().join("whole");
    let (ok, _, stderr) = run_strings(&reach_args(&images, &whole));
    assert!(ok, "{stderr}");

    // The same evaluation, killed (SIGKILL) once some pairs are on disk, then resumed.
    let killed = dir.path().join("killed");
    let args = reach_args(&images, &killed);
    let mut child = Command::new(env!("CARGO_BIN_EXE_blindspot"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pairs = killed.join("pairs");
    let start = Instant::now();
    let count = |dir: &Path| {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
            })
            .count()
        })
    };
    while count(&pairs) < 12 && start.elapsed() < Duration::from_secs(300) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        still_running,
        "the evaluation ended before it could be killed"
    );
    let partial = count(&pairs);
    assert!(partial >= 12 && partial < 200, "{partial}");
    assert!(!killed.join("reach.json").exists());

    let mut resume = args.clone();
    resume.push("--resume".into());
    let (ok, stdout, stderr) = run_strings(&resume);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("NSPGD reach"), "{stdout}");
    let a = blindspot::reach::load_summary(&whole).unwrap();
    let b = blindspot::reach::load_summary(&killed).unwrap();
    assert_eq!(a.pairs_total, 200, "20 sources × 10 targets");
    assert!(b.complete());
    // A batch is walked whole on resume, with the batch-mates the plan gave it, so every
    // pair is the uninterrupted run's to the last digit (tests/resume_exact.rs checks every
    // file; here with LPIPS as the hit criterion).
    assert_eq!(a.hit_matrix, b.hit_matrix);
    assert_eq!(a.table, b.table);
    let plan: blindspot::reach::ReachPlanRecord =
        serde_json::from_slice(&std::fs::read(whole.join("plan.json")).unwrap()).unwrap();
    let ra = blindspot::reach::load_pair_records(&whole, &plan);
    let rb = blindspot::reach::load_pair_records(&killed, &plan);
    assert_eq!(ra.len(), 200);
    assert_eq!(ra, rb);

    // A resume under other settings is refused, naming what differs.
    let mut other = resume.clone();
    let k = other.iter().position(|a| a == "30").unwrap();
    other[k] = "31".into();
    let (ok, _, stderr) = run_strings(&other);
    assert!(!ok && stderr.contains("options"), "{stderr}");
}

#[test]
fn reach_refuses_bad_inputs_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let gallery = shared("data/cifar10_test_png/cat");
    // A folder of images with no class folders.
    let (ok, _, stderr) = blindspot(&[
        "reach",
        "-w",
        s(&shared("weights/resnet20_cifar10.safetensors")),
        "--images",
        s(&gallery),
        "--out",
        s(&out),
    ]);
    assert!(!ok, "a flat folder has no classes");
    assert!(stderr.contains(s(&gallery)), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A wrong LPIPS file.
    let w = shared("weights/resnet20_cifar10.safetensors");
    let (ok, _, stderr) = blindspot(&[
        "reach",
        "-w",
        s(&w),
        "--images",
        s(&shared("data/cifar10_test_png")),
        "--lpips",
        s(&w),
        "--out",
        s(&out),
    ]);
    assert!(
        !ok && stderr.contains("resnet20_cifar10.safetensors") && stderr.contains("not LPIPS-Alex"),
        "{stderr}"
    );

    // Classes the model does not have (a 10-class model asked for 11 targets).
    let (ok, _, stderr) = blindspot(&[
        "reach",
        "-w",
        s(&w),
        "--images",
        s(&shared("data/cifar10_test_png")),
        "--classes",
        "0,1,2,3,4,5,6,7,8,9,10",
        "--out",
        s(&out),
    ]);
    assert!(
        !ok && stderr.contains("has 10 classes") && stderr.contains("class 10"),
        "{stderr}"
    );
    assert!(
        !out.join("plan.json").exists(),
        "nothing is written for a refused plan"
    );
}

#[test]
fn widths_compare_draws_two_models_on_one_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let (ok, stdout, stderr) = blindspot(&[
        "widths-compare",
        "--demo",
        "standard",
        "--against",
        "demo:robust",
        "--source",
        "gallery:circle_1",
        "--target",
        "gallery:star_1",
        "--iterations",
        "7",
        "--out",
        s(&out),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("demo-standard") && stdout.contains("demo-robust"),
        "{stdout}"
    );
    for f in [
        "widths_compare.png",
        "widths_compare.svg",
        "model_a/run.json",
        "model_b/run.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let a = blindspot::record::RunRecord::load(&out.join("model_a")).unwrap();
    let b = blindspot::record::RunRecord::load(&out.join("model_b")).unwrap();
    assert_eq!(a.source.sha256, b.source.sha256);
    assert_eq!(a.measured_widths().len(), 2, "iterations 0 and 6");
    assert_eq!(b.measured_widths().len(), 2);
    // Two rows of heatmaps: taller than one model's width plot.
    let one = image::open(out.join("model_a/widths.png")).unwrap();
    let both = image::open(out.join("widths_compare.png")).unwrap();
    assert!(
        both.height() > one.height() * 3 / 2,
        "{} vs {}",
        both.height(),
        one.height()
    );
}
