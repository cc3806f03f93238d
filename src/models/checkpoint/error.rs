//! Why a checkpoint file is refused. The caller ([`ModelError::Format`]) adds the path; each
//! variant here carries where in the file the problem lies when there is such a place (a zip
//! record, a storage and its byte offset, a tensor, a pickle's byte) as data, and says it in
//! words too.
//!
//! [`ModelError::Format`]: crate::models::ModelError::Format

use super::CheckpointFormat;
use super::pickle::PickleError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("file is empty (0 bytes)")]
    Empty,
    #[error("not a regular file")]
    NotAFile,
    /// The first bytes are no format read here; `what` says what they look like instead.
    #[error(
        "not a checkpoint: this is {what}, not safetensors, a PyTorch zip or a legacy PyTorch \
         file ({len} bytes)"
    )]
    NotACheckpoint { what: String, len: u64 },
    #[error("the {format} file holds no tensors")]
    NoTensors { format: CheckpointFormat },
    /// The 8-byte length that opens a safetensors file points past the end of the file.
    #[error(
        "safetensors header length {header_len} is larger than the {available} bytes after it \
         (file truncated or damaged?)"
    )]
    SafetensorsHeaderLength { header_len: u64, available: u64 },
    /// The safetensors header (its JSON, its table of tensors, the data it describes).
    #[error("{0}")]
    Safetensors(String),
    /// The zip archive as a whole: its directory, which records it holds, its byte order.
    #[error("{0}")]
    Archive(String),
    /// What the legacy file's leading pickles hold (magic number, protocol version, `sys_info`)
    /// or its list of storage keys.
    #[error("{0}")]
    LegacyHeader(String),
    /// A pickle that cannot be read. `part` is where it sits (the zip's `data.pkl` record, or a
    /// section of a legacy file); the [`PickleError`] gives the byte within it.
    #[error("{part}: {error}")]
    Pickle { part: String, error: PickleError },
    /// The pickled object, read as a torch checkpoint, is malformed where no storage or tensor
    /// can be named yet (a persistent id, the place of the state dict).
    #[error("{0}")]
    Pickled(String),
    /// One record of a zip archive.
    #[error("record `{record}` {reason}")]
    Record { record: String, reason: String },
    /// Compressed records would inflate to more than blindspot inflates for a file of this size
    /// (see `torch_zip::inflate_cap`).
    #[error(
        "record `{record}` is compressed ({compressed} bytes) and inflates to {size} bytes{}, \
         more than the {cap} bytes allowed for compressed records in a file of this size \
         (torch.save never compresses records; a zip bomb?)",
        after_earlier(*.inflated_before)
    )]
    InflateCap {
        record: String,
        compressed: u64,
        size: u64,
        inflated_before: u64,
        cap: u64,
    },
    /// One storage (the bytes behind tensors); `offset` is where its header starts in the file
    /// when the format places it there (legacy).
    #[error("storage `{key}`{} {reason}", at_byte(*.offset))]
    Storage {
        key: String,
        offset: Option<u64>,
        reason: String,
    },
    /// One tensor of the state dict.
    #[error("tensor `{name}` {reason}")]
    Tensor { name: String, reason: String },
}

fn after_earlier(inflated: u64) -> String {
    if inflated == 0 {
        String::new()
    } else {
        format!(" after the {inflated} bytes inflated from records before it")
    }
}

fn at_byte(offset: Option<u64>) -> String {
    offset.map(|o| format!(" at byte {o}")).unwrap_or_default()
}

impl FormatError {
    pub(crate) fn record(record: &str, reason: impl Into<String>) -> Self {
        Self::Record {
            record: record.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn storage(key: &str, reason: impl Into<String>) -> Self {
        Self::Storage {
            key: key.to_string(),
            offset: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn storage_at(key: &str, offset: u64, reason: impl Into<String>) -> Self {
        Self::Storage {
            key: key.to_string(),
            offset: Some(offset),
            reason: reason.into(),
        }
    }

    pub(crate) fn tensor(name: &str, reason: impl Into<String>) -> Self {
        Self::Tensor {
            name: name.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn pickle(part: &str, error: PickleError) -> Self {
        Self::Pickle {
            part: part.to_string(),
            error,
        }
    }
}
