//! The folder a frequency-margin run writes (`blindspot margins` and the app's Frequency view
//! export the same one): config.json, per model margins.safetensors and margin_table.{csv,md}
//! (the first model in the folder itself, the others in also_1, also_2, …), the margin plot and
//! the flip illustration. One writer, so `margins-plot` reads what either wrote.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::json;

use crate::analysis::frequency::dct::Dct2;
use crate::analysis::frequency::{
    DeepFoolConfig, DeepFoolStatus, FrequencyTransform, MarginDistribution, SubspacePlan,
    plot_jitter, summarize, table_csv, table_markdown,
};
use crate::figures::{
    FlipFigureData, MarginPlotData, MarginSeries, flip_illustration, margin_plot,
};
use crate::images::from_tensor;
use crate::models::Classifier;
use crate::record::{save_tensors_atomic, write_atomic};

/// Any failure while writing the record, with the file it concerns in the message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// How a model is named in the legend, the table and config.json: its short name, and its
/// input transform in brackets.
pub fn model_label(classifier: &Classifier, transform: Option<FrequencyTransform>) -> String {
    match transform {
        Some(t) => format!("{} ({t})", classifier.spec().short_name()),
        None => classifier.spec().short_name(),
    }
}

/// The folder of model `k` inside a record: the first model's files sit at the top.
pub fn model_folder(k: usize) -> String {
    if k == 0 {
        ".".to_string()
    } else {
        format!("also_{k}")
    }
}

/// Where model `k`'s files go inside the record folder `out`.
pub fn model_dir(out: &Path, k: usize) -> PathBuf {
    if k == 0 {
        out.to_path_buf()
    } else {
        out.join(model_folder(k))
    }
}

/// What `plan.json` of a `margins` folder holds: everything that decides its numbers,
/// checked by `--resume` (the batch only groups samples, so a resume may change it). Each
/// finished (model, subspace) is kept as an item (see [`sweep_item_name`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepPlan {
    pub kind: String,
    /// Every model with its input transform, in the order of the record.
    pub models: Vec<(
        crate::run_folder::ModelFingerprint,
        Option<FrequencyTransform>,
    )>,
    pub plan: SubspacePlan,
    pub seed: u64,
    pub images: String,
    /// The drawn samples: their index in the set, file and label.
    pub samples: Vec<(usize, String, u32)>,
    pub deepfool: DeepFoolConfig,
    pub batch: usize,
}

/// The item of model `k`'s subspace `s` in a sweep's run folder.
pub fn sweep_item_name(k: usize, s: usize) -> String {
    format!("model_{k}_subspace_{s:03}")
}

/// One model of a record.
pub struct RecordModel<'a> {
    pub label: String,
    /// What loaded it: a checkpoint path or demo:NAME.
    pub source: String,
    pub transform: Option<FrequencyTransform>,
    pub distribution: &'a MarginDistribution,
    pub seconds: f64,
}

/// Which samples were measured.
pub struct RecordSamples {
    /// The image set they were drawn from (a path, or the embedded gallery).
    pub images: String,
    pub indices: Vec<usize>,
    pub files: Vec<String>,
    /// The set's labels; None where the set has none (gallery names unknown to the model).
    pub labels: Vec<Option<u32>>,
}

/// Everything config.json records about a run.
pub struct MarginRecord<'a> {
    pub plan: SubspacePlan,
    pub seed: u64,
    pub samples: RecordSamples,
    pub deepfool: DeepFoolConfig,
    pub batch: usize,
    pub models: Vec<RecordModel<'a>>,
}

