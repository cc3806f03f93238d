//! One entry per fuzz target: each takes arbitrary bytes the way the program takes a file of
//! that kind, through the same code, and throws the result away. A fuzzer looks only for
//! panics, hangs and huge allocations; a refusal is a correct answer to garbage.
//!
//! The targets in `fuzz/fuzz_targets/` are one-line calls of these, and `tests/fuzz_corpus.rs`
//! replays the committed seed corpus (`fuzz/corpus/<target>/`) and every input that once broke
//! something (`tests/fixtures/fuzz/<target>/`) through them on stable, so the logic exists once.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::models::checkpoint::{Checkpoint, CheckpointFormat, state_dict_names};
use crate::models::load::{Sidecar, rename_tensors};

/// One fuzz target: the bytes in, nothing out (a reader may refuse them, never panic).
pub type Target = fn(&[u8]);

/// Every target by name (the name of its fuzz target and of its corpus folders).
pub const TARGETS: &[(&str, Target)] = &[
    ("checkpoint", checkpoint),
    ("checkpoint_safetensors", checkpoint_safetensors),
    ("checkpoint_torch_zip", checkpoint_torch_zip),
    ("checkpoint_torch_legacy", checkpoint_torch_legacy),
    ("pickle", pickle),
    ("sidecar", sidecar),
    ("image_decode", image_decode),
    ("run_record", run_record),
];

/// What the bytes are called in messages.
fn input() -> &'static Path {
    Path::new("fuzz-input")
}

/// A checkpoint file of any format, told apart by its content as `read_checkpoint` does.
pub fn checkpoint(bytes: &[u8]) {
    let _ = Checkpoint::from_bytes(input(), bytes);
}

/// A checkpoint file read as safetensors, whatever its first bytes say.
pub fn checkpoint_safetensors(bytes: &[u8]) {
    let _ = Checkpoint::from_bytes_as(input(), bytes, CheckpointFormat::Safetensors);
}

/// A checkpoint file read as a PyTorch zip archive.
pub fn checkpoint_torch_zip(bytes: &[u8]) {
    let _ = Checkpoint::from_bytes_as(input(), bytes, CheckpointFormat::TorchZip);
}

/// A checkpoint file read as a legacy (pre-1.6) PyTorch file.
pub fn checkpoint_torch_legacy(bytes: &[u8]) {
    let _ = Checkpoint::from_bytes_as(input(), bytes, CheckpointFormat::TorchLegacy);
}

/// A PyTorch pickle (`data.pkl`): the opcode machine, the global policy, and the search for
/// the state dict and its storages.
pub fn pickle(bytes: &[u8]) {
    let _ = state_dict_names(bytes);
}

/// Sidecar settings JSON, and its `rename` rules applied to a few typical tensor names.
pub fn sidecar(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(settings) = Sidecar::parse(text, input()) else {
        return;
    };
    let Some(rules) = &settings.rename else {
        return;
    };
    let Ok(one) = Tensor::zeros(1, DType::F32, &Device::Cpu) else {
        return;
    };
    let tensors: BTreeMap<String, Tensor> = [
        "module.conv1.weight",
        "stage_1.0.conv_1.weight",
        "layer1.0.bn1.running_var",
        "fc.bias",
        "head",
    ]
    .into_iter()
    .map(|name| (name.to_string(), one.clone()))
    .collect();
    let _ = rename_tensors(tensors, rules, input());
}

/// An image file (PNG, JPEG through libjpeg-turbo, WebP), decoded to RGB as the loader does.
pub fn image_decode(bytes: &[u8]) {
    let _ = crate::images::decode_rgb_with_color(input(), bytes);
}

/// A run record's `run.json`, of any version this build reads.
pub fn run_record(bytes: &[u8]) {
    let _ = crate::record::RunRecord::from_json(input(), bytes);
}
