//! Bad inputs and arguments, one table: each case makes its bad file or argument in a temp
//! folder at test time (the good files of ../shared are only read in place), runs the CLI, and
//! requires a failing exit code, the words its error must contain, and no panic. `{dir}`
//! in a needle stands for the case's temp folder, so a needle can require the file's path.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::{blindspot, resnet20, shared};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// One CIFAR-10 test PNG (a cat), read in place.
fn cat_png() -> String {
    s(&shared("data/cifar10_test_png/cat/0000.png"))
}

/// ResNet-20's tensors, with `edit` applied, saved as `name` in `dir`.
fn edited_resnet20(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut HashMap<String, Tensor>),
) -> String {
    let mut t = candle_core::safetensors::load(
        shared("weights/resnet20_cifar10.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    edit(&mut t);
    let path = dir.join(name);
    candle_core::safetensors::save(&t, &path).unwrap();
    s(&path)
}

/// `name` with the value at flat index `at` set to `v`.
fn poke(t: &mut HashMap<String, Tensor>, name: &str, at: usize, v: f32) {
    let old = &t[name];
    let mut values = old.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    values[at] = v;
    let new = Tensor::from_vec(values, old.dims(), &Device::Cpu).unwrap();
    t.insert(name.to_string(), new);
}

/// A 32×32 PNG of one grey, written with our own `image` dependency.
fn png(path: &Path) {
    image::RgbImage::from_pixel(32, 32, image::Rgb([120, 130, 140]))
        .save(path)
        .unwrap();
}

/// A folder with `labels.tsv` listing `labels.len()` generated PNGs with these labels.
fn labelled_folder(dir: &Path, labels: &[&str]) -> String {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut tsv = String::from("file\tlabel\n");
    for (i, l) in labels.iter().enumerate() {
        png(&data.join(format!("{i}.png")));
        tsv.push_str(&format!("{i}.png\t{l}\n"));
    }
    std::fs::write(data.join("labels.tsv"), tsv).unwrap();
    s(&data)
}

fn classify(weights: String) -> Vec<String> {
    vec!["classify".into(), "-w".into(), weights, cat_png()]
}

fn eval_args(dir: &Path, images: String, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "eval".into(),
        "-w".into(),
        resnet20(),
        "--images".into(),
        images,
        "--out".into(),
        s(&dir.join("out")),
    ];
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

fn traverse_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "traverse".into(),
        "-w".into(),
        resnet20(),
        "--source".into(),
        cat_png(),
        "--target".into(),
        s(&shared("data/cifar10_test_png/dog/0012.png")),
        "--out".into(),
        s(&dir.join("run")),
    ];
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

/// ../shared's ResNet-20 as a PyTorch zip, with the first value of storage `archive/data/0`
/// replaced by `v`.
fn pth_with_first_value(dir: &Path, v: f32) -> String {
    let src = std::fs::File::open(shared("weights/resnet20_cifar10_zip.pth")).unwrap();
    let mut zin = zip::ZipArchive::new(src).unwrap();
    let path = dir.join("resnet20_nan.pth");
    let mut zout = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut poked = false;
    for i in 0..zin.len() {
        let mut entry = zin.by_index(i).unwrap();
        let name = entry.name().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name.ends_with("/data/0") {
            bytes[..4].copy_from_slice(&v.to_le_bytes());
            poked = true;
        }
        zout.start_file(name, opts).unwrap();
        zout.write_all(&bytes).unwrap();
    }
    zout.finish().unwrap();
    assert!(poked, "the zip has a storage archive/data/0");
    s(&path)
}

struct Case {
    name: &'static str,
    /// Writes the bad file (if any) into the case's folder and gives the CLI arguments.
    make: fn(&Path) -> Vec<String>,
    /// Words the error must contain (`{dir}` is the case's folder).
    needles: &'static [&'static str],
}

