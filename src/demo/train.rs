//! Trains the demo classifiers on the synthetic shapes, on CPU, deterministically from a seed.
//!
//! The training network has exactly the tensor names of `models::cifar_resnet` (akamaster
//! layout), so a trained model is saved as an ordinary safetensors checkpoint and loaded for
//! analysis through the same code path as any downloaded CIFAR ResNet. Training needs
//! batch-statistics BN and weight gradients, which the inference code deliberately does not
//! have, hence this separate, small network.
//!
//! Each epoch draws fresh images from the generator, so there is no fixed training set to
//! overfit. `--robust` trains on L2 PGD adversarial examples (Madry et al.).

use std::collections::HashMap;

use candle_core::{D, DType, Device, ModuleT, Tensor, Var};
use candle_nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear, Module, Optimizer, VarBuilder, VarMap,
};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256StarStar;
use serde::{Deserialize, Serialize};

use crate::analysis::frequency::FrequencyTransform;
use crate::analysis::pgd::{PgdConfig, pgd_l2};
use crate::models::Objective;

/// Fixed input normalisation of the demo models, stored in their checkpoint metadata.
pub const DEMO_MEAN: f32 = 0.5;
pub const DEMO_STD: f32 = 0.25;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub seed: u64,
    /// Images per epoch, drawn fresh from the generator every epoch.
    pub images_per_epoch: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Blocks per stage n of the CIFAR ResNet-(6n+2).
    pub blocks_per_stage: usize,
    pub widths: [usize; 3],
    pub image_size: u32,
    /// Adversarial training when set.
    pub pgd: Option<PgdConfig>,
    /// Start from these weights (a checkpoint of the same layout) instead of the seeded init.
    #[serde(default)]
    pub init: Option<std::path::PathBuf>,
    /// Train on transformed images (ALGORITHMS.md §4.3, e.g. flip): the network only ever sees
    /// T(x), so it is evaluated on T(x) too. Left out of the metadata when absent, so the
    /// standard and robust checkpoints stay byte-identical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_transform: Option<FrequencyTransform>,
}

impl TrainConfig {
    pub fn standard() -> Self {
        Self {
            seed: 1,
            images_per_epoch: 8_000,
            epochs: 5,
            batch_size: 64,
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            blocks_per_stage: 1,
            widths: [16, 32, 64],
            image_size: 32,
            pgd: None,
            init: None,
            input_transform: None,
        }
    }

    pub fn robust() -> Self {
        Self {
            pgd: Some(PgdConfig::default()),
            ..Self::standard()
        }
    }
}

/// Per-epoch log line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    /// Accuracy on the (adversarial, when robust) training batches of this epoch.
    pub train_accuracy: f64,
    pub seconds: f64,
}

const BN_EPS: f64 = 1e-5;

struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut_pad: Option<usize>,
}

/// The CIFAR ResNet in training form (candle-nn modules over a `VarMap`).
pub struct TrainNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    blocks: Vec<Block>,
    linear: Linear,
    mean: Tensor,
    inv_std: Tensor,
}

fn conv(vb: VarBuilder, cin: usize, cout: usize, stride: usize) -> candle_core::Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: 1,
        stride,
        ..Default::default()
    };
    candle_nn::conv2d_no_bias(cin, cout, 3, cfg, vb)
}

fn bn(vb: VarBuilder, c: usize) -> candle_core::Result<BatchNorm> {
    candle_nn::batch_norm(
        c,
        BatchNormConfig {
            eps: BN_EPS,
            ..Default::default()
        },
        vb,
    )
}

