//! From a file on disk to a ready `Classifier`: read the checkpoint, detect the architecture,
//! read the optional sidecar, build the network and its spec.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use serde::Deserialize;

use super::checkpoint::{Checkpoint, read_checkpoint, sha256_file};
use super::cifar_resnet::{CifarResNet, CifarResNetConfig};
use super::classes::default_class_names;
use super::classifier::{Classifier, Network};
use super::efficientnet_lite::{EfficientNetLite, EfficientNetLiteConfig};
use super::error::{ModelError, Result};
use super::spec::{ModelSpec, Normalization, Provenance};
use super::torchvision_resnet::{ResNet, ResNetConfig};
use super::vit::{VisionTransformer, VitConfig};
use super::weights::Weights;
use crate::images::Preprocess;

/// The architecture families blindspot can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// CIFAR ResNet-(6n+2) with option-A shortcuts.
    CifarResnet,
    /// torchvision / timm ResNet v1.5 (BasicBlock or Bottleneck).
    Resnet,
    /// timm ViT / DeiT.
    Vit,
    /// EfficientNet-Lite0..4.
    EfficientnetLite,
}

impl Architecture {
    pub const ALL: [Architecture; 4] = [
        Self::CifarResnet,
        Self::Resnet,
        Self::Vit,
        Self::EfficientnetLite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CifarResnet => "cifar_resnet",
            Self::Resnet => "resnet",
            Self::Vit => "vit",
            Self::EfficientnetLite => "efficientnet_lite",
        }
    }
}

impl std::str::FromStr for Architecture {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|a| a.as_str()).collect();
                format!(
                    "unknown architecture `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Tells the architecture from tensor names alone.
pub fn detect_architecture(ckpt: &Checkpoint) -> Result<Architecture> {
    let has = |n: &str| ckpt.tensors.contains_key(n);
    if has("_conv_stem.weight") && has("_blocks.0._depthwise_conv.weight") {
        return Ok(Architecture::EfficientnetLite);
    }
    if has("patch_embed.proj.weight") && has("cls_token") && has("pos_embed") {
        return Ok(Architecture::Vit);
    }
    if has("conv1.weight") && has("layer1.0.conv1.weight") {
        if has("linear.weight") && !has("layer4.0.conv1.weight") {
            return Ok(Architecture::CifarResnet);
        }
        if has("fc.weight") {
            return Ok(Architecture::Resnet);
        }
    }
    let sample: Vec<_> = ckpt.tensors.keys().take(6).map(String::as_str).collect();
    Err(ModelError::UnknownArchitecture {
        path: ckpt.path.clone(),
        reason: format!(
            "no known layout matches its {} tensors (first: {}); pass --arch to choose one",
            ckpt.tensors.len(),
            sample.join(", ")
        ),
    })
}

/// Optional settings beside a checkpoint: `<weights>.json` (or `<weights stem>.json`), or a
/// `blindspot` JSON entry in safetensors metadata. Every field is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    pub architecture: Option<Architecture>,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
    pub input_size: Option<[usize; 2]>,
    pub class_names: Option<Vec<String>>,
    pub num_heads: Option<usize>,
    /// Free text shown in the UI (what the model is, how it was trained).
    pub description: Option<String>,
    /// How the model was trained (written by `train-demo`; informational).
    pub training: Option<serde_json::Value>,
}

impl Sidecar {
    /// The sidecar file paths looked for, in order.
    pub fn candidates(weights: &Path) -> Vec<PathBuf> {
        let mut with_ext = weights.as_os_str().to_owned();
        with_ext.push(".json");
        vec![PathBuf::from(with_ext), weights.with_extension("json")]
    }

    fn parse(text: &str, origin: &Path) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| ModelError::Sidecar {
            path: origin.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Reads the sidecar, returning it with a description of where it came from.
    pub fn find(ckpt: &Checkpoint) -> Result<Option<(Self, String)>> {
        for candidate in Self::candidates(&ckpt.path) {
            if candidate == ckpt.path || !candidate.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&candidate).map_err(|source| ModelError::Io {
                path: candidate.clone(),
                source,
            })?;
            let origin = format!("sidecar {}", candidate.display());
            return Ok(Some((Self::parse(&text, &candidate)?, origin)));
        }
        if let Some(text) = ckpt.metadata.get("blindspot") {
            return Ok(Some((
                Self::parse(text, &ckpt.path)?,
                "safetensors metadata".into(),
            )));
        }
        Ok(None)
    }
}

/// How to load a checkpoint. `Default` is CPU, f32, batch norm folded, everything detected.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub architecture: Option<Architecture>,
    pub device: Device,
    pub dtype: DType,
    /// Fold batch norm into the preceding conv (faster; off gives the benchmark baseline).
    pub fold_batch_norm: bool,
    /// Overrides the sidecar and the defaults.
    pub normalization: Option<Normalization>,
    pub input_size: Option<[usize; 2]>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            architecture: None,
            device: Device::Cpu,
            dtype: DType::F32,
            fold_batch_norm: true,
            normalization: None,
            input_size: None,
        }
    }
}

