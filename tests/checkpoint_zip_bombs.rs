//! Checkpoint reader against zip bombs: a 2 MB torch zip whose storage record inflates to
//! 2 GiB of zeros (under truthful headers, and under headers that claim 4 KiB), and stored
//! records that share their bytes. Each must be refused at once, naming the file and the
//! record, without allocating anywhere near what the records claim. A test binary of its own, so
//! that its allocation tracker sees only these tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use blindspot::models::checkpoint::read_checkpoint;
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Asserts that reading `path` fails with a message that names the file and contains `needles`.
fn expect_err(path: &Path, needles: &[&str]) -> String {
    let msg = match read_checkpoint(path) {
        Ok(c) => panic!("{} loaded ({} tensors)", path.display(), c.tensors.len()),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "message lacks {n:?}: {msg}");
    }
    msg
}

/// The largest single allocation this test binary has asked for: the zip-bomb tests check that
/// refusing a 2 GiB record never asks for memory anywhere near that. (The tests here run in
/// parallel; none allocates more than a few MB at once.)
static LARGEST_ALLOCATION: AtomicUsize = AtomicUsize::new(0);

struct TrackLargest;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for TrackLargest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: TrackLargest = TrackLargest;

const TWO_GIB: u64 = 1 << 31;

/// A raw deflate stream of `2^31` zero bytes, about 2 MB: 1 MiB of zeros compressed once, ended
/// by a sync flush (so the chunk ends on a byte boundary and refers to nothing before it but the
/// zeros it made), repeated 2048 times, then an empty final stored block.
fn deflated_two_gib_of_zeros() -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut chunk = Vec::with_capacity(64 << 10);
    let mut c = Compress::new(Compression::best(), false);
    c.compress_vec(&zeros, &mut chunk, FlushCompress::Sync)
        .unwrap();
    assert_eq!(c.total_in(), 1 << 20, "one call compresses the whole MiB");
    let mut stream = chunk.repeat(2048);
    // BFINAL=1, BTYPE=00 (stored), LEN=0, NLEN=!0.
    stream.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    stream
}

/// The CRC-32 of `2^31` zeros, by combining the CRC of 1 MiB with itself 11 times.
fn crc_of_two_gib_of_zeros() -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&vec![0u8; 1 << 20]);
    for _ in 0..11 {
        let same = h.clone();
        h.combine(&same);
    }
    h.finalize()
}

/// A protocol-2 pickle of the state dict `{name: f32 tensor [numel] on storage key, ...}`, each
/// storage `numel` long, as torch.save writes it (less the memo opcodes, which change nothing).
fn float_state_dict(tensors: &[(&str, &str, u32)]) -> Vec<u8> {
    let text = |t: &str| [&[b'X'][..], &(t.len() as u32).to_le_bytes(), t.as_bytes()].concat();
    let int = |n: u32| [&[b'J'][..], &n.to_le_bytes()].concat();
    let mut p = b"\x80\x02}(".to_vec();
    for &(name, key, numel) in tensors {
        p.extend(text(name));
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        p.extend(text("storage"));
        p.extend(b"ctorch\nFloatStorage\n");
        p.extend(text(key));
        p.extend(text("cpu"));
        p.extend(int(numel));
        // Persistent id; offset 0, size (numel,), stride (1,), no grad, empty hooks.
        p.extend(b"tQK\x00");
        p.extend(int(numel));
        p.extend(b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR");
    }
    p.extend(b"u.");
    p
}

/// A writer that keeps only the CRC and the count of what passes through it.
struct CrcWriter(crc32fast::Hasher, u64);

impl Write for CrcWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        self.1 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One zip entry as written by hand: the `zip` crate cannot write data that is already
/// compressed, nor two directory entries over the same bytes.
#[derive(Clone)]
struct Entry<'a> {
    name: &'a str,
    deflated: bool,
    crc: u32,
    /// What the headers say the entry inflates to.
    size: u32,
    data: &'a [u8],
}

impl<'a> Entry<'a> {
    fn stored(name: &'a str, data: &'a [u8]) -> Self {
        Entry {
            name,
            deflated: false,
            crc: crc32fast::hash(data),
            size: data.len() as u32,
            data,
        }
    }
}

