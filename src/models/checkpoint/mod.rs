//! Reading tensors from checkpoint files: safetensors, PyTorch zip (`torch.save` since 1.6) and
//! PyTorch legacy (before 1.6) files, told apart by their content, not their extension.
//!
//! PyTorch files are pickles, and unpickling runs code named by the file. We never do that: a
//! small pickle reader of our own (`pickle.rs`) replays the opcodes symbolically, only a fixed set
//! of tensor and plain-data globals may appear (`torch.rs`), and everything read from the file is
//! checked against the file's size before memory is set aside for it. Damaged or foreign files
//! give a [`ModelError::Format`] that names the file and says what is wrong, with a
//! [`FormatError`] that carries the place in the file (record, storage, tensor, byte offset).

mod error;
mod pickle;
mod safetensors_format;
mod torch;
mod torch_legacy;
mod torch_zip;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};

use super::error::ModelError;
pub use error::FormatError;
pub use pickle::PickleError;

/// How a checkpoint file was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckpointFormat {
    Safetensors,
    /// `torch.save` zip archive (PyTorch 1.6 and later).
    TorchZip,
    /// `torch.save` legacy stream of pickles (before PyTorch 1.6).
    TorchLegacy,
    /// Built in memory (benchmark layouts with random weights).
    InMemory,
}

impl fmt::Display for CheckpointFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckpointFormat::Safetensors => "safetensors",
            CheckpointFormat::TorchZip => "PyTorch zip",
            CheckpointFormat::TorchLegacy => "PyTorch legacy",
            CheckpointFormat::InMemory => "in-memory",
        })
    }
}

/// The tensors of one checkpoint file.
pub struct Checkpoint {
    pub path: PathBuf,
    /// Tensor name -> tensor (CPU, dtype as stored: F32/F64/F16/BF16/I64/I32/I16/U8; bools are
    /// U8), names already normalised: wrappers unwrapped and `module.` / `model.` prefixes
    /// stripped.
    pub tensors: BTreeMap<String, Tensor>,
    /// safetensors `__metadata__` (empty for pickles).
    pub metadata: BTreeMap<String, String>,
    pub format: CheckpointFormat,
}

impl fmt::Debug for Checkpoint {
    // The derived form would print every tensor.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("tensors", &self.tensors.len())
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl Checkpoint {
    /// Tensors made in memory; `name` stands for the file in messages.
    pub fn in_memory(name: &Path, tensors: BTreeMap<String, Tensor>) -> Self {
        Self {
            path: name.to_path_buf(),
            tensors,
            metadata: BTreeMap::new(),
            format: CheckpointFormat::InMemory,
        }
    }

    /// Safetensors bytes already in memory (the demo models embedded in the binary);
    /// `name` stands for the file in messages.
    pub fn from_safetensors_bytes(name: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        let (tensors, metadata) =
            safetensors_format::read(bytes).map_err(|reason| ModelError::Format {
                path: name.to_path_buf(),
                reason,
            })?;
        checked(name, tensors, metadata, CheckpointFormat::Safetensors)
    }

    /// The bytes of a checkpoint file already in memory, in any format [`read_checkpoint`]
    /// reads, told apart and checked the same way; `name` stands for the file in messages.
    /// Also what the `checkpoint` fuzz target feeds arbitrary bytes to (see [`crate::fuzzing`]).
    pub fn from_bytes(name: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        read_from(name, Cursor::new(bytes), bytes.len() as u64)
    }

    /// [`Checkpoint::from_bytes`] with the format given rather than sniffed, so that a fuzzer
    /// spends its inputs on one reader rather than on the few bytes that tell formats apart.
    pub(crate) fn from_bytes_as(
        name: &Path,
        bytes: &[u8],
        format: CheckpointFormat,
    ) -> Result<Self, ModelError> {
        read_as(name, Cursor::new(bytes), bytes.len() as u64, format)
    }

    /// How many float tensors are stored in each dtype other than F32 (`"F64" -> 62`): what
    /// building a model converts, which the loader says once.
    pub fn converted_dtypes(&self) -> BTreeMap<String, usize> {
        validate::non_f32_floats(&self.tensors)
    }
}

/// The one exit of every file format: names normalised, then every tensor checked (finite
/// floats, non-negative BatchNorm variances) before any model is built from them.
fn checked(
    path: &Path,
    tensors: BTreeMap<String, Tensor>,
    metadata: BTreeMap<String, String>,
    format: CheckpointFormat,
) -> Result<Checkpoint, ModelError> {
    let tensors = strip_common_prefixes(tensors);
    if let Some((name, problem)) = validate::first_bad_tensor(&tensors) {
        return Err(ModelError::BadTensor {
            path: path.to_path_buf(),
            name,
            problem,
        });
    }
    Ok(Checkpoint {
        path: path.to_path_buf(),
        tensors,
        metadata,
        format,
    })
}

/// Reads every tensor of a checkpoint into CPU memory.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ModelError::Format {
            path: path.to_path_buf(),
            reason: FormatError::NotAFile,
        });
    }
    read_from(path, BufReader::new(file), meta.len())
}