/// What an architecture constructor reports back for the spec.
struct Built {
    network: Box<dyn Network>,
    name: String,
    channels: usize,
    num_classes: usize,
    /// Input size fixed by the weights (ViT), or the family default and where it came from.
    input_size: ([usize; 2], &'static str),
    normalization: (Normalization, &'static str),
}

fn build(arch: Architecture, w: &Weights, sidecar: &Sidecar, fold: bool) -> Result<Built> {
    Ok(match arch {
        Architecture::CifarResnet => {
            let cfg = CifarResNetConfig::infer(w)?;
            Built {
                network: Box::new(CifarResNet::new(w, &cfg, fold)?),
                name: format!("cifar_resnet{}", cfg.depth()),
                channels: cfg.in_channels,
                num_classes: cfg.num_classes,
                input_size: ([32, 32], "CIFAR default"),
                normalization: (
                    Normalization::imagenet_channels(cfg.in_channels),
                    "ImageNet mean/std (the CIFAR ResNet trainer's)",
                ),
            }
        }
        Architecture::Resnet => {
            let cfg = ResNetConfig::infer(w)?;
            Built {
                network: Box::new(ResNet::new(w, &cfg, fold)?),
                name: cfg.name(w),
                channels: cfg.in_channels,
                num_classes: cfg.num_classes,
                input_size: ([224, 224], "ImageNet default"),
                normalization: (
                    Normalization::imagenet_channels(cfg.in_channels),
                    "ImageNet mean/std (torchvision)",
                ),
            }
        }
        Architecture::Vit => {
            let cfg = VitConfig::infer(w, sidecar.num_heads)?;
            Built {
                network: Box::new(VisionTransformer::new(w, &cfg)?),
                name: cfg.name(),
                channels: cfg.in_channels,
                num_classes: cfg.num_classes,
                input_size: (cfg.image_size(), "pos_embed grid x patch size"),
                normalization: (
                    Normalization::imagenet_channels(cfg.in_channels),
                    "ImageNet mean/std (timm DeiT)",
                ),
            }
        }
        Architecture::EfficientnetLite => {
            let cfg = EfficientNetLiteConfig::infer(w)?;
            Built {
                network: Box::new(EfficientNetLite::new(w, &cfg, fold)?),
                name: cfg.name(),
                channels: cfg.in_channels,
                num_classes: cfg.num_classes,
                input_size: ([224, 224], "EfficientNet-Lite0 default"),
                normalization: (
                    Normalization::uniform(127.0 / 255.0, 128.0 / 255.0, cfg.in_channels),
                    "TF-Lite mean 127 / std 128",
                ),
            }
        }
    })
}

/// Loads a classifier from any checkpoint file blindspot reads.
pub fn load_classifier(path: &Path, opts: &LoadOptions) -> Result<Classifier> {
    let ckpt = read_checkpoint(path)?;
    let sha256 = sha256_file(path)?;
    classifier_from_checkpoint(ckpt, sha256, opts)
}

/// Builds a classifier from tensors already in memory (a read file, or `zoo` weights).
pub fn classifier_from_checkpoint(
    ckpt: Checkpoint,
    weights_sha256: String,
    opts: &LoadOptions,
) -> Result<Classifier> {
    let path = ckpt.path.clone();
    let path = path.as_path();
    let sidecar = Sidecar::find(&ckpt)?;
    let (sidecar, sidecar_origin) = sidecar.unwrap_or_default();
    let (arch, arch_origin) = match (opts.architecture, sidecar.architecture) {
        (Some(a), _) => (a, "--arch".to_string()),
        (None, Some(a)) => (a, sidecar_origin.clone()),
        (None, None) => (
            detect_architecture(&ckpt)?,
            "detected from tensor names".to_string(),
        ),
    };
    let weights = Weights::new(&ckpt.path, &ckpt.tensors, opts.dtype, opts.device.clone());
    let built = build(arch, &weights, &sidecar, opts.fold_batch_norm)?;

    let sidecar_err = |reason: String| ModelError::Sidecar {
        path: ckpt.path.clone(),
        reason,
    };
    let (normalization, norm_origin) = match (&opts.normalization, &sidecar.mean, &sidecar.std) {
        (Some(n), _, _) => (n.clone(), "command line".to_string()),
        (None, Some(mean), Some(std)) => (
            Normalization {
                mean: mean.clone(),
                std: std.clone(),
            },
            sidecar_origin.clone(),
        ),
        (None, None, None) => (built.normalization.0, built.normalization.1.to_string()),
        _ => {
            return Err(sidecar_err(
                "`mean` and `std` must be given together".into(),
            ));
        }
    };
    let (input_size, size_origin) = match (opts.input_size, sidecar.input_size) {
        (Some(s), _) => (s, "command line".to_string()),
        (None, Some(s)) => (s, sidecar_origin.clone()),
        (None, None) => (built.input_size.0, built.input_size.1.to_string()),
    };
    if arch == Architecture::Vit && input_size != built.input_size.0 {
        return Err(sidecar_err(format!(
            "input size {input_size:?} does not match the ViT position embedding ({:?})",
            built.input_size.0
        )));
    }
    if input_size.contains(&0) {
        return Err(sidecar_err(format!(
            "input size {input_size:?} must be positive"
        )));
    }
    let (class_names, names_origin) = match sidecar.class_names {
        Some(names) if names.len() == built.num_classes => (names, sidecar_origin.clone()),
        Some(names) => {
            return Err(sidecar_err(format!(
                "{} class names for a model with {} outputs",
                names.len(),
                built.num_classes
            )));
        }
        None => {
            let (names, origin) = default_class_names(built.num_classes);
            (names, origin.to_string())
        }
    };
    let spec = ModelSpec {
        architecture: built.name,
        channels: built.channels,
        input_size,
        normalization,
        class_names,
        preprocess: Preprocess::for_input(input_size[0] as u32, input_size[1] as u32),
        provenance: Provenance {
            architecture: format!("{} ({arch_origin})", arch.as_str()),
            normalization: norm_origin,
            input_size: size_origin,
            class_names: names_origin,
        },
        weights_path: path.display().to_string(),
        weights_sha256,
    };
    Classifier::new(spec, built.network, opts.device.clone(), opts.dtype)
}