/// A zip archive of `entries`, local headers and data first, then the central directory, which
/// also lists each `(name, i)` of `aliases` as one more entry over the bytes of `entries[i]`.
fn handmade_zip(entries: &[Entry<'_>], aliases: &[(&str, usize)]) -> Vec<u8> {
    // Fields shared by the local and the central header, from `version needed` on.
    let common = |e: &Entry<'_>, name: &str| {
        let method: u16 = if e.deflated { 8 } else { 0 };
        let mut c = Vec::new();
        c.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0
        c.extend_from_slice(&0u16.to_le_bytes()); // flags
        c.extend_from_slice(&method.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes()); // time
        c.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
        c.extend_from_slice(&e.crc.to_le_bytes());
        c.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        c.extend_from_slice(&e.size.to_le_bytes());
        c.extend_from_slice(&(name.len() as u16).to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes()); // extra field length
        c
    };
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u32);
        out.extend_from_slice(&0x04034b50u32.to_le_bytes());
        out.extend_from_slice(&common(e, e.name));
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(e.data);
    }
    let listed = entries
        .iter()
        .zip(&offsets)
        .map(|(e, &o)| (e.name, e, o))
        .chain(
            aliases
                .iter()
                .map(|&(name, i)| (name, &entries[i], offsets[i])),
        );
    let mut central = Vec::new();
    let mut count = 0u16;
    for (name, e, offset) in listed {
        central.extend_from_slice(&0x02014b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        central.extend_from_slice(&common(e, name));
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk number
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        count += 1;
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // this disk
    out.extend_from_slice(&0u16.to_le_bytes()); // disk with the directory
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}

/// A torch zip checkpoint with one tensor `w` of `numel` floats whose storage record
/// `archive/data/0` is `stream`, deflated, its headers saying it inflates to `claimed` bytes
/// with CRC `crc`.
fn zip_with_deflated_storage(numel: u32, stream: &[u8], claimed: u32, crc: u32) -> Vec<u8> {
    let pkl = float_state_dict(&[("w", "0", numel)]);
    handmade_zip(
        &[
            Entry::stored("archive/data.pkl", &pkl),
            Entry::stored("archive/byteorder", b"little"),
            Entry {
                name: "archive/data/0",
                deflated: true,
                crc,
                size: claimed,
                data: stream,
            },
            Entry::stored("archive/version", b"3\n"),
        ],
        &[],
    )
}

/// Reads `p`, which must be refused within a few seconds without a large allocation; returns
/// the message.
fn refused_quickly(p: &Path, needles: &[&str]) -> String {
    let start = Instant::now();
    let msg = expect_err(p, needles);
    let took = start.elapsed();
    eprintln!("{}: refused in {took:.2?}: {msg}", p.display());
    assert!(took.as_secs_f64() < 10.0, "took {took:?}");
    let largest = LARGEST_ALLOCATION.load(Ordering::Relaxed);
    assert!(largest < 256 << 20, "an allocation of {largest} bytes");
    msg
}

#[test]
fn deflated_two_gib_record_with_truthful_headers_is_refused() {
    let dir = TempDir::new().unwrap();
    let stream = deflated_two_gib_of_zeros();
    let numel = (TWO_GIB / 4) as u32;
    let file = zip_with_deflated_storage(numel, &stream, TWO_GIB as u32, crc_of_two_gib_of_zeros());
    assert!(file.len() < 3 << 20, "{} bytes", file.len());
    // The headers tell the truth: the stream inflates to exactly 2 GiB with that CRC (counted
    // as it streams by, never held).
    let mut inflated = CrcWriter(crc32fast::Hasher::new(), 0);
    std::io::copy(
        &mut flate2::read::DeflateDecoder::new(&stream[..]),
        &mut inflated,
    )
    .unwrap();
    assert_eq!(inflated.1, TWO_GIB);
    assert_eq!(inflated.0.finalize(), crc_of_two_gib_of_zeros());
    let p = write(&dir, "bomb_truthful.pt", &file);
    let msg = refused_quickly(
        &p,
        &[
            "record `archive/data/0`",
            &format!("inflates to {TWO_GIB} bytes"),
            "compressed",
            "torch.save never compresses records",
        ],
    );
    assert!(msg.contains(&(256u64 << 20).to_string()), "{msg}");
}

#[test]
fn deflated_two_gib_record_under_a_small_header_is_refused() {
    let dir = TempDir::new().unwrap();
    let stream = deflated_two_gib_of_zeros();
    let crc_4k = crc32fast::hash(&[0u8; 4096]);
    // The pickle declares the 2 GiB storage: the header's 4 KiB contradicts it.
    let numel = (TWO_GIB / 4) as u32;
    let file = zip_with_deflated_storage(numel, &stream, 4096, crc_4k);
    let p = write(&dir, "bomb_small_header.pt", &file);
    refused_quickly(
        &p,
        &[
            "record `archive/data/0`",
            "holds 4096 bytes",
            &format!("checkpoint says {TWO_GIB}"),
        ],
    );
    // The pickle agrees with the header (1024 floats): nothing past the 4 KiB and one byte is
    // inflated, and the stream running on past them is refused.
    let file = zip_with_deflated_storage(1024, &stream, 4096, crc_4k);
    let p = write(&dir, "bomb_agreeing_small_header.pt", &file);
    refused_quickly(
        &p,
        &[
            "record `archive/data/0`",
            "holds more than the 4096 bytes its header says",
        ],
    );
}

#[test]
fn stored_records_cannot_share_bytes() {
    let dir = TempDir::new().unwrap();
    let n = 16 << 10;
    let pkl = float_state_dict(&[("a", "0", n), ("b", "1", n), ("c", "2", n), ("d", "3", n)]);
    let values: Vec<u8> = (0..n).flat_map(|_| 0.5f32.to_le_bytes()).collect();
    let head = [
        Entry::stored("archive/data.pkl", &pkl),
        Entry::stored("archive/byteorder", b"little"),
        Entry::stored("archive/data/0", &values),
    ];
    // Honest: four records, four copies of the bytes.
    let honest = handmade_zip(
        &[
            head,
            [
                Entry::stored("archive/data/1", &values),
                Entry::stored("archive/data/2", &values),
                Entry::stored("archive/data/3", &values),
            ],
        ]
        .concat(),
        &[],
    );
    let p = write(&dir, "honest.pt", &honest);
    let c = read_checkpoint(&p).unwrap();
    assert_eq!(c.tensors.len(), 4);
    let d = c.tensors["d"].to_vec1::<f32>().unwrap();
    assert_eq!(d, vec![0.5; n as usize]);

    // Three more directory entries over the one copy: each fits in the file, together they
    // claim four times what it holds.
    let head = [
        Entry::stored("archive/data.pkl", &pkl),
        Entry::stored("archive/byteorder", b"little"),
        Entry::stored("archive/data/0", &values),
    ];
    let shared = handmade_zip(
        &head,
        &[
            ("archive/data/1", 2),
            ("archive/data/2", 2),
            ("archive/data/3", 2),
        ],
    );
    let p = write(&dir, "shared.pt", &shared);
    expect_err(
        &p,
        &[
            "record `archive/data/1` claims 65536 bytes",
            "more than the file's",
            "records overlap",
        ],
    );
}
