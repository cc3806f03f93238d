//! The files of a reach evaluation: `plan.json`, and per pair `pairs/pair_NNNNNN.json` with
//! `pairs/pair_NNNNNN.safetensors` (x_final, unclamped, and the width blocks when measured).
//! Each is written atomically, so whatever is on disk is whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::{ReachPairRecord, ReachPlanRecord};
use crate::record::{RecordError, save_tensors_atomic, write_atomic};
use crate::run::{Result, RunError};
use crate::run_folder::{BatchRun, Opening, RunFolder, io, json_error};

pub const PLAN_JSON: &str = crate::run_folder::PLAN_JSON;

pub struct PairFiles {
    pub json: PathBuf,
    pub tensors: PathBuf,
}

pub fn pair_files(out: &Path, pair_id: u64) -> PairFiles {
    let json = out.join(pair_json_file(pair_id));
    PairFiles {
        tensors: json.with_extension("safetensors"),
        json,
    }
}

/// Locks `out` and writes the plan, or, on `resume` (or for a shard), checks that the plan
/// on disk is this one (same model file and hash, data set, options, targets and hit
/// criterion). The batch size only groups the work, so an unsharded resume may choose
/// another (the pairs then agree within float round-off rather than to the last digit).
/// `units` are the batches, as pair files. The lock is held while the folder lives.
pub fn start(
    out: &Path,
    plan: &ReachPlanRecord,
    run: &BatchRun,
    units: Vec<Vec<String>>,
) -> Result<RunFolder> {
    let folder = RunFolder::open(
        out,
        plan,
        Opening {
            what: "reach evaluation",
            resume: run.resume,
            may_differ: &["options.batch"],
            shard: run.shard,
            units,
            command: run.command.clone(),
        },
    )?;
    let pairs = out.join("pairs");
    std::fs::create_dir_all(&pairs).map_err(io(&pairs))?;
    Ok(folder)
}

/// A pair's JSON file, relative to the folder (what `units.json` lists).
pub fn pair_json_file(pair_id: u64) -> String {
    format!("pairs/pair_{pair_id:06}.json")
}

/// The pair records already on disk for this plan, in pair order. A pair whose JSON is
/// missing, unreadable or belongs to another pair is simply walked again; its tensor file
/// is written before its JSON, so a JSON on disk means the pair is whole.
pub fn load_pair_records(out: &Path, plan: &ReachPlanRecord) -> Vec<ReachPairRecord> {
    plan.pairs()
        .iter()
        .filter_map(|p| {
            let files = pair_files(out, p.pair_id);
            let bytes = std::fs::read(&files.json).ok()?;
            let r: ReachPairRecord = serde_json::from_slice(&bytes).ok()?;
            let same = r.pair_id == p.pair_id && r.source == p.source && r.target == p.target;
            (same && (!r.valid() || files.tensors.is_file())).then_some(r)
        })
        .collect()
}

/// Writes one finished pair: its tensors first, then its JSON.
pub fn save_pair(
    out: &Path,
    record: &ReachPairRecord,
    x_final: Option<&[f32]>,
    shape: [usize; 3],
) -> Result<()> {
    let files = pair_files(out, record.pair_id);
    if let Some(x) = x_final {
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        tensors.insert(
            "x_final".into(),
            Tensor::from_slice(x, shape.as_slice(), &Device::Cpu)?,
        );
        if let Some(widths) = record.widths.as_ref().filter(|w| !w.is_empty()) {
            let rows = widths[0].rows.len();
            let flat: Vec<f32> = widths
                .iter()
                .flat_map(|w| w.rows.iter().flatten())
                .copied()
                .collect();
            tensors.insert(
                "widths".into(),
                Tensor::from_vec(flat, (widths.len(), rows, 2), &Device::Cpu)?,
            );
        }
        save_tensors_atomic(&files.tensors, &tensors)?;
    }
    let json = serde_json::to_vec_pretty(record).map_err(|e| json_error(&files.json, e))?;
    Ok(write_atomic(&files.json, &json)?)
}

/// x_final of a finished pair.
pub fn load_x_final(out: &Path, pair_id: u64) -> Result<Vec<f32>> {
    let path = pair_files(out, pair_id).tensors;
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| {
        RunError::Record(RecordError::Tensors {
            path: path.clone(),
            reason: e.to_string(),
        })
    })?;
    let x = tensors.get("x_final").ok_or_else(|| {
        RunError::Record(RecordError::Tensors {
            path: path.clone(),
            reason: "no tensor `x_final`".into(),
        })
    })?;
    Ok(x.flatten_all()?.to_vec1::<f32>()?)
}
