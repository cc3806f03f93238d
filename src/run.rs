//! Running one traversal end to end: the images in, the streamed steps out, the run record
//! back. The CLI and the app's worker both go through here, so a run is recorded once.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Tensor};

use crate::analysis::AnalysisError;
use crate::analysis::confidence::{argmax, logits_rows};
use crate::analysis::{PairStatus, SampleStep, Traversal, WalkConfig, WalkPair};
use crate::images::{self, ImageError};
use crate::models::{Classifier, Lpips, ModelError};
use crate::record::{
    FinalRecord, ImageInfo, RECORD_VERSION, RecordError, RunPixels, RunRecord, RunRecorder, Timing,
    pixels_sha256,
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Figure(#[from] crate::figures::FigureError),
    /// Stopped by Ctrl-C after a step; what was finished is on disk.
    #[error(
        "interrupted (Ctrl-C) with {done} of {total} {unit} done and kept in {}: run the same \
         command with --resume to finish",
        out.display()
    )]
    Interrupted {
        done: usize,
        total: usize,
        /// What was counted: "pairs", "images", "subspaces".
        unit: &'static str,
        out: std::path::PathBuf,
    },
}

pub type Result<T, E = RunError> = std::result::Result<T, E>;

/// Prefix naming an embedded gallery image instead of a file: `gallery:circle_1`.
pub const GALLERY_PREFIX: &str = "gallery:";

/// An image ready for the model: preprocessed [C, H, W] pixels in [0, 1] on the CPU.
#[derive(Clone, Debug)]
pub struct InputImage {
    /// What to show for it: a file path or a gallery name.
    pub name: String,
    pub pixels: Tensor,
}

impl InputImage {
    /// Loads a file and brings it to the model's input as the model spec says.
    /// Loads a file, or `gallery:NAME` from the embedded gallery, and brings it to the
    /// model's input as the model spec says.
    pub fn load(path: &Path, classifier: &Classifier) -> Result<Self> {
        let text = path.to_string_lossy();
        if let Some(name) = text.strip_prefix(GALLERY_PREFIX) {
            return Self::gallery(name, classifier);
        }
        let spec = classifier.spec();
        let pixels = images::load_for_channels(
            path,
            &spec.preprocess,
            spec.channels,
            &candle_core::Device::Cpu,
        )?;
        Ok(Self {
            name: path.display().to_string(),
            pixels,
        })
    }

    /// An image of the embedded gallery, e.g. `circle_1`.
    pub fn gallery(name: &str, classifier: &Classifier) -> Result<Self> {
        let gallery = crate::demo::gallery();
        let Some((_, bytes)) = gallery.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = gallery.iter().map(|(n, _)| *n).collect();
            return Err(RunError::Analysis(AnalysisError::Invalid(format!(
                "no gallery image `{name}`; the gallery has: {}",
                names.join(", ")
            ))));
        };
        let decoded = image::load_from_memory(bytes)
            .map_err(|e| AnalysisError::Invalid(format!("gallery image `{name}`: {e}")))?;
        let color = decoded.color().has_color();
        let spec = classifier.spec();
        let pixels = images::to_model_tensor(
            &decoded.to_rgb8(),
            color,
            &spec.preprocess,
            spec.channels,
            &candle_core::Device::Cpu,
        )
        .map_err(|e| match e {
            images::ModelInputError::Channels(found) => AnalysisError::Invalid(format!(
                "gallery image `{name}` has {found} channels, but the model takes {}-channel input",
                spec.channels
            )),
            images::ModelInputError::Tensor(e) => AnalysisError::Candle(e),
        })?;
        Ok(Self {
            name: format!("{GALLERY_PREFIX}{name}"),
            pixels,
        })
    }

    pub fn host(&self) -> Result<Vec<f32>> {
        Ok(self
            .pixels
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?)
    }
}