impl TrainNet {
    /// Builds the network, with every parameter initialised from `seed` (He-uniform convs,
    /// unit BN) so that training is reproducible: candle's own CPU RNG cannot be seeded.
    pub fn new(
        varmap: &VarMap,
        cfg: &TrainConfig,
        num_classes: usize,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let mut rng = Xoshiro256StarStar::seed_from_u64(cfg.seed ^ 0x5E_ED0F_DE30);
        let mut init = |shape: &[usize]| -> candle_core::Result<Tensor> {
            let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
            let bound = (6.0 / fan_in as f64).sqrt();
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n)
                .map(|_| {
                    (((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0) * bound
                })
                .map(|v| v as f32)
                .collect();
            Tensor::from_vec(data, shape, device)
        };
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        let add_bn = |name: &str,
                      c: usize,
                      tensors: &mut Vec<(String, Tensor)>|
         -> candle_core::Result<()> {
            tensors.push((
                format!("{name}.weight"),
                Tensor::ones(c, DType::F32, device)?,
            ));
            tensors.push((
                format!("{name}.bias"),
                Tensor::zeros(c, DType::F32, device)?,
            ));
            tensors.push((
                format!("{name}.running_mean"),
                Tensor::zeros(c, DType::F32, device)?,
            ));
            tensors.push((
                format!("{name}.running_var"),
                Tensor::ones(c, DType::F32, device)?,
            ));
            Ok(())
        };
        let [w0, _, _] = cfg.widths;
        tensors.push(("conv1.weight".into(), init(&[w0, 3, 3, 3])?));
        add_bn("bn1", w0, &mut tensors)?;
        let mut in_c = w0;
        for (s, &out_c) in cfg.widths.iter().enumerate() {
            for i in 0..cfg.blocks_per_stage {
                let name = format!("layer{}.{i}", s + 1);
                tensors.push((format!("{name}.conv1.weight"), init(&[out_c, in_c, 3, 3])?));
                add_bn(&format!("{name}.bn1"), out_c, &mut tensors)?;
                tensors.push((format!("{name}.conv2.weight"), init(&[out_c, out_c, 3, 3])?));
                add_bn(&format!("{name}.bn2"), out_c, &mut tensors)?;
                in_c = out_c;
            }
        }
        tensors.push(("linear.weight".into(), init(&[num_classes, in_c])?));
        tensors.push((
            "linear.bias".into(),
            Tensor::zeros(num_classes, DType::F32, device)?,
        ));
        if let Some(path) = &cfg.init {
            load_init(path, &mut tensors, device)?;
        }
        {
            let mut data = varmap
                .data()
                .lock()
                .map_err(|_| candle_core::Error::Msg("var map lock poisoned".into()))?;
            for (name, t) in tensors {
                data.insert(name, Var::from_tensor(&t)?);
            }
        }
        let vb = VarBuilder::from_varmap(varmap, DType::F32, device);
        let conv1 = conv(vb.pp("conv1"), 3, w0, 1)?;
        let bn1 = bn(vb.pp("bn1"), w0)?;
        let mut blocks = Vec::new();
        let mut in_c = w0;
        for (s, &out_c) in cfg.widths.iter().enumerate() {
            for i in 0..cfg.blocks_per_stage {
                let stride = if s > 0 && i == 0 { 2 } else { 1 };
                let vb = vb.pp(format!("layer{}.{i}", s + 1));
                blocks.push(Block {
                    conv1: conv(vb.pp("conv1"), in_c, out_c, stride)?,
                    bn1: bn(vb.pp("bn1"), out_c)?,
                    conv2: conv(vb.pp("conv2"), out_c, out_c, 1)?,
                    bn2: bn(vb.pp("bn2"), out_c)?,
                    shortcut_pad: (stride != 1 || in_c != out_c).then_some(out_c / 4),
                });
                in_c = out_c;
            }
        }
        let linear = candle_nn::linear(in_c, num_classes, vb.pp("linear"))?;
        let mean = Tensor::new(&[DEMO_MEAN], device)?.reshape((1, 1, 1, 1))?;
        let inv_std = Tensor::new(&[1.0 / DEMO_STD], device)?.reshape((1, 1, 1, 1))?;
        Ok(Self {
            conv1,
            bn1,
            blocks,
            linear,
            mean,
            inv_std,
        })
    }

    /// Logits for pixel-space input; `train` selects batch statistics in BN.
    pub fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let x = x.broadcast_sub(&self.mean)?.broadcast_mul(&self.inv_std)?;
        let mut x = self
            .bn1
            .forward_t(&self.conv1.forward(&x)?, train)?
            .relu()?;
        for b in &self.blocks {
            let y = b.bn1.forward_t(&b.conv1.forward(&x)?, train)?.relu()?;
            let y = b.bn2.forward_t(&b.conv2.forward(&y)?, train)?;
            let shortcut = match b.shortcut_pad {
                None => x.clone(),
                Some(pad) => crate::models::layers::option_a_shortcut(&x, pad)?,
            };
            x = (y + shortcut)?.relu()?;
        }
        self.linear.forward(&x.mean(D::Minus1)?.mean(D::Minus1)?)
    }
}

