//! A labelled data set stored as tensors: a safetensors file with `images` (U8
//! `[N, H, W, C]`, pixels already at the model's input size) and `labels` (any integer type,
//! `[N]`). This is how the shared CIFAR-10 and MNIST test subsets are kept, exact in u8 with
//! no PNG decoding in between.

use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::ImageError;

pub struct TensorDataset {
    path: PathBuf,
    /// U8 `[N, H, W, C]`.
    images: Tensor,
    labels: Vec<u32>,
}

impl TensorDataset {
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let bad = |detail: String| ImageError::Dataset {
            path: path.to_path_buf(),
            detail,
        };
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
        let (Some(images), Some(labels)) = (tensors.get("images"), tensors.get("labels")) else {
            return Err(bad("expected tensors `images` and `labels`".into()));
        };
        if images.dtype() != DType::U8 || images.rank() != 4 {
            return Err(bad(format!(
                "`images` is {:?} {:?}, expected U8 [N, H, W, C]",
                images.dtype(),
                images.dims()
            )));
        }
        let labels = labels
            .flatten_all()
            .and_then(|l| l.to_dtype(DType::I64))
            .and_then(|l| l.to_vec1::<i64>())
            .map_err(|e| bad(format!("`labels` is not an integer vector: {e}")))?;
        if images.dims()[0] != labels.len() {
            return Err(bad(format!(
                "`images` {:?} does not match {} labels",
                images.dims(),
                labels.len()
            )));
        }
        let labels = labels
            .into_iter()
            .map(|l| u32::try_from(l).map_err(|_| bad(format!("label {l} is not a class index"))))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            images: images.clone(),
            labels,
        })
    }

    /// The file the data set was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// (height, width, channels) of every image.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        let d = self.images.dims();
        (d[1], d[2], d[3])
    }

    /// Images `range` as f32 NCHW in [0, 1] (`x / 255`, as torchvision's `ToTensor`).
    pub fn batch(&self, range: Range<usize>, device: &Device) -> Result<Tensor, ImageError> {
        if range.start > range.end || range.end > self.len() {
            return Err(ImageError::Dataset {
                path: self.path.clone(),
                detail: format!("images {range:?} of {}", self.len()),
            });
        }
        let to_tensor = || -> candle_core::Result<Tensor> {
            let x = self
                .images
                .narrow(0, range.start, range.len())?
                .permute((0, 3, 1, 2))?
                .to_dtype(DType::F32)?;
            (x / 255.0)?.to_device(device)
        };
        to_tensor().map_err(|source| ImageError::ToTensor {
            path: self.path.clone(),
            source,
        })
    }
}
