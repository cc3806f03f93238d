//! From a file on disk to a ready `Classifier`: read the checkpoint, detect the architecture,
//! read the optional sidecar, build the network and its spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::checkpoint::{Checkpoint, read_checkpoint, sha256_file};
use super::cifar_resnet::{CifarResNet, CifarResNetConfig};
use super::classes::default_class_names;
use super::classifier::{Classifier, Network};
use super::efficientnet_lite::{EfficientNetLite, EfficientNetLiteConfig};
use super::error::{ModelError, Result};
use super::plain_cnn::{PlainCnn, PlainCnnConfig};
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
    /// Conv/ReLU/max-pool blocks, flatten, linear layers (`plain_cnn`).
    PlainCnn,
}

impl Architecture {
    pub const ALL: [Architecture; 5] = [
        Self::CifarResnet,
        Self::Resnet,
        Self::Vit,
        Self::EfficientnetLite,
        Self::PlainCnn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CifarResnet => "cifar_resnet",
            Self::Resnet => "resnet",
            Self::Vit => "vit",
            Self::EfficientnetLite => "efficientnet_lite",
            Self::PlainCnn => "plain_cnn",
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
    // Last: it accepts any conv-then-linear stack, so the named families must win first.
    if PlainCnnConfig::from_shapes(ckpt.tensors.iter().map(|(k, t)| (k.as_str(), t.dims()))).is_ok()
    {
        return Ok(Architecture::PlainCnn);
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
/// `blindspot` JSON entry in safetensors metadata, or a file named by
/// [`LoadOptions::sidecar`] (`--sidecar`). Every field is optional.
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
    /// Tensor renames applied before the architecture is detected, for checkpoints saved
    /// with other layer names: `{"conv_1": "conv1", "stage_1": "layer1", "fc": "linear"}`.
    /// See [`rename_tensors`] for the rule.
    pub rename: Option<BTreeMap<String, String>>,
}

impl Sidecar {
    /// The sidecar file paths looked for, in order.
    pub fn candidates(weights: &Path) -> Vec<PathBuf> {
        let mut with_ext = weights.as_os_str().to_owned();
        with_ext.push(".json");
        vec![PathBuf::from(with_ext), weights.with_extension("json")]
    }

    /// Reads a sidecar file named explicitly (`--sidecar`), wherever it lies.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses sidecar JSON; `origin` names its file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| ModelError::Sidecar {
            path: origin.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Reads the sidecar beside the checkpoint (or in its metadata), returning it with a
    /// description of where it came from and the file it came from (the checkpoint itself for
    /// safetensors metadata), for errors.
    pub fn find(ckpt: &Checkpoint) -> Result<Option<(Self, String, PathBuf)>> {
        for candidate in Self::candidates(&ckpt.path) {
            if candidate == ckpt.path || !candidate.is_file() {
                continue;
            }
            let origin = format!("sidecar {}", candidate.display());
            return Ok(Some((Self::read(&candidate)?, origin, candidate)));
        }
        if let Some(text) = ckpt.metadata.get("blindspot") {
            return Ok(Some((
                Self::parse(text, &ckpt.path)?,
                "safetensors metadata".into(),
                ckpt.path.clone(),
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
    /// A sidecar file to use instead of looking beside the checkpoint (for checkpoints in
    /// read-only places, or one sidecar for several files).
    pub sidecar: Option<PathBuf>,
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
            sidecar: None,
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
    /// Whether the weights allow no other input size (a position embedding, a flatten).
    fixed_size: bool,
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
                fixed_size: false,
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
                fixed_size: false,
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
                fixed_size: true,
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
                fixed_size: false,
                normalization: (
                    Normalization::uniform(127.0 / 255.0, 128.0 / 255.0, cfg.in_channels),
                    "TF-Lite mean 127 / std 128",
                ),
            }
        }
        Architecture::PlainCnn => {
            let cfg = PlainCnnConfig::infer(w)?;
            let side = cfg.input_side();
            Built {
                network: Box::new(PlainCnn::new(w, &cfg)?),
                name: cfg.name(),
                channels: cfg.in_channels(),
                num_classes: cfg.num_classes(),
                input_size: (
                    [side, side],
                    "first linear layer's inputs, the side doubled per pooling block",
                ),
                fixed_size: true,
                normalization: (
                    Normalization::identity(cfg.in_channels()),
                    "none: pixels in [0, 1] (the usual plain-CNN training)",
                ),
            }
        }
    })
}

/// Applies a sidecar's `rename` rules to tensor names. A rule `"a.b": "c"` matches a run of
/// whole dot-separated components, anywhere in a name: `stage_1` renames
/// `stage_1.0.conv_1.weight` but not `stage_10.…` or `my_stage_1.…`. At each component the
/// longest matching rule wins and its output is not matched again, so rules never chain. An
/// empty target drops the components (`"module": ""` strips a wrapper prefix).
///
/// Refused, naming `sidecar`: a rule with an empty component, a rule that matches no tensor
/// (a typo would otherwise pass silently), a name that renames to nothing, and two tensors
/// that rename to the same name.
pub fn rename_tensors(
    tensors: BTreeMap<String, Tensor>,
    rules: &BTreeMap<String, String>,
    sidecar: &Path,
) -> Result<BTreeMap<String, Tensor>> {
    let err = |reason: String| ModelError::Sidecar {
        path: sidecar.to_path_buf(),
        reason,
    };
    let mut parsed: Vec<(Vec<&str>, &str, &str)> = Vec::with_capacity(rules.len());
    for (from, to) in rules {
        let comps: Vec<&str> = from.split('.').collect();
        if comps.iter().any(|c| c.is_empty())
            || (!to.is_empty() && to.split('.').any(str::is_empty))
        {
            return Err(err(format!(
                "rename `{from}` -> `{to}`: names are dot-separated components, none empty"
            )));
        }
        parsed.push((comps, to.as_str(), from.as_str()));
    }
    parsed.sort_by_key(|(comps, _, _)| std::cmp::Reverse(comps.len()));
    let mut used = vec![false; parsed.len()];
    let mut out = BTreeMap::new();
    for (name, tensor) in tensors {
        let comps: Vec<&str> = name.split('.').collect();
        let mut renamed: Vec<&str> = Vec::with_capacity(comps.len());
        let mut i = 0;
        while i < comps.len() {
            match parsed
                .iter()
                .position(|(from, _, _)| comps[i..].starts_with(from))
            {
                Some(r) => {
                    used[r] = true;
                    if !parsed[r].1.is_empty() {
                        renamed.push(parsed[r].1);
                    }
                    i += parsed[r].0.len();
                }
                None => {
                    renamed.push(comps[i]);
                    i += 1;
                }
            }
        }
        let new_name = renamed.join(".");
        if new_name.is_empty() {
            return Err(err(format!("rename leaves tensor `{name}` without a name")));
        }
        if out.contains_key(&new_name) {
            return Err(err(format!(
                "rename gives two tensors the name `{new_name}` (one of them `{name}`)"
            )));
        }
        out.insert(new_name, tensor);
    }
    if let Some(r) = used.iter().position(|u| !u) {
        return Err(err(format!(
            "rename `{}` matches no tensor name",
            parsed[r].2
        )));
    }
    Ok(out)
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
    let mut ckpt = ckpt;
    let mut converted = ckpt.converted_dtypes();
    converted.remove(&format!("{:?}", opts.dtype));
    if !converted.is_empty() {
        let what: Vec<String> = converted
            .iter()
            .map(|(dtype, n)| format!("{n} {dtype} tensor{}", if *n == 1 { "" } else { "s" }))
            .collect();
        // Said once per load, where the user sees it; the model is still built.
        eprintln!(
            "note: {}: {} converted to {:?}, the dtype the model computes in",
            ckpt.path.display(),
            what.join(" and "),
            opts.dtype
        );
    }
    let path = ckpt.path.clone();
    let path = path.as_path();
    let (sidecar, sidecar_origin, sidecar_path) = match &opts.sidecar {
        Some(file) => (
            Sidecar::read(file)?,
            format!("sidecar {}", file.display()),
            file.clone(),
        ),
        None => Sidecar::find(&ckpt)?
            .unwrap_or_else(|| (Sidecar::default(), String::new(), ckpt.path.clone())),
    };
    if let Some(rules) = &sidecar.rename {
        let tensors = std::mem::take(&mut ckpt.tensors);
        ckpt.tensors = rename_tensors(tensors, rules, &sidecar_path)?;
    }
    let detect_and_build = || -> Result<(Architecture, String, Built)> {
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
        Ok((arch, arch_origin, built))
    };
    let (arch, arch_origin, built) = match detect_and_build() {
        // Renamed names that make no model are the sidecar's doing: say so, and name it.
        Err(e) if sidecar.rename.is_some() => {
            return Err(ModelError::Sidecar {
                path: sidecar_path,
                reason: format!("after its `rename`, the tensors make no model: {e}"),
            });
        }
        other => other?,
    };

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
    if built.fixed_size && input_size != built.input_size.0 {
        let what = match arch {
            Architecture::Vit => "the ViT position embedding",
            _ => "the weights (the flatten before the linear layers)",
        };
        return Err(sidecar_err(format!(
            "input size {input_size:?} does not match {what} ({:?})",
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
            let (names, origin) = default_class_names(built.num_classes, built.channels);
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
