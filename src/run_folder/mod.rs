//! The folder of a resumable, shardable batch evaluation (`eval`, `reach`, `margins`,
//! `semantic eval`): a plan written first and checked by every later run, the work as a fixed list of
//! units, and one file per finished item, each written atomically. A killed or stopped run
//! leaves whole items only, so a resume redoes exactly the unfinished ones; each item is
//! computed the same way whether or not others were done before it, so the resumed outputs
//! are the uninterrupted run's, to the last digit on the CPU. Shards of a Slurm job array
//! share one folder, each doing the units it owns (`shard.rs`), and `merge` completes it.
//!
//! `eval` also keeps its `pool.json`, the resume record it checks first (the pool the data
//! set gives, before the plan can be made), with the same model fingerprint and difference
//! finder.

mod difference;
mod shard;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::models::Classifier;
use crate::record::{RecordError, write_atomic};
use crate::run::{Result, RunError};
pub use difference::json_difference;
use difference::{forget_model_names, remove_path};
pub use shard::{MergeCheck, SHARDS_DIR, Shard, ShardRecord, check_complete};

pub const PLAN_JSON: &str = "plan.json";
/// The work as units of item files (relative paths), unit `u` owned by shard `u mod N`.
pub const UNITS_JSON: &str = "units.json";
/// The command line that made the folder, which `merge` runs again to write the outputs.
pub const COMMAND_JSON: &str = "command.json";
pub const LOCK_FILE: &str = ".lock";
/// Where the finished items go, one JSON file each.
pub const ITEMS_DIR: &str = "items";

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| {
        RunError::Record(RecordError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

pub(crate) fn json_error(path: &Path, source: serde_json::Error) -> RunError {
    RunError::Record(RecordError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(message: String) -> RunError {
    RunError::Analysis(crate::analysis::AnalysisError::Invalid(message))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| json_error(path, e))
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| json_error(path, e))?;
    Ok(write_atomic(path, &bytes)?)
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(path))
}

fn busy(path: PathBuf, who: &str) -> RunError {
    RunError::Record(RecordError::Io {
        path,
        source: std::io::Error::new(std::io::ErrorKind::WouldBlock, who.to_string()),
    })
}

/// One process per run folder, or one per shard: a second one (say, a resume started while
/// the first still runs) would mix two runs' items. The system's advisory locks, released
/// when the holder exits or is killed, so a crashed run never leaves a stale lock behind.
/// Shards hold the folder's lock shared (so no unsharded run or merge starts beside them)
/// and their own shard's exclusively.
#[derive(Debug)]
pub struct FolderLock {
    _folder: File,
    _shard: Option<File>,
}

impl FolderLock {
    /// Creates `dir` if needed and locks it, or says who holds it.
    pub fn take(dir: &Path) -> Result<Self> {
        Self::take_for(dir, None)
    }

    /// Locks `dir` for the whole run (`None`) or for one shard of it.
    pub fn take_for(dir: &Path, shard: Option<Shard>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOCK_FILE);
        let folder = open_lock_file(&path)?;
        let Some(shard) = shard else {
            match folder.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(busy(
                        path,
                        "another blindspot process is running an evaluation in this folder (it \
                         holds this lock); wait for it or stop it before running or resuming here",
                    ));
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(RunError::Record(RecordError::Io { path, source }));
                }
            }
            // Held alone: no other process writes here, so temporary files a killed run left
            // (in the folder and the item folders one level down) can go.
            crate::atomic::remove_stale_temporaries(dir);
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.filter_map(std::result::Result::ok) {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        crate::atomic::remove_stale_temporaries(&entry.path());
                    }
                }
            }
            return Ok(Self {
                _folder: folder,
                _shard: None,
            });
        };
        match folder.try_lock_shared() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(busy(
                    path,
                    "an unsharded run or a merge holds this folder; shards can start when it ends",
                ));
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(RunError::Record(RecordError::Io { path, source }));
            }
        }
        let shard_path = dir.join(format!(
            "{LOCK_FILE}-shard-{}-of-{}",
            shard.index, shard.count
        ));
        let own = open_lock_file(&shard_path)?;
        match own.try_lock() {
            Ok(()) => Ok(Self {
                _folder: folder,
                _shard: Some(own),
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(busy(
                shard_path,
                "another process runs this shard already (it holds this lock)",
            )),
            Err(std::fs::TryLockError::Error(source)) => Err(RunError::Record(RecordError::Io {
                path: shard_path,
                source,
            })),
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

/// How one run of a batch command uses its folder: what the user asked for with
/// `--resume` and `--shard` (or a Slurm job array), and the command line to record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchRun {
    pub resume: bool,
    pub shard: Option<Shard>,
    pub command: Option<CommandLine>,
}

impl BatchRun {
    /// An unsharded run that does not record its command line (the app, tests).
    pub fn resuming(resume: bool) -> Self {
        Self {
            resume,
            ..Self::default()
        }
    }
}

/// How a run opens its folder.
#[derive(Clone, Debug, Default)]
pub struct Opening<'a> {
    /// Names the evaluation in messages ("semantic evaluation").
    pub what: &'a str,
    /// Continue what the folder holds (always so for a shard: its siblings made the plan).
    pub resume: bool,
    /// Settings of the plan (dotted JSON paths such as `options.batch`) that only group the
    /// work, which an unsharded resume may change (a changed one is recorded).
    pub may_differ: &'a [&'a str],
    /// Only this shard's units are done; `None` does them all.
    pub shard: Option<Shard>,
    /// The work: units of item files (paths relative to the folder).
    pub units: Vec<Vec<String>>,
    /// The command line (working folder, arguments without --shard and --resume) that
    /// `merge` runs again to write the outputs once every item is there.
    pub command: Option<CommandLine>,
}