impl MarginRecord<'_> {
    pub fn config_json(&self) -> serde_json::Value {
        let plan = &self.plan;
        json!({
            "method": "subspace_deepfool",
            "images": self.samples.images,
            "seed": self.seed,
            "samples": self.samples.indices.len(),
            "sample_indices": self.samples.indices,
            "sample_files": self.samples.files,
            "sample_labels": self.samples.labels,
            "plan": plan,
            "dim": plan.dim(),
            "starts": plan.starts(),
            "deepfool": self.deepfool,
            "batch": self.batch,
            "status_codes": {"converged": DeepFoolStatus::Converged.code(), "max_iter": DeepFoolStatus::MaxIter.code(), "degenerate": DeepFoolStatus::Degenerate.code()},
            "models": self.models.iter().enumerate().map(|(k, m)| json!({
                "label": m.label,
                "source": m.source,
                "input_transform": m.transform.map(|t| t.to_string()),
                "folder": model_folder(k),
                "seconds": m.seconds,
                "subspaces": m.distribution.summaries(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The margin plot of every model, as `margins-plot` draws it.
    pub fn plot_data(&self, log_scale: bool, title: Option<&str>) -> MarginPlotData {
        let series = self
            .models
            .iter()
            .map(|m| distribution_series(&m.label, m.distribution))
            .collect();
        plot_data(
            &self.plan,
            self.seed,
            self.samples.indices.len(),
            series,
            log_scale,
            title,
        )
    }

    /// The figures (margin plot, flip illustration of `first_image` [C, N, N]) and
    /// config.json; the models' own files are written by `write_model_outputs`.
    pub fn write_summary(&self, out: &Path, first_image: &Tensor, log_scale: bool) -> Result<()> {
        std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        let figure = margin_plot(&self.plot_data(log_scale, None));
        figure.write_png(&out.join("margin_plot.png"), 2.0)?;
        figure.write_svg(&out.join("margin_plot.svg"))?;
        let flip = flip_illustration(&flip_data(first_image, self.plan.size)?);
        flip.write_png(&out.join("flip.png"), 2.0)?;
        flip.write_svg(&out.join("flip.svg"))?;
        write_atomic(
            &out.join("config.json"),
            serde_json::to_string_pretty(&self.config_json())?.as_bytes(),
        )?;
        Ok(())
    }

    /// The whole folder: every model's files, the figures and config.json.
    pub fn write(&self, out: &Path, first_image: &Tensor, log_scale: bool) -> Result<()> {
        for (k, m) in self.models.iter().enumerate() {
            write_model_outputs(&model_dir(out, k), m.distribution)?;
        }
        self.write_summary(out, first_image, log_scale)
    }
}

/// margins.safetensors (margins, status, iterations) and the margin table of one model.
pub fn write_model_outputs(dir: &Path, d: &MarginDistribution) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tensors: HashMap<String, Tensor> = d.tensors()?.into_iter().collect();
    save_tensors_atomic(&dir.join("margins.safetensors"), &tensors)?;
    let rows = d.summaries();
    write_atomic(&dir.join("margin_table.csv"), table_csv(&rows).as_bytes())?;
    write_atomic(
        &dir.join("margin_table.md"),
        table_markdown(&rows).as_bytes(),
    )?;
    Ok(())
}

/// One model's points of a distribution, with the quartiles of each subspace.
pub fn distribution_series(label: &str, d: &MarginDistribution) -> MarginSeries {
    series(
        label,
        d.subspaces.iter().map(|s| s.margins.clone()).collect(),
        d.subspaces.iter().map(|s| s.statuses.clone()).collect(),
    )
}

/// One model's points, with the §0.3 quartiles of each subspace.
pub fn series(
    label: &str,
    margins: Vec<Vec<f32>>,
    statuses: Vec<Vec<DeepFoolStatus>>,
) -> MarginSeries {
    let quartiles = margins
        .iter()
        .zip(&statuses)
        .map(|(m, st)| {
            let q = summarize(0, 0, m, st);
            [q.q1, q.median, q.q3]
        })
        .collect();
    let converged = statuses
        .iter()
        .map(|row| {
            row.iter()
                .map(|&x| x == DeepFoolStatus::Converged)
                .collect()
        })
        .collect();
    MarginSeries {
        name: label.to_string(),
        margins,
        converged,
        quartiles,
    }
}

/// The margin plot of `series` over the subspaces of `plan`, jittered from `seed`.
pub fn plot_data(
    plan: &SubspacePlan,
    seed: u64,
    samples: usize,
    series: Vec<MarginSeries>,
    log_scale: bool,
    title: Option<&str>,
) -> MarginPlotData {
    MarginPlotData {
        title: title.map_or_else(
            || {
                format!(
                    "Margins in {}×{} DCT subspaces, {samples} samples",
                    plan.band, plan.band
                )
            },
            str::to_string,
        ),
        starts: plan.starts(),
        x_label: format!("subspace s (block start {}·s)", plan.step),
        series,
        jitter: (0..plan.count)
            .map(|s| plot_jitter(seed, s, samples))
            .collect(),
        log_scale,
    }
}

/// log10 |DCT2| of an N×N-per-channel image [C, N, N], averaged over channels, N×N row-major.
pub fn log_spectrum(dct: &Dct2, image: &Tensor) -> Result<Vec<f32>> {
    let magnitude = dct.forward(image)?.abs()?.mean(0)?;
    Ok(magnitude
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|v| (v + 1e-6).log10())
        .collect())
}

/// The first sample, its frequency flip (rescaled to [0, 1] for display: a flipped image is
/// not an image in [0, 1]) and both log10|DCT2| spectra averaged over channels.
pub fn flip_data(image: &Tensor, n: usize) -> Result<FlipFigureData> {
    let image = image.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let dct = Dct2::new(n, DType::F32, &Device::Cpu)?;
    let flipped = FrequencyTransform::Flip.apply(&dct, &image)?;
    let (lo, hi) = (
        flipped.min_all()?.to_scalar::<f32>()?,
        flipped.max_all()?.to_scalar::<f32>()?,
    );
    let range = f64::from((hi - lo).max(1e-12));
    let shown = flipped.affine(1.0 / range, -f64::from(lo) / range)?;
    Ok(FlipFigureData {
        title: "Frequency flip: image, flipped, log|DCT2| before and after".into(),
        image: from_tensor(&image)?,
        flipped: from_tensor(&shown)?,
        size: n,
        spectrum: log_spectrum(&dct, &image)?,
        flipped_spectrum: log_spectrum(&dct, &flipped)?,
    })
}
