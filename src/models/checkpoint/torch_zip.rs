//! PyTorch's zip serialization (`torch.save` since 1.6): a zip archive holding
//! `<prefix>/data.pkl` (the pickled object, whose persistent ids are
//! `('storage', storage_type, key, location, numel)`) and one record `<prefix>/data/<key>` of raw
//! little-endian bytes per storage. The prefix is whatever directory name torch chose.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{Read, Seek};

use candle_core::Tensor;
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::FormatError;
use super::pickle;
use super::torch::{self, StorageRef};
use super::torch_legacy::gather_budget;

/// Deflate cannot expand data by more than about 1032:1; a record claiming more is corrupt.
const MAX_DEFLATE_RATIO: u64 = 1100;

/// The least [`inflate_cap`] allows, whatever the file's size.
const MIN_INFLATE_CAP: u64 = 256 << 20;

/// How many bytes the compressed records of a `file_len`-byte archive may inflate to, together:
/// 64 times the file, and at least 256 MiB.
///
/// `torch.save` writes every record stored, never compressed, so compressed records only come
/// from an archive that another tool re-zipped. Trained weights are floats whose low bits are
/// noise and barely compress; only zero-heavy tensors (masks, pruned or zero-initialised
/// buffers) compress far, and 64:1 across a whole file leaves room for those. The 256 MiB floor
/// keeps a small file of mostly-zero tensors readable. Past the cap a file is far likelier a
/// decompression bomb than a checkpoint: deflate reaches ~1030:1, so a 2 MB record can claim
/// (truthfully) 2 GiB, all of which would be held in memory at once, then copied into a tensor.
pub(crate) fn inflate_cap(file_len: u64) -> u64 {
    file_len.saturating_mul(64).max(MIN_INFLATE_CAP)
}

/// What the records of one archive may still take. Stored records hold their bytes in the file,
/// so in an honest archive they cannot add up to more than the file (records that share bytes
/// could, each one passing a per-record check); compressed ones are capped by [`inflate_cap`].
struct RecordBudget {
    file_len: u64,
    stored: u64,
    inflated: u64,
}

impl RecordBudget {
    fn new(file_len: u64) -> Self {
        Self {
            file_len,
            stored: 0,
            inflated: 0,
        }
    }
}

/// Reads a zip checkpoint; the caller adds the path.
pub(crate) fn read<R: Read + Seek>(
    reader: R,
    file_len: u64,
) -> Result<BTreeMap<String, Tensor>, FormatError> {
    let mut zip = ZipArchive::new(reader).map_err(|e| {
        FormatError::Archive(format!(
            "not a readable zip archive (truncated or damaged?): {e}"
        ))
    })?;
    let mut budget = RecordBudget::new(file_len);

    let pkl_names: Vec<String> = zip
        .file_names()
        .filter(|n| *n == "data.pkl" || (n.ends_with("/data.pkl") && n.matches('/').count() == 1))
        .map(str::to_string)
        .collect();
    let pkl_name = match pkl_names.as_slice() {
        [one] => one.clone(),
        [] => {
            let torchscript = zip.file_names().any(|n| n.ends_with("constants.pkl"));
            return Err(FormatError::Archive(if torchscript {
                "a TorchScript archive without data.pkl; save `model.state_dict()` instead".into()
            } else {
                "a zip archive without a data.pkl record: not a PyTorch checkpoint".into()
            }));
        }
        many => {
            return Err(FormatError::Archive(format!(
                "a zip archive with several data.pkl records ({}): ambiguous",
                many.join(", ")
            )));
        }
    };
    let prefix = pkl_name.strip_suffix("data.pkl").unwrap_or("").to_string();

    // Torch writes `byteorder` since 2.1; older files are little-endian.
    let byteorder = format!("{prefix}byteorder");
    if zip.file_names().any(|n| n == byteorder) {
        let order = read_record(&mut zip, &byteorder, &mut budget, None)?;
        if order.trim_ascii() != b"little" {
            return Err(FormatError::Archive(format!(
                "byte order `{}` is not supported (only little-endian)",
                String::from_utf8_lossy(&order)
            )));
        }
    }

    let pkl = read_record(&mut zip, &pkl_name, &mut budget, None)?;
    let p = pickle::parse(&pkl, 0, &torch::global_policy)
        .map_err(|e| FormatError::pickle(&pkl_name, e))?;
    let state = torch::find_state_dict(&p)?;
    let mut load = |r: &StorageRef| -> Result<Cow<'static, [u8]>, FormatError> {
        let name = format!("{prefix}data/{}", r.key);
        let bytes = read_record(&mut zip, &name, &mut budget, Some(r.nbytes()?))?;
        Ok(Cow::Owned(bytes))
    };
    torch::build_tensors(state, &mut load, gather_budget(file_len))
}

/// Reads one record. Its sizes come from the archive's directory, which may be corrupt, so they
/// are checked against the file and `budget` before use, and the bytes are read as they come
/// rather than allocated up front. `expected` is the exact size a storage record must have.
fn read_record<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    name: &str,
    budget: &mut RecordBudget,
    expected: Option<u64>,
) -> Result<Vec<u8>, FormatError> {
    let mut f = zip.by_name(name).map_err(|e| match e {
        ZipError::FileNotFound => FormatError::record(name, "is missing from the zip archive"),
        other => FormatError::record(
            name,
            format!("cannot be opened (truncated or damaged?): {other}"),
        ),
    })?;
    let size = f.size();
    let compressed = f.compressed_size();
    let stored = f.compression() == CompressionMethod::Stored;
    let bound = if stored {
        budget.file_len
    } else {
        compressed.saturating_mul(MAX_DEFLATE_RATIO)
    };
    if size > bound {
        return Err(FormatError::record(
            name,
            format!("claims {size} bytes, more than the file can hold (damaged?)"),
        ));
    }
    if let Some(want) = expected
        && size != want
    {
        return Err(FormatError::record(
            name,
            format!("holds {size} bytes, but the checkpoint says {want} (file damaged?)"),
        ));
    }
    if stored {
        let before = budget.stored;
        budget.stored = before.saturating_add(size);
        if budget.stored > budget.file_len {
            return Err(FormatError::record(
                name,
                format!(
                    "claims {size} bytes, which with the {before} bytes of the records read \
                     before it is more than the file's {} bytes (records overlap? damaged?)",
                    budget.file_len
                ),
            ));
        }
    } else {
        let before = budget.inflated;
        let cap = inflate_cap(budget.file_len);
        budget.inflated = before.saturating_add(size);
        if budget.inflated > cap {
            return Err(FormatError::InflateCap {
                record: name.to_string(),
                compressed,
                size,
                inflated_before: before,
                cap,
            });
        }
    }
    let mut out = Vec::new();
    // One byte of slack so the reader reaches its end, which is where zip checks the CRC, and so
    // a record longer than its header says shows up as a size mismatch. Nothing past that byte
    // is inflated, whatever the deflate stream holds.
    (&mut f)
        .take(size.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| {
            FormatError::record(name, format!("cannot be read (truncated or damaged?): {e}"))
        })?;
    let got = out.len() as u64;
    if got > size {
        return Err(FormatError::record(
            name,
            format!("holds more than the {size} bytes its header says (damaged? a zip bomb?)"),
        ));
    }
    if got != size {
        return Err(FormatError::record(
            name,
            format!("has {got} bytes where its header says {size} (file truncated?)"),
        ));
    }
    Ok(out)
}