/// The model's predicted class for each image of a batch [B, C, H, W] (0 for non-finite logits).
pub fn predict(classifier: &Classifier, batch: &Tensor) -> Result<Vec<u32>> {
    let rows = logits_rows(&classifier.forward(batch)?)?;
    Ok(rows.iter().map(|r| argmax(r).unwrap_or(0) as u32).collect())
}

/// Traverses from `source` toward `target`. The source class is `source_label` when given
/// (a misclassified source is then skipped, as the spec says), else the model's prediction;
/// the target class (for logging) is the model's prediction on the target. `on_step` sees
/// every iteration as it completes and may stop the run between any two steps.
pub fn traverse(
    classifier: &Classifier,
    lpips: Option<&Lpips>,
    config: impl Into<WalkConfig>,
    source: &InputImage,
    target: &InputImage,
    source_label: Option<u32>,
    pair_id: u64,
    mut on_step: impl FnMut(usize, &SampleStep) -> ControlFlow<()>,
) -> Result<(RunRecord, RunPixels)> {
    traverse_live(
        classifier,
        lpips,
        config,
        source,
        target,
        source_label,
        pair_id,
        |view| on_step(view.step, view.sample),
    )
}

/// One finished iteration as a live view sees it: the step's metrics, and the iterate itself
/// on request (copying it off the device costs, so only viewers that show it ask).
pub struct StepView<'a> {
    /// Iteration index i, 0-based.
    pub step: usize,
    pub sample: &'a SampleStep,
    traversal: &'a Traversal<'a>,
}

impl StepView<'_> {
    /// The current iterate x after this step's accept/reject decision, [C, H, W] row-major.
    pub fn iterate(&self) -> Result<Vec<f32>> {
        self.traversal
            .iterate_of(self.sample.pair_index)?
            .ok_or_else(|| AnalysisError::Invalid("the traversal has no such sample".into()).into())
    }
}

