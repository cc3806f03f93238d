//! Margin distributions over DCT subspaces (ALGORITHMS.md §4.2 output, §0.3 statistics,
//! §0.4 sample selection): subspace DeepFool for every sample in every subspace, the
//! per-subspace median and quartiles, and the margin table.

use std::fmt::Write as _;
use std::ops::ControlFlow;

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::deepfool::{DeepFoolConfig, DeepFoolOutcome, DeepFoolStatus, subspace_deepfool};
use super::subspace::SubspacePlan;
use super::transforms::TransformedModel;
use crate::analysis::Result;
use crate::analysis::rng::{self, PLOT_JITTER, SAMPLE_SELECT};
use crate::analysis::stats::quantile;

/// Ns = 100 test images by default.
pub const DEFAULT_SAMPLES: usize = 100;

/// The first `count` entries of a uniform permutation of 0..total from
/// stream(seed, SAMPLE_SELECT, 0, 0): a draw without replacement, the same for every subspace
/// and model.
pub fn select_samples(seed: u64, total: usize, count: usize) -> Vec<usize> {
    let mut permutation = rng::permutation(&mut rng::stream(seed, SAMPLE_SELECT, 0, 0), total);
    permutation.truncate(count);
    permutation
}

/// Horizontal jitter in [−0.5, 0.5) for the points of subspace `s`, from
/// stream(seed, PLOT_JITTER, s, 0). Cosmetic only.
pub fn plot_jitter(seed: u64, s: usize, count: usize) -> Vec<f32> {
    let mut stream = rng::stream(seed, PLOT_JITTER, s as u64, 0);
    (0..count)
        .map(|_| rng::uniform(&mut stream, -0.5, 0.5))
        .collect()
}

/// One row of the margin table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubspaceSummary {
    pub s: usize,
    /// Block start.
    pub i0: usize,
    /// Quantiles over all samples, every status included (as the reference does).
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub max_iter: usize,
    pub degenerate: usize,
}

/// The median, Q1, Q3 and status counts of one subspace's margins.
pub fn summarize(
    s: usize,
    i0: usize,
    margins: &[f32],
    statuses: &[DeepFoolStatus],
) -> SubspaceSummary {
    let values: Vec<f64> = margins.iter().map(|&m| f64::from(m)).collect();
    let q = |p: f64| quantile(&values, p).unwrap_or(f64::NAN);
    let count = |status| statuses.iter().filter(|&&x| x == status).count();
    SubspaceSummary {
        s,
        i0,
        median: q(0.5),
        q1: q(0.25),
        q3: q(0.75),
        max_iter: count(DeepFoolStatus::MaxIter),
        degenerate: count(DeepFoolStatus::Degenerate),
    }
}

/// Every sample's result in one subspace (serialisable: a resumable sweep keeps each
/// finished subspace on disk).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubspaceMargins {
    pub summary: SubspaceSummary,
    pub margins: Vec<f32>,
    pub statuses: Vec<DeepFoolStatus>,
    pub iterations: Vec<u32>,
    /// The label DeepFool ended on for every sample (the input's label when it did not
    /// converge): the label of T(x) + (1+os)·r for a model with an input transform.
    pub final_labels: Vec<u32>,
    /// (1+os)·r of every sample, [C·N·N] each, when asked for.
    pub perturbations: Option<Vec<Vec<f32>>>,
}

/// The margins of Ns samples in the S subspaces of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct MarginDistribution {
    pub plan: SubspacePlan,
    pub samples: usize,
    /// One entry per finished subspace, low to high; fewer than S when cancelled.
    pub subspaces: Vec<SubspaceMargins>,
}

impl MarginDistribution {
    pub fn complete(&self) -> bool {
        self.subspaces.len() == self.plan.count
    }

    pub fn summaries(&self) -> Vec<SubspaceSummary> {
        self.subspaces.iter().map(|s| s.summary.clone()).collect()
    }