/// Reads a checkpoint of `len` bytes from `reader` (a file, or bytes in memory), its format told
/// from its first bytes; `path` names it in messages.
fn read_from<R: Read + Seek>(
    path: &Path,
    mut reader: R,
    len: u64,
) -> Result<Checkpoint, ModelError> {
    let mut head = Vec::with_capacity(512);
    (&mut reader)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let format = sniff(&head, len).map_err(|reason| ModelError::Format {
        path: path.to_path_buf(),
        reason,
    })?;
    read_as(path, reader, len, format)
}

/// Reads a checkpoint of `len` bytes from `reader` as `format`. Zip archives are read record by
/// record; the other formats are read whole, bounded by `len`.
fn read_as<R: Read + Seek>(
    path: &Path,
    mut reader: R,
    len: u64,
    format: CheckpointFormat,
) -> Result<Checkpoint, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let format_err = |reason: FormatError| ModelError::Format {
        path: path.to_path_buf(),
        reason,
    };
    reader.seek(SeekFrom::Start(0)).map_err(io)?;
    let (tensors, metadata) = match format {
        // `sniff` only reports file formats.
        CheckpointFormat::InMemory => {
            return Err(format_err(FormatError::NotACheckpoint {
                what: "an in-memory checkpoint".into(),
                len,
            }));
        }
        CheckpointFormat::TorchZip => {
            let t = torch_zip::read(reader, len).map_err(format_err)?;
            (t, BTreeMap::new())
        }
        CheckpointFormat::TorchLegacy => {
            let buf = read_all(reader, len).map_err(io)?;
            (
                torch_legacy::read(&buf).map_err(format_err)?,
                BTreeMap::new(),
            )
        }
        CheckpointFormat::Safetensors => {
            let buf = read_all(reader, len).map_err(io)?;
            safetensors_format::read(&buf).map_err(format_err)?
        }
    };
    if tensors.is_empty() {
        return Err(format_err(FormatError::NoTensors { format }));
    }
    checked(path, tensors, metadata, format)
}

