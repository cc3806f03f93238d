//! TEMPORARY: safetensors only, replaced by the real reader from branch `ckpt`.
use super::error::{ModelError, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
pub struct Checkpoint {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, candle_core::Tensor>,
    pub metadata: BTreeMap<String, String>,
}
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint> {
    let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu).map_err(|e| {
        ModelError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    Ok(Checkpoint {
        path: path.to_path_buf(),
        tensors: tensors.into_iter().collect(),
        metadata: BTreeMap::new(),
    })
}
pub fn sha256_file(_path: &Path) -> Result<String> {
    Ok(String::new())
}
impl Checkpoint {
    pub fn in_memory(path: &Path, tensors: BTreeMap<String, candle_core::Tensor>) -> Self {
        Self { path: path.to_path_buf(), tensors, metadata: BTreeMap::new() }
    }
}
