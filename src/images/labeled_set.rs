//! A labelled image set as the evaluations read it: image files (an ImageFolder tree or a
//! folder with `labels.tsv`), or a safetensors file of u8 pixels already at the model's input
//! size (the shared CIFAR-10 and MNIST subsets). One type, so that `accuracy`, `reach` and the
//! app open the same inputs the same way.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::{ImageError, LabeledImage, Preprocess, TensorDataset, list_dataset, load_for_channels};

pub enum LabeledSet {
    Files {
        images: Vec<LabeledImage>,
        /// All class names in label order, when the layout defines them (ImageFolder).
        class_names: Option<Vec<String>>,
    },
    /// Pixels already at input size: [N, H, W, C] u8, and labels.
    Tensors(TensorDataset),
}

impl LabeledSet {
    /// A `.safetensors` file is read as a tensor data set; anything else is listed as an
    /// image folder.
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        if path.is_file() {
            Ok(Self::Tensors(TensorDataset::open(path)?))
        } else {
            let dataset = list_dataset(path)?;
            Ok(Self::Files {
                images: dataset.images,
                class_names: dataset.class_names,
            })
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Files { images, .. } => images.len(),
            Self::Tensors(data) => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn label(&self, i: usize) -> u32 {
        match self {
            // Parsed as u32 (labels.tsv) or a class folder's position, so this always fits;
            // u32::MAX is never a class of a model, so it could not pass `check_labels`.
            Self::Files { images, .. } => u32::try_from(images[i].label).unwrap_or(u32::MAX),
            Self::Tensors(data) => data.labels()[i],
        }
    }

    pub fn labels(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.label(i)).collect()
    }

    /// Refuses the first label that is not a class of a model with `num_classes` outputs,
    /// naming the file (and `labels.tsv` line, or tensor index) it came from.
    pub fn check_labels(&self, num_classes: usize) -> Result<(), ImageError> {
        match self {
            Self::Files { images, .. } => super::check_labels(images, num_classes),
            Self::Tensors(data) => match data
                .labels()
                .iter()
                .position(|&l| !usize::try_from(l).is_ok_and(|l| l < num_classes))
            {
                None => Ok(()),
                Some(i) => Err(ImageError::Dataset {
                    path: data.path().to_path_buf(),
                    detail: format!(
                        "`labels`[{i}] is {}, not a class of the model: it has {num_classes} \
                         classes (ids 0 to {})",
                        data.labels()[i],
                        num_classes.saturating_sub(1)
                    ),
                }),
            },
        }
    }

    /// The data set's own class names, where its layout defines them.
    pub fn class_names(&self) -> Option<&[String]> {
        match self {
            Self::Files { class_names, .. } => class_names.as_deref(),
            Self::Tensors(_) => None,
        }
    }

    /// Where image `i` comes from: its file, or `file.safetensors#i`.
    pub fn describe(&self, i: usize) -> String {
        match self {
            Self::Files { images, .. } => images[i].path.display().to_string(),
            Self::Tensors(data) => format!("{}#{i}", data.path().display()),
        }
    }

    /// The file a problem with image `i` is reported against.
    pub fn path_of(&self, i: usize) -> PathBuf {
        match self {
            Self::Files { images, .. } => images[i].path.clone(),
            Self::Tensors(data) => data.path().to_path_buf(),
        }
    }

    /// Image `i` as f32 [C, H, W] in [0, 1] for a model taking `channels` channels, brought to
    /// its input by `preprocess` (files) or checked to be at that size already (tensors).
    pub fn get(
        &self,
        i: usize,
        preprocess: &Preprocess,
        channels: usize,
        device: &Device,
    ) -> Result<Tensor, ImageError> {
        match self {
            Self::Files { images, .. } => {
                load_for_channels(&images[i].path, preprocess, channels, device)
            }
            Self::Tensors(data) => {
                let (h, w, c) = data.image_shape();
                let (want_h, want_w) = preprocess.output_size();
                if (h, w, c) != (want_h as usize, want_w as usize, channels) {
                    return Err(ImageError::Dataset {
                        path: data.path().to_path_buf(),
                        detail: format!(
                            "images are {h}x{w} with {c} channel(s); the model takes {want_h}x{want_w} with {channels}"
                        ),
                    });
                }
                let x = data.batch(i..i + 1, device)?;
                x.squeeze(0).map_err(|source| ImageError::ToTensor {
                    path: data.path().to_path_buf(),
                    source,
                })
            }
        }
    }
}
