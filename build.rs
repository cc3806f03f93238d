//! Embeds the demo models (`weights/demo-*.safetensors`) and the gallery (`assets/gallery/*.png`)
//! when they exist, so the binary opens on its own default offline. They are absent only while
//! bootstrapping (before `train-demo` has written them); the code then says how to make them.

use std::fmt::Write as _;
use std::path::Path;

/// `include_bytes!` of a file of this crate, by a path relative to the crate being compiled
/// rather than an absolute one: two checkouts sharing a target folder (git worktrees) may reuse
/// this script's output, and an absolute path would embed the other checkout's files.
fn include_from_crate(relative: &str) -> String {
    format!(
        "include_bytes!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?}))",
        format!("/{relative}")
    )
}

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let root = Path::new(&root);
    let mut code = String::new();
    for (name, file) in [
        ("STANDARD", "weights/demo-standard.safetensors"),
        ("ROBUST", "weights/demo-robust.safetensors"),
    ] {
        println!("cargo:rerun-if-changed={file}");
        let path = root.join(file);
        if path.is_file() {
            let _ = writeln!(
                code,
                "pub const {name}: Option<&[u8]> = Some({});",
                include_from_crate(file)
            );
        } else {
            let _ = writeln!(code, "pub const {name}: Option<&[u8]> = None;");
        }
    }
    println!("cargo:rerun-if-changed=assets/gallery");
    let mut gallery: Vec<_> = std::fs::read_dir(root.join("assets/gallery"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "png"))
                .collect()
        })
        .unwrap_or_default();
    gallery.sort();
    code.push_str("pub const GALLERY: &[(&str, &[u8])] = &[\n");
    for p in gallery {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            code,
            "    ({stem:?}, {}),",
            include_from_crate(&format!("assets/gallery/{stem}.png"))
        );
    }
    code.push_str("];\n");
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    if let Err(e) = std::fs::write(Path::new(&out).join("embedded.rs"), code) {
        println!("cargo:warning=cannot write embedded.rs: {e}");
    }
}
