//! The run record: one traversal, written once and read by the CLI, the app, the exports and
//! the tests alike.
//!
//! A run folder holds `run.json` (config, model spec and weights hash, input hashes, per-step
//! metrics, frame list, final metrics, timing), `tensors.safetensors` (the exact f32 source,
//! target, output and kept frames, so later analyses such as the hull see the same numbers),
//! and PNGs for people: `source.png`, `target.png`, `final.png`, `frames/step_NNNN.png`.
//! Every file is written to a temporary name and renamed; `run.json` is written last, so a
//! folder with a `run.json` is complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::analysis::width::WidthMeasurement;
use crate::analysis::{PairStatus, SampleStep, WalkConfig};
use crate::images::{self, ImageError};
use crate::models::ModelSpec;

/// Bumped whenever a field changes meaning; older records are rejected with a clear message.
/// Version 2: `config` names its walk (`"method": "lst"` or `"nspgd"`); version 1 records
/// are LST runs and load as such.
pub const RECORD_VERSION: u32 = 2;
pub const RUN_JSON: &str = "run.json";
pub const TENSORS_FILE: &str = "tensors.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid run record: {source}", .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: run record version {found}, this blindspot reads version {RECORD_VERSION}", .path.display())]
    Version { path: PathBuf, found: u32 },
    #[error("{}: {reason}", .path.display())]
    Tensors { path: PathBuf, reason: String },
    #[error(transparent)]
    Image(#[from] ImageError),
}

pub type Result<T, E = RecordError> = std::result::Result<T, E>;

/// One input image: where it came from and what the model made of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The file the user picked (or a gallery name).
    pub path: String,
    /// SHA-256 of the preprocessed f32 pixels the model saw (little-endian bytes).
    pub sha256: String,
    /// The class used by the run: y for the source, y_t for the target.
    pub label: u32,
    pub class_name: String,
    /// The PNG of the preprocessed image inside the run folder.
    pub file: String,
}

/// Metrics of one iteration, after its accept/reject decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub source_confidence: f32,
    pub target_confidence: f32,
    pub l2_normalized: f32,
    pub linf: f32,
    pub accepted: bool,
}

/// A kept frame: the iterate before the step of iteration `step` (ALGORITHMS.md §1.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameRecord {
    pub step: usize,
    pub log_index: usize,
    pub source_confidence: f32,
    pub target_confidence: f32,
    pub file: String,
    pub width: Option<WidthMeasurement>,
}

/// One of the model's most probable classes for an image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopClass {
    pub class: u32,
    pub name: String,
    pub probability: f32,
}

/// How many classes `FinalRecord::top` keeps.
pub const TOP_K: usize = 5;

/// The output x* and its Table 1 distances to the target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalRecord {
    pub predicted_class: u32,
    pub predicted_name: String,
    pub source_confidence: f32,
    pub target_confidence: f32,
    pub l2_normalized: f32,
    pub linf: f32,
    /// n/a (null) for images smaller than 11 px.
    pub ssim: Option<f32>,
    /// LPIPS-Alex to the target; n/a (null) without its weights, for grey or small images,
    /// and in records written before LPIPS existed.
    #[serde(default)]
    pub lpips: Option<f32>,
    pub accepted_steps: usize,
    pub file: String,
    /// The model's `TOP_K` most probable classes for x* (empty in records written before).
    #[serde(default)]
    pub top: Vec<TopClass>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub seconds: f64,
    pub steps_per_second: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    /// Seconds since the Unix epoch when the run finished.
    pub created_unix: u64,
    pub config: WalkConfig,
    pub model: ModelSpec,
    pub source: ImageInfo,
    pub target: ImageInfo,
    pub pair_id: u64,
    /// p0 = p(x_s)[y] of the un-noised source.
    pub p0: f32,
    pub status: PairStatus,
    pub steps: Vec<StepRecord>,
    pub frames: Vec<FrameRecord>,
    /// Absent when the pair was skipped.
    #[serde(rename = "final")]
    pub final_output: Option<FinalRecord>,
    pub timing: Timing,
}

/// The exact pixels of a run, [C, H, W] f32 each (frames in `frames` order).
#[derive(Clone, Debug, PartialEq)]
pub struct RunPixels {
    pub shape: [usize; 3],
    pub source: Vec<f32>,
    pub target: Vec<f32>,
    /// Absent when the pair was skipped.
    pub output: Option<Vec<f32>>,
    pub frames: Vec<Vec<f32>>,
}