    /// margins [S × Ns] f32, status [S × Ns] u8 (0 converged, 1 max-iter, 2 degenerate) and
    /// iterations [S × Ns] u32, for the finished subspaces.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let (s, n) = (self.subspaces.len(), self.samples);
        let device = candle_core::Device::Cpu;
        let margins: Vec<f32> = self
            .subspaces
            .iter()
            .flat_map(|x| x.margins.clone())
            .collect();
        let status: Vec<u8> = self
            .subspaces
            .iter()
            .flat_map(|x| x.statuses.iter().map(|s| s.code()))
            .collect();
        let iterations: Vec<u32> = self
            .subspaces
            .iter()
            .flat_map(|x| x.iterations.clone())
            .collect();
        Ok(vec![
            (
                "margins".into(),
                Tensor::from_vec(margins, (s, n), &device)?,
            ),
            ("status".into(), Tensor::from_vec(status, (s, n), &device)?),
            (
                "iterations".into(),
                Tensor::from_vec(iterations, (s, n), &device)?,
            ),
        ])
    }
}

/// What `measure_margins` reports as it goes.
#[derive(Clone, Copy, Debug)]
pub enum MarginProgress<'a> {
    /// `done` of the samples of subspace `s` are finished.
    Batch { s: usize, done: usize },
    /// Subspace `s` is finished.
    Subspace(&'a SubspaceMargins),
}

/// Options of a margin measurement.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarginOptions {
    pub deepfool: DeepFoolConfig,
    /// Samples per DeepFool batch (each takes Kc rows of the gradient batch).
    pub batch: usize,
    /// Keep every sample's perturbation (C·N² floats per sample and subspace).
    pub keep_perturbations: bool,
}

impl Default for MarginOptions {
    fn default() -> Self {
        Self {
            deepfool: DeepFoolConfig::default(),
            batch: 16,
            keep_perturbations: false,
        }
    }
}

/// Subspace DeepFool for every image of `images` [Ns, C, N, N] in every subspace of `plan`,
/// low to high. `on_progress` is called after each batch and each subspace; returning
/// `Break` stops after the current batch and returns the subspaces finished so far.
///
/// A model with an input transform T is measured as the seed measures a model trained on
/// transformed data: on the samples T(x), with the perturbation confined to a band of the
/// network's own input. (Measuring f∘T on x instead would put the bands in the untransformed
/// image: for flip, band s there is band S−1−s of the network's input, which mirrors the
/// profile back, and a band filter would make its cut bands trivially infinite.)
pub fn measure_margins(
    model: &TransformedModel<'_>,
    images: &Tensor,
    plan: &SubspacePlan,
    options: &MarginOptions,
    on_progress: impl FnMut(MarginProgress<'_>) -> ControlFlow<()>,
) -> Result<MarginDistribution> {
    measure_margins_resuming(
        model,
        images,
        plan,
        options,
        |_| SubspaceTask::Compute,
        on_progress,
    )
}

/// What a resumed or sharded sweep does with one subspace.
pub enum SubspaceTask {
    /// Finished before (a resumed sweep's item): taken as it is.
    Known(SubspaceMargins),
    Compute,
    /// Another shard's: left out of this run's distribution.
    Skip,
}

/// [`measure_margins`], asking `task(s)` what to do with each subspace: take a finished one,
/// compute it, or skip it (another shard's; the distribution then lacks it). Each subspace is
/// computed the same way whatever the others are, so a resumed or merged sweep ends with the
/// uninterrupted one's numbers. `on_progress` sees `Subspace` for computed subspaces only.
pub fn measure_margins_resuming(
    model: &TransformedModel<'_>,
    images: &Tensor,
    plan: &SubspacePlan,
    options: &MarginOptions,
    mut task: impl FnMut(usize) -> SubspaceTask,
    mut on_progress: impl FnMut(MarginProgress<'_>) -> ControlFlow<()>,
) -> Result<MarginDistribution> {
    plan.check_images(images.dims())?;
    options.deepfool.validate()?;
    let samples = images.dim(0)?;
    let batch = options.batch.max(1);
    let images = model.transform_samples(images)?;
    let model = TransformedModel::plain(model.classifier());
    let model = &model;
    let mut out = MarginDistribution {
        plan: *plan,
        samples,
        subspaces: Vec::with_capacity(plan.count),
    };
    for s in 0..plan.count {
        match task(s) {
            SubspaceTask::Known(finished) if finished.margins.len() == samples => {
                out.subspaces.push(finished);
                continue;
            }
            SubspaceTask::Skip => continue,
            SubspaceTask::Known(_) | SubspaceTask::Compute => {}
        }
        let subspace = plan.subspace(s, model.dtype(), model.device())?;
        let mut outcomes: Vec<DeepFoolOutcome> = Vec::with_capacity(samples);
        let mut start = 0;
        while start < samples {
            let len = batch.min(samples - start);
            let chunk = images.narrow(0, start, len)?;
            outcomes.extend(subspace_deepfool(
                model,
                &chunk,
                &subspace,
                &options.deepfool,
            )?);
            start += len;
            if on_progress(MarginProgress::Batch { s, done: start }).is_break() {
                return Ok(out);
            }
        }
        let margins: Vec<f32> = outcomes.iter().map(|o| o.margin).collect();
        let statuses: Vec<DeepFoolStatus> = outcomes.iter().map(|o| o.status).collect();
        let finished = SubspaceMargins {
            summary: summarize(s, plan.start(s), &margins, &statuses),
            iterations: outcomes.iter().map(|o| o.iterations).collect(),
            final_labels: outcomes.iter().map(|o| o.final_label).collect(),
            perturbations: options
                .keep_perturbations
                .then(|| outcomes.into_iter().map(|o| o.perturbation).collect()),
            margins,
            statuses,
        };
        out.subspaces.push(finished);
        if let Some(last) = out.subspaces.last()
            && on_progress(MarginProgress::Subspace(last)).is_break()
        {
            break;
        }
    }
    Ok(out)
}

/// The images as one f32 batch [Ns, C, N, N] (helper for callers holding [C, N, N] tensors).
pub fn stack_images(images: &[Tensor]) -> Result<Tensor> {
    Ok(Tensor::stack(images, 0)?.to_dtype(DType::F32)?)
}

/// The margin table as CSV: s, i0, median, q1, q3, max_iter, degenerate.
pub fn table_csv(rows: &[SubspaceSummary]) -> String {
    let mut out = String::from("s,i0,median,q1,q3,max_iter,degenerate\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            r.s, r.i0, r.median, r.q1, r.q3, r.max_iter, r.degenerate
        );
    }
    out
}

/// The margin table as Markdown, one row per subspace; margins to 4 significant digits.
pub fn table_markdown(rows: &[SubspaceSummary]) -> String {
    let mut out = String::from(
        "| s | i0 | median | Q1 | Q3 | #MaxIter | #Degenerate |\n|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.s,
            r.i0,
            significant(r.median),
            significant(r.q1),
            significant(r.q3),
            r.max_iter,
            r.degenerate
        );
    }
    out
}

