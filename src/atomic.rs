//! Writing a file so that a reader, a crash, a kill or a full disk leaves either the old file or
//! the whole new one, never part of one: the bytes go to a temporary file in the same folder
//! (a rename is atomic only within one file system), which is synced, renamed over the target,
//! and the folder synced so the rename itself survives a power cut.
//!
//! A leaf module: every writer of records, tensors, figures and checkpoints calls it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells temporary files of concurrent writes within one process apart (the process id tells
/// processes apart).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether `name` is one of our temporary files (`.<target>.tmp-<pid>-<n>`).
fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        && name.rsplit_once(".tmp-").is_some_and(|(_, tail)| {
            let mut parts = tail.split('-');
            let numeric = |p: Option<&str>| {
                p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            };
            numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none()
        })
}

/// Removes the temporary files that a killed writer left in `dir` (a kill between creating
/// and renaming one leaves it behind; the target itself is whole, old or new). Only safe
/// while no other process writes there: callers hold the folder's lock. Returns how many
/// were removed.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| is_temporary(&e.file_name().to_string_lossy()))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// Writes `path` atomically with `fill`, which writes the content into the (temporary) file.
/// On any error the temporary file is removed and `path` is untouched; the error says which
/// step failed.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let dir = folder_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| {
            step(
                e,
                &format!("cannot create a temporary file in {}", dir.display()),
            )
        })?;
    let written = fill(&mut file)
        .and_then(|()| file.sync_all())
        .map_err(|e| step(e, "writing"))
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, path)
                .map_err(|e| step(e, &format!("cannot rename {} over it", tmp.display())))
        });
    if let Err(e) = written {
        // Best effort: the error worth reporting is the one above.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_folder(&dir);
    Ok(())
}

/// The folder `path` is in ("." for a bare file name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Syncs a folder's entries (the rename). Not every platform can open a folder for this
/// (Windows cannot); there the rename is as durable as the system makes it.
fn sync_folder(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The error, prefixed with the step that failed.
fn step(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_write_replaces_the_file_whole_and_a_failed_one_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        super::write(&path, b"first").unwrap();
        super::write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // A writer that fails half-way: the old file stays, no temporary file is left.
        let failed = super::write_with(&path, |f| {
            use std::io::Write;
            f.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        let err = failed.unwrap_err().to_string();
        assert!(
            err.contains("writing") && err.contains("disk full"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
        // An unwritable place names the folder.
        let err = super::write(&dir.path().join("missing/b.json"), b"x").unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
