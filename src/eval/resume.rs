//! What `eval --resume` checks before it continues a folder: the model (by its weights'
//! hash) and every setting that decides the rows, stored in `pool.json`, and the pool the
//! data set gives now.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{PoolImage, invalid};
use crate::analysis::lst::LstConfig;
use crate::record::RecordError;
use crate::run::{Result, RunError};
use crate::run_folder::{ModelFingerprint, json_difference};

/// Everything that decides an evaluation's rows, stored in `pool.json` and checked by
/// `--resume` (the batch size only groups the work, so it may change).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct EvalIdentity {
    pub(super) model: ModelFingerprint,
    pub(super) pool_models: Vec<ModelFingerprint>,
    pub(super) pairs: usize,
    pub(super) pool: usize,
    /// Absent from `pool.json` written before the option: those took the shuffled order.
    #[serde(default = "super::PoolOrder::before_the_option")]
    pub(super) pool_order: super::PoolOrder,
    pub(super) config: LstConfig,
}

/// The `pool.json` a stopped evaluation left in `out`, if any.
pub(super) fn stored_pool_json(out: &Path) -> Result<Option<serde_json::Value>> {
    let path = out.join("pool.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RunError::Record(RecordError::Io { path, source })),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| RunError::Record(RecordError::Json { path, source }))
}

fn refuse_resume(out: &Path, why: String) -> RunError {
    invalid(format!(
        "cannot resume {}: {why}; start a new --out instead",
        out.display()
    ))
}

/// On `--resume`, before any work: refuses unless the stored `pool.json` was written by
/// this model (by its weights' hash) with these settings, so that no table presents rows
/// computed by another model, seed or setting.
pub(super) fn check_resume_identity(
    out: &Path,
    stored: &serde_json::Value,
    identity: &EvalIdentity,
) -> Result<()> {
    let Some(old) = stored.get("identity") else {
        return Err(refuse_resume(
            out,
            format!(
                "{} does not record which model weights and settings made it (written by an \
                 older blindspot), so a resume cannot check that they are this run's",
                out.join("pool.json").display()
            ),
        ));
    };
    // Compared as values of their types, so that f32 settings do not differ by the decimal
    // round trip; the JSON forms only name the difference.
    let old: EvalIdentity = serde_json::from_value(old.clone()).map_err(|source| {
        RunError::Record(RecordError::Json {
            path: out.join("pool.json"),
            source,
        })
    })?;
    // A model is the same by its weights' hash, not by its file's name or place: a renamed
    // weights file resumes (and the tables then use the name given now).
    let mut renamed = old.clone();
    renamed.model.name.clone_from(&identity.model.name);
    for (o, n) in renamed.pool_models.iter_mut().zip(&identity.pool_models) {
        o.name.clone_from(&n.name);
    }
    if &renamed == identity {
        return Ok(());
    }
    let json = |i: &EvalIdentity| serde_json::to_value(i).map_err(|e| invalid(e.to_string()));
    let (setting, was, now) = json_difference("", &json(&renamed)?, &json(identity)?)
        .unwrap_or_else(|| ("settings".into(), "other".into(), "these".into()));
    let models = if setting.starts_with("model.") {
        format!(
            " (the folder's model is {}, this run's is {})",
            old.model.name, identity.model.name
        )
    } else {
        String::new()
    };
    Err(refuse_resume(
        out,
        format!(
            "its {setting} is {was} but this run's is {now}{models}; rows computed with one \
             cannot be reported as the other's"
        ),
    ))
}

/// On `--resume`, once the pool is selected: it must be the stored one (same images and
/// labels, confidences within 1e-4), or the data set is not the folder's.
pub(super) fn check_resume_pool(
    out: &Path,
    stored: &serde_json::Value,
    pool: &[PoolImage],
) -> Result<()> {
    let old: Vec<PoolImage> = serde_json::from_value(stored["pool"].clone()).map_err(|source| {
        RunError::Record(RecordError::Json {
            path: out.join("pool.json"),
            source,
        })
    })?;
    let same = old.len() == pool.len()
        && old.iter().zip(pool).all(|(a, b)| {
            a.path == b.path && a.label == b.label && (a.confidence - b.confidence).abs() <= 1e-4
        });
    if same {
        return Ok(());
    }
    let first = old
        .iter()
        .zip(pool)
        .position(|(a, b)| a.path != b.path || a.label != b.label)
        .map_or(String::new(), |i| {
            format!(
                " (pool image {i}: {} in the folder, {} now)",
                old[i].path, pool[i].path
            )
        });
    Err(refuse_resume(
        out,
        format!(
            "the pool this data set gives now is not the folder's{first}: another --images, or \
             images changed since"
        ),
    ))
}
