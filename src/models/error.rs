//! The one error type of the model stack. Every variant that concerns a file names it.

use std::path::PathBuf;

use super::checkpoint::FormatError;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a checkpoint we can read, or it is damaged. `reason` is shown in the
    /// message rather than chained as a source, so that `{:#}` does not print it twice.
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: FormatError },
    /// The checkpoint reads fine, but its tensors do not form the model being built (a rank,
    /// a dtype or a layout that model cannot use).
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    #[error("{path}: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
    },
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A tensor that reads fine but cannot be a trained weight (NaN, infinite, a negative
    /// BatchNorm variance): refused at load, before any model runs.
    #[error("{path}: tensor `{name}` {problem}")]
    BadTensor {
        path: PathBuf,
        name: String,
        problem: String,
    },
    #[error("{path}: cannot tell the architecture: {reason}")]
    UnknownArchitecture { path: PathBuf, reason: String },
    #[error("{path}: bad sidecar settings: {reason}")]
    Sidecar { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// The autograd graph did not reach the input: a model bug, never silently zero.
    #[error("model `{0}` produced no input gradient (the graph does not reach the input)")]
    GradientMissing(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