/// A command line to run again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandLine {
    pub cwd: PathBuf,
    pub args: Vec<String>,
}

/// A locked run folder with its plan on disk.
#[derive(Debug)]
pub struct RunFolder {
    dir: PathBuf,
    shard: Option<Shard>,
    plan_sha256: String,
    units: usize,
    _lock: FolderLock,
}

impl RunFolder {
    /// Locks `dir` and writes `plan` to `plan.json`, or checks that the plan there is this
    /// one: with `resume`, or always for a shard (its siblings may have written it). A folder
    /// that holds a plan is refused to an unsharded run without `resume`; a refused run
    /// leaves the folder as it was.
    pub fn open<P: Serialize>(dir: &Path, plan: &P, opening: Opening<'_>) -> Result<Self> {
        let lock = FolderLock::take_for(dir, opening.shard)?;
        let path = dir.join(PLAN_JSON);
        let new = serde_json::to_value(plan).map_err(|e| json_error(&path, e))?;
        let sharded = opening.shard.is_some();
        // Shards must split the same work the same way: nothing of the plan may differ.
        let may_differ = if sharded { &[][..] } else { opening.may_differ };
        // The plan as the folder records it once this run is in: what a shard's record
        // hashes, so that `merge` compares it with `plan.json` as it is on disk.
        let recorded = match std::fs::read(&path) {
            Ok(bytes) => {
                if !opening.resume && !sharded {
                    return Err(invalid(format!(
                        "{} already holds a {}: pass --resume to continue it, or choose \
                         another --out",
                        dir.display(),
                        opening.what
                    )));
                }
                let old: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| json_error(&path, e))?;
                refuse_another_plan(&path, &old, &new, may_differ)?;
                // Written again so that a changed grouping setting is the one on record.
                if may_differ.is_empty() {
                    old
                } else {
                    write_json(&path, &new)?;
                    new
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_json(&path, &new)?;
                // Shards may start together; whoever wrote last, all must agree.
                if sharded {
                    let written: serde_json::Value = read_json(&path)?;
                    refuse_another_plan(&path, &written, &new, &[])?;
                    written
                } else {
                    new
                }
            }
            Err(source) => return Err(RunError::Record(RecordError::Io { path, source })),
        };
        let units_path = dir.join(UNITS_JSON);
        if sharded && units_path.is_file() {
            let old: Vec<Vec<String>> = read_json(&units_path)?;
            if old != opening.units {
                return Err(invalid(format!(
                    "{} splits the work into {} units and this run into {}: shards of one \
                     folder must group the work alike (the same --batch)",
                    units_path.display(),
                    old.len(),
                    opening.units.len()
                )));
            }
        } else {
            write_json(&units_path, &opening.units)?;
        }
        if let Some(command) = &opening.command {
            let command_path = dir.join(COMMAND_JSON);
            if !command_path.is_file() {
                write_json(&command_path, command)?;
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            shard: opening.shard,
            plan_sha256: shard::plan_sha256(&recorded),
            units: opening.units.len(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// Whether unit `unit` is this run's to do (every unit, unsharded).
    pub fn owns(&self, unit: usize) -> bool {
        self.shard.is_none_or(|s| s.owns(unit))
    }

    /// Records that this shard has done all its units; the message for the user.
    pub fn finish_shard(&self) -> Result<Option<String>> {
        let Some(shard) = self.shard else {
            return Ok(None);
        };
        let units = (0..self.units).filter(|&u| shard.owns(u)).count();
        let record = ShardRecord {
            shard,
            plan_sha256: self.plan_sha256.clone(),
            units,
        };
        shard::write_record(&shard::shard_record_path(&self.dir, shard), &record)?;
        Ok(Some(format!(
            "shard {shard} done: {units} of {} units; when every shard is done, `blindspot \
             merge {}` writes the tables and figures",
            self.units,
            self.dir.display()
        )))
    }

    pub fn item_path(&self, name: &str) -> PathBuf {
        self.dir.join(item_file(name))
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

/// The file of item `name`, relative to the folder (what `units.json` lists).
pub fn item_file(name: &str) -> String {
    format!("{ITEMS_DIR}/{name}.json")
}

/// Refuses unless `new` is the plan `old` is, but for model file names and `may_differ`.
fn refuse_another_plan(
    path: &Path,
    old: &serde_json::Value,
    new: &serde_json::Value,
    may_differ: &[&str],
) -> Result<()> {
    let mut old = old.clone();
    let mut now = new.clone();
    // A model is the same by its weights' hash, not its file's name.
    forget_model_names(&mut old);
    forget_model_names(&mut now);
    for setting in may_differ {
        remove_path(&mut old, setting);
        remove_path(&mut now, setting);
    }
    match json_difference("", &old, &now) {
        Some((setting, was, is)) => Err(invalid(format!(
            "cannot resume {}: its {setting} is {was} but this run's is {is} (another model, \
             data set or setting); items computed with one cannot be reported as the other's, \
             so start a new --out instead",
            path.display()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn open(out: &Path, plan: &Plan, resume: bool, may_differ: &[&str]) -> Result<RunFolder> {
        RunFolder::open(
            out,
            plan,
            Opening {
                what: "test run",
                resume,
                may_differ,
                units: vec![vec![item_file("item_000")], vec![item_file("item_001")]],
                ..Opening::default()
            },
        )
    }

    #[test]
    fn a_folder_is_resumed_only_with_its_plan_and_by_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let folder = open(&out, &plan(0, 4), false, &["options.batch"]).unwrap();
        folder.save_item("item_000", &json!({"x": 0.1})).unwrap();
        // A second process (here: a second lock) is refused while the first holds it.
        let err = open(&out, &plan(0, 4), true, &[]).unwrap_err();
        assert!(err.to_string().contains(".lock"), "{err}");
        drop(folder);
        // Without --resume, an existing run is refused.
        let err = open(&out, &plan(0, 4), false, &[]).unwrap_err();
        assert!(err.to_string().contains("--resume"), "{err}");
        // Another seed is refused, naming it with both values.
        let err = open(&out, &plan(1, 4), true, &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("its seed is 0 but this run's is 1"),
            "{err}"
        );
        // The batch may change when it is listed as a grouping setting, and is then recorded.
        let folder = open(&out, &plan(0, 8), true, &["options.batch"]).unwrap();
        let v: serde_json::Value = folder.item("item_000").unwrap();
        assert_eq!(v, json!({"x": 0.1}));
        assert!(folder.item::<serde_json::Value>("item_001").is_none());
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(PLAN_JSON)).unwrap()).unwrap();
        assert_eq!(on_disk["options"]["batch"], 8);
    }

    #[test]
    fn a_shard_whose_weights_file_was_renamed_merges() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let units = vec![vec![item_file("item_000")], vec![item_file("item_001")]];
        for (index, name) in [(0, "r20"), (1, "r20-renamed")] {
            let plan = json!({"model": {"name": name, "weights_sha256": "aa"}, "seed": 0});
            let folder = RunFolder::open(
                &out,
                &plan,
                Opening {
                    shard: Some(Shard { index, count: 2 }),
                    units: units.clone(),
                    ..Opening::default()
                },
            )
            .unwrap();
            folder
                .save_item(&format!("item_00{index}"), &json!(index))
                .unwrap();
            folder.finish_shard().unwrap();
        }
        // Both shards worked under the plan on disk: the same weights, another file name.
        let check = check_complete(&out).unwrap();
        assert_eq!((check.items, check.shards.len()), (2, 2));
    }

    #[test]
    fn shards_share_a_folder_and_merge_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let units: Vec<Vec<String>> = (0..5)
            .map(|u| vec![item_file(&format!("item_{u:03}"))])
            .collect();
        let shard = |index: usize, seed: u64| {
            RunFolder::open(
                &out,
                &plan(seed, 4),
                Opening {
                    what: "test run",
                    shard: Some(Shard { index, count: 2 }),
                    units: units.clone(),
                    ..Opening::default()
                },
            )
        };
        // Two shards at once, each with its own lock; the same shard twice is refused.
        let a = shard(0, 0).unwrap();
        let b = shard(1, 0).unwrap();
        assert!(
            shard(1, 0)
                .unwrap_err()
                .to_string()
                .contains("runs this shard")
        );
        // An unsharded run (or a merge) waits for the shards.
        let err = open(&out, &plan(0, 4), true, &[]).unwrap_err();
        assert!(
            err.to_string().contains("another blindspot process"),
            "{err}"
        );
        assert_eq!((0..5).filter(|&u| a.owns(u)).collect::<Vec<_>>(), [0, 2, 4]);
        for u in [0, 2, 4] {
            a.save_item(&format!("item_{u:03}"), &json!(u)).unwrap();
        }
        a.finish_shard().unwrap();
        b.save_item("item_001", &json!(1)).unwrap();
        drop((a, b));
        // Shard 1 was killed before item 3: merge names it and the shard to resubmit.
        let err = check_complete(&out).unwrap_err().to_string();
        assert!(
            err.contains("1 of 5 items missing") && err.contains("items/item_003.json"),
            "{err}"
        );
        assert!(err.contains("shard(s) 1 of 2"), "{err}");
        // A shard with another plan is refused.
        assert!(
            shard(1, 9)
                .unwrap_err()
                .to_string()
                .contains("its seed is 0")
        );
        let b = shard(1, 0).unwrap();
        b.save_item("item_003", &json!(3)).unwrap();
        b.finish_shard().unwrap();
        drop(b);
        let check = check_complete(&out).unwrap();
        assert_eq!((check.units, check.items, check.shards.len()), (5, 5, 2));
        // A shard of another splitting in the same folder: both splittings are named.
        RunFolder::open(
            &out,
            &plan(0, 4),
            Opening {
                shard: Some(Shard { index: 0, count: 3 }),
                units: units.clone(),
                ..Opening::default()
            },
        )
        .unwrap()
        .finish_shard()
        .unwrap();
        let err = check_complete(&out).unwrap_err().to_string();
        assert!(
            err.contains("several splittings") && err.contains("0/3"),
            "{err}"
        );
    }
}
