//! Checkpoint reader: the real fixtures in `shared/weights/` (read in place), synthetic PyTorch
//! files built from the pickles below, and damaged or foreign files, each of which must give an
//! error naming the file and the problem.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use blindspot::models::ModelError;
use blindspot::models::checkpoint::{CheckpointFormat, FormatError, read_checkpoint, sha256_file};
use candle_core::{DType, Tensor};
use tempfile::TempDir;
use zip::write::SimpleFileOptions;

// Pickles made with python3's `pickle` (protocol 2, as torch.save writes) by a script that fakes
// the `torch` module so that pickle can name its globals, and whose Pickler.persistent_id emits
// torch's storage tuples: `('storage', torch.XStorage, key, 'cpu', numel)` (zip) or
// `('storage', torch.XStorage, key, 'cuda:0', numel, view_metadata)` (legacy). Tensors are
// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.

/// `{'epoch': 3, 'model_state_dict': OrderedDict(module.w: f32 [2,3] on storage 0, module.wt: its transpose (stride [1,3]), module.tail: [2] at offset 4, module.p: a Parameter, f16 [3] on storage 1, module.n: i64 scalar on storage 2, module.mask: bool [2] on storage 3, module.empty: [0,4], module.note: a str), 'optimizer': {'lr': 0.1}}`
const MULTI: &[u8] = b"\x80\x02}q\x00(X\x05\x00\x00\x00epochq\x01K\x03X\x10\x00\x00\x00model_state_dictq\x02ccollections\x0aOrderedDict\x0aq\x03)Rq\x04(X\x08\x00\x00\x00module.wq\x05ctorch._utils\x0a_rebuild_tensor_v2\x0aq\x06((X\x07\x00\x00\x00storageq\x07ctorch\x0aFloatStorage\x0aq\x08X\x01\x00\x00\x000q\x09X\x03\x00\x00\x00cpuq\x0aK\x06tq\x0bQK\x00K\x02K\x03\x86q\x0cK\x03K\x01\x86q\x0d\x89h\x03)Rq\x0etq\x0fRq\x10X\x09\x00\x00\x00module.wtq\x11h\x06((h\x07h\x08h\x09h\x0aK\x06tq\x12QK\x00K\x03K\x02\x86q\x13K\x01K\x03\x86q\x14\x89h\x03)Rq\x15tq\x16Rq\x17X\x0b\x00\x00\x00module.tailq\x18h\x06((h\x07h\x08h\x09h\x0aK\x06tq\x19QK\x04K\x02\x85q\x1aK\x01\x85q\x1b\x89h\x03)Rq\x1ctq\x1dRq\x1eX\x08\x00\x00\x00module.pq\x1fctorch._utils\x0a_rebuild_parameter\x0aq h\x06((h\x07ctorch\x0aHalfStorage\x0aq!X\x01\x00\x00\x001q\x22h\x0aK\x03tq#QK\x00K\x03\x85q$h\x1b\x89h\x03)Rq%tq&Rq'\x88h\x03)Rq(\x87q)Rq*X\x08\x00\x00\x00module.nq+h\x06((h\x07ctorch\x0aLongStorage\x0aq,X\x01\x00\x00\x002q-h\x0aK\x01tq.QK\x00))\x89h\x03)Rq/tq0Rq1X\x0b\x00\x00\x00module.maskq2h\x06((h\x07ctorch\x0aBoolStorage\x0aq3X\x01\x00\x00\x003q4h\x0aK\x02tq5QK\x00h\x1ah\x1b\x89h\x03)Rq6tq7Rq8X\x0c\x00\x00\x00module.emptyq9h\x06((h\x07h\x08h\x09h\x0aK\x06tq:QK\x00K\x00K\x04\x86q;K\x04K\x01\x86q<\x89h\x03)Rq=tq>Rq?X\x0b\x00\x00\x00module.noteq@X\x0c\x00\x00\x00not a tensorqAuX\x09\x00\x00\x00optimizerqB}qCX\x02\x00\x00\x00lrqDG?\xb9\x99\x99\x99\x99\x99\x9asu.";

