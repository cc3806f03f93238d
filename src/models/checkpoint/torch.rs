//! Meaning for the symbolic object tree of a PyTorch pickle (zip or legacy): which globals may
//! appear, which recorded calls are tensors, where the state dict is, and how a tensor is cut out
//! of its storage. Shared by `torch_zip.rs` and `torch_legacy.rs`, which differ only in where the
//! storage bytes live.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor};

use super::pickle::{Node, NodeId, Pickle};
use super::{FormatError, tensor_from_le_bytes};

/// A torch storage class as named in a persistent id (`torch.FloatStorage`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StorageType {
    pub name: &'static str,
    /// Bytes per element in the file.
    pub elem_size: usize,
    /// What candle holds it as; `None` for torch dtypes candle has no type for.
    pub dtype: Option<DType>,
}

const fn st(name: &'static str, elem_size: usize, dtype: Option<DType>) -> StorageType {
    StorageType {
        name,
        elem_size,
        dtype,
    }
}

/// Every typed storage class torch has pickled. Those without a candle dtype are still listed:
/// the legacy format needs their element size to step over their bytes, and a tensor that uses one
/// gets an error that names it.
const STORAGE_TYPES: &[StorageType] = &[
    st("FloatStorage", 4, Some(DType::F32)),
    st("DoubleStorage", 8, Some(DType::F64)),
    st("HalfStorage", 2, Some(DType::F16)),
    st("BFloat16Storage", 2, Some(DType::BF16)),
    st("LongStorage", 8, Some(DType::I64)),
    st("IntStorage", 4, Some(DType::I32)),
    st("ShortStorage", 2, Some(DType::I16)),
    st("ByteStorage", 1, Some(DType::U8)),
    // candle has no bool; torch stores one byte per bool (0 or 1), kept as U8.
    st("BoolStorage", 1, Some(DType::U8)),
    st("CharStorage", 1, None),
    st("ComplexFloatStorage", 8, None),
    st("ComplexDoubleStorage", 16, None),
    st("QInt8Storage", 1, None),
    st("QUInt8Storage", 1, None),
    st("QInt32Storage", 4, None),
    st("QUInt4x2Storage", 1, None),
    st("QUInt2x4Storage", 1, None),
];

fn storage_type(module: &str, name: &str) -> Option<StorageType> {
    // Very old pickles of CUDA tensors name `torch.cuda.FloatStorage`; the bytes are the same.
    if module != "torch" && module != "torch.cuda" {
        return None;
    }
    STORAGE_TYPES.iter().copied().find(|t| t.name == name)
}

const REBUILD_TENSOR: &[&str] = &["_rebuild_tensor", "_rebuild_tensor_v2"];
const REBUILD_PARAMETER: &[&str] = &["_rebuild_parameter", "_rebuild_parameter_with_state"];

/// Globals that may appear in a checkpoint pickle. As in `torch.load(weights_only=True)`, anything
/// else rejects the whole file. Nothing is ever called either way: the globals we interpret are
/// read as data (tensor rebuilds, OrderedDict), and the rest are inert values that commonly sit
/// next to a state dict (epoch numbers as numpy scalars, argparse namespaces) and are ignored.
pub(crate) fn global_policy(module: &str, name: &str) -> Result<(), String> {
    let allowed = match module {
        "torch._utils" => REBUILD_TENSOR.contains(&name) || REBUILD_PARAMETER.contains(&name),
        "torch" | "torch.cuda" => {
            storage_type(module, name).is_some()
                || matches!(
                    name,
                    "Size"
                        | "device"
                        | "float32"
                        | "float"
                        | "float64"
                        | "double"
                        | "float16"
                        | "half"
                        | "bfloat16"
                        | "int64"
                        | "long"
                        | "int32"
                        | "int"
                        | "int16"
                        | "short"
                        | "int8"
                        | "uint8"
                        | "bool"
                )
        }
        "collections" => name == "OrderedDict",
        "builtins" | "__builtin__" => matches!(name, "set" | "frozenset" | "slice" | "complex"),
        "_codecs" => name == "encode",
        "numpy" => matches!(name, "dtype" | "ndarray"),
        "numpy.core.multiarray" | "numpy._core.multiarray" => {
            matches!(name, "scalar" | "_reconstruct")
        }
        "argparse" => name == "Namespace",
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let hint = if module == "__main__" || module.starts_with("torch.nn") {
        " (the file pickles a whole model object; save `model.state_dict()` instead)"
    } else if module.starts_with("__torch__") {
        " (this is a TorchScript archive; save `model.state_dict()` instead)"
    } else {
        ""
    };
    Err(format!(
        "refusing pickle global `{module}.{name}`{hint}: only tensor, storage and plain-data \
         globals are read, and nothing in the file is ever executed"
    ))
}

/// A policy for pickles that must contain no globals at all (legacy header pickles).
pub(crate) fn no_globals(module: &str, name: &str) -> Result<(), String> {
    Err(format!(
        "unexpected pickle global `{module}.{name}` in a checkpoint header"
    ))
}

/// A storage as named by a persistent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageRef {
    pub key: String,
    pub ty: StorageType,
    /// Elements in the stored (root) storage.
    pub numel: u64,
    /// Legacy format only: the tensor's storage is elements `offset..offset+len` of the root.
    pub view: Option<(u64, u64)>,
}

