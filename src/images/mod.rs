//! Loading images and bringing them to a model's input.
//!
//! This module is a leaf: it depends on nothing else of ours (but the leaf `atomic` writer), so
//! that models, analyses and the CLI can all use it without cycles.
//!
//! The reference for every pixel operation here is what a PyTorch user gets from
//! `PIL.Image.open(f).convert("RGB")` followed by torchvision transforms, because the models we
//! analyse were trained and evaluated that way. Resampling is a port of Pillow's antialiased
//! bilinear filter (in `resample.rs`) rather than `image::imageops::resize`, whose triangle filter
//! rounds differently from Pillow.

mod dataset;
mod jpeg;
mod labeled_set;
mod load;
mod resample;
mod tensor;
mod tensor_dataset;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use dataset::{Dataset, LabeledImage, check_labels, list_dataset};
pub use labeled_set::LabeledSet;
pub use load::{
    MAX_IMAGE_SIDE, decode_rgb_with_color, load_rgb, load_rgb_with_color, save_png_atomic,
};
pub use resample::{preprocess, resize_bilinear};
pub use tensor::{
    ModelInputError, from_tensor, load_for_channels, load_for_model, to_model_tensor, to_tensor,
};
pub use tensor_dataset::TensorDataset;

/// How an image file is brought to the model's input size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preprocess {
    /// Resize to exactly `height` x `width` (small models: CIFAR, demo).
    Resize { height: u32, width: u32 },
    /// torchvision `Resize(resize)` on the shorter side, then `CenterCrop(height, width)`.
    ResizeShorterCenterCrop {
        resize: u32,
        height: u32,
        width: u32,
    },
}

impl Preprocess {
    /// Side length below which [`Preprocess::for_input`] resizes directly instead of using the
    /// ImageNet resize-then-crop convention: small models (CIFAR at 32x32, demos at 64x64) are
    /// trained on whole images, and cropping 12.5 % away would cut off content they expect.
    pub const CROP_MIN_SIDE: u32 = 128;

    /// The usual preprocessing for a model whose input is `height` x `width`.
    ///
    /// From [`Self::CROP_MIN_SIDE`] up this is the ImageNet evaluation convention: shorter side to
    /// `round(min(h, w) / 0.875)` (256 for 224), then a centre crop. Below that, a plain resize.
    pub fn for_input(height: u32, width: u32) -> Preprocess {
        let short = height.min(width);
        if short >= Self::CROP_MIN_SIDE {
            // 0.875 = 224 / 256, the crop fraction of the torchvision reference scripts.
            let resize = (f64::from(short) / 0.875).round() as u32;
            Preprocess::ResizeShorterCenterCrop {
                resize,
                height,
                width,
            }
        } else {
            Preprocess::Resize { height, width }
        }
    }

    /// Height and width of the images this preprocessing produces.
    pub fn output_size(&self) -> (u32, u32) {
        match *self {
            Preprocess::Resize { height, width }
            | Preprocess::ResizeShorterCenterCrop { height, width, .. } => (height, width),
        }
    }
}

/// Everything that can go wrong in this module. Each variant that concerns a file names it, so
/// that a message in a long batch run says which file to look at.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}: cannot read image file: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: is a directory, not an image file", .path.display())]
    IsDirectory { path: PathBuf },
    #[error("{}: file is empty (0 bytes), not an image", .path.display())]
    EmptyFile { path: PathBuf },
    #[error(
        "{}: not a PNG, JPEG or WebP image (its first bytes match no known image format)",
        .path.display()
    )]
    NotAnImage { path: PathBuf },
    #[error(
        "{}: unsupported image format or feature (this build reads PNG, JPEG and WebP): {detail}",
        .path.display()
    )]
    Unsupported { path: PathBuf, detail: String },
    #[error(
        "{}: a {} image, but the model takes {expected}-channel input{}",
        .path.display(),
        if *.found == 1 { "gray" } else { "colour" },
        if *.expected == 1 { " (grayscale): convert it to grayscale first" } else { "" }
    )]
    Channels {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
    #[error("{}: corrupt or truncated image data: {detail}", .path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{}: image too large to load (limit {max_side} pixels per side and {max_bytes} bytes decoded): {detail}",
        .path.display()
    )]
    TooLarge {
        path: PathBuf,
        max_side: u32,
        max_bytes: u64,
        detail: String,
    },
    #[error("{}: cannot write image: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot encode PNG: {detail}", .path.display())]
    Encode { path: PathBuf, detail: String },
    #[error("{}: cannot convert image to a tensor: {source}", .path.display())]
    ToTensor {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("cannot convert tensor to an image: {detail}")]
    FromTensor { detail: String },
    #[error("{}: cannot list dataset directory: {source}", .path.display())]
    ListDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: line {line}: {detail}", .path.display())]
    LabelsTsv {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("{}: {detail}", .path.display())]
    Dataset { path: PathBuf, detail: String },
}
