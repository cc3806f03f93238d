//! Semantic-robustness runs as folders (ALGORITHMS.md §3): the record of a map, of grown
//! regions, or of an SRVR evaluation (`semantic.json`, exact f64 tensors in
//! `tensors.safetensors`, PNG/SVG figures, Markdown/CSV tables), written atomically with
//! `semantic.json` last, so a folder with it is complete. The CLI and, later, the app use this.

pub mod eval;
mod tables;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::analysis::AnalysisError;
use crate::analysis::semantic::{
    ParamSpace, RegionConfig, RegionMethod, RegionResult, SemanticMap, SemanticObjective,
};
use crate::figures::{
    self, Figure, FigureError, RegionTraceData, SemanticCurveData, SemanticMapData,
};
use crate::images::{self, ImageError};
use crate::models::{Classifier, ModelSpec};
use crate::record::{self, RecordError};

pub use eval::{EvalEvent, EvalOptions, EvalOutcome, EvalRecord, SkippedImage, run_eval};
pub use tables::{cost_markdown, srvr_csv, srvr_markdown};

/// Bumped whenever a field of `semantic.json` changes meaning.
pub const SEMANTIC_VERSION: u32 = 1;
pub const RECORD_JSON: &str = "semantic.json";
pub const TENSORS_FILE: &str = "tensors.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum SemanticRunError {
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Figure(#[from] FigureError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The run folder (lock, plan, items) refused or failed.
    #[error(transparent)]
    Folder(Box<crate::run::RunError>),
}

impl From<crate::run::RunError> for SemanticRunError {
    fn from(e: crate::run::RunError) -> Self {
        Self::Folder(Box::new(e))
    }
}

pub type Result<T, E = SemanticRunError> = std::result::Result<T, E>;

/// The class f is taken for, and what the model makes of the image at the identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassChoice {
    pub class: u32,
    pub class_name: String,
    /// The model's top-1 class and its confidence.
    pub predicted: u32,
    pub predicted_name: String,
    pub predicted_confidence: f64,
    /// f at the identity: p(class).
    pub identity_confidence: f64,
}

/// Below this identity confidence a map or region is about an image the model is unsure of.
pub const CONFIDENT: f64 = 0.5;

impl ClassChoice {
    /// `class`, or the model's prediction when none is given.
    pub fn new(classifier: &Classifier, image: &Tensor, class: Option<u32>) -> Result<Self> {
        let x = if image.rank() == 3 {
            image.unsqueeze(0)?
        } else {
            image.clone()
        };
        let p = classifier.probabilities(&x).map_err(AnalysisError::from)?;
        let row: Vec<f64> = p
            .to_dtype(candle_core::DType::F64)?
            .to_device(&Device::Cpu)?
            .squeeze(0)?
            .to_vec1()?;
        let (predicted, predicted_confidence) =
            row.iter()
                .copied()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (k, v)| {
                    if v > best.1 { (k, v) } else { best }
                });
        let class = class.unwrap_or(predicted as u32);
        let spec = classifier.spec();
        if class as usize >= spec.num_classes() {
            return Err(AnalysisError::Invalid(format!(
                "class {class} is out of range for a model with {} classes",
                spec.num_classes()
            ))
            .into());
        }
        Ok(Self {
            class,
            class_name: spec.class_name(class as usize).to_string(),
            predicted: predicted as u32,
            predicted_name: spec.class_name(predicted).to_string(),
            predicted_confidence,
            identity_confidence: row[class as usize],
        })
    }

    /// A warning when the image is not a correctly and confidently classified one, as §3
    /// assumes (f should start high at the identity).
    pub fn warning(&self) -> Option<String> {
        if self.predicted != self.class {
            Some(format!(
                "the model predicts `{}` (p = {:.3}) for this image, not `{}` (p = {:.3}); f starts low, so maps and regions describe a misclassified image",
                self.predicted_name,
                self.predicted_confidence,
                self.class_name,
                self.identity_confidence
            ))
        } else if self.identity_confidence < CONFIDENT {
            Some(format!(
                "the model is not confident on this image: p(`{}`) = {:.3} < {CONFIDENT} at the identity",
                self.class_name, self.identity_confidence
            ))
        } else {
            None
        }
    }
}

/// `semantic map`'s record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapRecord {
    pub version: u32,
    pub kind: String,
    pub model: ModelSpec,
    pub image: String,
    pub class: ClassChoice,
    pub space: ParamSpace,
    pub batch: usize,
    pub map: SemanticMap,
    pub seconds: f64,
}