impl RunPixels {
    pub fn tensor(&self, data: &[f32], device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(data, self.shape.as_slice(), device)
    }
}

/// SHA-256 of f32 pixels as little-endian bytes, hex.
pub fn pixels_sha256(pixels: &[f32]) -> String {
    let mut hasher = Sha256::new();
    for v in pixels {
        hasher.update(v.to_le_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn frame_file(step: usize) -> String {
    format!("frames/step_{step:04}.png")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (see [`crate::atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic::write(path, bytes).map_err(io_err(path))
}

/// Writes `tensors` as one safetensors file at `path`, atomically, so a reader (or a resumed
/// run) never sees half a file.
pub fn save_tensors_atomic(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    // Sorted, so the same tensors always give the same bytes.
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let bytes =
        safetensors::serialize(names.into_iter().map(|k| (k, &tensors[k])), None).map_err(|e| {
            RecordError::Tensors {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
    write_atomic(path, &bytes)
}

fn save_png(pixels: &[f32], shape: [usize; 3], path: &Path) -> Result<()> {
    let t = Tensor::from_slice(pixels, shape.as_slice(), &Device::Cpu).map_err(|e| {
        RecordError::Tensors {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    images::save_png_atomic(&images::from_tensor(&t)?, path)?;
    Ok(())
}

impl RunRecord {
    /// The kept frames that carry a width measurement, as (step, measurement).
    pub fn measured_widths(&self) -> Vec<(usize, &WidthMeasurement)> {
        self.frames
            .iter()
            .filter_map(|f| f.width.as_ref().map(|w| (f.step, w)))
            .collect()
    }

    /// Writes the record and its pixels into `dir` (created if needed).
    pub fn save(&self, pixels: &RunPixels, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir.join("frames")).map_err(io_err(dir))?;
        save_png(&pixels.source, pixels.shape, &dir.join(&self.source.file))?;
        save_png(&pixels.target, pixels.shape, &dir.join(&self.target.file))?;
        if let (Some(out), Some(fin)) = (&pixels.output, &self.final_output) {
            save_png(out, pixels.shape, &dir.join(&fin.file))?;
        }
        for (frame, data) in self.frames.iter().zip(&pixels.frames) {
            save_png(data, pixels.shape, &dir.join(&frame.file))?;
        }
        let tensors_path = dir.join(TENSORS_FILE);
        let err = |e: candle_core::Error| RecordError::Tensors {
            path: tensors_path.clone(),
            reason: e.to_string(),
        };
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        tensors.insert(
            "source".into(),
            pixels.tensor(&pixels.source, &Device::Cpu).map_err(err)?,
        );
        tensors.insert(
            "target".into(),
            pixels.tensor(&pixels.target, &Device::Cpu).map_err(err)?,
        );
        if let Some(out) = &pixels.output {
            tensors.insert(
                "output".into(),
                pixels.tensor(out, &Device::Cpu).map_err(err)?,
            );
        }
        if !pixels.frames.is_empty() {
            let flat: Vec<f32> = pixels.frames.concat();
            let [c, h, w] = pixels.shape;
            let t = Tensor::from_vec(flat, (pixels.frames.len(), c, h, w), &Device::Cpu)
                .map_err(err)?;
            tensors.insert("frames".into(), t);
        }
        save_tensors_atomic(&tensors_path, &tensors)?;
        let json_path = dir.join(RUN_JSON);
        let json = serde_json::to_vec_pretty(self).map_err(|source| RecordError::Json {
            path: json_path.clone(),
            source,
        })?;
        write_atomic(&json_path, &json)
    }

    /// Reads `run.json` only.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(RUN_JSON);
        let text = std::fs::read(&path).map_err(io_err(&path))?;
        Self::from_json(&path, &text)
    }

    /// A record from the bytes of a `run.json` (any version this build reads); `path` names it
    /// in errors. Also what the `run_record` fuzz target feeds arbitrary bytes to (see
    /// [`crate::fuzzing`]).
    pub fn from_json(path: &Path, text: &[u8]) -> Result<Self> {
        let path = path.to_path_buf();
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_slice(text).map_err(|source| RecordError::Json {
            path: path.clone(),
            source,
        })?;
        let json_err = |source| RecordError::Json {
            path: path.clone(),
            source,
        };
        match v.version {
            RECORD_VERSION => serde_json::from_slice(text).map_err(json_err),
            1 => {
                // Every version-1 record is an LST run: name its method and read it on.
                let mut value: serde_json::Value =
                    serde_json::from_slice(text).map_err(json_err)?;
                // serde also reads a struct from an array (`[1]` has version 1), which indexing
                // by key would panic on; such a record is left as it is, and refused below.
                if let Some(record) = value.as_object_mut() {
                    if let Some(config) = record.get_mut("config").and_then(|c| c.as_object_mut()) {
                        config.insert("method".into(), "lst".into());
                    }
                    record.insert("version".into(), RECORD_VERSION.into());
                }
                serde_json::from_value(value).map_err(json_err)
            }
            found => Err(RecordError::Version { path, found }),
        }
    }

    /// Reads `run.json` and the exact pixels.
    pub fn load_with_pixels(dir: &Path) -> Result<(Self, RunPixels)> {
        let record = Self::load(dir)?;
        let path = dir.join(TENSORS_FILE);
        let err = |reason: String| RecordError::Tensors {
            path: path.clone(),
            reason,
        };
        let tensors =
            candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| err(e.to_string()))?;
        let flat = |name: &str| -> Result<Option<Vec<f32>>> {
            tensors
                .get(name)
                .map(|t| {
                    t.flatten_all()
                        .and_then(|t| t.to_vec1::<f32>())
                        .map_err(|e| err(format!("`{name}`: {e}")))
                })
                .transpose()
        };
        let source_t = tensors
            .get("source")
            .ok_or_else(|| err("missing tensor `source`".into()))?;
        let shape: [usize; 3] = source_t
            .dims()
            .try_into()
            .map_err(|_| err(format!("`source` has shape {:?}", source_t.dims())))?;
        let frames = match tensors.get("frames") {
            Some(t) => (0..t.dim(0).map_err(|e| err(e.to_string()))?)
                .map(|i| {
                    t.get(i)
                        .and_then(|f| f.flatten_all()?.to_vec1::<f32>())
                        .map_err(|e| err(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let pixels = RunPixels {
            shape,
            source: flat("source")?.unwrap_or_default(),
            target: flat("target")?.ok_or_else(|| err("missing tensor `target`".into()))?,
            output: flat("output")?,
            frames,
        };
        if pixels.frames.len() != record.frames.len() {
            return Err(err(format!(
                "{} frames stored, run.json lists {}",
                pixels.frames.len(),
                record.frames.len()
            )));
        }
        Ok((record, pixels))
    }
}

/// Builds a record from the events of one pair as they stream by.
pub struct RunRecorder {
    steps: Vec<StepRecord>,
    frames: Vec<FrameRecord>,
    frame_pixels: Vec<Vec<f32>>,
}

impl Default for RunRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl RunRecorder {
    pub fn new() -> Self {
        Self {
            steps: Vec::new(),
            frames: Vec::new(),
            frame_pixels: Vec::new(),
        }
    }

    pub fn observe(&mut self, step: usize, sample: &SampleStep) {
        self.steps.push(StepRecord {
            step,
            source_confidence: sample.source_conf,
            target_confidence: sample.target_conf,
            l2_normalized: sample.l2,
            linf: sample.linf,
            accepted: sample.accepted,
        });
        if let Some(logged) = &sample.logged {
            self.frames.push(FrameRecord {
                step: logged.step,
                log_index: logged.log_index,
                source_confidence: logged.source_conf,
                target_confidence: logged.target_conf,
                file: frame_file(logged.step),
                width: logged.width.clone(),
            });
            self.frame_pixels.push(logged.image.clone());
        }
    }

    pub fn steps(&self) -> &[StepRecord] {
        &self.steps
    }

    pub fn frames(&self) -> (&[FrameRecord], &[Vec<f32>]) {
        (&self.frames, &self.frame_pixels)
    }

    /// The frames and steps so far, for a record finished by the caller.
    pub fn into_parts(self) -> (Vec<StepRecord>, Vec<FrameRecord>, Vec<Vec<f32>>) {
        (self.steps, self.frames, self.frame_pixels)
    }
}
