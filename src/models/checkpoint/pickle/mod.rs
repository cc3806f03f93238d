//! A small pickle reader that never executes anything.
//!
//! Python's unpickler is a stack machine whose `GLOBAL` opcode imports any callable and whose
//! `REDUCE` opcode calls it, which is why loading an untrusted `.pth` with `pickle` is arbitrary
//! code execution. This reader runs the same opcodes symbolically: `GLOBAL` yields a
//! [`Node::Global`] naming the class, `REDUCE`/`NEWOBJ` yield a [`Node::Call`] that only records
//! the callable and its arguments, and `BINPERSID` yields a [`Node::PersId`]. Whoever reads the
//! tree decides what (if anything) a recorded call means; see `torch.rs`.
//!
//! Every object lives in one arena and is referred to by index, like Python's object references:
//! memo lookups share the object rather than copying it (so later `SETITEMS` on a memoised dict are
//! seen by every holder), cycles cost nothing, and dropping the tree never recurses.
//!
//! Each global is checked against a caller-supplied policy the moment the `GLOBAL` opcode is read,
//! so a pickle naming `os.system` fails there, before anything else is looked at.

#[cfg(test)]
mod tests;
mod vm;

/// Index of a node in [`Pickle::nodes`].
pub(crate) type NodeId = usize;

/// A pickled object, symbolically.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i128),
    /// An integer wider than 128 bits: nothing in a checkpoint needs its value.
    BigInt,
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<NodeId>),
    List(Vec<NodeId>),
    /// Key/value pairs in insertion order (a later equal key wins when read as a map).
    Dict(Vec<(NodeId, NodeId)>),
    Set(Vec<NodeId>),
    /// `module.name`, as named by `GLOBAL`/`STACK_GLOBAL`. Never imported.
    Global {
        module: String,
        name: String,
    },
    /// `func(*args)` as `REDUCE`/`NEWOBJ` asked for it, never performed; `items`, `appended` and
    /// `state` record what `SETITEM(S)`, `APPEND(S)` and `BUILD` later did to the result.
    Call {
        func: NodeId,
        args: NodeId,
        items: Vec<(NodeId, NodeId)>,
        appended: Vec<NodeId>,
        state: Option<NodeId>,
    },
    /// The result of `persistent_load(pid)`: for torch, a reference to a storage.
    PersId(NodeId),
}

/// A parsed pickle: the object arena, the root object and where the pickle ended.
#[derive(Debug)]
pub(crate) struct Pickle {
    pub nodes: Vec<Node>,
    pub root: NodeId,
    /// Offset just past the `STOP` opcode, in the buffer given to [`parse`].
    pub end: usize,
}

impl Pickle {
    pub fn node(&self, id: NodeId) -> &Node {
        // Ids only come from this arena, so they are always in range; `None` keeps this total.
        self.nodes.get(id).unwrap_or(&Node::None)
    }

    pub fn as_str(&self, id: NodeId) -> Option<&str> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self, id: NodeId) -> Option<i128> {
        match self.node(id) {
            Node::Int(i) => Some(*i),
            Node::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn as_seq(&self, id: NodeId) -> Option<&[NodeId]> {
        match self.node(id) {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }

    /// `Some("module.name")` if `id` is a global.
    pub fn global_name(&self, id: NodeId) -> Option<String> {
        match self.node(id) {
            Node::Global { module, name } => Some(format!("{module}.{name}")),
            _ => None,
        }
    }

    /// A short description of a node for error messages.
    pub fn describe(&self, id: NodeId) -> String {
        match self.node(id) {
            Node::None => "None".into(),
            Node::Bool(b) => format!("bool {b}"),
            Node::Int(i) => format!("int {i}"),
            Node::BigInt => "a very large int".into(),
            Node::Float(f) => format!("float {f}"),
            Node::Str(s) => format!("str {s:?}"),
            Node::Bytes(b) => format!("bytes (len {})", b.len()),
            Node::Tuple(v) => format!("tuple (len {})", v.len()),
            Node::List(v) => format!("list (len {})", v.len()),
            Node::Dict(v) => format!("dict (len {})", v.len()),
            Node::Set(v) => format!("set (len {})", v.len()),
            Node::Global { module, name } => format!("class {module}.{name}"),
            Node::Call { func, .. } => match self.global_name(*func) {
                Some(g) => format!("a {g}(...) object"),
                None => "an object".into(),
            },
            Node::PersId(_) => "a persistent reference".into(),
        }
    }
}

/// What went wrong, and at which byte of the buffer given to [`parse`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason} (pickle byte {offset})")]
pub struct PickleError {
    pub offset: usize,
    pub reason: String,
}

/// Decides whether a global may appear at all; `Err` carries the reason shown to the user.
pub(crate) type GlobalPolicy<'a> = &'a dyn Fn(&str, &str) -> Result<(), String>;

/// Parses one pickle starting at `buf[start]` and stopping at its `STOP` opcode.
pub(crate) fn parse(
    buf: &[u8],
    start: usize,
    policy: GlobalPolicy<'_>,
) -> Result<Pickle, PickleError> {
    vm::Vm::new(buf, start, policy).run()
}
