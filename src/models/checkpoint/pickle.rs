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

use std::collections::HashMap;
use std::fmt;

/// Index of a node in [`Pickle::nodes`].
pub(crate) type NodeId = usize;

/// Most nodes one pickle may create. Each opcode creates at most one node and costs at least one
/// byte, so the input length already bounds this; the cap keeps a huge corrupt pickle from using
/// many times its own size in memory (a node is under 100 bytes, so this is at most ~400 MB). A
/// state dict needs about 25 nodes per tensor, so real checkpoints stay far below it.
const MAX_NODES: usize = 1 << 22;

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
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PickleError {
    pub offset: usize,
    pub reason: String,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pickle byte {})", self.reason, self.offset)
    }
}

/// Decides whether a global may appear at all; `Err` carries the reason shown to the user.
pub(crate) type GlobalPolicy<'a> = &'a dyn Fn(&str, &str) -> Result<(), String>;

/// Parses one pickle starting at `buf[start]` and stopping at its `STOP` opcode.
pub(crate) fn parse(
    buf: &[u8],
    start: usize,
    policy: GlobalPolicy<'_>,
) -> Result<Pickle, PickleError> {
    let mut vm = Vm {
        buf,
        pos: start,
        op_pos: start,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        policy,
    };
    vm.run().map_err(|reason| PickleError {
        offset: vm.op_pos,
        reason,
    })
}

struct Vm<'b, 'p> {
    buf: &'b [u8],
    pos: usize,
    /// Start of the opcode being executed, for error messages.
    op_pos: usize,
    nodes: Vec<Node>,
    stack: Vec<NodeId>,
    marks: Vec<usize>,
    memo: HashMap<u32, NodeId>,
    policy: GlobalPolicy<'p>,
}

type R<T> = Result<T, String>;

