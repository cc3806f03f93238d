//! Comparing two run folders: every file byte for byte, JSON records once their wall-clock
//! `seconds` are left out.

use std::path::{Path, PathBuf};

/// Every file under `dir`, relative to it (the lock file aside).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p
                .file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with(".lock"))
            {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A JSON record without its wall-clock times, the one thing two runs may not share.
pub fn without_seconds(mut v: serde_json::Value) -> serde_json::Value {
    match &mut v {
        serde_json::Value::Object(m) => {
            m.remove("seconds");
            for x in m.values_mut() {
                *x = without_seconds(x.take());
            }
        }
        serde_json::Value::Array(a) => {
            for x in a.iter_mut() {
                *x = without_seconds(x.take());
            }
        }
        _ => {}
    }
    v
}

pub fn assert_same_folders(whole: &Path, resumed: &Path) {
    let names = files(whole);
    assert_eq!(names, files(resumed), "the two folders hold other files");
    // command.json names each folder's own --out.
    let names = names
        .into_iter()
        .filter(|n| n != Path::new("command.json"))
        .collect();
    assert_same_files(whole, resumed, names);
}

/// `names` (relative paths) hold the same in both folders.
pub fn assert_same_files(whole: &Path, resumed: &Path, names: Vec<PathBuf>) {
    for name in names {
        let a = std::fs::read(whole.join(&name)).unwrap();
        let b = std::fs::read(resumed.join(&name)).unwrap();
        if name.extension().is_some_and(|e| e == "json") {
            let a: serde_json::Value = serde_json::from_slice(&a).unwrap();
            let b: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert_eq!(
                without_seconds(a),
                without_seconds(b),
                "{} differs",
                name.display()
            );
        } else {
            assert!(a == b, "{} differs", name.display());
        }
    }
}
