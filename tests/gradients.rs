//! The input gradient of every architecture: it exists (never silently absent), and it agrees
//! with an f64 central finite difference of the objective along random directions.

mod common;

use blindspot::models::{LoadOptions, Normalization, Objective, load_classifier};
use candle_core::{DType, Device, Tensor};
use common::shared;

/// (weights, input size, normalisation override) for one model of each architecture.
fn models() -> Vec<(&'static str, [usize; 2], Option<Normalization>)> {
    vec![
        ("weights/resnet20_cifar10.safetensors", [32, 32], None),
        ("weights/resnet20_pgd_cifar10.safetensors", [32, 32], None),
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
        (
            "weights/timm_vit_tiny_depth2.safetensors",
            [64, 64],
            Some(Normalization::identity(3)),
        ),
        ("weights/efficientnet_lite0.safetensors", [224, 224], None),
    ]
}

fn random_image(channels: usize, size: [usize; 2], seed: u64) -> Tensor {
    // A deterministic image in (0.1, 0.9) without a random-number crate.
    let n = channels * size[0] * size[1];
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<f64> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            0.1 + 0.8 * (state >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    Tensor::from_vec(data, (1, channels, size[0], size[1]), &Device::Cpu).unwrap()
}

#[test]
fn input_gradient_matches_f64_finite_differences() {
    for (path, size, normalization) in models() {
        let device = common::test_device();
        let opts = LoadOptions {
            dtype: DType::F64,
            input_size: Some(size),
            normalization,
            device: device.clone(),
            ..LoadOptions::default()
        };
        let model = load_classifier(&shared(path), &opts).unwrap();
        let channels = model.spec().channels;
        let x = random_image(channels, size, 7).to_device(&device).unwrap();
        let label = 3u32;
        for objective in [
            Objective::CrossEntropy(vec![label]),
            Objective::Probability(vec![label]),
            Objective::ProbabilityCrossEntropy(vec![label]),
        ] {
            let (_, grad) = model.input_gradient(&x, &objective).unwrap();
            let value = |x: &Tensor| -> f64 {
                let logits = model.forward(x).unwrap();
                objective
                    .evaluate(&logits)
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            for k in 0..3 {
                let direction = random_image(channels, size, 100 + k)
                    .affine(1.0, -0.5)
                    .unwrap()
                    .to_device(&device)
                    .unwrap();
                let direction = (&direction
                    / direction
                        .sqr()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .sqrt()
                        .unwrap()
                        .to_scalar::<f64>()
                        .unwrap())
                .unwrap();
                // Small enough that the ReLU kinks are rarely crossed, large enough for f64 round-off.
                let h = 1e-7;
                let plus = value(&x.add(&direction.affine(h, 0.0).unwrap()).unwrap());
                let minus = value(&x.sub(&direction.affine(h, 0.0).unwrap()).unwrap());
                let numeric = (plus - minus) / (2.0 * h);
                let analytic = grad
                    .mul(&direction)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap();
                let scale = analytic.abs().max(numeric.abs());
                // Relative agreement, plus the finite difference's own round-off, ~ulp(L)/h.
                let roundoff = 4.0 * f64::EPSILON * plus.abs().max(minus.abs()) / h;
                eprintln!(
                    "{path} {objective:?} dir {k}: analytic {analytic:.9e} numeric {numeric:.9e}"
                );
                assert!(
                    (analytic - numeric).abs() <= 1e-5 * scale + roundoff,
                    "{path}: directional derivative {analytic} vs finite difference {numeric}"
                );
            }
        }
    }
}

#[test]
fn input_gradient_exists_and_is_nonzero_for_every_model() {
    for (path, size, normalization) in models() {
        let opts = LoadOptions {
            input_size: Some(size),
            normalization,
            ..LoadOptions::default()
        };
        let model = load_classifier(&shared(path), &opts).unwrap();
        let x = random_image(model.spec().channels, size, 1)
            .to_dtype(DType::F32)
            .unwrap();
        let x = Tensor::cat(&[&x, &x], 0).unwrap();
        for objective in [
            Objective::CrossEntropy(vec![0, 1]),
            Objective::Probability(vec![0, 1]),
            Objective::Logit(vec![0, 1]),
        ] {
            let (logits, grad) = model.input_gradient(&x, &objective).unwrap();
            assert_eq!(logits.dims(), &[2, model.spec().num_classes()]);
            assert_eq!(grad.dims(), x.dims(), "{path}");
            let norm = grad
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .sqrt();
            assert!(
                norm.is_finite() && norm > 0.0,
                "{path} {objective:?}: gradient norm {norm}"
            );
        }
    }
}