/// One grown region, as recorded (natural units beside z-units).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionRecord {
    pub method: RegionMethod,
    pub start_z: Vec<f64>,
    pub start_u: Vec<f64>,
    pub a_z: Vec<f64>,
    pub b_z: Vec<f64>,
    pub a_u: Vec<f64>,
    pub b_u: Vec<f64>,
    pub volume_ratio: f64,
    pub iterations: usize,
    pub stopped: bool,
    /// The logged loss per update, `null` where Σf_D was tiny; absent when not logged.
    pub loss: Option<Vec<Option<f64>>>,
    /// Name of its [T + 1, 2, n] trace in the tensors file.
    pub trace_tensor: String,
}

impl RegionRecord {
    pub fn new(space: &ParamSpace, region: &RegionResult, index: usize) -> Self {
        let (a, b) = region.final_box();
        Self {
            method: region.method,
            start_u: space.to_u(&region.start),
            start_z: region.start.clone(),
            a_u: space.to_u(a),
            b_u: space.to_u(b),
            a_z: a.to_vec(),
            b_z: b.to_vec(),
            volume_ratio: region.volume_ratio,
            iterations: region.trace.len() - 1,
            stopped: region.stopped,
            loss: region.loss.clone(),
            trace_tensor: format!("trace_{}_{index}", region.method.key()),
        }
    }
}

/// `semantic regions`' record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionsRecord {
    pub version: u32,
    pub kind: String,
    pub model: ModelSpec,
    pub image: String,
    pub class: ClassChoice,
    pub space: ParamSpace,
    pub config: RegionConfig,
    pub regions: Vec<RegionRecord>,
    /// The map the boxes are drawn on, when one was computed.
    pub map: Option<SemanticMap>,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| SemanticRunError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| RecordError::Json {
        path: path.to_path_buf(),
        source: e,
    })?;
    record::write_atomic(path, &json)?;
    Ok(())
}

pub(crate) fn write_figure(figure: &Figure, dir: &Path, name: &str) -> Result<()> {
    figure.write_png(&dir.join(format!("{name}.png")), 2.0)?;
    figure.write_svg(&dir.join(format!("{name}.svg")))?;
    Ok(())
}

fn f64_tensor(values: &[f64], shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_slice(values, shape, &Device::Cpu)?)
}

/// The map's values as [N] or [N, N] and each axis' grid.
fn map_tensors(map: &SemanticMap, tensors: &mut HashMap<String, Tensor>) -> Result<()> {
    let n = map.points();
    let shape: Vec<usize> = if map.is_complete() {
        vec![n; map.grid.len()]
    } else {
        vec![map.values.len()]
    };
    tensors.insert("map_values".into(), f64_tensor(&map.values, &shape)?);
    for (i, axis) in map.grid.iter().enumerate() {
        tensors.insert(format!("map_grid_{i}"), f64_tensor(axis, &[axis.len()])?);
    }
    Ok(())
}

fn axis_label(space: &ParamSpace, i: usize) -> String {
    let p = space.params()[i];
    format!("{} ({})", p.name(), p.unit())
}

/// The figure of a complete map: the 1-D curve or the 2-D heatmap, with `boxes` (label,
/// a_u, b_u) and the start drawn on it.
pub fn map_figure(
    space: &ParamSpace,
    map: &SemanticMap,
    boxes: &[(String, Vec<f64>, Vec<f64>)],
    start_u: Option<&[f64]>,
    title: &str,
) -> Figure {
    if map.grid.len() == 1 {
        return figures::semantic_curve(&SemanticCurveData {
            axis_label: axis_label(space, 0),
            grid: map.grid[0].clone(),
            curves: vec![(format!("p({})", map.class), map.values.clone())],
            identity: space.params()[0].identity(),
            intervals: boxes
                .iter()
                .map(|(l, a, b)| (l.clone(), a[0], b[0]))
                .collect(),
            title: title.to_string(),
        });
    }
    figures::semantic_map(&SemanticMapData {
        row_label: axis_label(space, 0),
        col_label: axis_label(space, 1),
        rows: map.grid[0].clone(),
        cols: map.grid[1].clone(),
        values: map.values.clone(),
        boxes: boxes
            .iter()
            .map(|(l, a, b)| (l.clone(), [a[0], b[0]], [a[1], b[1]]))
            .collect(),
        start: start_u.map(|s| [s[0], s[1]]),
        title: title.to_string(),
    })
}

