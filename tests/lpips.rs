//! LPIPS-Alex against the goldens of MANIFEST.md ("LPIPS"): the float64 reference values of
//! the synthetic pairs (within 1e-5), the two analytic pairs, and pyiqa's official scores of
//! the five calibration pairs to every printed digit.

mod common;

use std::path::Path;

use blindspot::models::checkpoint::read_checkpoint;
use blindspot::models::{Lpips, locate_lpips};
use candle_core::{Device, Tensor};
use common::shared;

fn metric() -> Lpips {
    Lpips::load(&shared("weights/lpips_alex.safetensors")).unwrap()
}

/// The float64 reference values stored in the golden file's metadata, by key.
fn reference_values() -> serde_json::Map<String, serde_json::Value> {
    let ckpt = read_checkpoint(&shared("data/lpips/golden_inputs.safetensors")).unwrap();
    let text = &ckpt.metadata["lpips_alex_f64"];
    serde_json::from_str(text).unwrap()
}

#[test]
fn synthetic_pairs_match_the_float64_reference_within_1e_5() {
    let lpips = metric();
    let ckpt = read_checkpoint(&shared("data/lpips/golden_inputs.safetensors")).unwrap();
    let reference = reference_values();
    let mut checked = 0;
    for size in [32, 64] {
        let a = &ckpt.tensors[&format!("rng_a_{size}")];
        for other in ["b", "c"] {
            let b = &ckpt.tensors[&format!("rng_{other}_{size}")];
            let ours = lpips.distances(a, b).unwrap()[0];
            let want = reference[&format!("{size}x{size}/rng_a_{other}")]
                .as_f64()
                .unwrap();
            eprintln!("{size}x{size} a-{other}: {ours:.10} vs {want:.10}");
            assert!(
                (ours - want).abs() < 1e-5,
                "{size}x{size} a-{other}: {ours} vs {want}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

/// p[c,y,x] = ((7y + 13x + 29c) mod 256)/255 and q[c,y,x] = ((11y + 5x + 3xy + 17c) mod 256)/255.
fn analytic_pair(size: usize) -> (Tensor, Tensor) {
    let mut p = Vec::with_capacity(3 * size * size);
    let mut q = Vec::with_capacity(3 * size * size);
    for c in 0..3 {
        for y in 0..size {
            for x in 0..size {
                p.push(((7 * y + 13 * x + 29 * c) % 256) as f32 / 255.0);
                q.push(((11 * y + 5 * x + 3 * x * y + 17 * c) % 256) as f32 / 255.0);
            }
        }
    }
    let t = |v| Tensor::from_vec(v, (1, 3, size, size), &Device::Cpu).unwrap();
    (t(p), t(q))
}

#[test]
fn analytic_pairs_match_the_manifest_values() {
    let lpips = metric();
    let reference = reference_values();
    for (size, printed) in [(32, 0.3767884925), (64, 0.7752179281)] {
        let (p, q) = analytic_pair(size);
        let ours = lpips.distances(&p, &q).unwrap()[0];
        let stored = reference[&format!("{size}x{size}/formula_p_q")]
            .as_f64()
            .unwrap();
        eprintln!("{size}x{size} p-q: {ours:.10} (manifest {printed}, stored {stored:.10})");
        assert!(
            (stored - printed).abs() < 1e-10,
            "the manifest and file agree"
        );
        assert!((ours - printed).abs() < 1e-5, "{size}: {ours} vs {printed}");
    }
}

fn load_png(path: &Path) -> Tensor {
    let img = blindspot::images::load_rgb(path).unwrap();
    blindspot::images::to_tensor(&img, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
}

#[test]
fn calibration_pairs_match_the_official_scores_to_every_printed_digit() {
    let lpips = metric();
    // pyiqa's official LPIPS-Alex scores, as printed in MANIFEST.md, with their digits.
    let official = [
        ("I03", 0.7237, 4),
        ("I04", 0.2572, 4),
        ("I06", 0.05079, 5),
        ("I08", 0.05205, 5),
        ("I19", 0.4253, 4),
    ];
    let (mut refs, mut dists) = (Vec::new(), Vec::new());
    for (name, _, _) in official {
        refs.push(load_png(&shared(&format!(
            "data/lpips/calib_ref/{name}.png"
        ))));
        dists.push(load_png(&shared(&format!(
            "data/lpips/calib_dist/{name}.png"
        ))));
    }
    // One batched call: the batch must not change any pair's value.
    let scores = lpips
        .distances(
            &Tensor::cat(&refs, 0).unwrap(),
            &Tensor::cat(&dists, 0).unwrap(),
        )
        .unwrap();
    for ((name, printed, decimals), ours) in official.iter().zip(&scores) {
        let rounded = (ours * 10f64.powi(*decimals)).round() / 10f64.powi(*decimals);
        eprintln!("{name}: {ours:.7} -> {rounded} (official {printed})");
        assert!(
            (rounded - printed).abs() < 1e-12,
            "{name}: {ours} rounds to {rounded}, official {printed}"
        );
    }
    let single = lpips.distances(&refs[2], &dists[2]).unwrap()[0];
    assert!(
        (single - scores[2]).abs() < 1e-9,
        "{single} vs {}",
        scores[2]
    );
}

#[test]
fn an_image_is_at_distance_zero_from_itself_and_the_metric_is_symmetric() {
    let lpips = metric();
    let (p, q) = analytic_pair(32);
    assert_eq!(lpips.distances(&p, &p).unwrap()[0], 0.0);
    let pq = lpips.distances(&p, &q).unwrap()[0];
    let qp = lpips.distances(&q, &p).unwrap()[0];
    assert!((pq - qp).abs() < 1e-12);
}

#[test]
fn wrong_files_and_inputs_are_refused_with_a_clear_error() {
    let classifier = shared("weights/resnet20_cifar10.safetensors");
    let err = Lpips::load(&classifier).unwrap_err().to_string();
    assert!(
        err.contains("resnet20_cifar10.safetensors") && err.contains("not LPIPS-Alex"),
        "{err}"
    );
    let missing = Path::new("/nonexistent/lpips_alex.safetensors");
    let err = locate_lpips(Some(missing)).unwrap_err().to_string();
    assert!(
        err.contains("/nonexistent/lpips_alex.safetensors") && err.contains("--lpips"),
        "{err}"
    );

    let lpips = metric();
    let small = Tensor::zeros((1, 3, 16, 16), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = lpips.distances(&small, &small).unwrap_err().to_string();
    assert!(err.contains("32x32"), "{err}");
    let gray = Tensor::zeros((1, 1, 32, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(lpips.distances(&gray, &gray).is_err());
}