const CASES: &[Case] = &[
    // Item 1: bad checkpoints are refused at load, naming file, tensor and reason.
    Case {
        name: "safetensors with a NaN weight",
        make: |d| {
            classify(edited_resnet20(d, "nan.safetensors", |t| {
                poke(t, "conv1.weight", 5, f32::NAN)
            }))
        },
        needles: &[
            "{dir}/nan.safetensors",
            "tensor `conv1.weight`",
            "holds 1 NaN value",
            "index [0, 0, 1, 2]",
        ],
    },
    Case {
        name: "safetensors with an infinite weight",
        make: |d| {
            classify(edited_resnet20(d, "inf.safetensors", |t| {
                poke(t, "linear.weight", 0, f32::INFINITY)
            }))
        },
        needles: &[
            "{dir}/inf.safetensors",
            "tensor `linear.weight`",
            "infinite value",
            "inf",
        ],
    },
    Case {
        name: "BatchNorm running_var of -1",
        make: |d| {
            classify(edited_resnet20(d, "negvar.safetensors", |t| {
                poke(t, "layer1.0.bn1.running_var", 3, -1.0)
            }))
        },
        needles: &[
            "{dir}/negvar.safetensors",
            "tensor `layer1.0.bn1.running_var` has a negative value (-1) at index 3",
        ],
    },
    Case {
        name: "PyTorch zip with a NaN weight",
        make: |d| classify(pth_with_first_value(d, f32::NAN)),
        needles: &["{dir}/resnet20_nan.pth", "holds 1 NaN value", "tensor `"],
    },
    // Item 2: labels are class ids in u32 and below the model's class count.
    Case {
        name: "labels.tsv label 2^32 + 3 (used to wrap to class 3)",
        make: |d| {
            let data = labelled_folder(d, &["4294967299"]);
            vec![
                "accuracy".into(),
                "-w".into(),
                resnet20(),
                "--images".into(),
                data,
            ]
        },
        needles: &[
            "{dir}/data/labels.tsv",
            "line 2",
            "label 4294967299 is out of range",
        ],
    },
    Case {
        name: "labels.tsv label 10 for a 10-class model (accuracy)",
        make: |d| {
            let data = labelled_folder(d, &["3", "10"]);
            vec![
                "accuracy".into(),
                "-w".into(),
                resnet20(),
                "--images".into(),
                data,
            ]
        },
        needles: &[
            "{dir}/data/labels.tsv",
            "line 3",
            "label 10 is not a class of the model",
            "10 classes",
        ],
    },
    Case {
        name: "labels.tsv label 10 for a 10-class model (eval)",
        make: |d| {
            let data = labelled_folder(d, &["10", "1"]);
            eval_args(d, data, &["--pool", "2"])
        },
        needles: &[
            "{dir}/data/labels.tsv",
            "line 2",
            "label 10 is not a class of the model",
        ],
    },
    Case {
        name: "tensor data set with a label of 10",
        make: |d| {
            let p = d.join("set.safetensors");
            let images = Tensor::zeros((1, 32, 32, 3), DType::U8, &Device::Cpu).unwrap();
            let labels = Tensor::new(&[10i64], &Device::Cpu).unwrap();
            let t: HashMap<String, Tensor> = [
                ("images".to_string(), images),
                ("labels".to_string(), labels),
            ]
            .into();
            candle_core::safetensors::save(&t, &p).unwrap();
            vec![
                "accuracy".into(),
                "-w".into(),
                resnet20(),
                "--images".into(),
                s(&p),
            ]
        },
        needles: &[
            "{dir}/set.safetensors",
            "`labels`[0] is 10, not a class of the model",
        ],
    },
    Case {
        name: "labels.tsv label -1",
        make: |d| {
            let data = labelled_folder(d, &["-1"]);
            vec![
                "accuracy".into(),
                "-w".into(),
                resnet20(),
                "--images".into(),
                data,
            ]
        },
        needles: &[
            "{dir}/data/labels.tsv",
            "line 2",
            "label `-1` is not a non-negative integer",
        ],
    },
    // Item 3: impossible settings, refused before any work.
    Case {
        name: "eval --pairs 0",
        make: |d| eval_args(d, common::cifar_png(), &["--pairs", "0"]),
        needles: &["--pairs 0: must be at least 1"],
    },
    Case {
        name: "eval --batch 0",
        make: |d| eval_args(d, common::cifar_png(), &["--batch", "0"]),
        needles: &["--batch 0: must be at least 1"],
    },
    Case {
        name: "eval --pool 50 on a 10-class model",
        make: |d| eval_args(d, common::cifar_png(), &["--pool", "50"]),
        needles: &["--pool 50", "only 10 classes"],
    },
    Case {
        name: "eval --pool 5 on a data set of 2 classes",
        make: |d| {
            let data = labelled_folder(d, &["0", "1", "1"]);
            eval_args(d, data, &["--pool", "5"])
        },
        needles: &["--pool 5", "the data set has images of only 2 classes"],
    },
    Case {
        name: "eval --pool 1",
        make: |d| eval_args(d, common::cifar_png(), &["--pool", "1"]),
        needles: &["--pool 1: must be at least 2"],
    },
    Case {
        name: "accuracy --batch 0",
        make: |_| {
            vec![
                "accuracy".into(),
                "-w".into(),
                resnet20(),
                "--images".into(),
                common::cifar_png(),
                "--batch".into(),
                "0".into(),
            ]
        },
        needles: &["--batch 0: must be at least 1"],
    },
    Case {
        name: "traverse --iterations 0",
        make: |d| traverse_args(d, &["--iterations", "0"]),
        needles: &["--iterations 0: must be at least 1"],
    },
    Case {
        name: "traverse --step-size -1 (was 'unexpected argument')",
        make: |d| traverse_args(d, &["--step-size", "-1"]),
        needles: &["--step-size -1: must be a number > 0"],
    },
    Case {
        name: "traverse --pthresh -0.5",
        make: |d| traverse_args(d, &["--pthresh", "-0.5"]),
        needles: &["--pthresh -0.5: must be between 0 and 1"],
    },
    Case {
        name: "eval --pairs -1 (a value for the flag, not an unknown argument)",
        make: |d| eval_args(d, common::cifar_png(), &["--pairs", "-1"]),
        needles: &["invalid value '-1' for '--pairs"],
    },
    Case {
        name: "traverse --iterations -5",
        make: |d| traverse_args(d, &["--iterations", "-5"]),
        needles: &["invalid value '-5' for '--iterations"],
    },
    Case {
        name: "eval --noise -0.1",
        make: |d| eval_args(d, common::cifar_png(), &["--noise", "-0.1"]),
        needles: &["--noise -0.1: must be a number >= 0"],
    },
    Case {
        name: "traverse --step-size NaN",
        make: |d| traverse_args(d, &["--step-size", "NaN"]),
        needles: &["--step-size NaN: must be a number > 0"],
    },
    // Refusals that already held: kept as cases.
    Case {
        name: "safetensors header longer than the file",
        make: |d| {
            let p = d.join("truncated.safetensors");
            let mut b = 1000u64.to_le_bytes().to_vec();
            b.extend_from_slice(b"{\"a\":");
            std::fs::write(&p, b).unwrap();
            classify(s(&p))
        },
        needles: &[
            "{dir}/truncated.safetensors",
            "header length 1000 is larger than the 5 bytes after it",
        ],
    },
    Case {
        name: "safetensors with a wrongly shaped tensor",
        make: |d| {
            classify(edited_resnet20(d, "shape.safetensors", |t| {
                let w = Tensor::zeros((10, 63), DType::F32, &Device::Cpu).unwrap();
                t.insert("linear.weight".into(), w);
            }))
        },
        needles: &[
            "{dir}/shape.safetensors",
            "linear.weight",
            "[10, 63]",
            "[10, 64]",
        ],
    },
    Case {
        name: "empty checkpoint file",
        make: |d| {
            let p = d.join("empty.safetensors");
            std::fs::write(&p, b"").unwrap();
            classify(s(&p))
        },
        needles: &["{dir}/empty.safetensors", "file is empty (0 bytes)"],
    },
    Case {
        name: "text named .png",
        make: |d| {
            let p = d.join("notes.png");
            std::fs::write(&p, "this is not an image\n").unwrap();
            vec!["classify".into(), "-w".into(), resnet20(), s(&p)]
        },
        needles: &["{dir}/notes.png"],
    },
    Case {
        name: "truncated JPEG (the first third of an ImageNet image)",
        make: |d| {
            let whole =
                std::fs::read(shared("data/imagenet_sample/images/es_000_n01440764.JPEG")).unwrap();
            let p = d.join("cut.JPEG");
            std::fs::write(&p, &whole[..whole.len() / 3]).unwrap();
            vec![
                "classify".into(),
                "-w".into(),
                s(&shared("weights/efficientnet_lite0.safetensors")),
                s(&p),
            ]
        },
        needles: &["{dir}/cut.JPEG", "truncated"],
    },
    Case {
        name: "missing image",
        make: |d| {
            vec![
                "classify".into(),
                "-w".into(),
                resnet20(),
                s(&d.join("absent.png")),
            ]
        },
        needles: &["{dir}/absent.png", "No such file"],
    },
    Case {
        name: "missing checkpoint",
        make: |d| classify(s(&d.join("absent.safetensors"))),
        needles: &["{dir}/absent.safetensors", "No such file"],
    },
];