/// Replaces every freshly initialised tensor by the one of the same name in the checkpoint at
/// `path` (the standard demo model, say), so that `--init` fine-tunes instead of starting over.
/// The layouts must match exactly: a missing tensor or another shape is an error naming both.
fn load_init(
    path: &std::path::Path,
    tensors: &mut [(String, Tensor)],
    device: &Device,
) -> candle_core::Result<()> {
    let ckpt = crate::models::checkpoint::read_checkpoint(path)
        .map_err(|e| candle_core::Error::Msg(format!("--init: {e}")))?;
    for (name, tensor) in tensors.iter_mut() {
        let Some(stored) = ckpt.tensors.get(name.as_str()) else {
            return Err(candle_core::Error::Msg(format!(
                "--init {}: missing tensor `{name}` (expected shape {:?}); the checkpoint must have the layout being trained",
                path.display(),
                tensor.dims()
            )));
        };
        if stored.dims() != tensor.dims() {
            return Err(candle_core::Error::Msg(format!(
                "--init {}: tensor `{name}` has shape {:?}, the network being trained has {:?}",
                path.display(),
                stored.dims(),
                tensor.dims()
            )));
        }
        *tensor = stored.to_dtype(DType::F32)?.to_device(device)?;
    }
    Ok(())
}

/// Names and tensors to save: every parameter and running statistic, in checkpoint layout.
pub fn state_dict(varmap: &VarMap) -> candle_core::Result<HashMap<String, Tensor>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("var map lock poisoned".into()))?;
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect())
}

/// A trained network with its parameters and per-epoch log.
pub struct Trained {
    pub varmap: VarMap,
    pub net: TrainNet,
    pub epochs: Vec<EpochStats>,
}

/// Trains from scratch. `batch(epoch, index, size)` supplies pixel-space images [B, 3, H, W]
/// and labels; `on_epoch` sees each epoch's statistics as it ends and may stop training by
/// returning false.
pub fn train(
    cfg: &TrainConfig,
    num_classes: usize,
    device: &Device,
    mut batch: impl FnMut(usize, usize, usize) -> candle_core::Result<(Tensor, Vec<u32>)>,
    mut on_epoch: impl FnMut(&EpochStats) -> bool,
) -> candle_core::Result<Trained> {
    let varmap = VarMap::new();
    let net = TrainNet::new(&varmap, cfg, num_classes, device)?;
    let trainable: Vec<Var> = {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("var map lock poisoned".into()))?;
        let mut named: Vec<(&String, &Var)> = data
            .iter()
            .filter(|(k, _)| !k.contains("running_"))
            .collect();
        // A fixed order keeps the optimiser state, and so training, reproducible.
        named.sort_by(|a, b| a.0.cmp(b.0));
        named.into_iter().map(|(_, v)| v.clone()).collect()
    };
    let params = candle_nn::ParamsAdamW {
        lr: cfg.learning_rate,
        weight_decay: cfg.weight_decay,
        ..Default::default()
    };
    let mut opt = candle_nn::AdamW::new(trainable, params)?;
    let batches_per_epoch = cfg.images_per_epoch.div_ceil(cfg.batch_size.max(1));
    let total_steps = (batches_per_epoch * cfg.epochs).max(1);
    let mut step = 0usize;
    let mut epochs = Vec::with_capacity(cfg.epochs);
    for epoch in 0..cfg.epochs {
        let started = std::time::Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for b in 0..batches_per_epoch {
            let size = cfg
                .batch_size
                .min(cfg.images_per_epoch - b * cfg.batch_size);
            let (x, labels) = batch(epoch, b, size)?;
            let objective = Objective::CrossEntropy(labels.clone());
            let x = match &cfg.pgd {
                Some(pgd) => pgd_l2(&x, pgd, |adv| {
                    let var = Var::from_tensor(adv)?;
                    let loss = objective.evaluate(&net.forward(var.as_tensor(), false)?)?;
                    let grads = loss.backward()?;
                    grads
                        .get(var.as_tensor())
                        .cloned()
                        .ok_or_else(|| candle_core::Error::Msg("PGD: no input gradient".into()))
                })?,
                None => x,
            };
            // Cosine decay of the learning rate over all steps.
            let progress = step as f64 / total_steps as f64;
            opt.set_learning_rate(
                cfg.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            );
            let logits = net.forward(&x, true)?;
            let loss = (objective.evaluate(&logits)? / size as f64)?;
            opt.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()? as f64 * size as f64;
            let predicted = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
            correct += predicted
                .iter()
                .zip(&labels)
                .filter(|(p, y)| p == y)
                .count();
            seen += size;
            step += 1;
        }
        let stats = EpochStats {
            epoch: epoch + 1,
            loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            seconds: started.elapsed().as_secs_f64(),
        };
        let go_on = on_epoch(&stats);
        epochs.push(stats);
        if !go_on {
            break;
        }
    }
    Ok(Trained {
        varmap,
        net,
        epochs,
    })
}