impl<'b> Vm<'b, '_> {
    fn run(&mut self) -> R<Pickle> {
        loop {
            self.op_pos = self.pos;
            let op = self
                .byte()
                .map_err(|_| "pickle ends before its STOP opcode (file truncated?)".to_string())?;
            match op {
                // PROTO
                0x80 => {
                    let v = self.byte()?;
                    if v > 5 {
                        return Err(format!("unsupported pickle protocol {v}"));
                    }
                }
                // FRAME: the frame length only helps buffering; opcodes continue inline.
                0x95 => {
                    let n = self.u64()?;
                    if n > self.remaining() as u64 {
                        return Err(format!(
                            "frame of {n} bytes is longer than the {} bytes left (file truncated?)",
                            self.remaining()
                        ));
                    }
                }
                b'.' => {
                    let root = self.pop()?;
                    return Ok(Pickle {
                        nodes: std::mem::take(&mut self.nodes),
                        root,
                        end: self.pos,
                    });
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    // POP: pops the top item, or a mark that is directly on top.
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?;
                    self.push_id(top)?;
                }
                b'N' => self.push(Node::None)?,
                0x88 => self.push(Node::Bool(true))?,
                0x89 => self.push(Node::Bool(false))?,
                b'J' => {
                    let b = self.take(4)?;
                    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    self.push(Node::Int(i128::from(v)))?;
                }
                b'K' => {
                    let v = self.byte()?;
                    self.push(Node::Int(i128::from(v)))?;
                }
                b'M' => {
                    let b = self.take(2)?;
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    self.push(Node::Int(i128::from(v)))?;
                }
                // LONG1 / LONG4: little-endian two's complement of the given length.
                0x8a => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?;
                    let node = long_from_le(b);
                    self.push(node)?;
                }
                0x8b => {
                    let n = self.u32()?;
                    let n = usize::try_from(n).map_err(|_| "LONG4 length overflows".to_string())?;
                    let b = self.take(n)?;
                    let node = long_from_le(b);
                    self.push(node)?;
                }
                // INT / LONG (text, protocol 0): `I01\n` / `I00\n` are True/False.
                b'I' => {
                    let line = self.line()?;
                    let node = match line {
                        "01" => Node::Bool(true),
                        "00" => Node::Bool(false),
                        s => Node::Int(
                            s.parse::<i128>()
                                .map_err(|_| format!("bad INT literal {s:?}"))?,
                        ),
                    };
                    self.push(node)?;
                }
                b'L' => {
                    let line = self.line()?;
                    let s = line.strip_suffix('L').unwrap_or(line);
                    let node = s.parse::<i128>().map(Node::Int).unwrap_or(Node::BigInt);
                    self.push(node)?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    self.push(Node::Float(v))?;
                }
                b'F' => {
                    let line = self.line()?;
                    let v = line
                        .parse::<f64>()
                        .map_err(|_| format!("bad FLOAT literal {line:?}"))?;
                    self.push(Node::Float(v))?;
                }
                // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                b'X' => {
                    let n = self.len_u32()?;
                    let s = self.utf8(n)?;
                    self.push(Node::Str(s))?;
                }
                0x8c => {
                    let n = usize::from(self.byte()?);
                    let s = self.utf8(n)?;
                    self.push(Node::Str(s))?;
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let s = self.utf8(n)?;
                    self.push(Node::Str(s))?;
                }
                // BINSTRING, SHORT_BINSTRING: Python 2 `str`. torch.load decodes them as text;
                // bytes that are not UTF-8 are taken as Latin-1, which never fails.
                b'T' => {
                    let n = self.len_u32()?;
                    let s = latin1_or_utf8(self.take(n)?);
                    self.push(Node::Str(s))?;
                }
                b'U' => {
                    let n = usize::from(self.byte()?);
                    let s = latin1_or_utf8(self.take(n)?);
                    self.push(Node::Str(s))?;
                }
                // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                b'B' => {
                    let n = self.len_u32()?;
                    let b = self.take(n)?.to_vec();
                    self.push(Node::Bytes(b))?;
                }
                b'C' => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?.to_vec();
                    self.push(Node::Bytes(b))?;
                }
                0x8e | 0x96 => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?.to_vec();
                    self.push(Node::Bytes(b))?;
                }
                b')' => self.push(Node::Tuple(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let at = self
                        .stack
                        .len()
                        .checked_sub(n)
                        .ok_or_else(|| format!("TUPLE{n} needs {n} items on the stack"))?;
                    let items = self.stack.split_off(at);
                    self.push(Node::Tuple(items))?;
                }
                b']' => self.push(Node::List(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?;
                }
                b'}' => self.push(Node::Dict(Vec::new()))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(&items)?;
                    self.push(Node::Dict(pairs))?;
                }
                0x8f => self.push(Node::Set(Vec::new()))?,
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::Set(items))?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append_to_top(vec![v])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.append_to_top(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.setitems_on_top(vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(&items)?;
                    self.setitems_on_top(pairs)?;
                }
                // GLOBAL: `module\nname\n`
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.global(module, name)?;
                }
                // STACK_GLOBAL: module and name are strings on the stack.
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Node::Str(module), Node::Str(name)) = (self.node(module), self.node(name))
                    else {
                        return Err("STACK_GLOBAL needs two strings".into());
                    };
                    let (module, name) = (module.clone(), name.clone());
                    self.global(module, name)?;
                }
                // REDUCE and NEWOBJ: record the call, never make it.
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.push(call(func, args))?;
                }
                // NEWOBJ_EX: keyword arguments are dropped; nothing we read uses them.
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.push(call(func, args))?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let top = self.top()?;
                    match self.node_mut(top)? {
                        Node::Call { state: s, .. } => *s = Some(state),
                        other => {
                            return Err(format!(
                                "BUILD applied to {}, which is not an object",
                                kind(other)
                            ));
                        }
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Node::PersId(pid))?;
                }
                b'P' => {
                    let line = self.line()?.to_string();
                    let pid = self.alloc(Node::Str(line))?;
                    self.push(Node::PersId(pid))?;
                }
                // BINPUT, LONG_BINPUT, PUT, MEMOIZE
                b'q' => {
                    let i = u32::from(self.byte()?);
                    self.put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.put(i)?;
                }
                b'p' => {
                    let i = self.line_index()?;
                    self.put(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len())
                        .map_err(|_| "memo grew too large".to_string())?;
                    self.put(i)?;
                }
                // BINGET, LONG_BINGET, GET
                b'h' => {
                    let i = u32::from(self.byte()?);
                    self.get(i)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.get(i)?;
                }
                b'g' => {
                    let i = self.line_index()?;
                    self.get(i)?;
                }
                b'i' | b'o' => {
                    return Err(format!(
                        "unsupported opcode {:?} (old-style instance creation)",
                        char::from(op)
                    ));
                }
                0x82..=0x84 => {
                    return Err("unsupported opcode EXT (extension registry)".into());
                }
                b'S' | b'V' => {
                    return Err(format!(
                        "unsupported text-protocol opcode {:?}",
                        char::from(op)
                    ));
                }
                other => {
                    return Err(format!(
                        "unknown pickle opcode 0x{other:02x} (not a pickle, or damaged)"
                    ));
                }
            }
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes. Lengths read from the file are checked here against what is actually
    /// left before anything is allocated for them.
    fn take(&mut self, n: usize) -> R<&'b [u8]> {
        let left = self.remaining();
        if n > left {
            return Err(format!(
                "needs {n} more bytes but only {left} are left (file truncated?)"
            ));
        }
        let start = self.pos;
        self.pos += n;
        self.buf
            .get(start..start + n)
            .ok_or_else(|| "read past the end".to_string())
    }

    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> R<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> R<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    fn len_u32(&mut self) -> R<usize> {
        usize::try_from(self.u32()?).map_err(|_| "length overflows".to_string())
    }

    fn len_u64(&mut self) -> R<usize> {
        usize::try_from(self.u64()?).map_err(|_| "length overflows".to_string())
    }

    fn utf8(&mut self, n: usize) -> R<String> {
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| "string is not valid UTF-8".to_string())
    }

    /// A `\n`-terminated ASCII line (text opcodes and GLOBAL).
    fn line(&mut self) -> R<&'b str> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err("line without a newline (file truncated?)".into());
        };
        let start = self.pos;
        self.pos += n + 1;
        let bytes = self.buf.get(start..start + n).unwrap_or(&[]);
        std::str::from_utf8(bytes).map_err(|_| "line is not valid text".to_string())
    }

    fn line_index(&mut self) -> R<u32> {
        let line = self.line()?;
        line.parse::<u32>()
            .map_err(|_| format!("bad memo index {line:?}"))
    }

    fn alloc(&mut self, node: Node) -> R<NodeId> {
        if self.nodes.len() >= MAX_NODES {
            return Err(format!("pickle has more than {MAX_NODES} objects"));
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn push(&mut self, node: Node) -> R<()> {
        let id = self.alloc(node)?;
        self.stack.push(id);
        Ok(())
    }

    fn push_id(&mut self, id: NodeId) -> R<()> {
        // The stack can only outgrow the arena through DUP/GET, which each cost a byte, so this
        // cap is reached only by garbage.
        if self.stack.len() >= MAX_NODES {
            return Err("pickle stack too deep".into());
        }
        self.stack.push(id);
        Ok(())
    }

    fn pop(&mut self) -> R<NodeId> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("stack underflow: popped past a MARK".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "stack underflow (not a pickle, or damaged)".to_string())
    }

    fn top(&self) -> R<NodeId> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| "stack underflow (not a pickle, or damaged)".to_string())
    }

    fn pop_mark(&mut self) -> R<Vec<NodeId>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| "opcode needs a MARK but there is none".to_string())?;
        if m > self.stack.len() {
            return Err("MARK points past the top of the stack".into());
        }
        Ok(self.stack.split_off(m))
    }

    fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id).unwrap_or(&Node::None)
    }

    fn node_mut(&mut self, id: NodeId) -> R<&mut Node> {
        self.nodes
            .get_mut(id)
            .ok_or_else(|| "internal: bad node id".to_string())
    }

    fn append_to_top(&mut self, items: Vec<NodeId>) -> R<()> {
        let top = self.top()?;
        match self.node_mut(top)? {
            Node::List(v) | Node::Set(v) => v.extend(items),
            Node::Call { appended, .. } => appended.extend(items),
            other => return Err(format!("APPEND to {}, which is not a list", kind(other))),
        }
        Ok(())
    }

    fn setitems_on_top(&mut self, pairs: Vec<(NodeId, NodeId)>) -> R<()> {
        let top = self.top()?;
        match self.node_mut(top)? {
            Node::Dict(v) => v.extend(pairs),
            Node::Call { items, .. } => items.extend(pairs),
            other => return Err(format!("SETITEM on {}, which is not a dict", kind(other))),
        }
        Ok(())
    }

    fn global(&mut self, module: String, name: String) -> R<()> {
        (self.policy)(&module, &name)?;
        self.push(Node::Global { module, name })
    }

    fn put(&mut self, i: u32) -> R<()> {
        let top = self.top()?;
        self.memo.insert(i, top);
        Ok(())
    }

    fn get(&mut self, i: u32) -> R<()> {
        let id = *self
            .memo
            .get(&i)
            .ok_or_else(|| format!("memo entry {i} is used before it is set"))?;
        self.push_id(id)
    }
}