/// A margin to 4 significant digits.
pub fn significant(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_models::{biased_linear_f64, random_image};
    use candle_core::Device;

    #[test]
    fn sample_selection_is_a_seeded_draw_without_replacement() {
        let a = select_samples(0, 50, 20);
        assert_eq!(a.len(), 20);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20, "no repeats");
        assert!(a.iter().all(|&i| i < 50));
        assert_eq!(a, select_samples(0, 50, 20));
        assert_ne!(a, select_samples(1, 50, 20));
        // The first entries of the one §0.4 permutation.
        let full = rng::permutation(&mut rng::stream(0, SAMPLE_SELECT, 0, 0), 50);
        assert_eq!(a, full[..20]);
        assert_eq!(select_samples(3, 5, 10).len(), 5);
        let jitter = plot_jitter(0, 2, 100);
        assert!(jitter.iter().all(|j| (-0.5..0.5).contains(j)));
        assert_ne!(jitter, plot_jitter(0, 3, 100));
    }

    #[test]
    fn summary_uses_the_section_0_3_quantiles() {
        let margins = [4.0f32, 1.0, 3.0, 2.0, 10.0];
        let statuses = [
            DeepFoolStatus::Converged,
            DeepFoolStatus::MaxIter,
            DeepFoolStatus::Converged,
            DeepFoolStatus::Degenerate,
            DeepFoolStatus::MaxIter,
        ];
        let s = summarize(3, 6, &margins, &statuses);
        assert_eq!((s.s, s.i0, s.median, s.q1, s.q3), (3, 6, 3.0, 2.0, 4.0));
        assert_eq!((s.max_iter, s.degenerate), (2, 1));
        // pos = 0.25·3 = 0.75 between 1 and 2.
        let s = summarize(0, 0, &[2.0, 1.0, 4.0, 3.0], &[DeepFoolStatus::Converged; 4]);
        assert_eq!((s.q1, s.median, s.q3), (1.75, 2.5, 3.25));
        let csv = table_csv(std::slice::from_ref(&s));
        assert_eq!(csv.lines().nth(1), Some("0,0,2.5,1.75,3.25,0,0"));
        assert!(table_markdown(&[s]).contains("| 0 | 0 | 2.500 | 1.750 | 3.250 | 0 | 0 |"));
        assert_eq!(significant(0.0123456), "0.01235");
        assert_eq!(significant(12.3456), "12.35");
    }

    #[test]
    fn a_transformed_model_is_measured_on_transformed_samples() {
        use super::super::transforms::FrequencyTransform;
        let shape = [1, 12, 12];
        let classifier = biased_linear_f64(shape, 3, 7);
        let plan = SubspacePlan::for_input(1, 12, 12).expect("plan");
        let rows: Vec<Tensor> = (0..3)
            .map(|i| {
                Tensor::from_vec(random_image(i, shape), (1, 12, 12), &Device::Cpu).expect("x")
            })
            .collect();
        let images = stack_images(&rows).expect("stack");
        let options = MarginOptions::default();
        let measure = |model: &TransformedModel<'_>, x: &Tensor| {
            measure_margins(model, x, &plan, &options, |_| ControlFlow::Continue(()))
                .expect("margins")
        };
        let flipped_model =
            TransformedModel::new(&classifier, Some(FrequencyTransform::Flip)).expect("model");
        let via_transform = measure(&flipped_model, &images);
        let flipped = FrequencyTransform::Flip
            .apply_once(&images.to_dtype(DType::F64).expect("f64"))
            .expect("flip");
        let direct = measure(&TransformedModel::plain(&classifier), &flipped);
        for (a, b) in via_transform.subspaces.iter().zip(&direct.subspaces) {
            assert_eq!(a.margins, b.margins, "subspace {}", a.summary.s);
            assert_eq!(a.final_labels, b.final_labels, "subspace {}", a.summary.s);
            assert_eq!(a.final_labels.len(), 3);
        }
        // And not the margins of the untransformed samples.
        let plain = measure(&TransformedModel::plain(&classifier), &images);
        assert_ne!(
            via_transform.subspaces[0].margins,
            plain.subspaces[0].margins
        );
    }

    #[test]
    fn measures_every_subspace_and_stops_when_asked() {
        let shape = [1, 12, 12];
        let classifier = biased_linear_f64(shape, 3, 5);
        let model = TransformedModel::plain(&classifier);
        let plan = SubspacePlan::for_input(1, 12, 12).expect("plan");
        assert_eq!(plan.count, 5);
        let rows: Vec<Tensor> = (0..5)
            .map(|i| {
                Tensor::from_vec(random_image(i, shape), (1, 12, 12), &Device::Cpu).expect("x")
            })
            .collect();
        let images = stack_images(&rows).expect("stack");
        let options = MarginOptions {
            batch: 2,
            ..MarginOptions::default()
        };
        let mut events = Vec::new();
        let all = measure_margins(&model, &images, &plan, &options, |p| {
            events.push(match p {
                MarginProgress::Batch { s, done } => (s, done, false),
                MarginProgress::Subspace(m) => (m.summary.s, m.margins.len(), true),
            });
            ControlFlow::Continue(())
        })
        .expect("margins");
        assert!(all.complete());
        assert_eq!(all.subspaces.len(), 5);
        assert_eq!(events.len(), 5 * 4, "3 batches + 1 subspace event each");
        assert_eq!(
            events[..4],
            [(0, 2, false), (0, 4, false), (0, 5, false), (0, 5, true)]
        );
        let tensors = all.tensors().expect("tensors");
        assert_eq!(tensors[0].1.dims(), [5, 5]);
        assert_eq!(tensors[1].1.dtype(), DType::U8);
        // Stopping after the second subspace keeps the two finished ones.
        let mut finished = 0;
        let part = measure_margins(&model, &images, &plan, &options, |p| {
            if let MarginProgress::Subspace(_) = p {
                finished += 1;
                if finished == 2 {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })
        .expect("margins");
        assert_eq!(part.subspaces.len(), 2);
        assert!(!part.complete());
        assert_eq!(part.subspaces[1], all.subspaces[1]);
        // Images of the wrong size are refused by name.
        let err = measure_margins(
            &model,
            &images.narrow(3, 0, 10).expect("cut"),
            &plan,
            &options,
            |_| ControlFlow::Continue(()),
        )
        .expect_err("non-square");
        assert!(err.to_string().contains("square"), "{err}");
    }
}
