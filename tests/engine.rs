//! Our input-gradient engine (`models::engine`) against candle's autograd, the reference path:
//! the same logits and input gradients for every architecture it runs, with batch norm folded
//! and not, for every objective. (No memory growth: tests/engine_memory.rs, in its own process.)

mod common;

use blindspot::models::{Classifier, LoadOptions, Normalization, Objective, load_classifier};
use candle_core::{DType, Device, Tensor};
use common::shared;

/// (weights, input size, normalisation override) for the networks the engine runs.
fn engine_models() -> Vec<(&'static str, [usize; 2], Option<Normalization>)> {
    vec![
        ("weights/resnet20_cifar10.safetensors", [32, 32], None),
        ("weights/resnet56_cifar10.safetensors", [32, 32], None),
        // Option-B shortcut (1x1 conv + BN projection).
        ("weights/resnet20_pgd_cifar10.safetensors", [32, 32], None),
        // plain_cnn: max pool, flatten, linear with ReLU; 1 input channel.
        ("weights/mnist_lenet5_adv.pt", [28, 28], None),
        (
            "weights/tv_resnet_basic_1111.safetensors",
            [64, 64],
            Some(Normalization::identity(3)),
        ),
        (
            "weights/tv_resnet_bottleneck_1111.safetensors",
            [64, 64],
            Some(Normalization::identity(3)),
        ),
        ("weights/efficientnet_lite0.safetensors", [224, 224], None),
        // timm ViT: patch embedding, layer norm, attention, GELU, class token.
        (
            "weights/timm_vit_tiny_depth2.safetensors",
            [64, 64],
            Some(Normalization::identity(3)),
        ),
    ]
}

fn load(
    path: &str,
    size: [usize; 2],
    norm: &Option<Normalization>,
    dtype: DType,
    fold: bool,
) -> Classifier {
    let opts = LoadOptions {
        dtype,
        input_size: Some(size),
        normalization: norm.clone(),
        fold_batch_norm: fold,
        ..LoadOptions::default()
    };
    load_classifier(&shared(path), &opts).unwrap()
}