impl StorageRef {
    /// Bytes the storage occupies in the file.
    pub fn nbytes(&self) -> Result<u64, FormatError> {
        self.numel
            .checked_mul(self.ty.elem_size as u64)
            .ok_or_else(|| FormatError::storage(&self.key, "size overflows"))
    }
}

/// A tensor as `_rebuild_tensor(_v2)` describes it: a strided view into a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

/// The storage or tensor a value read from the pickle belongs to, which its errors name.
#[derive(Clone, Copy)]
enum Owner<'a> {
    Storage(&'a str),
    Tensor(&'a str),
}

impl Owner<'_> {
    fn error(self, reason: String) -> FormatError {
        match self {
            Owner::Storage(key) => FormatError::storage(key, reason),
            Owner::Tensor(name) => FormatError::tensor(name, reason),
        }
    }
}

fn int_arg(p: &Pickle, id: NodeId, what: &str, owner: Owner<'_>) -> Result<u64, FormatError> {
    p.as_int(id)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| {
            owner.error(format!(
                "has {what} {}, not a non-negative int",
                p.describe(id)
            ))
        })
}

/// A tuple of ints; `torch.Size((...))` (a recorded call) is accepted too.
fn int_tuple(
    p: &Pickle,
    id: NodeId,
    what: &str,
    owner: Owner<'_>,
) -> Result<Vec<usize>, FormatError> {
    let id = match p.node(id) {
        Node::Call { func, args, .. } if p.global_name(*func).as_deref() == Some("torch.Size") => p
            .as_seq(*args)
            .and_then(|a| a.first().copied())
            .unwrap_or(id),
        _ => id,
    };
    let items = p
        .as_seq(id)
        .ok_or_else(|| owner.error(format!("has {what} {}, not a tuple", p.describe(id))))?;
    items
        .iter()
        .map(|&i| {
            int_arg(p, i, what, owner).and_then(|v| {
                usize::try_from(v).map_err(|_| owner.error(format!("has a {what} that overflows")))
            })
        })
        .collect()
}

/// Parses a persistent id: `('storage', storage_type, key, location, numel[, view_metadata])`.
pub(crate) fn storage_ref(p: &Pickle, pid: NodeId) -> Result<StorageRef, FormatError> {
    let bad = || FormatError::Pickled(format!("unsupported persistent id {}", p.describe(pid)));
    let items = p.as_seq(pid).ok_or_else(bad)?;
    if !(5..=6).contains(&items.len()) || p.as_str(items[0]) != Some("storage") {
        return Err(bad());
    }
    let ty = match p.node(items[1]) {
        Node::Global { module, name } => storage_type(module, name).ok_or_else(|| {
            FormatError::Pickled(format!("unknown storage type `{module}.{name}`"))
        })?,
        _ => {
            return Err(FormatError::Pickled(format!(
                "storage type is {}",
                p.describe(items[1])
            )));
        }
    };
    let key = match p.node(items[2]) {
        Node::Str(s) => s.clone(),
        Node::Int(i) => i.to_string(),
        _ => {
            return Err(FormatError::Pickled(format!(
                "storage key is {}",
                p.describe(items[2])
            )));
        }
    };
    let owner = Owner::Storage(&key);
    let numel = int_arg(p, items[4], "size", owner)?;
    let view = match items.get(5).map(|&v| p.node(v)) {
        None | Some(Node::None) => None,
        Some(_) => {
            // (view_key, offset, view_size): a storage that was itself a slice of `key`.
            let v = p
                .as_seq(items[5])
                .filter(|v| v.len() == 3)
                .ok_or_else(bad)?;
            let off = int_arg(p, v[1], "view offset", owner)?;
            let len = int_arg(p, v[2], "view size", owner)?;
            if off.checked_add(len).is_none_or(|end| end > numel) {
                return Err(owner.error(format!(
                    "has {numel} elements, so its view {off}..{off}+{len} lies outside it"
                )));
            }
            Some((off, len))
        }
    };
    Ok(StorageRef {
        key,
        ty,
        numel,
        view,
    })
}

