//! The folder of a resumable batch evaluation (`reach`, `margins`, `semantic eval`): one
//! process at a time (a lock), a plan written first and checked by `--resume`, and one file
//! per finished item, each written atomically. A killed or stopped run leaves whole items
//! only, so a resume redoes exactly the unfinished ones; each item is computed the same way
//! whether or not others were done before it, so the resumed outputs are the uninterrupted
//! run's, to the last digit on the CPU.
//!
//! `eval` keeps its own `pool.json` (it checks the pool the data set gives as well), but
//! shares the lock, the model fingerprint and the difference finder below.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::models::Classifier;
use crate::record::{RecordError, write_atomic};
use crate::run::{Result, RunError};

pub const PLAN_JSON: &str = "plan.json";
pub const LOCK_FILE: &str = ".lock";
/// Where the finished items go, one JSON file each.
pub const ITEMS_DIR: &str = "items";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| {
        RunError::Record(RecordError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn json_error(path: &Path, source: serde_json::Error) -> RunError {
    RunError::Record(RecordError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(message: String) -> RunError {
    RunError::Analysis(crate::analysis::AnalysisError::Invalid(message))
}

/// One process per run folder: a second one (say, a resume started while the first still
/// runs) would mix two runs' items. The system's advisory lock, released when the holder
/// exits or is killed, so a crashed run never leaves a stale lock behind.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

impl FolderLock {
    /// Creates `dir` if needed and locks it, or says who holds it.
    pub fn take(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {
                // Held: no other process writes here, so temporary files a killed run left
                // (in the folder and the item folders one level down) can go.
                crate::atomic::remove_stale_temporaries(dir);
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for entry in entries.filter_map(std::result::Result::ok) {
                        if entry.file_type().is_ok_and(|t| t.is_dir()) {
                            crate::atomic::remove_stale_temporaries(&entry.path());
                        }
                    }
                }
                Ok(Self { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(RunError::Record(RecordError::Io {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "another blindspot process is running an evaluation in this folder (it \
                     holds this lock); wait for it or stop it before running or resuming here",
                ),
            })),
            Err(std::fs::TryLockError::Error(source)) => {
                Err(RunError::Record(RecordError::Io { path, source }))
            }
        }
    }
}

/// One model as a resumed evaluation must find it again: its weights (by content, not path)
/// and everything that decides what it computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFingerprint {
    pub name: String,
    pub architecture: String,
    pub weights_sha256: String,
    pub channels: usize,
    pub input_size: [usize; 2],
    pub normalization: crate::models::Normalization,
    pub preprocess: crate::images::Preprocess,
    pub dtype: String,
}

impl ModelFingerprint {
    pub fn of(model: &Classifier) -> Self {
        let spec = model.spec();
        Self {
            name: spec.short_name(),
            architecture: spec.architecture.clone(),
            weights_sha256: spec.weights_sha256.clone(),
            channels: spec.channels,
            input_size: spec.input_size,
            normalization: spec.normalization.clone(),
            preprocess: spec.preprocess.clone(),
            dtype: format!("{:?}", model.dtype()),
        }
    }
}

/// A locked run folder with its plan on disk.
#[derive(Debug)]
pub struct RunFolder {
    dir: PathBuf,
    _lock: FolderLock,
}

impl RunFolder {
    /// Locks `dir` and writes `plan` to `plan.json`, or, with `resume`, checks that the plan
    /// there is this one. `what` names the evaluation in messages ("semantic evaluation").
    /// `may_differ` lists the plan's settings (dotted JSON paths such as `options.batch`)
    /// that only group the work, which a resume may change; a changed one is taken from this
    /// run. A folder that holds a plan is refused without `resume`; a refused resume leaves
    /// the folder as it was.
    pub fn open<P: Serialize>(
        dir: &Path,
        what: &str,
        plan: &P,
        resume: bool,
        may_differ: &[&str],
    ) -> Result<Self> {
        let lock = FolderLock::take(dir)?;
        let path = dir.join(PLAN_JSON);
        let new = serde_json::to_value(plan).map_err(|e| json_error(&path, e))?;
        match std::fs::read(&path) {
            Ok(bytes) => {
                if !resume {
                    return Err(invalid(format!(
                        "{} already holds a {what}: pass --resume to continue it, or choose \
                         another --out",
                        dir.display()
                    )));
                }
                let mut old: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| json_error(&path, e))?;
                let mut now = new.clone();
                // A model is the same by its weights' hash, not its file's name.
                forget_model_names(&mut old);
                forget_model_names(&mut now);
                for setting in may_differ {
                    remove_path(&mut old, setting);
                    remove_path(&mut now, setting);
                }
                if let Some((setting, was, is)) = json_difference("", &old, &now) {
                    return Err(invalid(format!(
                        "cannot resume {}: its {setting} is {was} but this run's is {is} \
                         (another model, data set or setting); items computed with one cannot \
                         be reported as the other's, so start a new --out instead",
                        path.display()
                    )));
                }
                // Written again so that a changed grouping setting is the one on record.
                if !may_differ.is_empty() {
                    write_json(&path, &new)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_json(&path, &new)?,
            Err(source) => return Err(RunError::Record(RecordError::Io { path, source })),
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn item_path(&self, name: &str) -> PathBuf {
        self.dir.join(ITEMS_DIR).join(format!("{name}.json"))
    }

    /// A finished item, if it is on disk and reads as one. An unreadable one is simply
    /// computed again (every file is written atomically, so this only happens to files
    /// damaged after the fact).
    pub fn item<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let bytes = std::fs::read(self.item_path(name)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes one finished item, atomically.
    pub fn save_item<T: Serialize>(&self, name: &str, item: &T) -> Result<()> {
        let path = self.item_path(name);
        let items = self.dir.join(ITEMS_DIR);
        std::fs::create_dir_all(&items).map_err(io(&items))?;
        let bytes = serde_json::to_vec(item).map_err(|e| json_error(&path, e))?;
        Ok(write_atomic(&path, &bytes)?)
    }
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| json_error(path, e))?;
    Ok(write_atomic(path, &bytes)?)
}

/// Drops `name` from every model fingerprint (an object with `weights_sha256`).
fn forget_model_names(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(m) => {
            if m.contains_key("weights_sha256") {
                m.remove("name");
            }
            m.values_mut().for_each(forget_model_names);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(forget_model_names),
        _ => {}
    }
}

/// Removes the leaf at a dotted path (`options.batch`) from a JSON object, if present.
fn remove_path(value: &mut serde_json::Value, dotted: &str) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut at = value;
    for part in parts {
        match at.get_mut(part) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(object) = at.as_object_mut() {
        object.remove(last);
    }
}

/// Where two JSON values differ: the path (`config.seed`) and both values of the shallowest
/// differing leaf (the first in key order among equals). Shallowest, because a setting is
/// usually the cause and deep differences its consequences: another `seed` also draws other
/// `samples[0][0]`, and the seed is what the user changed.
pub fn json_difference(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
) -> Option<(String, String, String)> {
    let mut found = Vec::new();
    differences(path, 0, old, new, &mut found);
    found
        .into_iter()
        .min_by_key(|(_, depth)| *depth)
        .map(|(d, _)| d)
}

type Difference = (String, String, String);

fn differences(
    path: &str,
    depth: usize,
    old: &serde_json::Value,
    new: &serde_json::Value,
    found: &mut Vec<(Difference, usize)>,
) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => differences(&join(k), depth + 1, x, y, found),
                    (x, y) => {
                        let show =
                            |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
                        found.push(((join(k), show(x), show(y)), depth + 1));
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), depth + 1, x, y, found);
            }
        }
        _ if old != new => found.push(((path.to_string(), shown(old), shown(new)), depth)),
        _ => {}
    }
}

/// A JSON value for a message; a number that is exactly an f32 (the settings are f32) is
/// shown as that f32 (`0.05`, not `0.05000000074505806`).
fn shown(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() && f64::from(x as f32) == x => (x as f32).to_string(),
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_difference_names_the_first_changed_leaf() {
        let a = json!({"model": {"sha": "aa", "name": "r20"}, "config": {"seed": 0, "it": 100}});
        assert_eq!(json_difference("", &a, &a), None);
        let b = json!({"model": {"sha": "aa", "name": "r20"}, "config": {"seed": 1, "it": 100}});
        assert_eq!(
            json_difference("", &a, &b),
            Some(("config.seed".into(), "0".into(), "1".into()))
        );
        let c = json!({"model": {"sha": "bb", "name": "r20"}, "config": {"seed": 0, "it": 100}});
        assert_eq!(
            json_difference("", &a, &c),
            Some(("model.sha".into(), "\"aa\"".into(), "\"bb\"".into()))
        );
        let d = json!({"l": [1, 2]});
        let e = json!({"l": [1, 3]});
        assert_eq!(
            json_difference("", &d, &e),
            Some(("l[1]".into(), "2".into(), "3".into()))
        );
        let f = json!({"l": [1]});
        assert_eq!(
            json_difference("", &d, &f).map(|x| x.0),
            Some("l".to_string())
        );
        let h = json!({"p": f64::from(0.05f32)});
        assert_eq!(
            json_difference("", &h, &json!({"p": f64::from(0.3f32)})),
            Some(("p".into(), "0.05".into(), "0.3".into()))
        );
        // The shallowest difference is named: the seed, not the samples it drew.
        let i = json!({"seed": 0, "samples": [[11, "a.png"]]});
        let j = json!({"seed": 3, "samples": [[4, "b.png"]]});
        assert_eq!(
            json_difference("", &i, &j),
            Some(("seed".into(), "0".into(), "3".into()))
        );
        let g = json!({"x": 1});
        assert_eq!(
            json_difference("", &g, &json!({})),
            Some(("x".into(), "1".into(), "(none)".into()))
        );
    }

    #[derive(Serialize)]
    struct Plan {
        seed: u64,
        options: Options,
    }
    #[derive(Serialize)]
    struct Options {
        batch: usize,
        steps: usize,
    }
    fn plan(seed: u64, batch: usize) -> Plan {
        Plan {
            seed,
            options: Options { batch, steps: 5 },
        }
    }

    #[test]
    fn a_folder_is_resumed_only_with_its_plan_and_by_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let folder =
            RunFolder::open(&out, "test run", &plan(0, 4), false, &["options.batch"]).unwrap();
        folder.save_item("item_000", &json!({"x": 0.1})).unwrap();
        // A second process (here: a second lock) is refused while the first holds it.
        let err = RunFolder::open(&out, "test run", &plan(0, 4), true, &[]).unwrap_err();
        assert!(err.to_string().contains(".lock"), "{err}");
        drop(folder);
        // Without --resume, an existing run is refused.
        let err = RunFolder::open(&out, "test run", &plan(0, 4), false, &[]).unwrap_err();
        assert!(err.to_string().contains("--resume"), "{err}");
        // Another seed is refused, naming it with both values.
        let err = RunFolder::open(&out, "test run", &plan(1, 4), true, &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("its seed is 0 but this run's is 1"),
            "{err}"
        );
        // The batch may change when it is listed as a grouping setting, and is then recorded.
        let folder =
            RunFolder::open(&out, "test run", &plan(0, 8), true, &["options.batch"]).unwrap();
        let v: serde_json::Value = folder.item("item_000").unwrap();
        assert_eq!(v, json!({"x": 0.1}));
        assert!(folder.item::<serde_json::Value>("item_001").is_none());
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(PLAN_JSON)).unwrap()).unwrap();
        assert_eq!(on_disk["options"]["batch"], 8);
    }
}
