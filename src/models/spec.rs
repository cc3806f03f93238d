//! What a user needs to know about a loaded model, and where each fact came from.

use serde::{Deserialize, Serialize};

use crate::images::Preprocess;

/// Per-channel input normalisation applied inside the classifier: (x - mean) / std.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
    pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

    pub fn imagenet() -> Self {
        Self {
            mean: Self::IMAGENET_MEAN.to_vec(),
            std: Self::IMAGENET_STD.to_vec(),
        }
    }

    /// ImageNet mean/std for `channels` input channels: the RGB values for 3, their average
    /// for a 1-channel (grayscale) input, as timm does for `in_chans=1`.
    pub fn imagenet_channels(channels: usize) -> Self {
        if channels == 3 {
            return Self::imagenet();
        }
        let avg = |v: [f32; 3]| v.iter().sum::<f32>() / 3.0;
        Self::uniform(avg(Self::IMAGENET_MEAN), avg(Self::IMAGENET_STD), channels)
    }

    /// Inputs are fed as they are (used by the architecture goldens).
    pub fn identity(channels: usize) -> Self {
        Self {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    pub fn uniform(mean: f32, std: f32, channels: usize) -> Self {
        Self {
            mean: vec![mean; channels],
            std: vec![std; channels],
        }
    }
}

/// Where a fact in the spec came from, so the UI and run records can say so.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub architecture: String,
    pub normalization: String,
    pub input_size: String,
    pub class_names: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Human-readable architecture, e.g. `cifar_resnet20` or `vit_p16_d192_l12_h3`.
    pub architecture: String,
    /// Input channels (1 or 3).
    pub channels: usize,
    /// Model input height and width.
    pub input_size: [usize; 2],
    pub normalization: Normalization,
    pub class_names: Vec<String>,
    /// How an image file is brought to the input size.
    pub preprocess: Preprocess,
    pub provenance: Provenance,
    /// Path of the weights file, as given.
    pub weights_path: String,
    /// Hex SHA-256 of the weights file (empty for models built in memory).
    pub weights_sha256: String,
}

impl ModelSpec {
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// A model's name in tables and comparisons: its weights file's stem, else its
    /// architecture.
    pub fn short_name(&self) -> String {
        short_name(&self.weights_path, &self.architecture)
    }

    pub fn class_name(&self, index: usize) -> &str {
        self.class_names
            .get(index)
            .map(String::as_str)
            .unwrap_or("?")
    }
}

/// The stem of `weights_path`, else `architecture`: how tables name a model.
pub fn short_name(weights_path: &str, architecture: &str) -> String {
    std::path::Path::new(weights_path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| architecture.to_string())
}