/// The bound traces of `regions` (natural units), one panel per parameter.
pub fn trace_figure(space: &ParamSpace, regions: &[RegionResult], title: &str) -> Figure {
    let panels = (0..space.dim())
        .map(|i| {
            let methods = regions
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    let to_u = |z: f64| space.to_u(&vec![z; space.dim()])[i];
                    let label = if regions.iter().filter(|o| o.method == r.method).count() > 1 {
                        format!("{} #{k}", r.method.label())
                    } else {
                        r.method.label().to_string()
                    };
                    (
                        label,
                        r.trace.iter().map(|[a, _]| to_u(a[i])).collect(),
                        r.trace.iter().map(|[_, b]| to_u(b[i])).collect(),
                    )
                })
                .collect();
            (axis_label(space, i), methods)
        })
        .collect();
    figures::region_traces(&RegionTraceData {
        panels,
        title: title.to_string(),
    })
}

impl MapRecord {
    /// Writes the folder: tensors, the figure (when the map is complete), then the JSON.
    pub fn save(&self, dir: &Path) -> Result<()> {
        create_dir(dir)?;
        let mut tensors = HashMap::new();
        map_tensors(&self.map, &mut tensors)?;
        record::save_tensors_atomic(&dir.join(TENSORS_FILE), &tensors)?;
        if self.map.is_complete() {
            let title = format!(
                "p({}) under {}, {}",
                self.class.class_name,
                param_names(&self.space),
                self.model.short_name()
            );
            write_figure(
                &map_figure(&self.space, &self.map, &[], None, &title),
                dir,
                "map",
            )?;
        }
        write_json(&dir.join(RECORD_JSON), self)
    }
}

pub(crate) fn param_names(space: &ParamSpace) -> String {
    space
        .params()
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(" × ")
}

impl RegionsRecord {
    /// Writes the folder: traces (and the map) as tensors, corner renders of each 2-D box,
    /// the trace and map figures, then the JSON. `objective` renders the corners.
    pub fn save(
        &self,
        dir: &Path,
        regions: &[RegionResult],
        objective: &SemanticObjective<'_>,
    ) -> Result<()> {
        create_dir(dir)?;
        let mut tensors = HashMap::new();
        let n = self.space.dim();
        for (region, rec) in regions.iter().zip(&self.regions) {
            let flat: Vec<f64> = region
                .trace
                .iter()
                .flat_map(|[a, b]| a.iter().chain(b).copied())
                .collect();
            tensors.insert(
                rec.trace_tensor.clone(),
                f64_tensor(&flat, &[region.trace.len(), 2, n])?,
            );
        }
        if let Some(map) = &self.map {
            map_tensors(map, &mut tensors)?;
        }
        record::save_tensors_atomic(&dir.join(TENSORS_FILE), &tensors)?;
        let names = param_names(&self.space);
        let title = format!(
            "{} regions of p({}) under {names}, {}",
            self.regions.len(),
            self.class.class_name,
            self.model.short_name()
        );
        write_figure(&trace_figure(&self.space, regions, &title), dir, "traces")?;
        if let Some(map) = self.map.as_ref().filter(|m| m.is_complete()) {
            let boxes: Vec<(String, Vec<f64>, Vec<f64>)> = self
                .regions
                .iter()
                .map(|r| {
                    (
                        format!("{} ({:.1}%)", r.method.label(), 100.0 * r.volume_ratio),
                        r.a_u.clone(),
                        r.b_u.clone(),
                    )
                })
                .collect();
            let start = self.regions.first().map(|r| r.start_u.as_slice());
            let title = format!(
                "p({}) under {names} with the found regions, {}",
                self.class.class_name,
                self.model.short_name()
            );
            write_figure(
                &map_figure(&self.space, map, &boxes, start, &title),
                dir,
                "map",
            )?;
        }
        self.save_corners(dir, objective)?;
        write_json(&dir.join(RECORD_JSON), self)
    }

    /// T(x, u) at the corners of every final box: `corners/<method>_<k>_<corner>.png`.
    fn save_corners(&self, dir: &Path, objective: &SemanticObjective<'_>) -> Result<()> {
        let folder = dir.join("corners");
        create_dir(&folder)?;
        for (k, r) in self.regions.iter().enumerate() {
            let points = crate::analysis::semantic::regions::corners(&r.a_u, &r.b_u);
            let renders = objective.images(&points)?;
            for (c, _) in points.iter().enumerate() {
                let img = images::from_tensor(&renders.get(c)?)?;
                let path = folder.join(format!("{}_{k}_{c}.png", r.method.key()));
                images::save_png_atomic(&img, &path)?;
            }
        }
        Ok(())
    }
}
