use super::vm::long_from_le;
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