/// [`traverse`] for live views: `on_step` also gets the iterate on request.
pub fn traverse_live(
    classifier: &Classifier,
    lpips: Option<&Lpips>,
    config: impl Into<WalkConfig>,
    source: &InputImage,
    target: &InputImage,
    source_label: Option<u32>,
    pair_id: u64,
    mut on_step: impl FnMut(&StepView<'_>) -> ControlFlow<()>,
) -> Result<(RunRecord, RunPixels)> {
    let started = Instant::now();
    let both = Tensor::stack(&[&source.pixels, &target.pixels], 0)?;
    let predicted = predict(classifier, &both)?;
    let label = source_label.unwrap_or(predicted[0]);
    let target_label = predicted[1];
    let pair = WalkPair {
        source: source.pixels.clone(),
        label,
        target: target.pixels.clone(),
        target_label,
        pair_id,
    };
    let config: WalkConfig = config.into();
    let mut traversal =
        Traversal::new(classifier, config.clone(), std::slice::from_ref(&pair))?.with_lpips(lpips);
    let mut recorder = RunRecorder::new();
    while let Some(event) = traversal.step()? {
        let Some(sample) = event.samples.first() else {
            continue;
        };
        recorder.observe(event.step, sample);
        let view = StepView {
            step: event.step,
            sample,
            traversal: &traversal,
        };
        if on_step(&view).is_break() {
            break;
        }
    }
    let output = traversal.finish()?.into_iter().next().ok_or_else(|| {
        AnalysisError::Invalid("the traversal returned no output for its pair".into())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let spec = classifier.spec();
    let shape = [spec.channels, spec.input_size[0], spec.input_size[1]];
    let (steps, frames, frame_pixels) = recorder.into_parts();
    let final_output = match &output.result {
        Some(result) => {
            let x_star = Tensor::from_slice(&result.x_star, shape.as_slice(), classifier.device())?
                .unsqueeze(0)?;
            let logits = logits_rows(&classifier.forward(&x_star)?)?;
            let row = logits.first().map_or(&[][..], Vec::as_slice);
            let predicted_class = argmax(row).unwrap_or(0) as u32;
            let top = crate::analysis::confidence::top_k(row, crate::record::TOP_K)
                .into_iter()
                .map(|(class, probability)| crate::record::TopClass {
                    class: class as u32,
                    name: spec.class_name(class).to_string(),
                    probability,
                })
                .collect();
            let last = result.confs.last().copied().unwrap_or([0.0, 0.0]);
            Some(FinalRecord {
                top,
                predicted_class,
                predicted_name: spec.class_name(predicted_class as usize).to_string(),
                source_confidence: last[0],
                target_confidence: last[1],
                l2_normalized: result.distances.l2,
                linf: result.distances.linf,
                ssim: result.distances.ssim,
                lpips: result.distances.lpips,
                accepted_steps: result.accepted_steps,
                file: "final.png".into(),
            })
        }
        None => None,
    };
    let source_host = source.host()?;
    let target_host = target.host()?;
    let info = |image: &InputImage, host: &[f32], label: u32, file: &str| ImageInfo {
        path: image.name.clone(),
        sha256: pixels_sha256(host),
        label,
        class_name: spec.class_name(label as usize).to_string(),
        file: file.into(),
    };
    let steps_done = steps.len();
    let record = RunRecord {
        version: RECORD_VERSION,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        config,
        model: spec.clone(),
        source: info(source, &source_host, label, "source.png"),
        target: info(target, &target_host, target_label, "target.png"),
        pair_id,
        p0: output.p0,
        status: output.status,
        steps,
        frames,
        final_output,
        timing: Timing {
            seconds,
            steps_per_second: if seconds > 0.0 {
                steps_done as f64 / seconds
            } else {
                0.0
            },
        },
    };
    let pixels = RunPixels {
        shape,
        source: source_host,
        target: target_host,
        output: output.result.map(|r| r.x_star),
        frames: frame_pixels,
    };
    Ok((record, pixels))
}

/// True when the run kept the source class all the way (the blind spot was found).
pub fn kept_source_class(record: &RunRecord) -> bool {
    matches!(
        record.status,
        PairStatus::Done
            | PairStatus::Stopped { .. }
            | PairStatus::Completed
            | PairStatus::Finished { .. }
    ) && record
        .final_output
        .as_ref()
        .is_some_and(|f| f.predicted_class == record.source.label)
}

/// The triangle source / output A / output B of two runs from the same source (§1.7–§1.9),
/// with the interpolation profiles toward each output and each real target (§1.8).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HullReport {
    pub model: String,
    pub weights_sha256: String,
    pub source: String,
    pub source_class: String,
    pub targets: [String; 2],
    pub target_classes: [String; 2],
    pub n: usize,
    /// conf at lattice point (i, j), i-major then j (`analysis::hull::lattice`).
    pub confidences: Vec<f32>,
    pub metrics: crate::analysis::hull::TriangleMetrics,
    pub geometry: crate::analysis::hull::HullGeometry,
    /// conf((1 − t) x_s + t x) at t = k/20 toward output A, output B, target A, target B.
    pub profiles: [Vec<f32>; 4],
}

/// The images of a hull built from two runs of one source, checked and on the model's device.
pub struct HullInputs {
    pub x_s: Tensor,
    pub x1: Tensor,
    pub x2: Tensor,
    targets: [Tensor; 2],
    pub label: u32,
    /// The plotted triangle (§1.9).
    pub geometry: crate::analysis::hull::HullGeometry,
    model: String,
    weights_sha256: String,
    source: String,
    source_class: String,
    target_paths: [String; 2],
    target_classes: [String; 2],
}

impl HullInputs {
    /// The triangle source / output A / output B. The runs must share their source image and
    /// have been made with the weights of `classifier`.
    pub fn from_runs(
        classifier: &Classifier,
        a: (&RunRecord, &RunPixels),
        b: (&RunRecord, &RunPixels),
    ) -> Result<Self> {
        let invalid = |m: String| RunError::Analysis(AnalysisError::Invalid(m));
        if a.0.source.sha256 != b.0.source.sha256 {
            return Err(invalid(format!(
                "the runs start from different sources ({} and {})",
                a.0.source.path, b.0.source.path
            )));
        }
        for r in [a.0, b.0] {
            if !r.model.weights_sha256.is_empty()
                && r.model.weights_sha256 != classifier.spec().weights_sha256
            {
                return Err(invalid(format!(
                    "run from {} used other weights ({}) than the model loaded ({})",
                    r.source.path,
                    r.model.weights_path,
                    classifier.spec().weights_path
                )));
            }
        }
        let (Some(out_a), Some(out_b)) = (&a.1.output, &b.1.output) else {
            return Err(invalid(
                "a run without output (its source was skipped) has no hull".into(),
            ));
        };
        let device = classifier.device();
        Ok(Self {
            x_s: a.1.tensor(&a.1.source, device)?,
            x1: a.1.tensor(out_a, device)?,
            x2: b.1.tensor(out_b, device)?,
            targets: [
                a.1.tensor(&a.1.target, device)?,
                b.1.tensor(&b.1.target, device)?,
            ],
            label: a.0.source.label,
            geometry: crate::analysis::hull::hull_geometry(&a.1.source, out_a, out_b)?,
            model: classifier.spec().architecture.clone(),
            weights_sha256: classifier.spec().weights_sha256.clone(),
            source: a.0.source.path.clone(),
            source_class: a.0.source.class_name.clone(),
            target_paths: [a.0.target.path.clone(), b.0.target.path.clone()],
            target_classes: [a.0.target.class_name.clone(), b.0.target.class_name.clone()],
        })
    }

    /// conf over the lattice of resolution `n`; `None` when `on_chunk` stopped it.
    pub fn lattice(
        &self,
        classifier: &Classifier,
        n: usize,
        on_chunk: impl FnMut(usize, usize) -> ControlFlow<()>,
    ) -> Result<Option<crate::analysis::hull::HullEvaluation>> {
        Ok(crate::analysis::hull::evaluate_hull_live(
            classifier, &self.x_s, &self.x1, &self.x2, self.label, n, 64, on_chunk,
        )?)
    }

    /// The full report at resolution `n`: lattice, metrics and the four §1.8 profiles.
    pub fn report(
        &self,
        classifier: &Classifier,
        n: usize,
        on_chunk: impl FnMut(usize, usize) -> ControlFlow<()>,
    ) -> Result<Option<HullReport>> {
        let Some(hull) = self.lattice(classifier, n, on_chunk)? else {
            return Ok(None);
        };
        let steps = crate::analysis::hull::PROFILE_STEPS;
        let profile = |end: &Tensor| {
            crate::analysis::hull::interpolation_profile(
                classifier, &self.x_s, end, self.label, steps,
            )
        };
        let profiles = [
            profile(&self.x1)?,
            profile(&self.x2)?,
            profile(&self.targets[0])?,
            profile(&self.targets[1])?,
        ];
        Ok(Some(HullReport {
            model: self.model.clone(),
            weights_sha256: self.weights_sha256.clone(),
            source: self.source.clone(),
            source_class: self.source_class.clone(),
            targets: self.target_paths.clone(),
            target_classes: self.target_classes.clone(),
            n,
            confidences: hull.confidences,
            metrics: hull.metrics,
            geometry: self.geometry,
            profiles,
        }))
    }
}

/// Evaluates the hull of two runs, which must share their model and source image.
pub fn hull_from_runs(
    classifier: &Classifier,
    a: (&RunRecord, &RunPixels),
    b: (&RunRecord, &RunPixels),
    n: usize,
) -> Result<HullReport> {
    HullInputs::from_runs(classifier, a, b)?
        .report(classifier, n, |_, _| ControlFlow::Continue(()))?
        .ok_or_else(|| AnalysisError::Invalid("hull evaluation stopped".into()).into())
}