/// Every storage the pickle references, reachable or not (the legacy format stores them all).
pub(crate) fn all_storage_refs(p: &Pickle) -> Result<Vec<StorageRef>, FormatError> {
    p.nodes
        .iter()
        .filter_map(|n| match n {
            Node::PersId(pid) => Some(storage_ref(p, *pid)),
            _ => None,
        })
        .collect()
}

/// `Some` if the node is a tensor (or parameter) rebuild; `Err` if it is one but malformed.
/// `name` is what the state dict calls it, for errors.
pub(crate) fn tensor_ref(
    p: &Pickle,
    id: NodeId,
    name: &str,
) -> Result<Option<TensorRef>, FormatError> {
    let owner = Owner::Tensor(name);
    let mut id = id;
    // `_rebuild_parameter(tensor, ...)` wraps a tensor; bounded because a cyclic or absurdly
    // nested pickle could chain these forever.
    for _ in 0..8 {
        let Node::Call { func, args, .. } = p.node(id) else {
            return Ok(None);
        };
        let Node::Global {
            module,
            name: function,
        } = p.node(*func)
        else {
            return Ok(None);
        };
        if module != "torch._utils" {
            return Ok(None);
        }
        let args = p.as_seq(*args).ok_or_else(|| {
            owner.error(format!(
                "is rebuilt by {module}.{function} called with {}",
                p.describe(*args)
            ))
        })?;
        if REBUILD_PARAMETER.contains(&function.as_str()) {
            id = *args.first().ok_or_else(|| {
                owner.error(format!(
                    "is rebuilt by {module}.{function} called without a tensor"
                ))
            })?;
            continue;
        }
        if !REBUILD_TENSOR.contains(&function.as_str()) {
            return Ok(None);
        }
        if args.len() < 4 {
            return Err(owner.error(format!(
                "is rebuilt by {module}.{function} called with {} arguments",
                args.len()
            )));
        }
        let storage = match p.node(args[0]) {
            Node::PersId(pid) => storage_ref(p, *pid)?,
            _ => {
                return Err(owner.error(format!(
                    "has tensor storage {}, not a persistent reference",
                    p.describe(args[0])
                )));
            }
        };
        let offset = int_arg(p, args[1], "storage offset", owner)?;
        let size = int_tuple(p, args[2], "tensor size", owner)?;
        let stride = int_tuple(p, args[3], "tensor stride", owner)?;
        if size.len() != stride.len() {
            return Err(owner.error(format!(
                "has tensor size {size:?} and stride {stride:?}, which differ in length"
            )));
        }
        return Ok(Some(TensorRef {
            storage,
            offset,
            size,
            stride,
        }));
    }
    Err(owner.error("is wrapped in tensor rebuilds nested too deeply".into()))
}