/// Held-out images come from this generator seed, never used for training.
pub const HELD_OUT_SEED: u64 = 0x04E1_D0C7;

/// A batch of generated shapes: images `first..first + size` of generator `seed`.
pub fn shapes_batch(
    seed: u64,
    first: u64,
    size: usize,
    image_size: u32,
    device: &Device,
) -> candle_core::Result<(Tensor, Vec<u32>)> {
    let mut xs = Vec::with_capacity(size);
    let mut labels = Vec::with_capacity(size);
    for i in 0..size as u64 {
        let (img, label) = super::generator::generate(seed, first + i, image_size);
        xs.push(crate::images::to_tensor(&img, device)?);
        labels.push(label as u32);
    }
    Ok((Tensor::stack(&xs, 0)?, labels))
}

/// `x` [B, C, N, N] through `transform`, if any (as candle errors, for the training loop).
fn transformed(x: Tensor, transform: Option<FrequencyTransform>) -> candle_core::Result<Tensor> {
    match transform {
        None => Ok(x),
        Some(t) => t
            .apply_once(&x)
            .map_err(|e| candle_core::Error::Msg(format!("input transform {t}: {e}"))),
    }
}

/// Trains on fresh generated shapes every epoch (epoch e uses images e·N .. (e+1)·N).
pub fn train_on_shapes(
    cfg: &TrainConfig,
    device: &Device,
    on_epoch: impl FnMut(&EpochStats) -> bool,
) -> candle_core::Result<Trained> {
    let n = cfg.images_per_epoch as u64;
    let bs = cfg.batch_size as u64;
    train(
        cfg,
        super::generator::CLASSES.len(),
        device,
        |epoch, b, size| {
            let (x, labels) = shapes_batch(
                cfg.seed,
                epoch as u64 * n + b as u64 * bs,
                size,
                cfg.image_size,
                device,
            )?;
            Ok((transformed(x, cfg.input_transform)?, labels))
        },
        on_epoch,
    )
}

/// Clean and (optionally) PGD-robust top-1 accuracy of a loaded classifier on `count` held-out
/// generated images, seen through `transform` when the model was trained on transformed ones
/// (the attack then works on the transformed images, the model's own input).
pub fn held_out_accuracy(
    model: &crate::models::Classifier,
    count: usize,
    pgd: Option<&PgdConfig>,
    transform: Option<FrequencyTransform>,
) -> crate::models::Result<(f64, Option<f64>)> {
    let size = model.spec().input_size[0] as u32;
    let (mut clean, mut robust) = (0usize, 0usize);
    let mut start = 0;
    while start < count {
        let n = 100.min(count - start);
        let (x, labels) = shapes_batch(HELD_OUT_SEED, start as u64, n, size, model.device())?;
        let x = transformed(x, transform)?;
        let count_hits = |x: &Tensor| -> crate::models::Result<usize> {
            let pred = model.forward(x)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
            Ok(pred.iter().zip(&labels).filter(|(p, y)| p == y).count())
        };
        clean += count_hits(&x)?;
        if let Some(cfg) = pgd {
            let objective = Objective::CrossEntropy(labels.clone());
            let adv = pgd_l2(&x, cfg, |a| {
                model
                    .input_gradient(a, &objective)
                    .map(|(_, g)| g)
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))
            })?;
            robust += count_hits(&adv)?;
        }
        start += n;
    }
    let frac = |k: usize| k as f64 / count.max(1) as f64;
    Ok((frac(clean), pgd.map(|_| frac(robust))))
}

