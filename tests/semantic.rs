//! `blindspot semantic map | regions | eval` end to end (ALGORITHMS.md §3) on ResNet-20 and real
//! CIFAR-10 images with small settings: the --json shapes, the files of each record, and bad
//! settings refused with a message that names them.

mod common;

use std::path::Path;

use common::{arg as s, blindspot, resnet20, shared};

fn cat() -> String {
    shared("data/cifar10_test_png/cat/0000.png")
        .display()
        .to_string()
}

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_2d_map_prints_params_grid_and_row_major_values_and_writes_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("map");
    let (ok, stdout, stderr) = blindspot(&[
        "semantic",
        "map",
        "-w",
        &resnet20(),
        "--image",
        &cat(),
        "--params",
        "rot,scale",
        "--domain",
        "rot=-90:90",
        "--points",
        "7",
        "--batch",
        "16",
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let json = last_json(&stdout);
    assert_eq!(json["params"], serde_json::json!(["rot", "scale"]));
    let grid = json["grid"].as_array().unwrap();
    assert_eq!(grid.len(), 2);
    assert_eq!(grid[0][0].as_f64(), Some(-90.0), "the domain override");
    assert_eq!(grid[0][6].as_f64(), Some(90.0));
    assert_eq!(grid[1][3].as_f64(), Some(1.0));
    let values: Vec<f64> = json["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 49);
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
    // Row 3 is rot = 0, column 3 scale = 1: the identity, where f is p(cat) of the image.
    let record = read_json(&out.join("semantic.json"));
    let identity = record["class"]["identity_confidence"].as_f64().unwrap();
    assert!(
        (values[3 * 7 + 3] - identity).abs() < 1e-5,
        "{} vs {identity}",
        values[24]
    );
    assert_eq!(record["class"]["class_name"], "cat");
    for file in ["semantic.json", "tensors.safetensors", "map.png", "map.svg"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let tensors =
        candle_core::safetensors::load(out.join("tensors.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    assert_eq!(tensors["map_values"].dims(), &[7, 7]);
    assert_eq!(tensors["map_values"].dtype(), candle_core::DType::F64);
}

#[test]
fn a_1d_map_has_one_axis() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("map1");
    let (ok, stdout, stderr) = blindspot(&[
        "semantic",
        "map",
        "-w",
        &resnet20(),
        "--image",
        &cat(),
        "--params",
        "bright",
        "--points",
        "9",
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let json = last_json(&stdout);
    assert_eq!(json["grid"].as_array().unwrap().len(), 1);
    assert_eq!(json["values"].as_array().unwrap().len(), 9);
    assert!(out.join("map.png").is_file());
}

#[test]
fn regions_print_boxes_and_volumes_and_record_traces_maps_and_corners() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("regions");
    let (ok, stdout, stderr) = blindspot(&[
        "semantic",
        "regions",
        "-w",
        &resnet20(),
        "--image",
        &cat(),
        "--params",
        "rot,scale",
        "--iterations",
        "40",
        "--points",
        "5",
        "--log-loss",
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let json = last_json(&stdout);
    assert_eq!(json["method"], "all");
    let boxes = json["boxes"].as_array().unwrap();
    assert_eq!(boxes.len(), 3, "one box per method");
    for b in boxes {
        let b: Vec<f64> = b
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(b.len(), 4, "[a_rot, a_scale, b_rot, b_scale]");
        assert!(b[0] < b[2] && b[1] < b[3]);
        assert!((-180.0..=180.0).contains(&b[0]) && (0.5..=1.5).contains(&b[3]));
    }
    let ratio = json["volume_ratio"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ratio));
    let oir_w = json["methods"]["oir_w"]["volume_ratio"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&oir_w));
    for file in [
        "semantic.json",
        "tensors.safetensors",
        "traces.png",
        "traces.svg",
        "map.png",
        "map.svg",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let corners = std::fs::read_dir(out.join("corners")).unwrap().count();
    assert_eq!(corners, 12, "4 corner renders of each of 3 boxes");
    let tensors =
        candle_core::safetensors::load(out.join("tensors.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    assert_eq!(
        tensors["trace_oir_b_1"].dims(),
        &[41, 2, 2],
        "[T + 1, 2, n]"
    );
    let record = read_json(&out.join("semantic.json"));
    assert_eq!(record["regions"][0]["loss"].as_array().unwrap().len(), 40);

    // One method: one box.
    let single = dir.path().join("naive");
    let (ok, stdout, stderr) = blindspot(&[
        "semantic",
        "regions",
        "-w",
        &resnet20(),
        "--image",
        &cat(),
        "--params",
        "tx",
        "--method",
        "naive",
        "--iterations",
        "20",
        "--no-map",
        "--out",
        s(&single),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let json = last_json(&stdout);
    assert_eq!(json["method"], "naive");
    assert_eq!(json["boxes"].as_array().unwrap().len(), 1);
    assert_eq!(json["boxes"][0].as_array().unwrap().len(), 2);
}

#[test]
fn eval_reports_srvr_per_model_and_class_with_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("eval");
    let images = shared("data/cifar10_test_png");
    let (ok, stdout, stderr) = blindspot(&[
        "semantic",
        "eval",
        "-w",
        &resnet20(),
        "--images",
        s(&images),
        "--per-class",
        "1",
        "--params",
        "rot,scale",
        "--iterations",
        "8",
        "--maps",
        "--points",
        "5",
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let json = last_json(&stdout);
    let srvr = &json["srvr"];
    for key in ["naive", "oir_b", "oir_w", "combined"] {
        let v = srvr[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    let combined = srvr["combined"].as_f64().unwrap();
    let mean = (srvr["naive"].as_f64().unwrap()
        + srvr["oir_b"].as_f64().unwrap()
        + srvr["oir_w"].as_f64().unwrap())
        / 3.0;
    assert!((combined - mean).abs() < 1e-12);
    let evaluated = json["images"].as_u64().unwrap();
    assert_eq!(
        evaluated + json["skipped"].as_u64().unwrap(),
        10,
        "one image per class"
    );
    assert!(
        evaluated >= 8,
        "ResNet-20 classifies most first images correctly"
    );
    let per_class = json["per_class"].as_array().unwrap();
    assert_eq!(per_class.len() as u64, evaluated);
    assert!(json["map"]["mean"].as_f64().is_some());
    for file in [
        "semantic.json",
        "srvr.md",
        "srvr.csv",
        "cost.md",
        "tensors.safetensors",
        "mean_map.png",
        "mean_map.svg",
        "mean_map_class_3.png",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let cost = std::fs::read_to_string(out.join("cost.md")).unwrap();
    assert!(
        cost.contains("| Grid sampling (NSM) | top-down | – | 0 | 25 |"),
        "{cost}"
    );
    assert!(
        cost.contains("| OIR_B | bottom-up | 8 (inner + outer) | 0 | 64 |"),
        "{cost}"
    );
    let table = std::fs::read_to_string(out.join("srvr.md")).unwrap();
    assert!(table.contains("SRVR OIR_W") && table.contains("resnet20_cifar10"));
}

/// Runs a failing command and returns its stderr.
fn refused(args: &[&str]) -> String {
    let (ok, _, stderr) = blindspot(args);
    assert!(!ok, "{args:?} should fail");
    stderr
}

#[test]
fn bad_settings_are_refused_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let w = resnet20();
    let image = cat();
    let base = |extra: &[&str], command: &str| {
        let mut args = vec![
            "semantic",
            command,
            "-w",
            w.as_str(),
            "--image",
            image.as_str(),
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| refused(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let err = run(base(&["--params", "rot,zoom"], "map"));
    assert!(err.contains("unknown semantic parameter `zoom`"), "{err}");
    let err = run(base(&["--params", ""], "map"));
    assert!(err.contains("no semantic parameter"), "{err}");
    let err = run(base(&["--params", "rot,tx,ty"], "map"));
    assert!(err.contains("one or two parameters"), "{err}");
    let err = run(base(&["--domain", "rot=-90"], "map"));
    assert!(err.contains("NAME=LO:HI"), "{err}");
    let err = run(base(&["--domain", "scale=2:1"], "map"));
    assert!(err.contains("scale") && err.contains("below"), "{err}");
    let err = run(base(&["--beta", "0.9"], "regions"));
    assert!(err.contains("beta") && err.contains("2/(2n - 1)"), "{err}");

    // Hue on the 1-channel MNIST LeNet.
    let mnist = shared("weights/mnist_lenet5_std.pt");
    let err = refused(&[
        "semantic",
        "map",
        "-w",
        s(&mnist),
        "--image",
        &image,
        "--params",
        "hue",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("hue") && err.contains("1 channel"), "{err}");
    assert!(!out.exists(), "nothing is written for refused settings");
}

#[test]
fn a_class_the_model_does_not_predict_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ship_map");
    let (ok, _, stderr) = blindspot(&[
        "semantic",
        "map",
        "-w",
        &resnet20(),
        "--image",
        &cat(),
        "--class",
        "8",
        "--params",
        "rot",
        "--points",
        "3",
        "--out",
        s(&out),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("warning: the model predicts `cat`"),
        "{stderr}"
    );
    assert!(stderr.contains("not `ship`"), "{stderr}");
}

#[test]
fn three_parameters_grow_regions_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("three");
    let (ok, stdout, stderr) = blindspot(&[
        "semantic",
        "regions",
        "-w",
        &resnet20(),
        "--image",
        &cat(),
        "--params",
        "rot,tx,ty",
        "--method",
        "oir-b",
        "--iterations",
        "3",
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("warning: region growing with n = 3"),
        "{stderr}"
    );
    assert_eq!(last_json(&stdout)["boxes"][0].as_array().unwrap().len(), 6);
}

/// The warp against PyTorch's `affine_grid` + `grid_sample` (bilinear, zeros padding,
/// align_corners = false) on a non-square image, including a zoom-out that samples outside it:
/// `tests/fixtures/grid_sample.safetensors`, made by `scripts/make_grid_sample_fixture.py`.
#[test]
fn warp_matches_pytorch_grid_sample() {
    use blindspot::analysis::semantic::{SemanticParam, SemanticTransform, identity_params};

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grid_sample.safetensors");
    let tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
    let (_, file) =
        safetensors::SafeTensors::read_metadata(&std::fs::read(&path).unwrap()).unwrap();
    let metadata = file.metadata().as_ref().unwrap();
    // A 3×12×16 image (non-square, zoom-out past the border) and a CIFAR-sized 3×32×32 one
    // (rotation, scale and translation alone, then together).
    let sets = [
        ("image", "warped", "settings"),
        ("image32", "warped32", "settings32"),
    ];
    let mut checked = 0;
    for (image_key, warped_key, settings_key) in sets {
        let image = &tensors[image_key];
        let warped = tensors[warped_key]
            .to_dtype(candle_core::DType::F64)
            .unwrap();
        let settings: Vec<[f64; 4]> = serde_json::from_str(&metadata[settings_key]).unwrap();
        let transform = SemanticTransform::new(image, 3.0).unwrap();
        for (k, [rot, scale, tx, ty]) in settings.into_iter().enumerate() {
            let mut u = identity_params();
            u[SemanticParam::Rot.index()] = rot;
            u[SemanticParam::Scale.index()] = scale;
            u[SemanticParam::Tx.index()] = tx;
            u[SemanticParam::Ty.index()] = ty;
            let ours = transform.apply(&u, &[]).pixels;
            let torch: Vec<f64> = warped
                .get(k)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(ours.len(), torch.len());
            let worst = ours
                .iter()
                .zip(&torch)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 1e-5,
                "{image_key} setting {k} (rot {rot}, scale {scale}, tx {tx}, ty {ty}): max |ours - torch| = {worst}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6 + 7);
}

/// The warp against PyTorch on real CIFAR-10 test images, read in place from ../shared (one
/// per class; rotation, scale and translation alone, then together). The fixture keeps checks,
/// not pixels (nothing of ../shared goes into the repository): each image's SHA-256, 64 seeded
/// sample points of every warped image, and every channel's sum and sum of squares, all from
/// PyTorch in f64 (`scripts/make_grid_sample_fixture.py`).
#[test]
fn warp_matches_pytorch_grid_sample_on_real_cifar_images() {
    use blindspot::analysis::semantic::{SemanticParam, SemanticTransform, identity_params};
    use sha2::{Digest, Sha256};

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grid_sample_cifar.json");
    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let settings: Vec<[f64; 4]> = serde_json::from_value(fixture["settings"].clone()).unwrap();
    let images = fixture["images"].as_array().unwrap();
    assert_eq!(images.len(), 10);
    let (mut points, mut worst_point, mut worst_moment) = (0, 0.0f64, 0.0f64);
    for image in images {
        let file = shared("data/cifar10_test_png").join(image["file"].as_str().unwrap());
        let rgb = blindspot::images::load_rgb(&file).unwrap();
        let sha: String = Sha256::digest(rgb.as_raw())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            sha,
            image["rgb_sha256"].as_str().unwrap(),
            "{}",
            file.display()
        );
        // [3, 32, 32] in [0, 1], as a model sees the image.
        let chw: Vec<f32> = (0..3)
            .flat_map(|c| rgb.pixels().map(move |p| f32::from(p[c]) / 255.0))
            .collect();
        let x = candle_core::Tensor::from_vec(chw, (3, 32, 32), &candle_core::Device::Cpu).unwrap();
        let transform = SemanticTransform::new(&x, 3.0).unwrap();
        for (warp, [rot, scale, tx, ty]) in image["warps"].as_array().unwrap().iter().zip(&settings)
        {
            let mut u = identity_params();
            u[SemanticParam::Rot.index()] = *rot;
            u[SemanticParam::Scale.index()] = *scale;
            u[SemanticParam::Tx.index()] = *tx;
            u[SemanticParam::Ty.index()] = *ty;
            let ours = transform.apply(&u, &[]).pixels;
            let at = |c: usize, y: usize, x: usize| ours[(c * 32 + y) * 32 + x];
            for (p, v) in warp["points"]
                .as_array()
                .unwrap()
                .iter()
                .zip(warp["values"].as_array().unwrap())
            {
                let p: [usize; 3] = serde_json::from_value(p.clone()).unwrap();
                let d = (at(p[0], p[1], p[2]) - v.as_f64().unwrap()).abs();
                worst_point = worst_point.max(d);
                points += 1;
            }
            for c in 0..3 {
                let channel = &ours[c * 1024..(c + 1) * 1024];
                let sum: f64 = channel.iter().sum();
                let squares: f64 = channel.iter().map(|v| v * v).sum();
                // Per pixel, as the point tolerance: the sums over 1024 pixels divided by 1024.
                let d_sum = (sum - warp["channel_sums"][c].as_f64().unwrap()).abs() / 1024.0;
                let d_sq =
                    (squares - warp["channel_sums_of_squares"][c].as_f64().unwrap()).abs() / 1024.0;
                worst_moment = worst_moment.max(d_sum).max(d_sq);
            }
        }
    }
    assert_eq!(points, 10 * 7 * 64);
    assert!(
        worst_point < 1e-5,
        "max |ours - torch| at sample points = {worst_point}"
    );
    assert!(
        worst_moment < 1e-5,
        "channel moments differ by {worst_moment} per pixel"
    );
    println!(
        "real CIFAR warps: {points} points, worst {worst_point:.2e}; moments {worst_moment:.2e}"
    );
}