/// The items of a dict, or of an `OrderedDict` built by REDUCE then SETITEMS (its BUILD state,
/// the `_metadata` attribute of a state dict, is not needed).
fn as_dict(p: &Pickle, id: NodeId) -> Option<Vec<(NodeId, NodeId)>> {
    match p.node(id) {
        Node::Dict(items) => Some(items.clone()),
        Node::Call {
            func, args, items, ..
        } if p.global_name(*func).as_deref() == Some("collections.OrderedDict") => {
            // `OrderedDict([(k, v), ...])` puts the items in the constructor argument.
            let mut out = Vec::new();
            if let Some(&first) = p.as_seq(*args).and_then(|a| a.first()) {
                match p.node(first) {
                    Node::Dict(d) => out.extend(d.iter().copied()),
                    Node::List(l) | Node::Tuple(l) => {
                        for &pair in l {
                            if let Some(&[k, v]) = p.as_seq(pair) {
                                out.push((k, v));
                            }
                        }
                    }
                    _ => {}
                }
            }
            out.extend(items.iter().copied());
            Some(out)
        }
        _ => None,
    }
}

fn lookup(p: &Pickle, items: &[(NodeId, NodeId)], key: &str) -> Option<NodeId> {
    // The last of equal keys wins, as in Python.
    items
        .iter()
        .rev()
        .find(|(k, _)| p.as_str(*k) == Some(key))
        .map(|&(_, v)| v)
}

/// Where a wrapped state dict is commonly kept, in the order they are tried.
const WRAPPER_KEYS: &[&str] = &["state_dict", "model", "model_state_dict", "net", "state"];

/// The tensors directly in a dict, in order; non-tensor values are skipped.
fn tensors_in(p: &Pickle, id: NodeId) -> Result<Vec<(String, TensorRef)>, FormatError> {
    let Some(items) = as_dict(p, id) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (k, v) in items {
        let name = p.as_str(k);
        let shown = name.map_or_else(|| p.describe(k), str::to_string);
        if let Some(t) = tensor_ref(p, v, &shown)? {
            let name = name.ok_or_else(|| {
                FormatError::Pickled(format!(
                    "a tensor is stored under {}, not a name",
                    p.describe(k)
                ))
            })?;
            out.push((name.to_string(), t));
        }
    }
    Ok(out)
}

fn search(
    p: &Pickle,
    id: NodeId,
    depth: usize,
) -> Result<Option<Vec<(String, TensorRef)>>, FormatError> {
    let Some(items) = as_dict(p, id) else {
        return Ok(None);
    };
    for key in WRAPPER_KEYS {
        if let Some(v) = lookup(p, &items, key) {
            let found = tensors_in(p, v)?;
            if !found.is_empty() {
                return Ok(Some(found));
            }
        }
    }
    let found = tensors_in(p, id)?;
    if !found.is_empty() {
        return Ok(Some(found));
    }
    // e.g. {'model': {'state_dict': {...}}}; depth-bounded because dicts may be cyclic.
    if depth < 3 {
        for key in WRAPPER_KEYS {
            if let Some(v) = lookup(p, &items, key)
                && let Some(found) = search(p, v, depth + 1)?
            {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// The state dict of a checkpoint: the root dict, or one under a wrapper key.
pub(crate) fn find_state_dict(p: &Pickle) -> Result<Vec<(String, TensorRef)>, FormatError> {
    if let Some(found) = search(p, p.root, 0)? {
        return Ok(found);
    }
    let what = p.describe(p.root);
    let keys: Vec<String> = as_dict(p, p.root)
        .unwrap_or_default()
        .iter()
        .take(12)
        .map(|&(k, _)| {
            p.as_str(k)
                .map_or_else(|| p.describe(k), |s| format!("{s:?}"))
        })
        .collect();
    Err(FormatError::Pickled(if keys.is_empty() {
        format!("no tensors found: the pickled object is {what}")
    } else {
        format!(
            "no tensors found: the pickled object is {what} with keys [{}], and none of them \
             (nor {WRAPPER_KEYS:?}) holds a dict of tensors",
            keys.join(", ")
        )
    }))
}

/// Returns the bytes of a storage: borrowed from the file buffer (legacy) or read (zip).
pub(crate) type StorageLoader<'l, 'a> =
    dyn FnMut(&StorageRef) -> Result<Cow<'a, [u8]>, FormatError> + 'l;

/// A loaded storage: its bytes, and the candle tensor over them once one is needed.
struct Loaded<'a> {
    storage: StorageRef,
    bytes: Cow<'a, [u8]>,
    tensor: Option<Tensor>,
}

/// Builds the candle tensors. `load` returns the bytes of a storage (exactly `nbytes()` long);
/// each storage is loaded once. Contiguous tensors are views that share their storage's memory
/// (so many tensors naming one storage cost nothing extra); strided ones are gathered into new
/// memory, at most `gather_budget` bytes in total, so a corrupt file cannot make us copy one
/// storage many times over.
pub(crate) fn build_tensors<'a>(
    refs: Vec<(String, TensorRef)>,
    load: &mut StorageLoader<'_, 'a>,
    mut gather_budget: u64,
) -> Result<BTreeMap<String, Tensor>, FormatError> {
    let mut storages: HashMap<String, Loaded<'a>> = HashMap::new();
    let mut out = BTreeMap::new();
    for (name, t) in refs {
        let key = t.storage.key.clone();
        let s = match storages.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let bytes = load(&t.storage)?;
                let expected = t.storage.nbytes()?;
                if bytes.len() as u64 != expected {
                    return Err(FormatError::storage(
                        &key,
                        format!("has {} bytes, expected {expected}", bytes.len()),
                    ));
                }
                e.insert(Loaded {
                    storage: t.storage.clone(),
                    bytes,
                    tensor: None,
                })
            }
        };
        if s.storage.ty != t.storage.ty || s.storage.numel != t.storage.numel {
            return Err(FormatError::storage(
                &key,
                format!(
                    "is referenced both as {} x {} and as {} x {}",
                    s.storage.numel, s.storage.ty.name, t.storage.numel, t.storage.ty.name
                ),
            ));
        }
        let tensor = build_one(&name, &t, s, &mut gather_budget)?;
        out.insert(name, tensor);
    }
    Ok(out)
}

