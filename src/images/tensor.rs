//! Converting between images and candle tensors.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use image::RgbImage;

use super::{ImageError, Preprocess, preprocess};

/// `img` as an f32 tensor of shape [3, H, W] with values `x / 255` in [0, 1].
///
/// This is torchvision's `ToTensor`; model-specific mean/std normalisation is left to the model,
/// which knows its own constants.
pub fn to_tensor(img: &RgbImage, device: &Device) -> candle_core::Result<Tensor> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = w * h;
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            data[c * plane + i] = f32::from(px[c]) / 255.0;
        }
    }
    Tensor::from_vec(data, (3, h, w), device)
}

/// The image in a tensor of shape [C, H, W] or [1, C, H, W] (C = 1 or 3) with values in [0, 1]: each value
/// becomes `round(v * 255)` clamped to 0..=255 (NaN becomes 0).
///
/// Rounding, not truncation, makes `from_tensor(&to_tensor(img)?)` return `img` exactly, since
/// `x / 255 * 255` can land just below the integer `x` in f32.
pub fn from_tensor(t: &Tensor) -> Result<RgbImage, ImageError> {
    let dims = t.dims();
    // A 1-channel (gray) image is shown as RGB with three equal channels.
    let (c, h, w) = match *dims {
        [c @ (1 | 3), h, w] | [1, c @ (1 | 3), h, w] => (c, h, w),
        _ => {
            return Err(ImageError::FromTensor {
                detail: format!(
                    "expected shape [C, H, W] or [1, C, H, W] with C = 1 or 3, got {dims:?}"
                ),
            });
        }
    };
    let candle_err = |e: candle_core::Error| ImageError::FromTensor {
        detail: e.to_string(),
    };
    let values = t
        .to_dtype(DType::F32)
        .and_then(|t| t.to_device(&Device::Cpu))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(candle_err)?;
    let too_big = || ImageError::FromTensor {
        detail: format!("image of {w}x{h} pixels is too large"),
    };
    let (w32, h32) = (
        u32::try_from(w).map_err(|_| too_big())?,
        u32::try_from(h).map_err(|_| too_big())?,
    );
    let plane = w * h;
    let mut raw = vec![0u8; 3 * plane];
    for (i, px) in raw.chunks_exact_mut(3).enumerate() {
        for ch in 0..3 {
            // `as u8` saturates and maps NaN to 0, after the explicit clamp documents the range.
            px[ch] = (values[ch.min(c - 1) * plane + i] * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
    RgbImage::from_raw(w32, h32, raw).ok_or_else(|| ImageError::FromTensor {
        detail: format!("buffer does not match {w}x{h} pixels"),
    })
}

/// Loads an image file and brings it to a model's input: [`load_rgb`], [`preprocess`], then
/// [`to_tensor`], giving f32 [3, H, W] in [0, 1] (an RGB model).
pub fn load_for_model(path: &Path, p: &Preprocess, device: &Device) -> Result<Tensor, ImageError> {
    load_for_channels(path, p, 3, device)
}

/// Loads an image file for a model with `channels` input channels (1 or 3): f32 [C, H, W].
///
/// A gray file for an RGB model is copied to three channels, as `convert("RGB")` does. A colour
/// file for a 1-channel model is refused with [`ImageError::Channels`]: there is no single
/// colour-to-gray conversion the model can be assumed to have been trained with.
pub fn load_for_channels(
    path: &Path,
    p: &Preprocess,
    channels: usize,
    device: &Device,
) -> Result<Tensor, ImageError> {
    let (img, color) = super::load::load_rgb_with_color(path)?;
    to_model_tensor(&img, color, p, channels, device).map_err(|e| match e {
        ModelInputError::Channels(found) => ImageError::Channels {
            path: path.to_path_buf(),
            found,
            expected: channels,
        },
        ModelInputError::Tensor(source) => ImageError::ToTensor {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Why an image cannot become a model input.
#[derive(Debug)]
pub enum ModelInputError {
    /// The image's channel count (3 for colour) cannot feed the model's.
    Channels(usize),
    Tensor(candle_core::Error),
}

/// Brings a decoded image (with whether it held colour) to a model's input: preprocess, then
/// [C, H, W] for `channels` of 1 or 3.
pub fn to_model_tensor(
    img: &RgbImage,
    color: bool,
    p: &Preprocess,
    channels: usize,
    device: &Device,
) -> Result<Tensor, ModelInputError> {
    match channels {
        3 => to_tensor(&preprocess(img, p), device).map_err(ModelInputError::Tensor),
        1 if !color => {
            // Gray was copied to three equal channels; resampling treats each alike, so the
            // first channel is the resized gray image.
            let rgb = to_tensor(&preprocess(img, p), device).map_err(ModelInputError::Tensor)?;
            rgb.narrow(0, 0, 1).map_err(ModelInputError::Tensor)
        }
        _ => Err(ModelInputError::Channels(if color { 3 } else { 1 })),
    }
}