/// Runs `args`; requires a failure whose stderr holds every needle and no panic.
fn expect_refusal(name: &str, dir: &Path, args: &[String], needles: &[&str]) -> Vec<String> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = blindspot(&refs);
    let mut failures = Vec::new();
    if ok {
        failures.push(format!(
            "{name}: exit code 0\nstdout: {stdout}\nstderr: {stderr}"
        ));
    }
    if stderr.contains("panicked at") {
        failures.push(format!("{name}: panicked: {stderr}"));
    }
    // Each error says its cause once (not `…: No such file (os error 2): No such file (os
    // error 2)`): no piece of the error line after its first `: ` comes twice.
    if let Some(line) = stderr.lines().find(|l| l.starts_with("error: ")) {
        let pieces: Vec<&str> = line.split(": ").skip(1).filter(|p| p.len() > 12).collect();
        for (i, p) in pieces.iter().enumerate() {
            if pieces[i + 1..].contains(p) {
                failures.push(format!("{name}: the error repeats `{p}`: {line}"));
                break;
            }
        }
    }
    for n in needles {
        let n = n.replace("{dir}", &s(dir));
        if !stderr.contains(&n) {
            failures.push(format!("{name}: stderr lacks {n:?}: {stderr}"));
        }
    }
    failures
}

