//! safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's
//! dtype, shape and byte range (plus an optional `__metadata__` string map), then the raw bytes.
//! Parsing and validation are the `safetensors` crate's; this adds clear messages and the
//! conversion to candle.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use super::{FormatError, tensor_from_le_bytes};

type Tensors = BTreeMap<String, Tensor>;
type Metadata = BTreeMap<String, String>;

/// The tensors and metadata of a safetensors file held in `buf`; the caller adds the path.
pub(crate) fn read(buf: &[u8]) -> Result<(Tensors, Metadata), FormatError> {
    // Check the header length against the file first: the crate's own error for this case does
    // not say how far off it is.
    let mut n = [0u8; 8];
    n.copy_from_slice(buf.get(..8).ok_or_else(|| {
        FormatError::Safetensors("too short for a safetensors header (file truncated?)".into())
    })?);
    let header_len = u64::from_le_bytes(n);
    let available = (buf.len() - 8) as u64;
    if header_len > available {
        return Err(FormatError::SafetensorsHeaderLength {
            header_len,
            available,
        });
    }
    let st = SafeTensors::deserialize(buf).map_err(|e| explain(e, buf))?;
    let (_, meta) = SafeTensors::read_metadata(buf).map_err(|e| explain(e, buf))?;
    let metadata = meta
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let dtype = candle_dtype(view.dtype()).ok_or_else(|| {
            FormatError::tensor(
                &name,
                format!("has dtype {:?}, which candle cannot hold", view.dtype()),
            )
        })?;
        let t = tensor_from_le_bytes(&name, view.data(), dtype, view.shape())?;
        tensors.insert(name, t);
    }
    Ok((tensors, metadata))
}

fn candle_dtype(d: Dtype) -> Option<DType> {
    Some(match d {
        // candle has no bool; safetensors stores one byte per bool, kept as U8.
        Dtype::BOOL | Dtype::U8 => DType::U8,
        Dtype::I16 => DType::I16,
        Dtype::I32 => DType::I32,
        Dtype::U32 => DType::U32,
        Dtype::I64 => DType::I64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        _ => return None,
    })
}

fn explain(e: SafeTensorError, buf: &[u8]) -> FormatError {
    FormatError::Safetensors(match e {
        SafeTensorError::HeaderTooLarge => {
            "safetensors header is larger than the 100 MB the format allows (damaged?)".into()
        }
        SafeTensorError::HeaderTooSmall | SafeTensorError::InvalidHeaderLength => {
            "safetensors header length does not fit the file (truncated or damaged?)".into()
        }
        SafeTensorError::InvalidHeader(_) => "safetensors header is not valid UTF-8".into(),
        SafeTensorError::InvalidHeaderDeserialization(e) => {
            format!("safetensors header is not valid JSON: {e}")
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            let hlen = header_len(buf);
            let have = buf.len().saturating_sub(8 + hlen);
            match described_data_len(buf, hlen) {
                Some(want) if want > have => format!(
                    "the safetensors header describes {want} bytes of tensor data but only {have} \
                     follow it (file truncated?)"
                ),
                Some(want) => format!(
                    "the safetensors header describes {want} bytes of tensor data but {have} \
                     follow it (damaged?)"
                ),
                None => "safetensors tensor data does not match its header (damaged?)".into(),
            }
        }
        other => format!("invalid safetensors file: {other}"),
    })
}

/// The end of the furthest tensor the header describes (only used for the message).
fn described_data_len(buf: &[u8], hlen: usize) -> Option<usize> {
    let header: serde_json::Value =
        serde_json::from_slice(buf.get(8..8usize.checked_add(hlen)?)?).ok()?;
    header
        .as_object()?
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .and_then(|m| usize::try_from(m).ok())
}

fn header_len(buf: &[u8]) -> usize {
    let mut n = [0u8; 8];
    if let Some(b) = buf.get(..8) {
        n.copy_from_slice(b);
    }
    usize::try_from(u64::from_le_bytes(n)).unwrap_or(usize::MAX)
}
