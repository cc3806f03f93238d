//! Tiny in-memory classifiers for the analysis tests.

use candle_core::{DType, Device, Tensor};

use super::rng::{self, Normals, fill_uniform};
use crate::images::Preprocess;
use crate::models::{Classifier, ModelSpec, Network, Normalization, Provenance};

/// logits = W·flatten(x) + b.
pub struct Linear {
    w_t: Tensor,
    b: Tensor,
}

impl Network for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.flatten_from(1)?.matmul(&self.w_t)?.broadcast_add(&self.b)
    }
}

/// logits = c + 0·Σx: a gradient that exists and is exactly zero.
///
/// The zero is a tensor, not a scalar: candle prunes `affine(0, _)` from the backward graph,
/// which would leave the input without a gradient.
pub struct Constant {
    logits: Tensor,
    zero: Tensor,
}

impl Network for Constant {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let zero = x
            .flatten_from(1)?
            .sum_keepdim(1)?
            .broadcast_mul(&self.zero)?;
        zero.broadcast_add(&self.logits)
    }
}

pub fn spec(shape: [usize; 3], classes: usize, name: &str) -> ModelSpec {
    let [c, h, w] = shape;
    ModelSpec {
        architecture: name.to_string(),
        channels: c,
        input_size: [h, w],
        normalization: Normalization::identity(c),
        class_names: (0..classes).map(|k| format!("class{k}")).collect(),
        preprocess: Preprocess::Resize {
            height: h as u32,
            width: w as u32,
        },
        provenance: Provenance {
            architecture: "test".into(),
            normalization: "test".into(),
            input_size: "test".into(),
            class_names: "test".into(),
        },
        weights_path: String::new(),
        weights_sha256: String::new(),
    }
}

/// A linear classifier with N(0, scale²) weights and biases from a fixed stream.
pub fn linear_classifier_scaled(
    shape: [usize; 3],
    classes: usize,
    seed: u64,
    scale: f32,
) -> Classifier {
    let dim: usize = shape.iter().product();
    let mut normals = Normals::new(rng::stream(seed, 77, 0, 0));
    let mut w = vec![0f32; dim * classes];
    normals.fill(&mut w);
    w.iter_mut().for_each(|v| *v *= scale);
    let mut b = vec![0f32; classes];
    normals.fill(&mut b);
    b.iter_mut().for_each(|v| *v *= scale);
    let device = Device::Cpu;
    let w_t = Tensor::from_vec(w, (dim, classes), &device).expect("weights");
    let b = Tensor::from_vec(b, classes, &device).expect("bias");
    Classifier::new(
        spec(shape, classes, "test_linear"),
        Box::new(Linear { w_t, b }),
        device,
        DType::F32,
    )
    .expect("classifier")
}

/// The seeded linear classifier with weights and biases at scale 0.3, in f64 on candle's
/// autograd: for gradient checks and closed-form DeepFool margins.
pub fn biased_linear_f64(shape: [usize; 3], classes: usize, seed: u64) -> Classifier {
    let dim: usize = shape.iter().product();
    let mut normals = Normals::new(rng::stream(seed, 77, 0, 0));
    let mut w = vec![0f32; dim * classes];
    normals.fill(&mut w);
    let mut b = vec![0f32; classes];
    normals.fill(&mut b);
    let scaled = |v: Vec<f32>| v.into_iter().map(|x| 0.3 * f64::from(x)).collect();
    linear_from_rows(shape, scaled(w), scaled(b))
}

/// The f64 linear classifier logits = W·flatten(x) + b with W given row-major as
/// [classes × dim] (one row per class).
pub fn linear_from_rows(shape: [usize; 3], w: Vec<f64>, b: Vec<f64>) -> Classifier {
    let dim: usize = shape.iter().product();
    let classes = b.len();
    let device = Device::Cpu;
    let w_t = Tensor::from_vec(w, (classes, dim), &device)
        .and_then(|t| t.t())
        .and_then(|t| t.contiguous())
        .expect("weights");
    let b = Tensor::from_vec(b, classes, &device).expect("bias");
    Classifier::new(
        spec(shape, classes, "test_linear_f64"),
        Box::new(Linear { w_t, b }),
        device,
        DType::F64,
    )
    .expect("classifier")
}

pub fn linear_classifier(shape: [usize; 3], classes: usize, seed: u64) -> Classifier {
    linear_classifier_scaled(shape, classes, seed, 0.3)
}

/// The constant classifier with logits (1, 0, −1) and its confidence c in class 0.
pub fn constant_classifier(shape: [usize; 3]) -> (Classifier, f32) {
    let device = Device::Cpu;
    let row = [1.0f32, 0.0, -1.0];
    let logits = Tensor::from_slice(&row, 3, &device).expect("logits");
    let classifier = Classifier::new(
        spec(shape, 3, "test_constant"),
        Box::new(Constant {
            logits,
            zero: Tensor::zeros((1, 1), DType::F32, &device).expect("zero"),
        }),
        device,
        DType::F32,
    )
    .expect("classifier");
    (classifier, super::confidence::softmax_at(&row, 0))
}

/// A host image with uniform values in [0, 1).
pub fn random_image(seed: u64, shape: [usize; 3]) -> Vec<f32> {
    let mut v = vec![0f32; shape.iter().product()];
    fill_uniform(&mut rng::stream(seed, 66, 0, 0), 0.0, 1.0, &mut v);
    v
}

pub fn image_tensor(values: Vec<f32>, shape: [usize; 3]) -> Tensor {
    Tensor::from_vec(values, (shape[0], shape[1], shape[2]), &Device::Cpu).expect("tensor")
}

/// A classifier around a custom network built from the seeded linear layer.
pub fn with_network(
    shape: [usize; 3],
    classes: usize,
    build: impl FnOnce(Linear) -> Box<dyn Network>,
) -> Classifier {
    let dim: usize = shape.iter().product();
    let mut normals = Normals::new(rng::stream(0, 77, 0, 0));
    let mut w = vec![0f32; dim * classes];
    normals.fill(&mut w);
    w.iter_mut().for_each(|v| *v *= 0.3);
    let device = Device::Cpu;
    let w_t = Tensor::from_vec(w, (dim, classes), &device).expect("weights");
    let b = Tensor::zeros(classes, DType::F32, &device).expect("bias");
    Classifier::new(
        spec(shape, classes, "test_custom"),
        build(Linear { w_t, b }),
        device,
        DType::F32,
    )
    .expect("classifier")
}

/// The seeded linear classifier in f64 (candle's autograd path), for f64 gradient checks.
pub fn linear_classifier_f64(
    shape: [usize; 3],
    classes: usize,
    seed: u64,
    scale: f64,
) -> Classifier {
    let dim: usize = shape.iter().product();
    let mut normals = Normals::new(rng::stream(seed, 77, 0, 0));
    let mut w = vec![0f32; dim * classes];
    normals.fill(&mut w);
    let w: Vec<f64> = w.iter().map(|v| f64::from(*v) * scale).collect();
    let device = Device::Cpu;
    let w_t = Tensor::from_vec(w, (dim, classes), &device).expect("weights");
    let b = Tensor::zeros(classes, DType::F64, &device).expect("bias");
    Classifier::new(
        spec(shape, classes, "test_linear_f64"),
        Box::new(Linear { w_t, b }),
        device,
        DType::F64,
    )
    .expect("classifier")
}