fn call(func: NodeId, args: NodeId) -> Node {
    Node::Call {
        func,
        args,
        items: Vec::new(),
        appended: Vec::new(),
        state: None,
    }
}

fn kind(n: &Node) -> &'static str {
    match n {
        Node::None => "None",
        Node::Bool(_) => "a bool",
        Node::Int(_) | Node::BigInt => "an int",
        Node::Float(_) => "a float",
        Node::Str(_) => "a str",
        Node::Bytes(_) => "bytes",
        Node::Tuple(_) => "a tuple",
        Node::List(_) => "a list",
        Node::Dict(_) => "a dict",
        Node::Set(_) => "a set",
        Node::Global { .. } => "a class",
        Node::Call { .. } => "an object",
        Node::PersId(_) => "a persistent reference",
    }
}

fn pairs(items: &[NodeId]) -> R<Vec<(NodeId, NodeId)>> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of items for a dict".into());
    }
    Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

/// LONG1/LONG4 payload: little-endian two's complement.
fn long_from_le(b: &[u8]) -> Node {
    if b.is_empty() {
        return Node::Int(0);
    }
    if b.len() > 16 {
        return Node::BigInt;
    }
    let negative = b[b.len() - 1] & 0x80 != 0;
    let mut bytes = if negative { [0xffu8; 16] } else { [0u8; 16] };
    bytes[..b.len()].copy_from_slice(b);
    Node::Int(i128::from_le_bytes(bytes))
}