fn images(batch: usize, channels: usize, size: [usize; 2], seed: u64) -> Tensor {
    let n = batch * channels * size[0] * size[1];
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            0.1 + 0.8 * (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    Tensor::from_vec(data, (batch, channels, size[0], size[1]), &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// (max |a − b| / max |b|, ||a − b|| / ||b||)
fn errors(a: &Tensor, b: &Tensor) -> (f64, f64) {
    let (a, b) = (flat(a), flat(b));
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    let max = a
        .iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    let diff: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt().max(1e-30);
    (max / scale, diff / norm)
}

#[test]
fn engine_matches_f64_autograd_for_every_engine_model() {
    for (path, size, norm) in engine_models() {
        for fold in [true, false] {
            let ours = load(path, size, &norm, DType::F32, fold);
            assert!(
                ours.uses_native_kernels(),
                "{path} should run on the engine"
            );
            let reference = load(path, size, &norm, DType::F64, fold);
            assert!(!reference.uses_native_kernels());
            let x = images(2, ours.spec().channels, size, 5);
            let classes = ours.spec().num_classes() as u32;
            let labels = vec![3 % classes, 7 % classes];
            for objective in [
                Objective::CrossEntropy(labels.clone()),
                Objective::Probability(labels.clone()),
                Objective::Logit(labels.clone()),
                Objective::ProbabilityCrossEntropy(labels.clone()),
            ] {
                let (logits, grad) = ours.input_gradient(&x, &objective).unwrap();
                let (ref_logits, ref_grad) = reference.input_gradient(&x, &objective).unwrap();
                let (logit_max, _) = errors(&logits, &ref_logits);
                let (grad_max, grad_l2) = errors(&grad, &ref_grad);
                eprintln!(
                    "{path} fold={fold} {objective:?}: logits {logit_max:.2e}, grad max {grad_max:.2e} L2 {grad_l2:.2e}"
                );
                assert!(logit_max < 1e-4, "{path}: logits {logit_max}");
                // EfficientNet's ReLU6 kinks let f32 round-off flip single mask elements
                // (see tests/goldens.rs); the ResNets agree element-wise.
                let (max_tol, l2_tol) = if path.contains("efficientnet") {
                    (2e-2, 1e-2)
                } else {
                    (1e-3, 1e-4)
                };
                assert!(
                    grad_max < max_tol,
                    "{path} {objective:?}: gradient max {grad_max}"
                );
                assert!(
                    grad_l2 < l2_tol,
                    "{path} {objective:?}: gradient L2 {grad_l2}"
                );
                // The engine's forward gives the same logits as its gradient pass.
                let forward = ours.forward(&x).unwrap();
                assert_eq!(
                    flat(&forward),
                    flat(&logits),
                    "{path}: forward vs gradient logits"
                );
            }
        }
    }
}

#[test]
fn engine_and_f32_autograd_agree_and_a_sample_ignores_its_batch() {
    let (path, size, norm) = &engine_models()[2];
    let ours = load(path, *size, norm, DType::F32, true);
    let autograd = load(path, *size, norm, DType::F32, true).with_autograd();
    assert!(!autograd.uses_native_kernels());
    let x = images(3, 3, *size, 9);
    let objective = Objective::CrossEntropy(vec![1, 2, 3]);
    let (l1, g1) = ours.input_gradient(&x, &objective).unwrap();
    let (l2, g2) = autograd.input_gradient(&x, &objective).unwrap();
    assert!(errors(&l1, &l2).0 < 1e-4);
    assert!(errors(&g1, &g2).1 < 1e-4);
    let (_, alone) = ours
        .input_gradient(
            &x.narrow(0, 1, 1).unwrap(),
            &Objective::CrossEntropy(vec![2]),
        )
        .unwrap();
    let (max, _) = errors(&g1.narrow(0, 1, 1).unwrap(), &alone);
    assert!(max < 1e-5, "sample 1 alone vs in its batch: {max}");
}

/// timm layouts the shared golden lacks, from seeded random weights: distilled DeiT (class
/// and distillation tokens, two heads averaged), LayerScale, and average pooling with
/// `fc_norm`. The engine against f64 autograd through the same model code.
#[test]
fn engine_matches_autograd_on_vit_variants() {
    use std::collections::HashMap;
    let dir = tempfile::tempdir().unwrap();
    let (d, depth, classes, patch, grid) = (128usize, 2usize, 5usize, 8usize, 3usize);
    for variant in ["distilled", "layer_scale", "avg_pool"] {
        let mut seed = 11u64;
        let mut random = |shape: &[usize], scale: f32| {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    scale * ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
                })
                .collect();
            Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
        };
        let prefix = if variant == "distilled" { 2 } else { 1 };
        let mut t: HashMap<String, Tensor> = HashMap::new();
        t.insert(
            "patch_embed.proj.weight".into(),
            random(&[d, 3, patch, patch], 0.2),
        );
        t.insert("patch_embed.proj.bias".into(), random(&[d], 0.2));
        t.insert("cls_token".into(), random(&[1, 1, d], 1.0));
        t.insert(
            "pos_embed".into(),
            random(&[1, prefix + grid * grid, d], 0.5),
        );
        for i in 0..depth {
            let b = format!("blocks.{i}");
            for (name, shape) in [
                ("attn.qkv", [3 * d, d]),
                ("attn.proj", [d, d]),
                ("mlp.fc1", [4 * d, d]),
                ("mlp.fc2", [d, 4 * d]),
            ] {
                t.insert(format!("{b}.{name}.weight"), random(&shape, 0.3));
                t.insert(format!("{b}.{name}.bias"), random(&[shape[0]], 0.1));
            }
            for norm in ["norm1", "norm2"] {
                t.insert(
                    format!("{b}.{norm}.weight"),
                    (random(&[d], 0.4) + 1.0).unwrap(),
                );
                t.insert(format!("{b}.{norm}.bias"), random(&[d], 0.2));
            }
            if variant == "layer_scale" {
                t.insert(format!("{b}.ls1.gamma"), random(&[d], 1.0));
                t.insert(format!("{b}.ls2.gamma"), random(&[d], 1.0));
            }
        }
        let final_norm = if variant == "avg_pool" {
            "fc_norm"
        } else {
            "norm"
        };
        t.insert(
            format!("{final_norm}.weight"),
            (random(&[d], 0.4) + 1.0).unwrap(),
        );
        t.insert(format!("{final_norm}.bias"), random(&[d], 0.2));
        t.insert("head.weight".into(), random(&[classes, d], 0.5));
        t.insert("head.bias".into(), random(&[classes], 0.1));
        if variant == "distilled" {
            t.insert("dist_token".into(), random(&[1, 1, d], 1.0));
            t.insert("head_dist.weight".into(), random(&[classes, d], 0.5));
            t.insert("head_dist.bias".into(), random(&[classes], 0.1));
        }
        let path = dir.path().join(format!("vit_{variant}.safetensors"));
        candle_core::safetensors::save(&t, &path).unwrap();
        let size = [patch * grid; 2];
        let opts = |dtype| LoadOptions {
            dtype,
            input_size: Some(size),
            normalization: Some(Normalization::identity(3)),
            ..LoadOptions::default()
        };
        let ours = load_classifier(&path, &opts(DType::F32)).unwrap();
        let reference = load_classifier(&path, &opts(DType::F64)).unwrap();
        assert!(ours.uses_native_kernels(), "{variant}: engine");
        let x = images(3, 3, size, 21);
        let objective = Objective::CrossEntropy(vec![0, 3, 4]);
        let (logits, grad) = ours.input_gradient(&x, &objective).unwrap();
        let (ref_logits, ref_grad) = reference.input_gradient(&x, &objective).unwrap();
        let (logit_max, _) = errors(&logits, &ref_logits);
        let (grad_max, grad_l2) = errors(&grad, &ref_grad);
        eprintln!("{variant}: logits {logit_max:.2e}, grad max {grad_max:.2e} L2 {grad_l2:.2e}");
        assert!(logit_max < 1e-4, "{variant}: logits {logit_max}");
        assert!(
            grad_max < 1e-3 && grad_l2 < 1e-4,
            "{variant}: gradient {grad_max} {grad_l2}"
        );
    }
}