/// `{'w': f32 [2,3] on storage 0}` whose persistent id says storage 0 has 4 elements.
const SHORT: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\x0a_rebuild_tensor_v2\x0aq\x02((X\x07\x00\x00\x00storageq\x03ctorch\x0aFloatStorage\x0aq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x04tq\x07QK\x00K\x02K\x03\x86q\x08K\x03K\x01\x86q\x09\x89ccollections\x0aOrderedDict\x0aq\x0a)Rq\x0btq\x0cRq\x0ds.";

/// `{'w': f32 [2,2] stride [2,1] at offset 3}` on a 6-element storage: reaches element 6.
const OFFSET: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\x0a_rebuild_tensor_v2\x0aq\x02((X\x07\x00\x00\x00storageq\x03ctorch\x0aFloatStorage\x0aq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x06tq\x07QK\x03K\x02K\x02\x86q\x08K\x02K\x01\x86q\x09\x89ccollections\x0aOrderedDict\x0aq\x0a)Rq\x0btq\x0cRq\x0ds.";

/// `{'w': f32 [2]}` whose persistent id claims 2^60 elements.
const HUGE: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\x0a_rebuild_tensor_v2\x0aq\x02((X\x07\x00\x00\x00storageq\x03ctorch\x0aFloatStorage\x0aq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x10tq\x07QK\x00K\x02\x85q\x08K\x01\x85q\x09\x89ccollections\x0aOrderedDict\x0aq\x0a)Rq\x0btq\x0cRq\x0ds.";

/// `{'w': tensor, 'x': os.system('echo pwned')}` (the object a malicious `__reduce__` leaves).
const EVIL: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00wq\x01ctorch._utils\x0a_rebuild_tensor_v2\x0aq\x02((X\x07\x00\x00\x00storageq\x03ctorch\x0aFloatStorage\x0aq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x01tq\x07QK\x00K\x01\x85q\x08h\x08\x89ccollections\x0aOrderedDict\x0aq\x09)Rq\x0atq\x0bRq\x0cX\x01\x00\x00\x00xq\x0dcos\x0asystem\x0aq\x0eX\x0a\x00\x00\x00echo pwnedq\x0f\x85q\x10Rq\x11u.";

/// `{'epoch': 3, 'best': 1.5}`.
const NOTENSOR: &[u8] = b"\x80\x02}q\x00(X\x05\x00\x00\x00epochq\x01K\x03X\x04\x00\x00\x00bestq\x02G?\xf8\x00\x00\x00\x00\x00\x00u.";

/// Legacy main object: `{'state_dict': OrderedDict(module.a: f64 [5] on root storage '140', module.b: f64 [2] at offset 1 of the view ('141', offset 2, size 3) of '140'), 'best_prec1': 90.5}`.
const LEGACY_MAIN: &[u8] = b"\x80\x02}q\x00(X\x0a\x00\x00\x00state_dictq\x01ccollections\x0aOrderedDict\x0aq\x02)Rq\x03(X\x08\x00\x00\x00module.aq\x04ctorch._utils\x0a_rebuild_tensor_v2\x0aq\x05((X\x07\x00\x00\x00storageq\x06ctorch\x0aDoubleStorage\x0aq\x07X\x03\x00\x00\x00140q\x08X\x06\x00\x00\x00cuda:0q\x09K\x05Ntq\x0aQK\x00K\x05\x85q\x0bK\x01\x85q\x0c\x89h\x02)Rq\x0dtq\x0eRq\x0fX\x08\x00\x00\x00module.bq\x10h\x05((h\x06h\x07h\x08h\x09K\x05X\x03\x00\x00\x00141q\x11K\x02K\x03\x87q\x12tq\x13QK\x01K\x02\x85q\x14h\x0c\x89h\x02)Rq\x15tq\x16Rq\x17uX\x0a\x00\x00\x00best_prec1q\x18G@V\xa0\x00\x00\x00\x00\x00u.";

/// Legacy storage key list `['140']`.
const LEGACY_KEYS: &[u8] = b"\x80\x02]q\x00X\x03\x00\x00\x00140q\x01a.";

/// Legacy magic number, protocol version 1001 and sys_info, three pickles back to back.
const LEGACY_HEAD: &[u8] = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03X\x0d\x00\x00\x00little_endianq\x02\x88X\x0a\x00\x00\x00type_sizesq\x03}q\x04(X\x05\x00\x00\x00shortq\x05K\x02X\x03\x00\x00\x00intq\x06K\x04X\x04\x00\x00\x00longq\x07K\x04uu.";

fn weights(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/weights")).join(name)
}

const RESNET20_LEGACY: &str = "resnet20-12fca82f.th";
const RESNET20_ZIP: &str = "resnet20_cifar10_zip.pth";
const RESNET20_ST: &str = "resnet20_cifar10.safetensors";
const EFFNET_ST: &str = "efficientnet_lite0.safetensors";

/// Raw bytes of a tensor, row-major, so that comparisons are bit-exact (NaN-safe too).
fn raw(t: &Tensor) -> Vec<u8> {
    let t = t.flatten_all().unwrap();
    match t.dtype() {
        DType::F32 => t
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::I64 => t
            .to_vec1::<i64>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::U8 => t.to_vec1::<u8>().unwrap(),
        other => panic!("raw() does not handle {other:?}"),
    }
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Asserts that reading `path` fails with a message that names the file and contains `needles`.
fn expect_err(path: &Path, needles: &[&str]) -> String {
    let err = match read_checkpoint(path) {
        Ok(c) => panic!(
            "{} loaded ({} tensors) but should fail",
            path.display(),
            c.tensors.len()
        ),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name the file: {msg}"
    );
    for n in needles {
        assert!(msg.contains(n), "message lacks {n:?}: {msg}");
    }
    msg
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A torch-style zip: `archive/data.pkl`, `archive/byteorder`, then `archive/data/<key>` records.
fn torch_zip(pkl: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("archive/data.pkl", opts).unwrap();
    z.write_all(pkl).unwrap();
    z.start_file("archive/byteorder", opts).unwrap();
    z.write_all(b"little").unwrap();
    for (key, bytes) in storages {
        z.start_file(format!("archive/data/{key}"), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.start_file("archive/version", opts).unwrap();
    z.write_all(b"3\n").unwrap();
    z.finish().unwrap();
    out.into_inner()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The storages of [`MULTI`].
fn multi_storages() -> Vec<(&'static str, Vec<u8>)> {
    let f16: Vec<u8> = [1.0f32, -2.0, 0.5]
        .iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect();
    vec![
        ("0", f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])),
        ("1", f16),
        ("2", 7i64.to_le_bytes().to_vec()),
        ("3", vec![0, 1]),
    ]
}

/// A legacy file: header pickles, main pickle, key list, then per key a u64 count and the data.
fn legacy_file(count: u64, values: &[f64]) -> Vec<u8> {
    let mut b = [LEGACY_HEAD, LEGACY_MAIN, LEGACY_KEYS].concat();
    b.extend_from_slice(&count.to_le_bytes());
    for v in values {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

#[test]
fn resnet20_three_formats_are_bit_identical() {
    let legacy = read_checkpoint(&weights(RESNET20_LEGACY)).unwrap();
    let zip = read_checkpoint(&weights(RESNET20_ZIP)).unwrap();
    let st = read_checkpoint(&weights(RESNET20_ST)).unwrap();
    assert_eq!(legacy.format, CheckpointFormat::TorchLegacy);
    assert_eq!(zip.format, CheckpointFormat::TorchZip);
    assert_eq!(st.format, CheckpointFormat::Safetensors);
    assert_eq!(st.tensors.len(), 97);
    let names = |c: &BTreeMap<String, Tensor>| c.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&legacy.tensors), names(&st.tensors));
    assert_eq!(names(&zip.tensors), names(&st.tensors));
    // `module.` is gone, `best_prec1` / `epoch` are not tensors.
    assert!(st.tensors.contains_key("conv1.weight"));
    assert!(legacy.tensors.keys().all(|k| !k.starts_with("module.")));
    for (name, want) in &st.tensors {
        for (label, c) in [("legacy", &legacy), ("zip", &zip)] {
            let got = &c.tensors[name];
            assert_eq!(got.dtype(), want.dtype(), "{label} {name}");
            assert_eq!(got.dims(), want.dims(), "{label} {name}");
            assert!(raw(got) == raw(want), "{label} {name}: values differ");
        }
    }
    assert_eq!(st.tensors["conv1.weight"].dims(), &[16, 3, 3, 3]);
    assert_eq!(st.tensors["linear.weight"].dims(), &[10, 64]);
    assert_eq!(legacy.tensors["layer3.2.bn2.running_var"].dims(), &[64]);
    assert!(!st.metadata.is_empty());
    assert!(legacy.metadata.is_empty() && zip.metadata.is_empty());
    assert_eq!(legacy.path, weights(RESNET20_LEGACY));
}

#[test]
fn efficientnet_lite0_safetensors() {
    let c = read_checkpoint(&weights(EFFNET_ST)).unwrap();
    assert_eq!(c.format, CheckpointFormat::Safetensors);
    assert_eq!(c.tensors.len(), 247);
    assert!(!c.metadata.is_empty());
    assert!(c.tensors.values().all(|t| t.dtype() == DType::F32));
    assert_eq!(c.tensors["_fc.weight"].dims(), &[1000, 1280]);
    assert_eq!(c.tensors["_conv_head.weight"].dims(), &[1280, 320, 1, 1]);
    let params: usize = c.tensors.values().map(|t| t.elem_count()).sum();
    assert!((4_600_000..4_700_000).contains(&params), "{params}");
}

#[test]
fn sha256_of_fixtures() {
    assert_eq!(
        sha256_file(&weights(RESNET20_ST)).unwrap(),
        "d0528e825e259e9553cca500c59f043bbf6e1303dfd450af9aa2990f7874d7dd"
    );
    assert!(
        sha256_file(&weights(RESNET20_LEGACY))
            .unwrap()
            .starts_with("12fca82f0bebc413")
    );
    let missing = weights("no_such_file.pth");
    let err = sha256_file(&missing).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }));
    assert!(err.to_string().contains("no_such_file.pth"));
}

#[test]
fn synthetic_zip_dtypes_views_and_wrappers() {
    let dir = TempDir::new().unwrap();
    let p = write(&dir, "multi.pt", &torch_zip(MULTI, &multi_storages()));
    let c = read_checkpoint(&p).unwrap();
    assert_eq!(c.format, CheckpointFormat::TorchZip);
    // Found under `model_state_dict`, `module.` stripped, the str entry skipped.
    let names: Vec<&str> = c.tensors.keys().map(String::as_str).collect();
    assert_eq!(names, ["empty", "mask", "n", "p", "tail", "w", "wt"]);
    let t = &c.tensors;
    assert_eq!(t["w"].dims(), &[2, 3]);
    assert_eq!(f32s(&t["w"]), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    // The transposed view is gathered, not read as if contiguous.
    assert_eq!(t["wt"].dims(), &[3, 2]);
    assert_eq!(f32s(&t["wt"]), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(f32s(&t["tail"]), [4.0, 5.0]);
    assert_eq!(t["p"].dtype(), DType::F16);
    assert_eq!(
        f32s(&t["p"].to_dtype(DType::F32).unwrap()),
        [1.0, -2.0, 0.5]
    );
    assert_eq!(t["n"].dtype(), DType::I64);
    assert_eq!(t["n"].rank(), 0);
    assert_eq!(t["n"].to_scalar::<i64>().unwrap(), 7);
    assert_eq!(t["mask"].dtype(), DType::U8);
    assert_eq!(raw(&t["mask"]), [0, 1]);
    assert_eq!(t["empty"].dims(), &[0, 4]);
    assert!(c.metadata.is_empty());
}

#[test]
fn synthetic_legacy_with_storage_view() {
    let dir = TempDir::new().unwrap();
    let values = [10.0, 11.0, 12.0, 13.0, 14.0];
    let p = write(&dir, "legacy.th", &legacy_file(5, &values));
    let c = read_checkpoint(&p).unwrap();
    assert_eq!(c.format, CheckpointFormat::TorchLegacy);
    let names: Vec<&str> = c.tensors.keys().map(String::as_str).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(c.tensors["a"].dtype(), DType::F64);
    assert_eq!(c.tensors["a"].to_vec1::<f64>().unwrap(), values);
    // `b` is offset 1 into the view that starts at element 2 of the root storage.
    assert_eq!(c.tensors["b"].to_vec1::<f64>().unwrap(), [13.0, 14.0]);

    // The stored count must match the persistent id.
    let p = write(&dir, "count.th", &legacy_file(4, &values[..4]));
    expect_err(
        &p,
        &[
            "storage `140`",
            "says it has 4 elements",
            "checkpoint says 5",
        ],
    );
    // Storage data cut short: detected from the count before anything is read.
    let p = write(&dir, "short_data.th", &legacy_file(5, &values[..3]));
    expect_err(&p, &["needs 40 bytes", "only 24 are left", "truncated"]);
}

#[test]
fn every_prefix_of_synthetic_files_is_a_clean_error() {
    // Cut at every byte: header, pickles, zip directory, storage data. None may panic, and
    // each must be an error that names the file.
    let dir = TempDir::new().unwrap();
    let legacy = legacy_file(5, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    let zipped = torch_zip(MULTI, &multi_storages());
    for (label, full) in [("legacy", &legacy), ("zip", &zipped)] {
        let p = dir.path().join(format!("cut_{label}"));
        for cut in 0..full.len() {
            std::fs::write(&p, &full[..cut]).unwrap();
            let err = read_checkpoint(&p)
                .err()
                .unwrap_or_else(|| panic!("{label} cut at {cut} of {} loaded", full.len()));
            let msg = err.to_string();
            assert!(msg.contains(&p.display().to_string()), "{msg}");
            assert!(
                matches!(err, ModelError::Format { .. }),
                "{label} cut {cut}: {msg}"
            );
        }
    }
}

#[test]
fn synthetic_zip_errors() {
    let dir = TempDir::new().unwrap();
    let mut short = multi_storages();
    short[0].1.truncate(20);
    let p = write(&dir, "short_record.pt", &torch_zip(MULTI, &short));
    expect_err(
        &p,
        &["archive/data/0", "holds 20 bytes", "checkpoint says 24"],
    );

    let p = write(
        &dir,
        "missing.pt",
        &torch_zip(MULTI, &multi_storages()[..3]),
    );
    expect_err(&p, &["record `archive/data/3` is missing"]);

    let p = write(
        &dir,
        "short_storage.pt",
        &torch_zip(SHORT, &[("0", f32_bytes(&[0.0; 4]))]),
    );
    expect_err(&p, &["tensor `w`", "needs 6 elements", "holds only 4"]);

    let p = write(
        &dir,
        "offset.pt",
        &torch_zip(OFFSET, &[("0", f32_bytes(&[0.0; 6]))]),
    );
    expect_err(
        &p,
        &["tensor `w`", "offset 3", "needs 7 elements", "holds only 6"],
    );

    // 2^60 elements are never allocated: the record's real size contradicts the claim.
    let p = write(
        &dir,
        "huge.pt",
        &torch_zip(HUGE, &[("0", f32_bytes(&[0.0; 2]))]),
    );
    expect_err(
        &p,
        &["holds 8 bytes", "checkpoint says 4611686018427387904"],
    );

    let p = write(
        &dir,
        "evil.pt",
        &torch_zip(EVIL, &[("0", f32_bytes(&[0.0]))]),
    );
    expect_err(&p, &["`os.system`", "nothing in the file is ever executed"]);

    let p = write(&dir, "no_tensors.pt", &torch_zip(NOTENSOR, &[]));
    expect_err(&p, &["no tensors found", "\"epoch\"", "\"best\""]);

    // A zip that is not a torch checkpoint at all.
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    z.start_file("readme.txt", SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"hello").unwrap();
    z.finish().unwrap();
    let p = write(&dir, "other.zip", &out.into_inner());
    expect_err(&p, &["without a data.pkl"]);
}

#[test]
fn truncated_fixtures() {
    let dir = TempDir::new().unwrap();
    for name in [RESNET20_LEGACY, RESNET20_ZIP, RESNET20_ST, EFFNET_ST] {
        let full = std::fs::read(weights(name)).unwrap();
        for cut in [10, full.len() / 2, full.len() - 100] {
            let p = write(&dir, &format!("{cut}_{name}"), &full[..cut]);
            let msg = expect_err(&p, &["truncated"]);
            // Each format's own reader reports it, not the "unknown content" fallback.
            assert!(!msg.contains("not a checkpoint"), "{msg}");
        }
    }
}

#[test]
fn empty_random_text_and_image_files() {
    let dir = TempDir::new().unwrap();
    expect_err(&write(&dir, "empty.pth", b""), &["file is empty"]);

    // xorshift64 bytes; fixed seed, so the test is deterministic.
    let mut s = 0x9e3779b97f4a7c15u64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    expect_err(
        &write(&dir, "random.pth", &random),
        &["not a checkpoint", "unknown content"],
    );

    let text = b"epoch,loss\n1,0.5\n2,0.25\n";
    expect_err(
        &write(&dir, "notes.pth", text),
        &["not a checkpoint", "text file"],
    );

    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/cifar10_test_png/cat/0000.png"
    ))
    .unwrap();
    expect_err(
        &write(&dir, "image.pth", &png),
        &["not a checkpoint", "PNG image"],
    );

    // A plain pickle that is not a torch file.
    expect_err(
        &write(&dir, "plain.pkl", NOTENSOR),
        &["not a PyTorch checkpoint", "torch's magic number"],
    );

    // Not a file at all, and no file.
    expect_err(dir.path(), &["not a regular file"]);
    let missing = dir.path().join("missing.pth");
    let err = read_checkpoint(&missing).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.pth"));
}

#[test]
fn safetensors_with_absurd_header_length() {
    let dir = TempDir::new().unwrap();
    let mut b = (1u64 << 60).to_le_bytes().to_vec();
    b.extend_from_slice(br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#);
    b.extend_from_slice(&[0; 4]);
    expect_err(
        &write(&dir, "absurd.safetensors", &b),
        &[
            "safetensors header length 1152921504606846976",
            "larger than",
        ],
    );

    // Right length, but a header that is not JSON.
    let mut b = 6u64.to_le_bytes().to_vec();
    b.extend_from_slice(b"{oops}");
    expect_err(&write(&dir, "json.safetensors", &b), &["not valid JSON"]);

    // A dtype candle cannot hold.
    let hdr = br#"{"w":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}"#;
    let mut b = (hdr.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(hdr);
    b.extend_from_slice(&[1, 2]);
    expect_err(&write(&dir, "i8.safetensors", &b), &["tensor `w`", "I8"]);
}

#[test]
fn refusals_carry_where_in_the_file() {
    let dir = TempDir::new().unwrap();
    let reason = |p: &Path| match read_checkpoint(p) {
        Err(ModelError::Format { path, reason }) => {
            assert_eq!(path, p);
            reason
        }
        other => panic!("{}: {other:?}", p.display()),
    };

    let mut short = multi_storages();
    short[0].1.truncate(20);
    let p = write(&dir, "short_record.pt", &torch_zip(MULTI, &short));
    let r = reason(&p);
    assert!(
        matches!(&r, FormatError::Record { record, .. } if record == "archive/data/0"),
        "{r:?}"
    );

    let p = write(
        &dir,
        "offset.pt",
        &torch_zip(OFFSET, &[("0", f32_bytes(&[0.0; 6]))]),
    );
    let r = reason(&p);
    assert!(
        matches!(&r, FormatError::Tensor { name, .. } if name == "w"),
        "{r:?}"
    );

    // The legacy storage header sits right after the four pickles before it.
    let p = write(&dir, "count.th", &legacy_file(4, &[1.0; 4]));
    let r = reason(&p);
    let at = (LEGACY_HEAD.len() + LEGACY_MAIN.len() + LEGACY_KEYS.len()) as u64;
    assert!(
        matches!(&r, FormatError::Storage { key, offset: Some(o), .. } if key == "140" && *o == at),
        "{r:?}"
    );
    assert!(r.to_string().contains(&format!("at byte {at}")), "{r}");

    // The refused global is found at its opcode, inside the zip's pickle record.
    let p = write(
        &dir,
        "evil.pt",
        &torch_zip(EVIL, &[("0", f32_bytes(&[0.0]))]),
    );
    let r = reason(&p);
    let FormatError::Pickle { part, error } = &r else {
        panic!("{r:?}")
    };
    assert_eq!(part, "archive/data.pkl");
    let global = EVIL.windows(4).position(|w| w == b"cos\x0a").unwrap();
    assert_eq!(error.offset, global, "{r}");
}
