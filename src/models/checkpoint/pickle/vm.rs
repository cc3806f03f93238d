//! The opcode machine behind [`super::parse`]: a stack, a mark stack and a memo over the node
//! arena, one opcode at a time. Every length read from the input is checked against what is left
//! before anything is allocated for it.

use std::collections::HashMap;

use super::{GlobalPolicy, Node, NodeId, Pickle, PickleError};

/// Most nodes one pickle may create. Each opcode creates at most one node and costs at least one
/// byte, so the input length already bounds this; the cap keeps a huge corrupt pickle from using
/// many times its own size in memory (a node is under 100 bytes, so this is at most ~400 MB). A
/// state dict needs about 25 nodes per tensor, so real checkpoints stay far below it.
const MAX_NODES: usize = 1 << 22;

/// The machine's state while it reads one pickle.
pub(super) struct Vm<'b, 'p> {
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
impl<'b, 'p> Vm<'b, 'p> {
    pub(super) fn new(buf: &'b [u8], start: usize, policy: GlobalPolicy<'p>) -> Self {
        Vm {
            buf,
            pos: start,
            op_pos: start,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            policy,
        }
    }

    /// Runs to the `STOP` opcode; an error names the offset of the opcode that failed.
    pub(super) fn run(mut self) -> Result<Pickle, PickleError> {
        self.step_to_stop().map_err(|reason| PickleError {
            offset: self.op_pos,
            reason,
        })
    }
}

impl<'b> Vm<'b, '_> {
    fn step_to_stop(&mut self) -> R<Pickle> {
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
pub(super) fn long_from_le(b: &[u8]) -> Node {
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