/// The names of the tensors a PyTorch pickle (a zip's `data.pkl`, or a legacy file's main
/// pickle) holds, read as the zip and legacy readers read it, without their storages: what the
/// `pickle` fuzz target exercises (see [`crate::fuzzing`]).
pub(crate) fn state_dict_names(pickle_bytes: &[u8]) -> Result<Vec<String>, FormatError> {
    let p = pickle::parse(pickle_bytes, 0, &torch::global_policy)
        .map_err(|e| FormatError::pickle("data.pkl", e))?;
    torch::all_storage_refs(&p)?;
    Ok(torch::find_state_dict(&p)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// The SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The whole file from where `reader` stands (its start); `len` (from its metadata) only sizes
/// the first allocation, and the read is bounded by it, so a file that grows meanwhile cannot
/// make us read without end.
fn read_all<R: Read>(reader: R, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    reader.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Tells the format from the first bytes. Safetensors is tried first: its first 8 bytes are a
/// length and could look like anything, but its 9th byte is the `{` that opens the JSON header,
/// which no zip (compression method there) or torch pickle (inside the magic number) has.
fn sniff(head: &[u8], len: u64) -> Result<CheckpointFormat, FormatError> {
    if len == 0 {
        return Err(FormatError::Empty);
    }
    if head.get(8) == Some(&b'{') {
        return Ok(CheckpointFormat::Safetensors);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(CheckpointFormat::TorchZip);
    }
    // PROTO opcode with a protocol version torch writes (2); legacy files always start so.
    if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Ok(CheckpointFormat::TorchLegacy);
    }
    let what = if head.starts_with(b"\x89PNG") {
        "a PNG image".to_string()
    } else if head.starts_with(b"\xff\xd8\xff") {
        "a JPEG image".to_string()
    } else if head.starts_with(b"\x1f\x8b") {
        "a gzip file".to_string()
    } else if head.starts_with(b"\x89HDF") {
        "an HDF5 file (Keras?)".to_string()
    } else if head.starts_with(b"\x93NUMPY") {
        "a NumPy .npy file".to_string()
    } else if head.get(257..262) == Some(b"ustar") {
        "a tar archive (PyTorch before 0.4 wrote those; re-save it with a newer torch)".to_string()
    } else if looks_like_text(head) {
        "a text file".to_string()
    } else {
        let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("unknown content (first bytes {})", shown.join(" "))
    };
    Err(FormatError::NotACheckpoint { what, len })
}

fn looks_like_text(head: &[u8]) -> bool {
    // A cut in the middle of a multi-byte character at the end of `head` is still text.
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if head.len() - e.valid_up_to() < 4 && e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

/// Drops a `module.` (DataParallel) or `model.` prefix while every name has it.
fn strip_common_prefixes(mut tensors: BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    'outer: loop {
        for prefix in ["module.", "model."] {
            let all = tensors
                .keys()
                .all(|k| k.len() > prefix.len() && k.starts_with(prefix));
            if all && !tensors.is_empty() {
                tensors = tensors
                    .into_iter()
                    .map(|(k, v)| (k[prefix.len()..].to_string(), v))
                    .collect();
                continue 'outer;
            }
        }
        return tensors;
    }
}

/// A CPU tensor from little-endian bytes (which is how every format here stores them), for the
/// tensor `name` (named in errors). `bytes.len()` must be the element count of `shape` times the
/// dtype's size.
fn tensor_from_le_bytes(
    name: &str,
    bytes: &[u8],
    dtype: DType,
    shape: &[usize],
) -> Result<Tensor, FormatError> {
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| FormatError::tensor(name, format!("shape {shape:?} overflows")))?;
    let es = dtype.size_in_bytes();
    if numel.checked_mul(es) != Some(bytes.len()) {
        return Err(FormatError::tensor(
            name,
            format!(
                "has {} bytes, which cannot hold a {dtype:?} tensor of shape {shape:?}",
                bytes.len()
            ),
        ));
    }
    fn words<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect()
    }
    let dev = &Device::Cpu;
    let t = match dtype {
        DType::U8 => Tensor::from_vec(bytes.to_vec(), shape, dev),
        DType::U32 => Tensor::from_vec(words(bytes, u32::from_le_bytes), shape, dev),
        DType::I16 => Tensor::from_vec(words(bytes, i16::from_le_bytes), shape, dev),
        DType::I32 => Tensor::from_vec(words(bytes, i32::from_le_bytes), shape, dev),
        DType::I64 => Tensor::from_vec(words(bytes, i64::from_le_bytes), shape, dev),
        DType::F16 => Tensor::from_vec(words(bytes, half::f16::from_le_bytes), shape, dev),
        DType::BF16 => Tensor::from_vec(words(bytes, half::bf16::from_le_bytes), shape, dev),
        DType::F32 => Tensor::from_vec(words(bytes, f32::from_le_bytes), shape, dev),
        DType::F64 => Tensor::from_vec(words(bytes, f64::from_le_bytes), shape, dev),
        other => {
            return Err(FormatError::tensor(
                name,
                format!("has dtype {other:?}, which is not supported"),
            ));
        }
    };
    t.map_err(|e| FormatError::tensor(name, format!("cannot be built: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"", 0).unwrap_err(), FormatError::Empty);
        assert_eq!(
            sniff(b"", 0).unwrap_err().to_string(),
            "file is empty (0 bytes)"
        );
        let mut st = 17u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"a\":1}");
        assert_eq!(sniff(&st, 100).unwrap(), CheckpointFormat::Safetensors);
        // A header length whose low byte is 0x80 0x02 must not pass for a pickle.
        let mut st = 0x280u64.to_le_bytes().to_vec();
        st.push(b'{');
        assert_eq!(sniff(&st, 1000).unwrap(), CheckpointFormat::Safetensors);
        assert_eq!(
            sniff(b"PK\x03\x04\x14\x00\x00\x00\x00\x00", 10).unwrap(),
            CheckpointFormat::TorchZip
        );
        assert_eq!(
            sniff(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20", 10).unwrap(),
            CheckpointFormat::TorchLegacy
        );
        assert!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0", 10)
                .unwrap_err()
                .to_string()
                .contains("PNG image")
        );
        assert!(
            sniff(b"hello world\n", 12)
                .unwrap_err()
                .to_string()
                .contains("text file")
        );
        assert!(
            sniff("h\u{e9}".as_bytes(), 3)
                .unwrap_err()
                .to_string()
                .contains("text file")
        );
        assert!(
            sniff(b"\x01\x02\x03", 3)
                .unwrap_err()
                .to_string()
                .contains("first bytes 01 02 03")
        );
    }

    #[test]
    fn prefixes() {
        let t = Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap();
        let map = |names: &[&str]| -> BTreeMap<String, Tensor> {
            names.iter().map(|n| (n.to_string(), t.clone())).collect()
        };
        let keys = |m: BTreeMap<String, Tensor>| m.into_keys().collect::<Vec<_>>();
        assert_eq!(
            keys(strip_common_prefixes(map(&[
                "module.model.a",
                "module.model.b"
            ]))),
            vec!["a", "b"]
        );
        assert_eq!(
            keys(strip_common_prefixes(map(&["module.a", "b"]))),
            vec!["b", "module.a"]
        );
        // A name that is only the prefix is left alone rather than becoming empty.
        assert_eq!(
            keys(strip_common_prefixes(map(&["model.", "model.x"]))),
            vec!["model.", "model.x"]
        );
    }

    #[test]
    fn le_bytes() {
        let t = tensor_from_le_bytes("t", &[0, 0, 128, 63, 0, 0, 0, 64], DType::F32, &[2]).unwrap();
        assert_eq!(t.to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
        let t = tensor_from_le_bytes("t", &[0xff; 8], DType::I64, &[]).unwrap();
        assert_eq!(t.to_scalar::<i64>().unwrap(), -1);
        let t = tensor_from_le_bytes("t", &[0x00, 0x3c], DType::F16, &[1, 1]).unwrap();
        assert_eq!(
            t.to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            vec![1.0]
        );
        assert!(tensor_from_le_bytes("t", &[0; 7], DType::F32, &[2]).is_err());
    }
}