fn build_one(
    name: &str,
    t: &TensorRef,
    s: &mut Loaded<'_>,
    gather_budget: &mut u64,
) -> Result<Tensor, FormatError> {
    let key = &t.storage.key;
    let dtype = t.storage.ty.dtype.ok_or_else(|| {
        FormatError::tensor(
            name,
            format!(
                "is a torch.{}, which has no candle dtype",
                t.storage.ty.name
            ),
        )
    })?;
    let (base, avail) = t.storage.view.unwrap_or((0, t.storage.numel));
    let overflow = || FormatError::tensor(name, format!("has size {:?}, which overflows", t.size));
    let numel = t
        .size
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(overflow)?;
    if numel == 0 {
        return Tensor::zeros(t.size.as_slice(), dtype, &Device::Cpu)
            .map_err(|e| FormatError::tensor(name, format!("cannot be built: {e}")));
    }
    // The furthest element the view touches: offset + sum((size_i - 1) * stride_i). Strides are
    // never negative in torch, so every element lies between `offset` and this.
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&d, &s)| {
            (d as u64 - 1)
                .checked_mul(s as u64)
                .and_then(|x| acc.checked_add(x))
        })
        .ok_or_else(overflow)?;
    if last >= avail {
        return Err(FormatError::tensor(
            name,
            format!(
                "(size {:?}, stride {:?}, offset {}) needs {} elements of storage `{key}`, which \
                 holds only {avail} (file truncated or damaged?)",
                t.size,
                t.stride,
                t.offset,
                last + 1
            ),
        ));
    }
    let start = base + t.offset;
    let to_usize = |v: u64| usize::try_from(v).map_err(|_| overflow());
    if is_contiguous(&t.size, &t.stride) {
        let storage_tensor = match &s.tensor {
            Some(st) => st.clone(),
            None => {
                let n = to_usize(t.storage.numel)?;
                let st = tensor_from_le_bytes(name, &s.bytes, dtype, &[n])?;
                s.tensor = Some(st.clone());
                st
            }
        };
        return storage_tensor
            .narrow(0, to_usize(start)?, to_usize(numel)?)
            .and_then(|v| v.reshape(t.size.as_slice()))
            .map_err(|e| FormatError::tensor(name, format!("cannot be built: {e}")));
    }
    let es = t.storage.ty.elem_size as u64;
    let nbytes = numel.checked_mul(es).ok_or_else(overflow)?;
    if nbytes > *gather_budget {
        return Err(FormatError::tensor(
            name,
            format!(
                "is a strided view (size {:?}, stride {:?}) needing {nbytes} bytes; the strided \
                 views of this file need far more memory than the file holds, so it is refused as \
                 damaged",
                t.size, t.stride
            ),
        ));
    }
    *gather_budget -= nbytes;
    let bytes = gather(
        &s.bytes,
        t.storage.ty.elem_size,
        to_usize(start)?,
        &t.size,
        &t.stride,
        to_usize(numel)?,
    )
    .ok_or_else(|| FormatError::tensor(name, format!("reaches outside storage `{key}`")))?;
    tensor_from_le_bytes(name, &bytes, dtype, &t.size)
}

