//! The local run history: every run the app makes is saved here as soon as it ends (finished or
//! stopped), so closing the app loses nothing, and it stays until the user deletes it.
//!
//! The history is a folder of ordinary run folders (`record` layout), one per run, named
//! `<unix seconds>-<source>-to-<target>`. A run folder is written under a hidden temporary name
//! and renamed into place, so a folder that shows up in the list is complete; leftovers of a
//! crash keep their hidden name and are never listed.

use std::path::{Path, PathBuf};

use crate::record::{RUN_JSON, RecordError, RunPixels, RunRecord};

/// The folder of the history that holds the app's reach evaluations (not runs: never listed).
pub const REACH_DIR: &str = "reach";
/// Where deleted runs wait until the app next starts (hidden, so listings skip it).
pub const DELETED_DIR: &str = ".deleted";

/// One run in the history, light: the record only (its pixels load on demand).
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    pub dir: PathBuf,
    pub record: RunRecord,
}

/// A history folder that could not be read, with why.
#[derive(Clone, Debug)]
pub struct HistoryProblem {
    pub dir: PathBuf,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct History {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file-name-safe, short form of an image name (`gallery:circle_1`, `/data/cat/0001.png`).
fn slug(name: &str) -> String {
    let stem = name
        .rsplit(['/', '\\', ':'])
        .next()
        .unwrap_or(name)
        .rsplit_once('.')
        .map_or_else(
            || name.rsplit(['/', '\\', ':']).next().unwrap_or(name),
            |(s, _)| s,
        );
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if cleaned.is_empty() {
        "image".into()
    } else {
        cleaned
    }
}

impl History {
    /// The history at `root`, created if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, RecordError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Saves a run as a new folder and returns it. Never overwrites: a name already taken gets
    /// a numbered suffix.
    pub fn save(&self, record: &RunRecord, pixels: &RunPixels) -> Result<PathBuf, RecordError> {
        let base = format!(
            "{}-{}-to-{}",
            record.created_unix,
            slug(&record.source.path),
            slug(&record.target.path)
        );
        let mut name = base.clone();
        let mut k = 1;
        while self.root.join(&name).exists() {
            k += 1;
            name = format!("{base}-{k}");
        }
        let tmp = self
            .root
            .join(format!(".{name}.tmp-{}", std::process::id()));
        record.save(pixels, &tmp)?;
        let dir = self.root.join(&name);
        std::fs::rename(&tmp, &dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp);
            RecordError::Io {
                path: dir.clone(),
                source: e,
            }
        })?;
        Ok(dir)
    }

    /// Every run, newest first, and the folders that could not be read.
    pub fn list(&self) -> Result<(Vec<HistoryEntry>, Vec<HistoryProblem>), RecordError> {
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        for item in std::fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let item = item.map_err(io_err(&self.root))?;
            let dir = item.path();
            let name = item.file_name();
            let hidden = name.to_string_lossy().starts_with('.');
            if hidden || name == REACH_DIR || !dir.is_dir() {
                continue;
            }
            match RunRecord::load(&dir) {
                Ok(record) => entries.push(HistoryEntry { dir, record }),
                Err(e) => problems.push(HistoryProblem {
                    dir,
                    reason: e.to_string(),
                }),
            }
        }
        entries.sort_by(|a, b| {
            b.record
                .created_unix
                .cmp(&a.record.created_unix)
                .then_with(|| b.dir.cmp(&a.dir))
        });
        Ok((entries, problems))
    }

    /// Deletes one run folder of this history. Refuses anything that is not a run folder
    /// directly inside the history, so a wrong path can never remove other files.
    pub fn delete(&self, dir: &Path) -> Result<(), RecordError> {
        let inside = dir.parent() == Some(self.root.as_path());
        if !inside || !dir.join(RUN_JSON).is_file() {
            return Err(RecordError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::other(format!(
                    "not a run folder of the history at {}",
                    self.root.display()
                )),
            });
        }
        // Deleting moves the folder aside, so it can be undone; `purge_deleted` removes it for
        // good (the app does so when it starts).
        let bin = self.root.join(DELETED_DIR);
        std::fs::create_dir_all(&bin).map_err(io_err(&bin))?;
        let aside = bin.join(dir.file_name().unwrap_or_default());
        if aside.exists() {
            std::fs::remove_dir_all(&aside).map_err(io_err(&aside))?;
        }
        std::fs::rename(dir, &aside).map_err(io_err(dir))
    }

    /// Brings back a run deleted in this session; `dir` is where it was.
    pub fn undo_delete(&self, dir: &Path) -> Result<(), RecordError> {
        let aside = self
            .root
            .join(DELETED_DIR)
            .join(dir.file_name().unwrap_or_default());
        if dir.parent() != Some(self.root.as_path()) || !aside.join(RUN_JSON).is_file() {
            return Err(RecordError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::other("no deleted run of that name to bring back"),
            });
        }
        if dir.exists() {
            return Err(RecordError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::other("a run folder of that name exists again"),
            });
        }
        std::fs::rename(&aside, dir).map_err(io_err(&aside))
    }

    /// Removes the runs deleted earlier for good.
    pub fn purge_deleted(&self) -> Result<(), RecordError> {
        let bin = self.root.join(DELETED_DIR);
        if bin.is_dir() {
            std::fs::remove_dir_all(&bin).map_err(io_err(&bin))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn a_deleted_run_can_be_brought_back_until_purged() {
        let root = tempfile::tempdir().unwrap();
        let history = super::History::open(root.path()).unwrap();
        let dir = root.path().join("123-a-to-b");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(super::RUN_JSON), "{}").unwrap();
        history.delete(&dir).unwrap();
        assert!(!dir.exists());
        history.undo_delete(&dir).unwrap();
        assert!(dir.join(super::RUN_JSON).is_file());
        history.delete(&dir).unwrap();
        history.purge_deleted().unwrap();
        assert!(history.undo_delete(&dir).is_err());
        assert!(!root.path().join(super::DELETED_DIR).exists());
        // Only run folders of this history are ever moved.
        assert!(history.delete(root.path()).is_err());
    }

    #[test]
    fn slugs_are_short_safe_file_names() {
        assert_eq!(slug("gallery:circle_1"), "circle_1");
        assert_eq!(slug("/data/cifar/cat/0001.png"), "0001");
        assert_eq!(slug("C:\\x\\a b.jpg"), "a_b");
        assert_eq!(slug(""), "image");
    }
}
