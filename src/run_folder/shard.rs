//! Sharding a batch evaluation over independent processes (a Slurm job array): the work is a
//! fixed list of units (a batch of pairs, an image, a (model, subspace)), unit `u` belongs to
//! shard `u mod N`, and each shard writes only its own units' item files into the shared
//! folder. `blindspot merge` then checks that every item is there, made under the folder's
//! plan, before the tables and figures are written from them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{PLAN_JSON, UNITS_JSON, invalid, io, json_error, read_json};
use crate::run::Result;

/// Where each shard records that it finished, with the plan it worked under.
pub const SHARDS_DIR: &str = "shards";

/// Shard `index` of `count` (0-based), as `--shard 3/16` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether unit `unit` of the work is this shard's.
    pub fn owns(&self, unit: usize) -> bool {
        unit % self.count == self.index
    }

    /// The shard a Slurm job array task is: `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT`, when those are set (`None` outside a job array). Arrays must
    /// be contiguous (`--array=0-15`, or `1-16`): a stepped or listed array would leave units
    /// that no task owns, so it is refused.
    pub fn from_slurm(
        var: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<Option<Self>, String> {
        let Some(id) = var("SLURM_ARRAY_TASK_ID") else {
            return Ok(None);
        };
        let number = |name: &str, value: Option<String>| -> std::result::Result<usize, String> {
            let value = value.ok_or_else(|| {
                format!("SLURM_ARRAY_TASK_ID is set but {name} is not: cannot tell the shard")
            })?;
            value
                .trim()
                .parse()
                .map_err(|_| format!("{name} is `{value}`, not a task number"))
        };
        let id = number("SLURM_ARRAY_TASK_ID", Some(id))?;
        let count = number("SLURM_ARRAY_TASK_COUNT", var("SLURM_ARRAY_TASK_COUNT"))?;
        let min = match var("SLURM_ARRAY_TASK_MIN") {
            Some(v) => number("SLURM_ARRAY_TASK_MIN", Some(v))?,
            None => 0,
        };
        let max = var("SLURM_ARRAY_TASK_MAX")
            .map(|v| number("SLURM_ARRAY_TASK_MAX", Some(v)))
            .transpose()?;
        if count == 0 || id < min || max.is_some_and(|max| max - min + 1 != count) {
            return Err(format!(
                "the job array is not contiguous (task {id}, {count} tasks from {min}{}): use \
                 --array=0-{} (or pass --shard I/N)",
                max.map_or(String::new(), |m| format!(" to {m}")),
                count.saturating_sub(1)
            ));
        }
        Ok(Some(Self {
            index: id - min,
            count,
        }))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("`{s}` is not a shard: expected I/N with 0 <= I < N, e.g. 3/16");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// What a shard leaves when it has done all its units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub shard: Shard,
    /// SHA-256 of the plan it worked under (`plan.json` as parsed and written again).
    pub plan_sha256: String,
    /// How many of its units it found done or computed.
    pub units: usize,
}

pub(super) fn shard_record_path(dir: &Path, shard: Shard) -> PathBuf {
    dir.join(SHARDS_DIR)
        .join(format!("shard_{}_of_{}.json", shard.index, shard.count))
}

/// SHA-256 of a plan, over its canonical JSON (keys sorted, as serde_json writes a Value).
pub(super) fn plan_sha256(plan: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(plan).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `merge` found in a complete folder.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeCheck {
    pub units: usize,
    pub items: usize,
    /// The shards that recorded finishing (empty for a folder run unsharded).
    pub shards: Vec<Shard>,
}

/// Checks that every item of the folder's plan is on disk (readable JSON) and that every
/// shard that worked there did so under this plan and one splitting. Names what is missing
/// (with the shard that owns it, to resubmit) or mismatched; never skips anything.
pub fn check_complete(dir: &Path) -> Result<MergeCheck> {
    let plan: serde_json::Value = read_json(&dir.join(PLAN_JSON))?;
    let sha = plan_sha256(&plan);
    let units: Vec<Vec<String>> = read_json(&dir.join(UNITS_JSON))?;

    let mut shards: Vec<Shard> = Vec::new();
    let shard_dir = dir.join(SHARDS_DIR);
    if shard_dir.is_dir() {
        let entries = std::fs::read_dir(&shard_dir).map_err(io(&shard_dir))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(std::result::Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let record: ShardRecord = read_json(&path)?;
            if record.plan_sha256 != sha {
                return Err(invalid(format!(
                    "{} was made under another plan than {} (plan SHA-256 {} there, {} here): \
                     its items cannot be merged with this folder's",
                    path.display(),
                    dir.join(PLAN_JSON).display(),
                    short(&record.plan_sha256),
                    short(&sha)
                )));
            }
            shards.push(record.shard);
        }
    }
    shards.sort();
    let counts: std::collections::BTreeSet<usize> = shards.iter().map(|s| s.count).collect();
    if counts.len() > 1 {
        let names: Vec<String> = shards.iter().map(|s| s.to_string()).collect();
        return Err(invalid(format!(
            "{} holds shards of several splittings ({}): some units were done twice, by shards \
             of different counts; merge a folder made with one --shard N",
            dir.display(),
            names.join(", ")
        )));
    }

    let mut missing = Vec::new();
    let mut owners = std::collections::BTreeSet::new();
    let count = counts.first().copied();
    let mut items = 0;
    for (u, unit) in units.iter().enumerate() {
        for item in unit {
            let path = dir.join(item);
            let whole = std::fs::read(&path)
                .ok()
                .is_some_and(|b| serde_json::from_slice::<serde_json::Value>(&b).is_ok());
            if whole {
                items += 1;
            } else {
                missing.push(item.clone());
                if let Some(n) = count {
                    owners.insert(u % n);
                }
            }
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(8).map(String::as_str).collect();
        let more = missing.len().saturating_sub(shown.len());
        let resubmit = match count {
            Some(n) => {
                let list: Vec<String> = owners.iter().map(|i| i.to_string()).collect();
                format!(
                    "; they belong to shard(s) {} of {n}: resubmit those (e.g. sbatch \
                     --array={} …) and merge again",
                    list.join(", "),
                    list.join(",")
                )
            }
            None => "; run the command again with --resume".into(),
        };
        return Err(invalid(format!(
            "{} is not complete: {} of {} items missing ({}{}){resubmit}",
            dir.display(),
            missing.len(),
            items + missing.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )));
    }
    Ok(MergeCheck {
        units: units.len(),
        items,
        shards,
    })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Writes `value` as JSON at `path` (atomically), for the shard records.
pub(super) fn write_record(path: &Path, record: &ShardRecord) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| json_error(path, e))?;
    Ok(crate::record::write_atomic(path, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_the_units() {
        let s: Shard = "3/16".parse().unwrap();
        assert_eq!(
            s,
            Shard {
                index: 3,
                count: 16
            }
        );
        assert_eq!(s.to_string(), "3/16");
        for bad in ["16/16", "1/0", "a/2", "3", "-1/4", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // Every unit belongs to exactly one shard.
        let shards: Vec<Shard> = (0..4).map(|i| Shard { index: i, count: 4 }).collect();
        for u in 0..37 {
            assert_eq!(shards.iter().filter(|s| s.owns(u)).count(), 1);
        }
    }

    #[test]
    fn a_slurm_job_array_task_is_a_shard() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_slurm(env(&[])), Ok(None));
        assert_eq!(
            Shard::from_slurm(env(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "3"),
                ("SLURM_ARRAY_TASK_MAX", "6"),
            ])),
            Ok(Some(Shard { index: 2, count: 4 }))
        );
        // A stepped array (0-15:4 has 4 tasks spanning 0..12) leaves units unowned: refused.
        let stepped = Shard::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "12"),
        ]));
        assert!(stepped.unwrap_err().contains("not contiguous"));
        assert!(
            Shard::from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "1")]))
                .unwrap_err()
                .contains("SLURM_ARRAY_TASK_COUNT")
        );
    }
}