/// The safetensors metadata of a demo checkpoint: ONE `blindspot` entry (settings for the
/// loader plus the training config). One key on purpose: `safetensors::serialize` takes a
/// `HashMap`, so several keys would be written in a random order and the file would not be
/// byte-reproducible.
pub fn checkpoint_metadata(
    cfg: &TrainConfig,
    description: &str,
) -> serde_json::Result<HashMap<String, String>> {
    let sidecar = serde_json::json!({
        "architecture": "cifar_resnet",
        "mean": vec![DEMO_MEAN; 3],
        "std": vec![DEMO_STD; 3],
        "input_size": [cfg.image_size, cfg.image_size],
        "class_names": super::generator::CLASSES,
        "description": description,
        "training": serde_json::to_value(cfg)?,
    });
    Ok([("blindspot".to_string(), sidecar.to_string())].into())
}

/// Writes tensors and metadata as safetensors through a temporary file and a rename.
pub fn write_safetensors(
    tensors: &HashMap<String, Tensor>,
    metadata: HashMap<String, String>,
    path: &std::path::Path,
) -> std::io::Result<()> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let views: Vec<(&String, &Tensor)> = names.into_iter().map(|k| (k, &tensors[k])).collect();
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(std::io::Error::other)?;
    crate::atomic::write(path, &bytes)
}

/// Saves the trained model as safetensors with its settings in the metadata (`blindspot`
/// entry: architecture, normalisation, input size, class names, description), atomically.
pub fn save_checkpoint(
    trained: &Trained,
    cfg: &TrainConfig,
    description: &str,
    path: &std::path::Path,
) -> std::io::Result<()> {
    let tensors = state_dict(&trained.varmap).map_err(std::io::Error::other)?;
    let metadata = checkpoint_metadata(cfg, description).map_err(std::io::Error::other)?;
    write_safetensors(&tensors, metadata, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_transform_is_recorded_only_when_set() {
        // Absent: the metadata of the standard and robust checkpoints stays as it was, so they
        // regenerate byte for byte.
        let standard = checkpoint_metadata(&TrainConfig::standard(), "d").expect("metadata");
        assert!(!standard["blindspot"].contains("input_transform"));
        let flipped = TrainConfig {
            input_transform: Some(FrequencyTransform::Flip),
            ..TrainConfig::standard()
        };
        let meta = checkpoint_metadata(&flipped, "d").expect("metadata");
        assert!(
            meta["blindspot"].contains(r#""input_transform":"flip""#),
            "{meta:?}"
        );
        let sidecar: serde_json::Value = serde_json::from_str(&meta["blindspot"]).expect("json");
        let back: TrainConfig =
            serde_json::from_value(sidecar["training"].clone()).expect("training config");
        assert_eq!(back, flipped);
    }

    #[test]
    fn training_batches_go_through_the_transform() {
        let x = Tensor::rand(0f32, 1f32, (2, 3, 8, 8), &Device::Cpu).expect("x");
        let same = transformed(x.clone(), None).expect("none");
        assert_eq!(
            same.flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .expect("v"),
            x.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("v")
        );
        let flipped = transformed(x.clone(), Some(FrequencyTransform::Flip)).expect("flip");
        let twice = transformed(flipped.clone(), Some(FrequencyTransform::Flip)).expect("flip");
        let diff = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b)
                .and_then(|d| d.abs())
                .and_then(|d| d.max_all())
                .and_then(|d| d.to_scalar::<f32>())
                .expect("diff")
        };
        assert!(diff(&flipped, &x) > 0.1, "flip changes the image");
        assert!(diff(&twice, &x) < 1e-5, "and is its own inverse");
    }
}