#[test]
fn every_bad_input_is_refused_clearly() {
    let root = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let dir = root.path().join(format!("case{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let args = (case.make)(&dir);
        failures.extend(expect_refusal(case.name, &dir, &args, case.needles));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// An F64 checkpoint is used, and says once that it was converted.
#[test]
fn f64_checkpoint_is_converted_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let w = edited_resnet20(dir.path(), "f64.safetensors", |t| {
        for v in t.values_mut() {
            *v = v.to_dtype(DType::F64).unwrap();
        }
    });
    let args = classify(w.clone());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = blindspot(&refs);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("panicked at"), "{stderr}");
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("converted")).collect();
    assert_eq!(notes.len(), 1, "said once: {stderr}");
    assert!(
        notes[0].contains(&w) && notes[0].contains("F64 tensors converted to F32"),
        "{stderr}"
    );
    assert!(stdout.contains("cat"), "{stdout}");
}

/// `eval --resume` refuses another model (by weights hash), seed, iteration count or pair
/// count, naming the setting and both values, and an old record it cannot check; the same
/// settings resume.
#[test]
fn eval_resume_refuses_another_model_or_setting() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "--pairs",
        "2",
        "--pool",
        "2",
        "--batch",
        "2",
        "--iterations",
        "2",
    ];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        let args = eval_args(dir.path(), common::cifar_png(), &a);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        blindspot(&refs)
    };
    let (ok, _, stderr) = run(&[]);
    assert!(ok, "{stderr}");
    let out = dir.path().join("out");
    let pool_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("pool.json")).unwrap()).unwrap();
    assert_eq!(
        pool_json["identity"]["config"]["iterations"], 2,
        "{pool_json}"
    );

    let resnet56 = s(&shared("weights/resnet56_cifar10.safetensors"));
    let refusals: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            {
                let mut a = eval_args(dir.path(), common::cifar_png(), &base);
                a[2] = resnet56;
                a.push("--resume".into());
                a
            },
            vec![
                "cannot resume",
                "model.",
                "the folder's model is resnet20_cifar10, this run's is resnet56_cifar10",
            ],
        ),
        (
            eval_args(
                dir.path(),
                common::cifar_png(),
                &[&base[..], &["--seed", "1", "--resume"]].concat(),
            ),
            vec!["cannot resume", "its config.seed is 0 but this run's is 1"],
        ),
        (
            {
                let mut a = base.to_vec();
                a[7] = "7";
                a.push("--resume");
                eval_args(dir.path(), common::cifar_png(), &a)
            },
            vec!["its config.iterations is 2 but this run's is 7"],
        ),
        (
            {
                let mut a = base.to_vec();
                a[1] = "3";
                a.push("--resume");
                eval_args(dir.path(), common::cifar_png(), &a)
            },
            vec!["its pairs is 2 but this run's is 3"],
        ),
        (
            eval_args(
                dir.path(),
                common::cifar_png(),
                &[&base[..], &["--pool-order", "shuffled", "--resume"]].concat(),
            ),
            vec!["its pool_order is \"data-set\" but this run's is \"shuffled\""],
        ),
    ];
    let mut failures = Vec::new();
    for (args, needles) in &refusals {
        failures.extend(expect_refusal(&args.join(" "), dir.path(), args, needles));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Nothing was rewritten by the refused resumes.
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("pool.json")).unwrap()).unwrap();
    assert_eq!(after, pool_json);

    // The same weights under another file name (by hash, not path) and the same settings
    // resume.
    let renamed = dir.path().join("renamed_resnet20.safetensors");
    std::fs::copy(shared("weights/resnet20_cifar10.safetensors"), &renamed).unwrap();
    let mut args = eval_args(
        dir.path(),
        common::cifar_png(),
        &[&base[..], &["--resume"]].concat(),
    );
    args[2] = s(&renamed);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = blindspot(&refs);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = run(&["--resume"]);
    assert!(ok, "{stderr}");

    // A record from before the identity was stored cannot be checked, so it is refused.
    let mut old = pool_json.clone();
    old.as_object_mut().unwrap().remove("identity");
    std::fs::write(out.join("pool.json"), serde_json::to_vec(&old).unwrap()).unwrap();
    let args = eval_args(
        dir.path(),
        common::cifar_png(),
        &[&base[..], &["--resume"]].concat(),
    );
    let failures = expect_refusal(
        "old pool.json",
        dir.path(),
        &args,
        &["cannot resume", "does not record which model"],
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
