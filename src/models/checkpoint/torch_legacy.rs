//! PyTorch's legacy (non-zip) serialization, written by `torch.save` before 1.6 and by
//! `_use_new_zipfile_serialization=False`. The file is, back to back:
//!
//! 1. a pickled magic number (0x1950a86a20f9469cfc6c),
//! 2. a pickled protocol version (1001),
//! 3. a pickled `sys_info` dict (`little_endian`, type sizes),
//! 4. the pickled object, whose persistent ids are
//!    `('storage', storage_type, root_key, location, numel, view_metadata)`,
//! 5. a pickled list of storage keys,
//! 6. for each key in that order: an 8-byte little-endian element count, then the raw
//!    little-endian elements.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;

use super::FormatError;
use super::pickle::{self, Node, Pickle};
use super::torch::{self, StorageRef};

pub(crate) const MAGIC: i128 = 0x1950a86a20f9469cfc6c;
const PROTOCOL_VERSION: i128 = 1001;

/// Reads a legacy checkpoint held in `buf`; the caller adds the path.
pub(crate) fn read(buf: &[u8]) -> Result<BTreeMap<String, Tensor>, FormatError> {
    let step = |what: &str, start: usize, policy: pickle::GlobalPolicy<'_>| {
        pickle::parse(buf, start, policy).map_err(|e| FormatError::pickle(what, e))
    };
    let magic = step(
        "cannot read the legacy PyTorch header",
        0,
        &torch::no_globals,
    )?;
    if magic.as_int(magic.root) != Some(MAGIC) {
        return Err(FormatError::LegacyHeader(format!(
            "a pickle file, but not a PyTorch checkpoint: it starts with {}, not torch's magic \
             number",
            magic.describe(magic.root)
        )));
    }
    let version = step("legacy protocol version", magic.end, &torch::no_globals)?;
    match version.as_int(version.root) {
        Some(PROTOCOL_VERSION) => {}
        _ => {
            return Err(FormatError::LegacyHeader(format!(
                "unsupported legacy PyTorch protocol version {}",
                version.describe(version.root)
            )));
        }
    }
    let sys_info = step("legacy sys_info header", version.end, &torch::no_globals)?;
    check_little_endian(&sys_info)?;
    let main = step("checkpoint pickle", sys_info.end, &torch::global_policy)?;
    let keys = step("list of storage keys", main.end, &torch::no_globals)?;

    // Element type and count of every storage the object references, by key.
    let mut refs: HashMap<String, StorageRef> = HashMap::new();
    for r in torch::all_storage_refs(&main)? {
        if let Some(prev) = refs.get(&r.key)
            && (prev.ty != r.ty || prev.numel != r.numel)
        {
            return Err(FormatError::storage(
                &r.key,
                format!(
                    "is referenced both as {} x {} and as {} x {}",
                    prev.numel, prev.ty.name, r.numel, r.ty.name
                ),
            ));
        }
        refs.insert(r.key.clone(), r);
    }

    // Walk the storage records, checking each against its persistent id and the file size
    // before taking any of it.
    let key_ids = keys.as_seq(keys.root).ok_or_else(|| {
        FormatError::LegacyHeader(format!("storage key list is {}", keys.describe(keys.root)))
    })?;
    let mut data: HashMap<&str, &[u8]> = HashMap::new();
    let mut pos = keys.end;
    for &k in key_ids {
        let key = keys.as_str(k).ok_or_else(|| {
            FormatError::LegacyHeader(format!("storage key is {}", keys.describe(k)))
        })?;
        let at = pos as u64;
        let r = refs.get(key).ok_or_else(|| {
            FormatError::storage_at(
                key,
                at,
                "is stored in the file, but the checkpoint never references it",
            )
        })?;
        let count_bytes = buf.get(pos..pos.saturating_add(8)).ok_or_else(|| {
            FormatError::storage_at(
                key,
                at,
                "is cut short: the file ends inside its header (file truncated?)",
            )
        })?;
        let mut c = [0u8; 8];
        c.copy_from_slice(count_bytes);
        let count = u64::from_le_bytes(c);
        if count != r.numel {
            return Err(FormatError::storage_at(
                key,
                at,
                format!(
                    "says it has {count} elements, but the checkpoint says {} (file damaged?)",
                    r.numel
                ),
            ));
        }
        let nbytes = r.nbytes()?;
        let start = pos + 8;
        let left = buf.len() - start;
        if nbytes > left as u64 {
            return Err(FormatError::storage_at(
                key,
                at,
                format!(
                    "needs {nbytes} bytes from byte {start}, but only {left} are left \
                     (file truncated?)"
                ),
            ));
        }
        // nbytes <= left, so this fits in usize.
        let end = start + nbytes as usize;
        data.insert(key, buf.get(start..end).unwrap_or(&[]));
        pos = end;
    }

    let state = torch::find_state_dict(&main)?;
    let mut load = |r: &StorageRef| -> Result<Cow<'_, [u8]>, FormatError> {
        data.get(r.key.as_str())
            .map(|b| Cow::Borrowed(*b))
            .ok_or_else(|| FormatError::storage(&r.key, "is referenced but not stored in the file"))
    };
    torch::build_tensors(state, &mut load, gather_budget(buf.len() as u64))
}

/// How many bytes strided (non-contiguous) tensors may copy: generous for a real file, whose
/// views together rarely exceed its size, but bounded.
pub(crate) fn gather_budget(file_len: u64) -> u64 {
    file_len.saturating_mul(2).saturating_add(16 << 20)
}

fn check_little_endian(sys_info: &Pickle) -> Result<(), FormatError> {
    let Node::Dict(items) = sys_info.node(sys_info.root) else {
        return Err(FormatError::LegacyHeader(format!(
            "legacy sys_info header is {}, not a dict",
            sys_info.describe(sys_info.root)
        )));
    };
    for &(k, v) in items {
        if sys_info.as_str(k) == Some("little_endian") && sys_info.node(v) == &Node::Bool(false) {
            return Err(FormatError::LegacyHeader(
                "big-endian checkpoints are not supported".into(),
            ));
        }
    }
    Ok(())
}