fn latin1_or_utf8(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| char::from(c)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow_all(_: &str, _: &str) -> Result<(), String> {
        Ok(())
    }

    fn parse_all(b: &[u8]) -> Result<Pickle, PickleError> {
        parse(b, 0, &allow_all)
    }

    #[test]
    fn plain_values() {
        // python3: pickle.dumps({'a': [1, -2, 300, 70000, 2**70, -1.5, None, True], 'b': (b'xy', 'é')}, protocol=2)
        let b = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffM,\x01J\x70\x11\x01\x00\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00@G\xbf\xf8\x00\x00\x00\x00\x00\x00N\x88eX\x01\x00\x00\x00bq\x03c_codecs\nencode\nq\x04X\x02\x00\x00\x00xyq\x05X\x06\x00\x00\x00latin1q\x06\x86q\x07Rq\x08X\x02\x00\x00\x00\xc3\xa9q\t\x86q\nu.";
        let p = parse_all(b).unwrap();
        assert_eq!(p.end, b.len());
        let Node::Dict(items) = p.node(p.root) else {
            panic!("root is {:?}", p.node(p.root))
        };
        assert_eq!(items.len(), 2);
        assert_eq!(p.as_str(items[0].0), Some("a"));
        let list = p.as_seq(items[0].1).unwrap();
        let vals: Vec<Node> = list.iter().map(|&i| p.node(i).clone()).collect();
        assert_eq!(
            vals,
            vec![
                Node::Int(1),
                Node::Int(-2),
                Node::Int(300),
                Node::Int(70000),
                Node::Int(1i128 << 70),
                Node::Float(-1.5),
                Node::None,
                Node::Bool(true),
            ]
        );
        let tup = p.as_seq(items[1].1).unwrap();
        assert_eq!(p.describe(tup[0]), "a _codecs.encode(...) object");
        assert_eq!(p.as_str(tup[1]), Some("é"));
    }

    #[test]
    fn memo_shares_objects() {
        // python3: d = {}; pickle.dumps([d, d], protocol=2) gives `] q0 ( } q1 h1 e`; then, by
        // hand: `h1 X'k' K7 s 0 .` sets an item on the memoised dict, which both slots must see.
        let b = b"]q\x00(}q\x01h\x01eh\x01X\x01\x00\x00\x00kK\x07s0.";
        let p = parse_all(b).unwrap();
        let list = p.as_seq(p.root).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], list[1]);
        let Node::Dict(items) = p.node(list[0]) else {
            panic!()
        };
        assert_eq!(items.len(), 1);
        assert_eq!(p.as_int(items[0].1), Some(7));
    }

    #[test]
    fn protocol4_frames_and_stack_global() {
        // python3: pickle.dumps(collections.OrderedDict([('x', 1)]), protocol=4)
        let b = b"\x80\x04\x95)\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94\x8c\x01x\x94K\x01s.";
        let p = parse_all(b).unwrap();
        let Node::Call { func, items, .. } = p.node(p.root) else {
            panic!()
        };
        assert_eq!(
            p.global_name(*func).as_deref(),
            Some("collections.OrderedDict")
        );
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn policy_rejects_globals_before_anything_runs() {
        // What a malicious `__reduce__` returning (os.system, ('touch /tmp/pwned',)) pickles to,
        // spelled by hand as `os.system` (CPython itself writes `posix.system`).
        let b = b"\x80\x02cos\nsystem\nq\x00X\x10\x00\x00\x00touch /tmp/pwnedq\x01\x85q\x02Rq\x03.";
        let policy = |m: &str, n: &str| -> Result<(), String> {
            if m == "collections" {
                Ok(())
            } else {
                Err(format!("refusing global `{m}.{n}`"))
            }
        };
        let err = parse(b, 0, &policy).unwrap_err();
        assert_eq!(err.offset, 2);
        assert!(err.to_string().contains("`os.system`"), "{err}");
        // python3 -c 'pickle.dumps(E(), protocol=4)': STACK_GLOBAL, same outcome.
        let b4 = b"\x80\x04\x95\x2b\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x10touch /tmp/pwned\x94\x85\x94R\x94.";
        let err = parse(b4, 0, &policy).unwrap_err();
        assert!(err.to_string().contains("`posix.system`"), "{err}");
        // With a permissive policy the call is only recorded, never made.
        let p = parse_all(b).unwrap();
        assert_eq!(p.describe(p.root), "a os.system(...) object");
        assert!(!std::path::Path::new("/tmp/pwned").exists());
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        let good = b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s.";
        for cut in 0..good.len() {
            let err = parse_all(&good[..cut]).unwrap_err();
            assert!(err.reason.contains("truncated"), "cut {cut}: {err}");
        }
        // A length prefix far beyond the data: refused before allocating.
        let huge = b"\x80\x02X\xff\xff\xff\xff";
        assert!(parse_all(huge).unwrap_err().reason.contains("truncated"));
        let huge8 = b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f";
        assert!(parse_all(huge8).unwrap_err().reason.contains("truncated"));
        // Garbage, underflow, unset memo, unknown opcode.
        assert!(
            parse_all(b"\x80\x02R.")
                .unwrap_err()
                .reason
                .contains("underflow")
        );
        assert!(
            parse_all(b"\x80\x02h\x05.")
                .unwrap_err()
                .reason
                .contains("memo entry 5")
        );
        assert!(
            parse_all(b"\xff")
                .unwrap_err()
                .reason
                .contains("unknown pickle opcode 0xff")
        );
        assert!(
            parse_all(b"\x80\x02K\x05(K\x01K\x02u.")
                .unwrap_err()
                .reason
                .contains("SETITEM on an int")
        );
        assert!(parse_all(b"\x80\x02K\x01(b.").is_err());
        assert!(
            parse_all(b"\x80\x09.")
                .unwrap_err()
                .reason
                .contains("protocol 9")
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        // 200k nested 1-tuples: each TUPLE1 costs one byte. Building and dropping the tree must
        // not recurse.
        let mut b = vec![0x80, 0x02, b'N'];
        b.extend(std::iter::repeat_n(0x85u8, 200_000));
        b.push(b'.');
        let p = parse_all(&b).unwrap();
        assert_eq!(p.nodes.len(), 200_001);
    }

    #[test]
    fn longs() {
        assert_eq!(long_from_le(&[]), Node::Int(0));
        assert_eq!(long_from_le(&[0xff]), Node::Int(-1));
        assert_eq!(long_from_le(&[0x00, 0x80]), Node::Int(-32768));
        assert_eq!(long_from_le(&[0x80, 0x00]), Node::Int(128));
        assert_eq!(long_from_le(&[1; 17]), Node::BigInt);
        // torch's legacy magic number, as pickled by LONG1.
        assert_eq!(
            long_from_le(b"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"),
            Node::Int(0x1950a86a20f9469cfc6c)
        );
    }
}
