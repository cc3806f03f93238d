//! Typed access to a checkpoint's tensors for the architecture constructors. Every lookup
//! checks the name and shape and fails with an error that names the file and the tensor.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::error::{ModelError, Result};
use super::layers::{BatchNorm, Conv2d, ConvBn, LayerNorm, Linear, Padding};

pub struct Weights<'a> {
    path: &'a Path,
    tensors: &'a BTreeMap<String, Tensor>,
    dtype: DType,
    device: Device,
}

impl<'a> Weights<'a> {
    pub fn new(
        path: &'a Path,
        tensors: &'a BTreeMap<String, Tensor>,
        dtype: DType,
        device: Device,
    ) -> Self {
        Self {
            path,
            tensors,
            dtype,
            device,
        }
    }

    pub fn path(&self) -> &Path {
        self.path
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Every tensor's name and shape, in name order (for layouts told from the names).
    pub fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.tensors.iter().map(|(k, t)| (k.as_str(), t.dims()))
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.dims())
    }

    /// The shape of a tensor that must exist; `what` describes the expected shape.
    pub fn require_shape(&self, name: &str, rank: usize) -> Result<&[usize]> {
        match self.tensors.get(name) {
            None => Err(ModelError::MissingTensor {
                path: self.path.to_path_buf(),
                name: name.to_string(),
                expected: vec![0; rank],
            }),
            Some(t) if t.rank() != rank => Err(ModelError::Layout {
                path: self.path.to_path_buf(),
                reason: format!(
                    "tensor `{name}` has shape {:?}, expected rank {rank}",
                    t.dims()
                ),
            }),
            Some(t) => Ok(t.dims()),
        }
    }

    /// How many consecutive `prefix.{i}.` groups exist, starting at 0.
    pub fn count_indexed(&self, prefix: &str) -> usize {
        let mut n = 0;
        loop {
            let head = format!("{prefix}.{n}.");
            if self
                .tensors
                .range(head.clone()..)
                .next()
                .is_none_or(|(k, _)| !k.starts_with(&head))
            {
                return n;
            }
            n += 1;
        }
    }

    /// The tensor `name`, which must have exactly `shape`, in the model's dtype and device.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path.to_path_buf(),
                name: name.to_string(),
                expected: shape.to_vec(),
            })?;
        if t.dims() != shape {
            return Err(ModelError::ShapeMismatch {
                path: self.path.to_path_buf(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: t.dims().to_vec(),
            });
        }
        if !matches!(
            t.dtype(),
            DType::F16 | DType::BF16 | DType::F32 | DType::F64
        ) {
            return Err(ModelError::Layout {
                path: self.path.to_path_buf(),
                reason: format!(
                    "tensor `{name}` has dtype {:?}, expected a float type",
                    t.dtype()
                ),
            });
        }
        Ok(t.to_dtype(self.dtype)?.to_device(&self.device)?)
    }

    pub fn conv(
        &self,
        name: &str,
        shape: [usize; 4],
        stride: usize,
        padding: Padding,
        groups: usize,
        bias: bool,
    ) -> Result<Conv2d> {
        let weight = self.get(&format!("{name}.weight"), &shape)?;
        let bias = if bias {
            Some(self.get(&format!("{name}.bias"), &[shape[0]])?)
        } else {
            None
        };
        Ok(Conv2d::new(weight, bias, stride, padding, groups)?)
    }

    /// torchvision's projection shortcut: `{block}.downsample.0` (a 1x1 conv with `stride`, no
    /// bias) then the batch norm `{block}.downsample.1`. Both CIFAR ResNets with option-B
    /// shortcuts and ImageNet ResNets name it so.
    pub fn downsample(
        &self,
        block: &str,
        [in_c, out_c]: [usize; 2],
        stride: usize,
        eps: f64,
        fold: bool,
    ) -> Result<ConvBn> {
        let conv = self.conv(
            &format!("{block}.downsample.0"),
            [out_c, in_c, 1, 1],
            stride,
            Padding::Symmetric(0),
            1,
            false,
        )?;
        let bn = self.batch_norm(&format!("{block}.downsample.1"), out_c, eps)?;
        Ok(ConvBn::new(conv, bn, fold)?)
    }

    pub fn batch_norm(&self, name: &str, channels: usize, eps: f64) -> Result<BatchNorm> {
        let get = |suffix: &str| self.get(&format!("{name}.{suffix}"), &[channels]);
        Ok(BatchNorm {
            weight: get("weight")?,
            bias: get("bias")?,
            running_mean: get("running_mean")?,
            running_var: get("running_var")?,
            eps,
        })
    }

    pub fn linear(
        &self,
        name: &str,
        out_features: usize,
        in_features: usize,
        bias: bool,
    ) -> Result<Linear> {
        let weight = self.get(&format!("{name}.weight"), &[out_features, in_features])?;
        let bias = if bias {
            Some(self.get(&format!("{name}.bias"), &[out_features])?)
        } else {
            None
        };
        Ok(Linear::new(weight, bias)?)
    }

    pub fn layer_norm(&self, name: &str, dim: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: self.get(&format!("{name}.weight"), &[dim])?,
            bias: self.get(&format!("{name}.bias"), &[dim])?,
            eps,
        })
    }
}
