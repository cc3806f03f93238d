//! What `eval --resume` checks before it continues a folder: the model (by its weights'
//! hash) and every setting that decides the rows, stored in `pool.json`, and the pool the
//! data set gives now.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{PoolImage, invalid};
use crate::analysis::lst::LstConfig;
use crate::images;
use crate::models::Classifier;
use crate::record::RecordError;
use crate::run::{Result, RunError};

/// One model as a resumed evaluation must find it again: its weights (by content, not path)
/// and everything that decides what it computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct ModelFingerprint {
    name: String,
    architecture: String,
    weights_sha256: String,
    channels: usize,
    input_size: [usize; 2],
    normalization: crate::models::Normalization,
    preprocess: images::Preprocess,
    dtype: String,
}

impl ModelFingerprint {
    pub(super) fn of(model: &Classifier) -> Self {
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

/// The first leaf where two JSON values differ: its path (`config.seed`), and both values.
pub(crate) fn json_difference(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
) -> Option<(String, String, String)> {
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
            keys.into_iter().find_map(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => json_difference(&join(k), x, y),
                (x, y) => {
                    let show = |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
                    Some((join(k), show(x), show(y)))
                }
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| json_difference(&format!("{path}[{i}]"), x, y)),
        _ if old != new => Some((path.to_string(), shown(old), shown(new))),
        _ => None,
    }
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

/// A JSON value for a message; a number that is exactly an f32 (the settings are f32) is
/// shown as that f32 (`0.05`, not `0.05000000074505806`).
fn shown(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() && f64::from(x as f32) == x => (x as f32).to_string(),
        _ => v.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::json_difference;
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
        let g = json!({"x": 1});
        assert_eq!(
            json_difference("", &g, &json!({})),
            Some(("x".into(), "1".into(), "(none)".into()))
        );
    }
}