/// Row-major contiguity; the stride of a dimension of size 1 does not matter.
fn is_contiguous(size: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&d, &s) in size.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}

/// Copies a strided view element by element into row-major order. `None` if it would read
/// outside `src` (callers check bounds first; this keeps it panic-free regardless).
fn gather(
    src: &[u8],
    es: usize,
    start: usize,
    size: &[usize],
    stride: &[usize],
    numel: usize,
) -> Option<Vec<u8>> {
    // Size-1 dimensions never step, whatever their stride says.
    let stride: Vec<usize> = size
        .iter()
        .zip(stride)
        .map(|(&d, &s)| if d == 1 { 0 } else { s })
        .collect();
    let mut out = Vec::with_capacity(numel.checked_mul(es)?);
    let mut idx = vec![0usize; size.len()];
    let mut off = start;
    for _ in 0..numel {
        let b = off.checked_mul(es)?;
        out.extend_from_slice(src.get(b..b.checked_add(es)?)?);
        // Odometer step over the multi-index, last dimension fastest.
        for d in (0..size.len()).rev() {
            idx[d] += 1;
            off = off.checked_add(stride[d])?;
            if idx[d] < size[d] {
                break;
            }
            off = off.checked_sub(stride[d].checked_mul(size[d])?)?;
            idx[d] = 0;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity() {
        assert!(is_contiguous(&[2, 3], &[3, 1]));
        assert!(is_contiguous(&[], &[]));
        assert!(is_contiguous(&[1, 3], &[999, 1]));
        assert!(!is_contiguous(&[2, 3], &[1, 2]));
        assert!(!is_contiguous(&[3], &[0]));
    }

    #[test]
    fn gather_transpose_and_broadcast() {
        // storage [0,1,2,3,4,5] as u8; the transpose of a 2x3 row-major matrix is size [3,2]
        // stride [1,3].
        let src = [0u8, 1, 2, 3, 4, 5];
        assert_eq!(
            gather(&src, 1, 0, &[3, 2], &[1, 3], 6).unwrap(),
            vec![0, 3, 1, 4, 2, 5]
        );
        // Every other element starting at 1; and a stride-0 broadcast.
        assert_eq!(gather(&src, 1, 1, &[3], &[2], 3).unwrap(), vec![1, 3, 5]);
        assert_eq!(
            gather(&src, 1, 4, &[2, 2], &[0, 1], 4).unwrap(),
            vec![4, 5, 4, 5]
        );
        // Size-1 dims with absurd strides are harmless; reads past the end give None.
        assert_eq!(
            gather(&src, 1, 2, &[1, 2], &[usize::MAX, 1], 2).unwrap(),
            vec![2, 3]
        );
        assert!(gather(&src, 1, 5, &[2], &[1], 2).is_none());
        // Two-byte elements.
        assert_eq!(gather(&src, 2, 0, &[3], &[1], 3).unwrap(), src.to_vec());
        assert_eq!(gather(&src, 2, 0, &[2], &[2], 2).unwrap(), vec![0, 1, 4, 5]);
    }

    #[test]
    fn policy() {
        assert!(global_policy("torch._utils", "_rebuild_tensor_v2").is_ok());
        assert!(global_policy("torch", "FloatStorage").is_ok());
        assert!(global_policy("collections", "OrderedDict").is_ok());
        let e = global_policy("os", "system").unwrap_err();
        assert!(
            e.contains("`os.system`") && e.contains("ever executed"),
            "{e}"
        );
        let e = global_policy("__main__", "Net").unwrap_err();
        assert!(e.contains("state_dict()"), "{e}");
        assert!(global_policy("builtins", "eval").is_err());
        assert!(global_policy("torch", "load").is_err());
    }
}
