//! Level Set Traversal (ALGORITHMS.md §1.1–§1.4).
//!
//! [`Traversal`] runs a batch of (source, target) pairs one step at a time, so a caller can
//! stream per-step events and stop between any two steps; [`run_lst`] drives it with a callback.
//!
//! Per sample, each step is (§1.2):
//! ```text
//! J  ← ∇_x CE(x, y);  v ← x_t − x;  gg ← ⟨J, J⟩
//! nd ← (gg tiny) ? v : v − (⟨J, v⟩ / gg)·J
//! A  ← clamp(A + (ε/2)·J, −ε, ε)                 # every iteration
//! x' ← clamp(x + η·nd − (adv ? A : 0), 0, 1)
//! if p0 − p(x')[y] < δ: x ← x'
//! ```
//! Implementation choices:
//! - The iterate, target, gradient and accumulator live on the classifier's device as [b, C·H·W]
//!   f32 tensors; per-sample inner products are candle reductions read back as b scalars.
//! - The cached-gradient form of §1.2: the forward+backward runs at x', and J(x') is kept when
//!   the step is accepted, J(x) otherwise. One forward+backward per iteration, plus one at the
//!   noised start.
//! - Confidences are host softmaxes of the logits in f64 (see `confidence`).
//! - A proposal whose confidence is undefined (non-finite logits) is rejected. A gradient with a
//!   non-finite value (or whose ⟨J, J⟩ overflows f32) is treated as zero for that sample and
//!   step, so nd = v and A is unchanged; nothing non-finite ever enters the iterate.
//! - With adv off, a sample is frozen after its first rejection, exactly as §1.2 states; when
//!   every sample is frozen the proposal evaluation is skipped. Its logs and widths go on.
//! - Samples whose source is misclassified (or whose logits are not finite) are not run; they are
//!   reported as skipped.

use std::ops::ControlFlow;

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::confidence::{argmax, logits_rows, or_zero, softmax_at};
use super::error::{Result, invalid};
use super::hull::HULL_RESOLUTION;
use super::metrics::{Distances, distances};
use super::rng::{LST_NOISE, derangement, fill_uniform, stream};
use super::stats::{MeanStd, mean_std_f32};
use super::width::{WidthConfig, WidthMeasurement, measure_width};
use crate::models::{Classifier, Objective};

/// Inputs with min(H, W) at or above this use the ImageNet-scale preset.
pub const IMAGENET_MIN_SIDE: usize = 128;

/// LST hyperparameters (§1.1). Every value can be overridden.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LstConfig {
    /// η.
    pub step_size: f32,
    /// m.
    pub iterations: usize,
    /// δ: the maximum relative confidence drop (pthresh).
    pub pthresh: f32,
    /// Whether A is subtracted from the proposals.
    pub adversarial: bool,
    /// ε.
    pub adv_step: f32,
    /// ν: half-width of the initial uniform noise.
    pub init_noise: f32,
    /// The path is recorded at iterations i with i mod log_step == 0.
    pub log_step: usize,
    pub seed: u64,
    pub width: WidthConfig,
    /// Keep the logged iterates in the per-pair output (the per-step events carry them anyway).
    pub record_images: bool,
    /// Hull lattice resolution n.
    pub hull_resolution: usize,
    /// Pool selection: a pool image needs a confidence above this in every model.
    pub pool_min_confidence: f32,
    /// Derangement rounds R of the full evaluation.
    pub rounds: usize,
}

impl LstConfig {
    /// The ImageNet-scale preset (the paper's ImageNet configuration).
    pub fn imagenet() -> Self {
        Self {
            step_size: 1e-2,
            iterations: 400,
            pthresh: 0.2,
            adversarial: true,
            adv_step: 2e-3,
            init_noise: 2.0 / 255.0,
            log_step: 20,
            seed: 0,
            width: WidthConfig::imagenet(),
            record_images: true,
            hull_resolution: HULL_RESOLUTION,
            pool_min_confidence: 0.6,
            rounds: 5,
        }
    }

    /// The CIFAR-scale preset (the reference's defaults, with the adversarial term on).
    pub fn cifar() -> Self {
        Self {
            step_size: 5e-2,
            iterations: 100,
            pthresh: 0.05,
            adversarial: true,
            adv_step: 1.0 / 255.0,
            init_noise: 2.0 / 255.0,
            log_step: 10,
            seed: 0,
            width: WidthConfig::cifar(),
            record_images: true,
            hull_resolution: HULL_RESOLUTION,
            pool_min_confidence: 0.6,
            rounds: 5,
        }
    }

    /// The preset for an H×W input: ImageNet-scale when min(H, W) ≥ 128.
    pub fn for_input(height: usize, width: usize) -> Self {
        if height.min(width) >= IMAGENET_MIN_SIDE {
            Self::imagenet()
        } else {
            Self::cifar()
        }
    }

    /// L = ⌈m / log_step⌉, the number of logged iterates of a full run.
    pub fn num_logs(&self) -> usize {
        self.iterations.div_ceil(self.log_step.max(1))
    }

    pub fn validate(&self) -> Result<()> {
        let finite = [
            ("step_size", self.step_size),
            ("pthresh", self.pthresh),
            ("adv_step", self.adv_step),
            ("init_noise", self.init_noise),
            ("pool_min_confidence", self.pool_min_confidence),
        ];
        if let Some((name, v)) = finite.iter().find(|(_, v)| !v.is_finite()) {
            return Err(invalid(format!("LST {name} = {v} must be finite")));
        }
        if self.adv_step < 0.0 || self.init_noise < 0.0 {
            return Err(invalid("LST adv_step and init_noise must be >= 0"));
        }
        if self.log_step == 0 {
            return Err(invalid("LST log_step must be at least 1"));
        }
        if self.hull_resolution == 0 {
            return Err(invalid("hull resolution must be at least 1"));
        }
        self.width.validate()
    }
}

/// One (source, target) pair to traverse.
#[derive(Clone, Debug)]
pub struct LstPair {
    /// x_s, [C, H, W] in [0, 1].
    pub source: Tensor,
    /// y, the source class.
    pub label: u32,
    /// x_t, [C, H, W] in [0, 1].
    pub target: Tensor,
    /// y_t, used for logging only.
    pub target_label: u32,
    /// Index of the pair within the run (§1.3); keys the noise and the width directions.
    pub pair_id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SkipReason {
    /// argmax p(x_s) ≠ y.
    MisclassifiedSource,
    /// The source's logits are not all finite, so it has no prediction.
    NonFiniteSourceLogits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PairStatus {
    /// All m iterations ran.
    Done,
    /// The caller stopped the run after `steps` iterations; the outputs describe that iterate.
    Stopped {
        steps: usize,
    },
    Skipped(SkipReason),
}

/// What is known about a pair before the loop starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairStart {
    /// Index of the pair in the input slice.
    pub pair_index: usize,
    pub pair_id: u64,
    /// p0 = p(x_s)[y] of the un-noised source (0 when undefined).
    pub p0: f32,
    /// argmax p(x_s), when the logits are finite.
    pub predicted: Option<u32>,
    pub skipped: Option<SkipReason>,
}

/// A logged iterate (§1.4): the iterate x BEFORE the step of iteration `step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedIterate {
    pub step: usize,
    /// step / log_step.
    pub log_index: usize,
    /// p(x)[y].
    pub source_conf: f32,
    /// p(x)[y_t].
    pub target_conf: f32,
    /// x, [C, H, W] row-major.
    pub image: Vec<f32>,
    /// The §1.5 width block at x, when widths are on.
    pub width: Option<WidthMeasurement>,
}

/// One sample's part of a step event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleStep {
    pub pair_index: usize,
    pub pair_id: u64,
    /// p(x)[y] of the current iterate, after the accept/reject decision.
    pub source_conf: f32,
    /// p(x)[y_t] of the current iterate.
    pub target_conf: f32,
    /// ‖x − x_t‖₂ / √(C·H·W) of the current iterate.
    pub l2: f32,
    /// max |x − x_t| of the current iterate.
    pub linf: f32,
    pub accepted: bool,
    /// At logged iterations: the iterate before this step.
    pub logged: Option<LoggedIterate>,
}

/// Everything one iteration produced, for every sample that runs (skipped pairs never appear).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepEvent {
    /// Iteration index i, 0-based.
    pub step: usize,
    pub samples: Vec<SampleStep>,
}

/// The outputs of one pair that ran (§1.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairResult {
    /// [C, H, W].
    pub shape: [usize; 3],
    /// x*, row-major.
    pub x_star: Vec<f32>,
    /// [L + 1] rows of (p(·)[y], p(·)[y_t]); the last row is x*.
    pub confs: Vec<[f32; 2]>,
    /// The iteration of each logged row.
    pub logged_steps: Vec<usize>,
    /// Table 1 distances of x* to x_t.
    pub distances: Distances,
    /// [L] logged iterates, when `record_images`.
    pub images: Option<Vec<Vec<f32>>>,
    /// [L] width blocks, when widths are on.
    pub widths: Option<Vec<WidthMeasurement>>,
    /// Iterations that ran and how many of them were accepted.
    pub steps: usize,
    pub accepted_steps: usize,
}

impl PairResult {
    /// x* as a [C, H, W] tensor.
    pub fn x_star_tensor(&self, device: &candle_core::Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.x_star,
            self.shape.as_slice(),
            device,
        )?)
    }
}

/// The per-pair output. Skipped pairs are reported with `result: None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairOutput {
    pub pair_index: usize,
    pub pair_id: u64,
    pub label: u32,
    pub target_label: u32,
    /// p0 = p(x_s)[y] (0 when undefined).
    pub p0: f32,
    pub status: PairStatus,
    pub result: Option<PairResult>,
}

/// f32::MIN_POSITIVE: a value at or below it is "tiny" (§0.2).
const TINY: f32 = f32::MIN_POSITIVE;

/// The projected direction of a batch (§1.2).
#[derive(Clone, Debug)]
pub struct Projection {
    /// nd = v − (⟨J, v⟩/⟨J, J⟩)·J per row, nd = v where ⟨J, J⟩ is tiny. [b, D].
    pub nd: Tensor,
    /// J with every row that holds a non-finite value (or whose ⟨J, J⟩ or ⟨J, v⟩ is not
    /// finite) replaced by zeros. [b, D].
    pub grad: Tensor,
    /// ⟨J, v⟩/⟨J, J⟩ per row, 0 where tiny or zeroed.
    pub coef: Vec<f32>,
}

/// Projects v onto the orthogonal complement of J, per row of [b, D] tensors. The inner
/// products are f32 candle reductions; the coefficient is divided in f64.
pub fn project_orthogonal(v: &Tensor, j: &Tensor) -> Result<Projection> {
    let gg = j.sqr()?.sum(1)?;
    let jv = (j * v)?.sum(1)?;
    let stats = Tensor::stack(&[&gg, &jv], 0)?.to_vec2::<f32>()?;
    let bad: Vec<bool> = stats[0]
        .iter()
        .zip(&stats[1])
        .map(|(g, p)| !(g.is_finite() && p.is_finite()))
        .collect();
    let grad = if bad.iter().any(|&x| x) {
        select_rows(&bad, &j.zeros_like()?, j)?
    } else {
        j.clone()
    };
    let coef: Vec<f32> = stats[0]
        .iter()
        .zip(&stats[1])
        .map(|(&g, &p)| coefficient(g, p))
        .collect();
    let nd = apply_projection(v, &grad, &coef)?;
    Ok(Projection { nd, grad, coef })
}

/// ⟨J, v⟩/⟨J, J⟩, or 0 when ⟨J, J⟩ is tiny or either product is not finite.
fn coefficient(gg: f32, jv: f32) -> f32 {
    if gg.is_finite() && jv.is_finite() && gg > TINY {
        (f64::from(jv) / f64::from(gg)) as f32
    } else {
        0.0
    }
}

fn apply_projection(v: &Tensor, j: &Tensor, coef: &[f32]) -> Result<Tensor> {
    if coef.iter().all(|&c| c == 0.0) {
        return Ok(v.clone());
    }
    let c = Tensor::from_slice(coef, (coef.len(), 1), v.device())?;
    Ok((v - j.broadcast_mul(&c)?)?)
}

/// Selects rows of `on_true` where `mask` holds and of `on_false` elsewhere, exactly.
fn select_rows(mask: &[bool], on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
    if mask.iter().all(|&m| m) {
        return Ok(on_true.clone());
    }
    if !mask.iter().any(|&m| m) {
        return Ok(on_false.clone());
    }
    let m: Vec<u8> = mask.iter().map(|&m| u8::from(m)).collect();
    let m =
        Tensor::from_vec(m, (mask.len(), 1), on_true.device())?.broadcast_as(on_true.shape())?;
    Ok(m.where_cond(on_true, on_false)?)
}

/// Per-row (‖d‖₂/√D, max |d|) for d = a − b, [b, D].
fn row_distances(a: &Tensor, b: &Tensor) -> Result<Vec<(f32, f32)>> {
    let d = (a - b)?;
    let dim = d.dim(1)?.max(1) as f64;
    let ss = d.sqr()?.sum(1)?;
    let mx = d.abs()?.max(1)?;
    let stats = Tensor::stack(&[&ss, &mx], 0)?.to_vec2::<f32>()?;
    Ok(stats[0]
        .iter()
        .zip(&stats[1])
        .map(|(&s, &m)| ((f64::from(s) / dim).sqrt() as f32, m))
        .collect())
}

/// The initial noise ξ of a pair: `len` uniforms on [−ν, ν) from stream(seed, LST_NOISE,
/// pair_id, 0), row-major.
pub fn initial_noise(seed: u64, pair_id: u64, nu: f32, len: usize) -> Vec<f32> {
    let mut xi = vec![0f32; len];
    fill_uniform(&mut stream(seed, LST_NOISE, pair_id, 0), -nu, nu, &mut xi);
    xi
}

/// The running state of the samples that traverse.
struct Active {
    /// Input index of each running sample.
    pairs: Vec<usize>,
    labels: Vec<u32>,
    target_labels: Vec<u32>,
    pair_ids: Vec<u64>,
    p0: Vec<f32>,
    /// x_t, x, J(x) and A: [b, D] f32 on the classifier's device.
    xt: Tensor,
    x: Tensor,
    grad: Tensor,
    acc: Tensor,
    /// p(x)[y] and p(x)[y_t] of the current iterates (NaN when undefined).
    conf_src: Vec<f32>,
    conf_tgt: Vec<f32>,
    /// (L2_norm, L∞) of the current iterates to their targets.
    dist: Vec<(f32, f32)>,
    /// Adv off: rejected once, so never moves again.
    frozen: Vec<bool>,
    accepted: Vec<usize>,
    logs: Vec<Vec<LogRecord>>,
}

struct LogRecord {
    step: usize,
    confs: [f32; 2],
    image: Option<Vec<f32>>,
    width: Option<WidthMeasurement>,
}

/// A batch of LST traversals, advanced one iteration per [`Traversal::step`].
///
/// A sample's result does not depend on its batch-mates: all draws are keyed by its pair_id and
/// every operation is per row.
pub struct Traversal<'a> {
    classifier: &'a Classifier,
    config: LstConfig,
    shape: [usize; 3],
    starts: Vec<PairStart>,
    meta: Vec<(u64, u32, u32)>,
    active: Option<Active>,
    step: usize,
}

impl std::fmt::Debug for Traversal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traversal")
            .field("config", &self.config)
            .field("shape", &self.shape)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

fn host_image(t: &Tensor, shape: [usize; 3], what: &str, index: usize) -> Result<Vec<f32>> {
    if t.dims() != shape {
        return Err(invalid(format!(
            "pair {index}: {what} has shape {:?}, the model expects {shape:?}",
            t.dims()
        )));
    }
    let v = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    if let Some(bad) = v.iter().find(|x| !(0.0..=1.0).contains(*x)) {
        return Err(invalid(format!(
            "pair {index}: {what} has value {bad} outside [0, 1]"
        )));
    }
    Ok(v)
}

impl<'a> Traversal<'a> {
    /// Checks the inputs, classifies the un-noised sources, draws the initial noise and takes
    /// the first gradient. Pairs whose source is misclassified are reported as skipped.
    pub fn new(classifier: &'a Classifier, config: &LstConfig, pairs: &[LstPair]) -> Result<Self> {
        config.validate()?;
        let spec = classifier.spec();
        let shape = [spec.channels, spec.input_size[0], spec.input_size[1]];
        let dim: usize = shape.iter().product();
        let device = classifier.device();
        let mut sources = Vec::with_capacity(pairs.len() * dim);
        let mut targets = Vec::with_capacity(pairs.len() * dim);
        for (k, p) in pairs.iter().enumerate() {
            sources.extend(host_image(&p.source, shape, "source", k)?);
            targets.extend(host_image(&p.target, shape, "target", k)?);
        }
        let meta: Vec<(u64, u32, u32)> = pairs
            .iter()
            .map(|p| (p.pair_id, p.label, p.target_label))
            .collect();
        let mut traversal = Self {
            classifier,
            config: config.clone(),
            shape,
            starts: Vec::new(),
            meta,
            active: None,
            step: 0,
        };
        if pairs.is_empty() {
            return Ok(traversal);
        }
        let n = pairs.len();
        let image_shape = (n, shape[0], shape[1], shape[2]);
        let xs_all = Tensor::from_vec(sources, image_shape, device)?;
        let rows = logits_rows(&classifier.forward(&xs_all)?)?;
        let mut run = Vec::new();
        for (k, (p, row)) in pairs.iter().zip(&rows).enumerate() {
            let classes = row.len();
            for y in [p.label, p.target_label] {
                if y as usize >= classes {
                    return Err(invalid(format!(
                        "pair {k}: label {y} is out of range for {classes} classes"
                    )));
                }
            }
            let predicted = argmax(row);
            let skipped = match predicted {
                None => Some(SkipReason::NonFiniteSourceLogits),
                Some(c) if c != p.label as usize => Some(SkipReason::MisclassifiedSource),
                Some(_) => None,
            };
            if skipped.is_none() {
                run.push(k);
            }
            traversal.starts.push(PairStart {
                pair_index: k,
                pair_id: p.pair_id,
                p0: or_zero(softmax_at(row, p.label as usize)),
                predicted: predicted.map(|c| c as u32),
                skipped,
            });
        }
        if run.is_empty() {
            return Ok(traversal);
        }
        let b = run.len();
        let index = Tensor::from_vec(run.iter().map(|&k| k as u32).collect::<Vec<_>>(), b, device)?;
        let xs = xs_all.reshape((n, dim))?.index_select(&index, 0)?;
        let xt = Tensor::from_vec(targets, (n, dim), device)?.index_select(&index, 0)?;
        let mut noise = Vec::with_capacity(b * dim);
        for &k in &run {
            noise.extend(initial_noise(
                config.seed,
                pairs[k].pair_id,
                config.init_noise,
                dim,
            ));
        }
        let xi = Tensor::from_vec(noise, (b, dim), device)?;
        let x = (xs + xi)?.clamp(0f32, 1f32)?;
        let labels: Vec<u32> = run.iter().map(|&k| pairs[k].label).collect();
        let target_labels: Vec<u32> = run.iter().map(|&k| pairs[k].target_label).collect();
        let (rows, grad) = gradient_at(classifier, shape, &x, &labels)?;
        let conf_src = confidences(&rows, &labels);
        let conf_tgt = confidences(&rows, &target_labels);
        let dist = row_distances(&x, &xt)?;
        traversal.active = Some(Active {
            pair_ids: run.iter().map(|&k| pairs[k].pair_id).collect(),
            p0: run.iter().map(|&k| traversal.starts[k].p0).collect(),
            pairs: run,
            labels,
            target_labels,
            acc: x.zeros_like()?,
            xt,
            x,
            grad,
            conf_src,
            conf_tgt,
            dist,
            frozen: vec![false; b],
            accepted: vec![0; b],
            logs: (0..b).map(|_| Vec::new()).collect(),
        });
        Ok(traversal)
    }

    pub fn config(&self) -> &LstConfig {
        &self.config
    }

    /// p0, prediction and skip status of every input pair, in input order.
    pub fn starts(&self) -> &[PairStart] {
        &self.starts
    }

    /// Iterations run so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// True when all m iterations ran, or no pair can run.
    pub fn is_finished(&self) -> bool {
        self.active.is_none() || self.step >= self.config.iterations
    }

    /// The current iterates [b, C·H·W] of the running samples (input order of the non-skipped
    /// pairs), for inspection.
    pub fn iterates(&self) -> Option<&Tensor> {
        self.active.as_ref().map(|a| &a.x)
    }

    /// The adversarial accumulators A [b, C·H·W], for inspection.
    pub fn accumulators(&self) -> Option<&Tensor> {
        self.active.as_ref().map(|a| &a.acc)
    }

    /// Runs iteration `steps_done()`. `None` once finished.
    ///
    /// The state is only updated once the whole iteration has succeeded, so after an error the
    /// traversal is still at the start of that iteration.
    pub fn step(&mut self) -> Result<Option<StepEvent>> {
        if self.is_finished() {
            return Ok(None);
        }
        let i = self.step;
        let cfg = &self.config;
        let classifier = self.classifier;
        let shape = self.shape;
        let [c, h, w] = shape;
        let Some(st) = self.active.as_mut() else {
            return Ok(None);
        };
        let b = st.pairs.len();

        // nd, with non-finite gradients zeroed first.
        let v = (&st.xt - &st.x)?;
        let Projection { nd, grad, .. } = project_orthogonal(&v, &st.grad)?;
        drop(v);

        // A ← clamp(A + (ε/2)·J, −ε, ε), every iteration.
        let eps = cfg.adv_step;
        let acc = (&st.acc + grad.affine(f64::from(eps) / 2.0, 0.0)?)?.clamp(-eps, eps)?;

        // Logging of the iterate before the step.
        let mut logged: Vec<Option<LoggedIterate>> = vec![None; b];
        if i.is_multiple_of(cfg.log_step) {
            let log_index = i / cfg.log_step;
            let images = st.x.to_vec2::<f32>()?;
            let nds = if cfg.width.enabled {
                Some(nd.to_vec2::<f32>()?)
            } else {
                None
            };
            for (k, image) in images.into_iter().enumerate() {
                let source_conf = or_zero(st.conf_src[k]);
                let width = match &nds {
                    Some(nds) => Some(measure_width(
                        classifier,
                        &st.x.get(k)?.reshape((c, h, w))?,
                        &nds[k],
                        st.labels[k],
                        source_conf,
                        cfg.pthresh,
                        &cfg.width,
                        cfg.seed,
                        st.pair_ids[k],
                        log_index as u64,
                    )?),
                    None => None,
                };
                logged[k] = Some(LoggedIterate {
                    step: i,
                    log_index,
                    source_conf,
                    target_conf: or_zero(st.conf_tgt[k]),
                    image,
                    width,
                });
            }
        }

        // Proposal, one forward+backward at x', and the decision.
        let mut accept = vec![false; b];
        let mut moved = None;
        if !st.frozen.iter().all(|&f| f) {
            let mut proposal = (&st.x + nd.affine(f64::from(cfg.step_size), 0.0)?)?;
            if cfg.adversarial {
                proposal = (proposal - &acc)?;
            }
            let proposal = proposal.clamp(0f32, 1f32)?;
            let (rows, next_grad) = gradient_at(classifier, shape, &proposal, &st.labels)?;
            let mut confs = vec![[0f32; 2]; b];
            for k in 0..b {
                let p = softmax_at(&rows[k], st.labels[k] as usize);
                // A NaN confidence fails the test and is rejected.
                accept[k] = !st.frozen[k] && !p.is_nan() && st.p0[k] - p < cfg.pthresh;
                confs[k] = [p, softmax_at(&rows[k], st.target_labels[k] as usize)];
            }
            if accept.iter().any(|&a| a) {
                let x = select_rows(&accept, &proposal, &st.x)?;
                let grad = select_rows(&accept, &next_grad, &grad)?;
                let dist = row_distances(&x, &st.xt)?;
                moved = Some((x, grad, dist, confs));
            }
        }

        // Commit.
        st.acc = acc;
        match moved {
            Some((x, next_grad, dist, confs)) => {
                st.x = x;
                st.grad = next_grad;
                for k in (0..b).filter(|&k| accept[k]) {
                    st.dist[k] = dist[k];
                    [st.conf_src[k], st.conf_tgt[k]] = confs[k];
                    st.accepted[k] += 1;
                }
            }
            None => st.grad = grad,
        }
        if !cfg.adversarial {
            for (f, &a) in st.frozen.iter_mut().zip(&accept) {
                *f |= !a;
            }
        }
        for (log, entry) in st.logs.iter_mut().zip(&logged) {
            if let Some(e) = entry {
                log.push(LogRecord {
                    step: i,
                    confs: [e.source_conf, e.target_conf],
                    image: cfg.record_images.then(|| e.image.clone()),
                    width: e.width.clone(),
                });
            }
        }
        self.step += 1;

        let samples = logged
            .into_iter()
            .enumerate()
            .map(|(k, logged)| SampleStep {
                pair_index: st.pairs[k],
                pair_id: st.pair_ids[k],
                source_conf: or_zero(st.conf_src[k]),
                target_conf: or_zero(st.conf_tgt[k]),
                l2: st.dist[k].0,
                linf: st.dist[k].1,
                accepted: accept[k],
                logged,
            })
            .collect();
        Ok(Some(StepEvent { step: i, samples }))
    }

    /// The per-pair outputs, in input order. Pairs of a run stopped early get
    /// `PairStatus::Stopped` and describe their current iterate.
    pub fn finish(self) -> Result<Vec<PairOutput>> {
        let mut by_pair: Vec<Option<PairResult>> = (0..self.meta.len()).map(|_| None).collect();
        if let Some(st) = self.active {
            let x_star = st.x.to_vec2::<f32>()?;
            let targets = st.xt.to_vec2::<f32>()?;
            let rows = st.logs.into_iter().zip(x_star).zip(targets);
            for (k, ((logs, x_star), target)) in rows.enumerate() {
                let mut confs: Vec<[f32; 2]> = Vec::with_capacity(logs.len() + 1);
                let mut logged_steps = Vec::with_capacity(logs.len());
                let mut images = Vec::new();
                let mut widths = Vec::new();
                for rec in logs {
                    confs.push(rec.confs);
                    logged_steps.push(rec.step);
                    if let Some(img) = rec.image {
                        images.push(img);
                    }
                    if let Some(wm) = rec.width {
                        widths.push(wm);
                    }
                }
                confs.push([or_zero(st.conf_src[k]), or_zero(st.conf_tgt[k])]);
                by_pair[st.pairs[k]] = Some(PairResult {
                    shape: self.shape,
                    distances: distances(&x_star, &target, self.shape)?,
                    x_star,
                    confs,
                    logged_steps,
                    images: self.config.record_images.then_some(images),
                    widths: self.config.width.enabled.then_some(widths),
                    steps: self.step,
                    accepted_steps: st.accepted[k],
                });
            }
        }
        let done = self.step >= self.config.iterations;
        Ok(self
            .starts
            .iter()
            .zip(&self.meta)
            .zip(by_pair)
            .map(
                |((start, &(pair_id, label, target_label)), result)| PairOutput {
                    pair_index: start.pair_index,
                    pair_id,
                    label,
                    target_label,
                    p0: start.p0,
                    status: match (start.skipped, done) {
                        (Some(reason), _) => PairStatus::Skipped(reason),
                        (None, true) => PairStatus::Done,
                        (None, false) => PairStatus::Stopped { steps: self.step },
                    },
                    result,
                },
            )
            .collect())
    }
}

/// Logits (host rows) and ∇_x Σ_b CE(x_b, y_b) at a [b, D] batch; the gradient as a detached
/// [b, D] f32 tensor, so no autograd graph outlives the call.
fn gradient_at(
    classifier: &Classifier,
    shape: [usize; 3],
    x: &Tensor,
    labels: &[u32],
) -> Result<(Vec<Vec<f32>>, Tensor)> {
    let [c, h, w] = shape;
    let b = labels.len();
    let images = x.reshape((b, c, h, w))?;
    let (logits, grad) =
        classifier.input_gradient(&images, &Objective::CrossEntropy(labels.to_vec()))?;
    let grad = grad
        .detach()
        .to_dtype(DType::F32)?
        .reshape((b, c * h * w))?;
    Ok((logits_rows(&logits)?, grad))
}

/// p(x)[label] per host logits row (NaN when undefined).
fn confidences(rows: &[Vec<f32>], labels: &[u32]) -> Vec<f32> {
    rows.iter()
        .zip(labels)
        .map(|(row, &y)| softmax_at(row, y as usize))
        .collect()
}

/// Runs LST on a batch of pairs, calling `on_step` after every iteration; returning
/// `ControlFlow::Break` stops the run there (its pairs are then `Stopped`).
pub fn run_lst(
    classifier: &Classifier,
    config: &LstConfig,
    pairs: &[LstPair],
    mut on_step: impl FnMut(&StepEvent) -> ControlFlow<()>,
) -> Result<Vec<PairOutput>> {
    let mut traversal = Traversal::new(classifier, config, pairs)?;
    while let Some(event) = traversal.step()? {
        if on_step(&event).is_break() {
            break;
        }
    }
    traversal.finish()
}

/// A planned pair of a run mode (§1.3): indices into the pool and the pair_id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairPlan {
    pub source: usize,
    pub target: usize,
    pub pair_id: u64,
    /// Derangement round (0 in examples mode).
    pub round: usize,
}

/// Examples mode: every ordered pair s ≠ t of a pool of k images, pair_id = s·k + t.
pub fn examples_pairs(k: usize) -> Vec<PairPlan> {
    (0..k)
        .flat_map(|s| {
            (0..k).filter(move |&t| t != s).map(move |t| PairPlan {
                source: s,
                target: t,
                pair_id: (s * k + t) as u64,
                round: 0,
            })
        })
        .collect()
}

/// Full evaluation: for each round r, the pairs i → π_r(i) with pair_id = r·N + i, π_r the
/// derangement drawn from stream(seed, DERANGEMENT, r, attempt). `None` for N < 2.
pub fn evaluation_pairs(n: usize, rounds: usize, seed: u64) -> Option<Vec<PairPlan>> {
    let mut out = Vec::with_capacity(n * rounds);
    for r in 0..rounds {
        let pi = derangement(seed, r as u64, n)?;
        out.extend(pi.iter().enumerate().map(|(i, &t)| PairPlan {
            source: i,
            target: t,
            pair_id: (r * n + i) as u64,
            round: r,
        }));
    }
    Some(out)
}

/// Log indices shown in a path strip (§1.9): round(k·(L−1)/6) for k = 1..6, or all when L ≤ 6.
pub fn path_strip_frames(num_logs: usize) -> Vec<usize> {
    if num_logs <= 6 {
        return (0..num_logs).collect();
    }
    (1..=6)
        .map(|k| (k as f64 * (num_logs - 1) as f64 / 6.0).round() as usize)
        .collect()
}

/// Table 1 for one model (§1.6): mean ± std over the pairs that ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table1 {
    pub l2: Option<MeanStd>,
    pub linf: Option<MeanStd>,
    pub ssim: Option<MeanStd>,
    pub lpips: Option<MeanStd>,
    pub pairs: usize,
    pub skipped_pairs: usize,
}

/// Table 1 from per-pair outputs; a distance that is n/a for a pair is left out of its column.
pub fn table1(outputs: &[PairOutput]) -> Table1 {
    let results: Vec<&PairResult> = outputs.iter().filter_map(|o| o.result.as_ref()).collect();
    let column = |f: &dyn Fn(&Distances) -> Option<f32>| {
        let v: Vec<f32> = results.iter().filter_map(|r| f(&r.distances)).collect();
        mean_std_f32(&v)
    };
    Table1 {
        l2: column(&|d| Some(d.l2)),
        linf: column(&|d| Some(d.linf)),
        ssim: column(&|d| d.ssim),
        lpips: column(&|d| d.lpips),
        pairs: results.len(),
        skipped_pairs: outputs
            .iter()
            .filter(|o| matches!(o.status, PairStatus::Skipped(_)))
            .count(),
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::super::confidence::batch_confidences;
    use super::super::rng::{Normals, stream as rng_stream};
    use super::super::test_models::{
        constant_classifier, image_tensor, linear_classifier, random_image,
    };
    use super::super::width::WidthStatus;
    use super::*;

    const SHAPE: [usize; 3] = [3, 8, 8];
    const DIM: usize = 192;

    fn predicted(classifier: &Classifier, image: &[f32]) -> u32 {
        let t = image_tensor(image.to_vec(), SHAPE)
            .unsqueeze(0)
            .expect("batch");
        let rows = logits_rows(&classifier.forward(&t).expect("forward")).expect("rows");
        argmax(&rows[0]).expect("finite") as u32
    }

    /// A pair whose source label is the model's prediction.
    fn pair(classifier: &Classifier, s: u64, t: u64, pair_id: u64) -> LstPair {
        let (xs, xt) = (random_image(s, SHAPE), random_image(t, SHAPE));
        LstPair {
            label: predicted(classifier, &xs),
            target_label: predicted(classifier, &xt),
            source: image_tensor(xs, SHAPE),
            target: image_tensor(xt, SHAPE),
            pair_id,
        }
    }

    fn small_config() -> LstConfig {
        LstConfig {
            step_size: 0.1,
            iterations: 12,
            pthresh: 0.05,
            adversarial: true,
            adv_step: 0.01,
            init_noise: 2.0 / 255.0,
            log_step: 1,
            ..LstConfig::cifar()
        }
    }

    fn run(
        classifier: &Classifier,
        config: &LstConfig,
        pairs: &[LstPair],
    ) -> (Vec<PairOutput>, Vec<StepEvent>) {
        let mut events = Vec::new();
        let out = run_lst(classifier, config, pairs, |e| {
            events.push(e.clone());
            ControlFlow::Continue(())
        })
        .expect("run");
        (out, events)
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all()
            .expect("flat")
            .to_vec1::<f32>()
            .expect("vec")
    }

    fn assert_no_nan(out: &[PairOutput], events: &[StepEvent]) {
        for o in out {
            assert!(o.p0.is_finite());
            if let Some(r) = &o.result {
                assert!(r.x_star.iter().all(|v| v.is_finite()));
                assert!(r.confs.iter().flatten().all(|v| v.is_finite()));
                assert!(r.distances.l2.is_finite() && r.distances.linf.is_finite());
                for w in r.widths.iter().flatten() {
                    assert!(w.rows.iter().flatten().all(|v| v.is_finite()));
                }
            }
        }
        for e in events {
            for s in &e.samples {
                assert!(
                    [s.source_conf, s.target_conf, s.l2, s.linf]
                        .iter()
                        .all(|v| v.is_finite())
                );
            }
        }
    }

    #[test]
    fn presets_and_config() {
        let i = LstConfig::imagenet();
        assert_eq!(
            (
                i.step_size,
                i.iterations,
                i.pthresh,
                i.adversarial,
                i.adv_step,
                i.log_step
            ),
            (1e-2, 400, 0.2, true, 2e-3, 20)
        );
        assert_eq!(i.init_noise, 2.0 / 255.0);
        assert_eq!(i.width.radii, vec![0.5, 1.0, 1.5, 2.0]);
        assert_eq!(i.width.directions, 256);
        assert!(!i.width.enabled);
        assert_eq!(
            (i.hull_resolution, i.pool_min_confidence, i.rounds),
            (10, 0.6, 5)
        );
        assert_eq!(i.num_logs(), 20);
        let c = LstConfig::cifar();
        assert_eq!(
            (
                c.step_size,
                c.iterations,
                c.pthresh,
                c.adversarial,
                c.adv_step,
                c.log_step
            ),
            (5e-2, 100, 0.05, true, 1.0 / 255.0, 10)
        );
        assert_eq!(c.width.radii, vec![5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
        assert_eq!(c.num_logs(), 10);
        assert_eq!(LstConfig::for_input(224, 224), i);
        assert_eq!(LstConfig::for_input(128, 300), i);
        assert_eq!(LstConfig::for_input(127, 300), c);
        assert_eq!(LstConfig::for_input(32, 32), c);
        assert_eq!(
            LstConfig {
                iterations: 7,
                log_step: 3,
                ..c.clone()
            }
            .num_logs(),
            3
        );
        let json = serde_json::to_string(&i).expect("json");
        assert_eq!(serde_json::from_str::<LstConfig>(&json).expect("parse"), i);
        assert!(
            LstConfig {
                log_step: 0,
                ..c.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            LstConfig {
                step_size: f32::NAN,
                ..c.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            LstConfig {
                adv_step: -1.0,
                ..c.clone()
            }
            .validate()
            .is_err()
        );
        assert!(i.validate().is_ok() && c.validate().is_ok());
    }

    #[test]
    fn projection_is_orthogonal_and_reconstructs() {
        let rows = 5;
        let mut normals = Normals::new(rng_stream(1, 50, 0, 0));
        let mut v = vec![0f32; rows * DIM];
        let mut j = vec![0f32; rows * DIM];
        normals.fill(&mut v);
        normals.fill(&mut j);
        // Row 3: v ∥ J. Row 4: J = 0.
        for k in 0..DIM {
            v[3 * DIM + k] = 3.0 * j[3 * DIM + k];
            j[4 * DIM + k] = 0.0;
        }
        let vt = Tensor::from_slice(&v, (rows, DIM), &Device::Cpu).expect("v");
        let jt = Tensor::from_slice(&j, (rows, DIM), &Device::Cpu).expect("j");
        let p = project_orthogonal(&vt, &jt).expect("projection");
        let nd = p.nd.to_vec2::<f32>().expect("nd");
        for r in 0..rows {
            let (vr, jr) = (&v[r * DIM..(r + 1) * DIM], &j[r * DIM..(r + 1) * DIM]);
            let dot = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| f64::from(x) * f64::from(y))
                    .sum::<f64>()
            };
            let (nv, nj) = (dot(vr, vr).sqrt(), dot(jr, jr).sqrt());
            assert!(dot(&nd[r], jr).abs() <= 1e-5 * nv * nj, "row {r}");
            let coef = f64::from(p.coef[r]);
            let err = nd[r]
                .iter()
                .zip(jr)
                .zip(vr)
                .map(|((&n, &g), &x)| (f64::from(n) + coef * f64::from(g) - f64::from(x)).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(err <= 1e-6 * nv, "row {r}: {err}");
        }
        assert!((p.coef[3] - 3.0).abs() < 1e-6);
        assert_eq!(p.coef[4], 0.0);
        assert_eq!(nd[4], v[4 * DIM..5 * DIM].to_vec());
        // A non-finite gradient row is zeroed: nd = v, no NaN.
        let mut bad = j.clone();
        bad[2 * DIM + 7] = f32::NAN;
        let bt = Tensor::from_slice(&bad, (rows, DIM), &Device::Cpu).expect("j");
        let p = project_orthogonal(&vt, &bt).expect("projection");
        let nd = p.nd.to_vec2::<f32>().expect("nd");
        assert_eq!(nd[2], v[2 * DIM..3 * DIM].to_vec());
        assert!(
            p.grad.to_vec2::<f32>().expect("g")[2]
                .iter()
                .all(|&g| g == 0.0)
        );
        assert!(nd.iter().flatten().all(|x| x.is_finite()));
    }

    #[test]
    fn zero_gradient_reaches_the_target() {
        let (classifier, _) = constant_classifier(SHAPE);
        let (xs, xt) = (random_image(1, SHAPE), random_image(2, SHAPE));
        let pairs = [LstPair {
            source: image_tensor(xs.clone(), SHAPE),
            label: 0,
            target: image_tensor(xt.clone(), SHAPE),
            target_label: 0,
            pair_id: 4,
        }];
        let config = LstConfig {
            step_size: 1.0,
            iterations: 1,
            adversarial: false,
            ..small_config()
        };
        let mut traversal = Traversal::new(&classifier, &config, &pairs).expect("new");
        let x0 = flat(traversal.iterates().expect("running"));
        let event = traversal.step().expect("step").expect("event");
        assert!(event.samples[0].accepted);
        // J = 0 exactly, so A stays 0 and nd = v.
        assert!(
            flat(traversal.accumulators().expect("running"))
                .iter()
                .all(|&a| a == 0.0)
        );
        let out = traversal.finish().expect("finish");
        let x_star = &out[0].result.as_ref().expect("ran").x_star;
        // x + (x_t − x) rounds twice: within one ulp of the [0, 1] range.
        for ((a, b), x) in x_star.iter().zip(&xt).zip(&x0) {
            assert!((a - b).abs() <= f32::EPSILON, "{a} vs {b}");
            assert_eq!(*a, (x + (b - x)).clamp(0.0, 1.0));
        }
        assert_eq!(out[0].status, PairStatus::Done);
        // Adv on with a zero gradient: the same path, many steps, no NaN.
        let config = LstConfig {
            adversarial: true,
            iterations: 6,
            step_size: 0.3,
            ..config
        };
        let (out, events) = run(&classifier, &config, &pairs);
        assert_no_nan(&out, &events);
        assert!(events.iter().all(|e| e.samples[0].accepted));
    }

    #[test]
    fn rejecting_everything_keeps_the_noised_start() {
        let classifier = linear_classifier(SHAPE, 3, 1);
        let pairs = [pair(&classifier, 1, 2, 9), pair(&classifier, 3, 4, 10)];
        let config = LstConfig {
            pthresh: -1.0,
            iterations: 8,
            ..small_config()
        };
        let (out, events) = run(&classifier, &config, &pairs);
        assert!(events.iter().flat_map(|e| &e.samples).all(|s| !s.accepted));
        for (o, p) in out.iter().zip(&pairs) {
            let xi = initial_noise(config.seed, p.pair_id, config.init_noise, DIM);
            let start: Vec<f32> = flat(&p.source)
                .iter()
                .zip(&xi)
                .map(|(a, b)| (a + b).clamp(0.0, 1.0))
                .collect();
            let r = o.result.as_ref().expect("ran");
            assert_eq!(r.x_star, start);
            assert_eq!(r.accepted_steps, 0);
            assert!(
                r.images
                    .as_ref()
                    .expect("images")
                    .iter()
                    .all(|img| *img == start)
            );
        }
        // δ = 2 accepts every step.
        let config = LstConfig {
            pthresh: 2.0,
            ..config
        };
        let (out, events) = run(&classifier, &config, &pairs);
        assert!(events.iter().flat_map(|e| &e.samples).all(|s| s.accepted));
        assert!(
            out.iter()
                .all(|o| o.result.as_ref().expect("ran").accepted_steps == 8)
        );
    }

    #[test]
    fn accumulator_is_bounded_and_has_the_closed_form() {
        let classifier = linear_classifier(SHAPE, 3, 2);
        let pairs = [pair(&classifier, 5, 6, 0)];
        let eps = 0.05f32;
        let config = LstConfig {
            pthresh: -1.0,
            adv_step: eps,
            iterations: 40,
            ..small_config()
        };
        let mut traversal = Traversal::new(&classifier, &config, &pairs).expect("new");
        // Every step is rejected, so x and J stay those of the noised start.
        let x0 = traversal
            .iterates()
            .expect("running")
            .reshape((1, 3, 8, 8))
            .expect("r");
        let (_, j) = classifier
            .input_gradient(&x0, &Objective::CrossEntropy(vec![pairs[0].label]))
            .expect("gradient");
        let j = flat(&j);
        let mut saturated = 0;
        for k in 1..=40 {
            traversal.step().expect("step");
            let a = flat(traversal.accumulators().expect("running"));
            for (&ak, &jk) in a.iter().zip(&j) {
                assert!(ak.abs() <= eps);
                let expected = (k as f64 * f64::from(eps) / 2.0 * f64::from(jk))
                    .clamp(-f64::from(eps), f64::from(eps));
                assert!((f64::from(ak) - expected).abs() <= 1e-7 + 1e-5 * expected.abs());
                saturated += usize::from(ak.abs() == eps);
            }
        }
        assert!(saturated > 0, "the test should reach the clamp");
        // The bound also holds along an ordinary run.
        let config = LstConfig {
            pthresh: 0.3,
            adv_step: 0.01,
            ..config
        };
        let mut traversal = Traversal::new(&classifier, &config, &pairs).expect("new");
        while traversal.step().expect("step").is_some() {
            let a = flat(traversal.accumulators().expect("running"));
            assert!(a.iter().all(|v| v.abs() <= 0.01));
        }
    }

    /// Pairs on which a small δ gives both accepted and rejected steps.
    fn mixed_pairs(classifier: &Classifier) -> Vec<LstPair> {
        (0..6)
            .map(|k| pair(classifier, 20 + k, 40 + k, k))
            .collect()
    }

    fn mixed_config() -> LstConfig {
        LstConfig {
            step_size: 0.3,
            iterations: 25,
            pthresh: 0.01,
            adv_step: 0.002,
            ..small_config()
        }
    }

    #[test]
    fn adv_off_stays_stuck_after_the_first_rejection() {
        let classifier = linear_classifier(SHAPE, 3, 3);
        let pairs = mixed_pairs(&classifier);
        let config = LstConfig {
            adversarial: false,
            pthresh: 0.03,
            ..mixed_config()
        };
        let (out, events) = run(&classifier, &config, &pairs);
        let mut meaningful = 0;
        for (k, o) in out.iter().enumerate() {
            let r = o.result.as_ref().expect("ran");
            let flags: Vec<bool> = events
                .iter()
                .map(|e| {
                    e.samples
                        .iter()
                        .find(|s| s.pair_index == k)
                        .expect("sample")
                        .accepted
                })
                .collect();
            let images = r.images.as_ref().expect("images");
            if let Some(first) = flags.iter().position(|a| !a) {
                assert!(flags[first..].iter().all(|a| !a), "pair {k}: {flags:?}");
                for img in &images[first..] {
                    assert_eq!(img, &r.x_star);
                }
                meaningful += usize::from(first > 0);
            }
        }
        assert!(meaningful > 0, "some pair should move, then get stuck");
    }

    #[test]
    fn iterates_stay_in_range_and_above_the_threshold() {
        let classifier = linear_classifier(SHAPE, 3, 3);
        let pairs = mixed_pairs(&classifier);
        let config = mixed_config();
        let (out, events) = run(&classifier, &config, &pairs);
        assert_no_nan(&out, &events);
        let (mut acc, mut rej) = (0, 0);
        for e in &events {
            for s in &e.samples {
                if s.accepted { acc += 1 } else { rej += 1 }
            }
        }
        assert!(acc > 0 && rej > 0, "accepted {acc}, rejected {rej}");
        for o in &out {
            let r = o.result.as_ref().expect("ran");
            for img in r.images.as_ref().expect("images").iter().chain([&r.x_star]) {
                assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            let t = image_tensor(r.x_star.clone(), SHAPE)
                .unsqueeze(0)
                .expect("b");
            let p = batch_confidences(&classifier, &t, &[o.label], 1).expect("conf")[0];
            assert!((r.confs.last().expect("row")[0] - p).abs() < 1e-6);
            if r.accepted_steps > 0 {
                assert!(o.p0 - p < config.pthresh);
            }
            assert_eq!(r.confs.len(), config.num_logs() + 1);
            assert_eq!(r.logged_steps, (0..25).collect::<Vec<_>>());
        }
        // The last event describes x*.
        let last = events.last().expect("events");
        for s in &last.samples {
            let r = out[s.pair_index].result.as_ref().expect("ran");
            assert!((s.l2 - r.distances.l2).abs() < 1e-6);
            assert!((s.linf - r.distances.linf).abs() < 1e-6);
            assert_eq!(s.source_conf, r.confs.last().expect("row")[0]);
        }
    }

    #[test]
    fn noise_is_bounded_and_reproducible() {
        let nu = 2.0 / 255.0;
        let a = initial_noise(0, 3, nu, 5000);
        assert!(a.iter().all(|v| (-nu..=nu).contains(v)));
        assert!(a.iter().any(|&v| v > nu * 0.9) && a.iter().any(|&v| v < -nu * 0.9));
        assert_eq!(a, initial_noise(0, 3, nu, 5000));
        assert_ne!(a, initial_noise(1, 3, nu, 5000));
        assert_ne!(a, initial_noise(0, 4, nu, 5000));

        let classifier = linear_classifier(SHAPE, 3, 3);
        let pairs = mixed_pairs(&classifier);
        let config = mixed_config();
        let (out1, ev1) = run(&classifier, &config, &pairs);
        let (out2, ev2) = run(&classifier, &config, &pairs);
        assert_eq!(out1, out2);
        assert_eq!(ev1, ev2);
        // The first logged iterate is clamp(x_s + ξ).
        for (o, p) in out1.iter().zip(&pairs) {
            let xi = initial_noise(config.seed, p.pair_id, config.init_noise, DIM);
            let start: Vec<f32> = flat(&p.source)
                .iter()
                .zip(&xi)
                .map(|(a, b)| (a + b).clamp(0.0, 1.0))
                .collect();
            assert_eq!(
                o.result.as_ref().expect("ran").images.as_ref().expect("i")[0],
                start
            );
        }
        let (out3, _) = run(&classifier, &LstConfig { seed: 1, ..config }, &pairs);
        assert_ne!(
            out1[0].result.as_ref().expect("ran").x_star,
            out3[0].result.as_ref().expect("ran").x_star
        );
    }

    #[test]
    fn a_sample_does_not_depend_on_its_batch() {
        let classifier = linear_classifier(SHAPE, 3, 3);
        let pairs: Vec<LstPair> = (0..7)
            .map(|k| pair(&classifier, 60 + k, 80 + k, 100 + k))
            .collect();
        let config = LstConfig {
            width: WidthConfig {
                enabled: true,
                radii: vec![0.5, 2.0],
                directions: 32,
                chunk: 16,
            },
            ..mixed_config()
        };
        let (batch, _) = run(&classifier, &config, &pairs);
        for k in [0, 3, 6] {
            let (alone, _) = run(&classifier, &config, &pairs[k..=k]);
            let (a, b) = (
                alone[0].result.as_ref().expect("ran"),
                batch[k].result.as_ref().expect("ran"),
            );
            assert_eq!(alone[0].pair_id, batch[k].pair_id);
            assert_eq!(a.accepted_steps, b.accepted_steps);
            let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() <= 1e-5);
            assert!(close(&a.x_star, &b.x_star));
            assert!(close(a.confs.as_flattened(), b.confs.as_flattened()));
            assert!((a.distances.l2 - b.distances.l2).abs() <= 1e-5);
            for (wa, wb) in a.widths.iter().flatten().zip(b.widths.iter().flatten()) {
                assert_eq!(wa.status, wb.status);
                assert!(close(wa.rows.as_flattened(), wb.rows.as_flattened()));
            }
        }
    }

    #[test]
    fn misclassified_sources_are_reported_as_skipped() {
        let classifier = linear_classifier(SHAPE, 3, 3);
        let mut pairs = mixed_pairs(&classifier)[..3].to_vec();
        pairs[1].label = (pairs[1].label + 1) % 3;
        let (out, events) = run(&classifier, &small_config(), &pairs);
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[1].status,
            PairStatus::Skipped(SkipReason::MisclassifiedSource)
        );
        assert!(out[1].result.is_none());
        assert_eq!(out[1].pair_id, pairs[1].pair_id);
        assert!(out[1].p0 > 0.0 && out[1].p0 < 1.0);
        assert_eq!(
            (out[0].status, out[2].status),
            (PairStatus::Done, PairStatus::Done)
        );
        assert!(
            events
                .iter()
                .all(|e| e.samples.len() == 2 && e.samples.iter().all(|s| s.pair_index != 1))
        );
        let t = Traversal::new(&classifier, &small_config(), &pairs).expect("new");
        assert_eq!(t.starts()[1].skipped, Some(SkipReason::MisclassifiedSource));
        assert_eq!(t.starts()[0].predicted, Some(pairs[0].label));
        // Nothing to run.
        let only = [pairs[1].clone()];
        let mut t = Traversal::new(&classifier, &small_config(), &only).expect("new");
        assert!(t.is_finished());
        assert!(t.step().expect("step").is_none());
        let out = t.finish().expect("finish");
        assert_eq!(
            out[0].status,
            PairStatus::Skipped(SkipReason::MisclassifiedSource)
        );
        assert!(
            run_lst(
                &classifier,
                &small_config(),
                &[],
                |_| ControlFlow::Continue(())
            )
            .expect("empty")
            .is_empty()
        );
        // Bad inputs are errors, not skips.
        let mut bad = pairs[0].clone();
        bad.label = 7;
        assert!(Traversal::new(&classifier, &small_config(), &[bad]).is_err());
        let mut bad = pairs[0].clone();
        bad.target = (bad.target.clone() * 2.0).expect("scale");
        assert!(Traversal::new(&classifier, &small_config(), &[bad]).is_err());
    }

    /// The loop of §1.2 written plainly for one sample on the host: a forward+backward at x and
    /// a forward at x' per iteration.
    fn reference_lst(
        classifier: &Classifier,
        cfg: &LstConfig,
        p: &LstPair,
    ) -> (Vec<f32>, Vec<bool>) {
        let conf = |x: &[f32]| {
            let t = image_tensor(x.to_vec(), SHAPE).unsqueeze(0).expect("b");
            let rows = logits_rows(&classifier.forward(&t).expect("f")).expect("rows");
            softmax_at(&rows[0], p.label as usize)
        };
        let (xs, xt) = (flat(&p.source), flat(&p.target));
        let p0 = conf(&xs);
        let xi = initial_noise(cfg.seed, p.pair_id, cfg.init_noise, DIM);
        let mut x: Vec<f32> = xs
            .iter()
            .zip(&xi)
            .map(|(a, b)| (a + b).clamp(0.0, 1.0))
            .collect();
        let mut acc = vec![0f32; DIM];
        let eps = cfg.adv_step;
        let mut flags = Vec::new();
        for _ in 0..cfg.iterations {
            let t = image_tensor(x.clone(), SHAPE).unsqueeze(0).expect("b");
            let (_, j) = classifier
                .input_gradient(&t, &Objective::CrossEntropy(vec![p.label]))
                .expect("grad");
            let j = flat(&j);
            let v: Vec<f32> = xt.iter().zip(&x).map(|(a, b)| a - b).collect();
            let gg: f64 = j.iter().map(|&g| f64::from(g).powi(2)).sum();
            let jv: f64 = j
                .iter()
                .zip(&v)
                .map(|(&g, &w)| f64::from(g) * f64::from(w))
                .sum();
            let c = if gg > f64::from(f32::MIN_POSITIVE) {
                (jv / gg) as f32
            } else {
                0.0
            };
            let nd: Vec<f32> = v.iter().zip(&j).map(|(&w, &g)| w - c * g).collect();
            for (a, &g) in acc.iter_mut().zip(&j) {
                *a = (*a + g * (eps / 2.0)).clamp(-eps, eps);
            }
            let prop: Vec<f32> = x
                .iter()
                .zip(&nd)
                .zip(&acc)
                .map(|((&a, &n), &m)| {
                    let y = a + n * cfg.step_size;
                    (if cfg.adversarial { y - m } else { y }).clamp(0.0, 1.0)
                })
                .collect();
            let ok = p0 - conf(&prop) < cfg.pthresh;
            if ok {
                x = prop;
            }
            flags.push(ok);
        }
        (x, flags)
    }

    #[test]
    fn cached_gradient_matches_the_plain_loop() {
        let classifier = linear_classifier(SHAPE, 3, 3);
        let pairs = mixed_pairs(&classifier);
        let config = mixed_config();
        let (out, events) = run(&classifier, &config, &pairs);
        for (k, p) in pairs.iter().enumerate() {
            let (x, flags) = reference_lst(&classifier, &config, p);
            let got: Vec<bool> = events.iter().map(|e| e.samples[k].accepted).collect();
            assert_eq!(got, flags, "pair {k}");
            let r = out[k].result.as_ref().expect("ran");
            for (a, b) in r.x_star.iter().zip(&x) {
                assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn a_caller_can_stop_between_steps() {
        let classifier = linear_classifier(SHAPE, 3, 3);
        let pairs = mixed_pairs(&classifier);
        let config = LstConfig {
            log_step: 2,
            ..mixed_config()
        };
        let mut seen = 0;
        let out = run_lst(&classifier, &config, &pairs, |e| {
            seen += 1;
            if e.step == 4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("run");
        assert_eq!(seen, 5);
        for o in &out {
            assert_eq!(o.status, PairStatus::Stopped { steps: 5 });
            let r = o.result.as_ref().expect("ran");
            assert_eq!(r.logged_steps, vec![0, 2, 4]);
            assert_eq!(r.confs.len(), 4);
            assert_eq!(r.steps, 5);
        }
        // Stepping by hand gives the same iterate as the callback run.
        let mut t = Traversal::new(&classifier, &config, &pairs).expect("new");
        for _ in 0..5 {
            t.step().expect("step");
        }
        assert_eq!(t.steps_done(), 5);
        assert!(!t.is_finished());
        assert_eq!(t.finish().expect("finish"), out);
    }

    #[test]
    fn logs_events_and_widths() {
        let classifier = linear_classifier(SHAPE, 3, 3);
        let pairs = mixed_pairs(&classifier)[..2].to_vec();
        let width = WidthConfig {
            enabled: true,
            radii: vec![0.5, 1.0, 4.0],
            directions: 64,
            chunk: 32,
        };
        let config = LstConfig {
            iterations: 7,
            log_step: 3,
            width,
            ..mixed_config()
        };
        let (out, events) = run(&classifier, &config, &pairs);
        assert_no_nan(&out, &events);
        assert_eq!(events.len(), 7);
        for e in &events {
            for s in &e.samples {
                match &s.logged {
                    Some(l) => {
                        assert_eq!(e.step % 3, 0);
                        assert_eq!((l.step, l.log_index), (e.step, e.step / 3));
                        assert_eq!(l.image.len(), DIM);
                        let w = l.width.as_ref().expect("widths on");
                        assert_eq!(w.rows.len(), 4);
                    }
                    None => assert_ne!(e.step % 3, 0),
                }
            }
        }
        for o in &out {
            let r = o.result.as_ref().expect("ran");
            assert_eq!(r.logged_steps, vec![0, 3, 6]);
            assert_eq!(r.confs.len(), 4);
            assert_eq!(r.images.as_ref().expect("images").len(), 3);
            let widths = r.widths.as_ref().expect("widths");
            assert_eq!(widths.len(), 3);
            for (w, c) in widths.iter().zip(&r.confs) {
                if w.status == WidthStatus::Measured {
                    assert_eq!(w.rows[0], [c[0], c[0]]);
                    assert!(w.rows.iter().all(|q| q[0] <= q[1]));
                } else {
                    assert!(w.rows.iter().flatten().all(|v| *v == 0.0));
                }
            }
            assert_eq!(r.distances.ssim, None); // 8×8 is below the SSIM window
        }
        // Constant model: every width entry is c0; above-threshold c is measured.
        let (cst, c) = constant_classifier(SHAPE);
        let cpairs = [LstPair {
            label: 0,
            target_label: 1,
            ..pairs[0].clone()
        }];
        let (out, _) = run(
            &cst,
            &LstConfig {
                pthresh: 0.1,
                ..config.clone()
            },
            &cpairs,
        );
        for w in out[0]
            .result
            .as_ref()
            .expect("ran")
            .widths
            .as_ref()
            .expect("w")
        {
            assert_eq!(w.status, WidthStatus::Measured);
            assert!(w.rows.iter().flatten().all(|&v| v == c));
        }
        // pthresh above c: every measurement is skipped, zeros.
        let (out, _) = run(
            &cst,
            &LstConfig {
                pthresh: c + 0.01,
                ..config.clone()
            },
            &cpairs,
        );
        let r = out[0].result.as_ref().expect("ran");
        for w in r.widths.as_ref().expect("w") {
            assert_eq!(w.status, WidthStatus::Skipped);
            assert!(w.rows.iter().flatten().all(|&v| v == 0.0));
        }
        // No images kept on request; SSIM on 12×12 inputs.
        let shape = [3, 12, 12];
        let big = linear_classifier(shape, 3, 4);
        let (xs, xt) = (random_image(1, shape), random_image(2, shape));
        let t = Tensor::from_vec(xs.clone(), (1, 3, 12, 12), &Device::Cpu).expect("t");
        let label =
            argmax(&logits_rows(&big.forward(&t).expect("f")).expect("r")[0]).expect("a") as u32;
        let bp = [LstPair {
            source: Tensor::from_vec(xs, (3, 12, 12), &Device::Cpu).expect("t"),
            label,
            target: Tensor::from_vec(xt, (3, 12, 12), &Device::Cpu).expect("t"),
            target_label: 0,
            pair_id: 0,
        }];
        let cfg = LstConfig {
            record_images: false,
            width: WidthConfig::cifar(),
            ..config
        };
        let (out, events) = run(&big, &cfg, &bp);
        let r = out[0].result.as_ref().expect("ran");
        assert!(r.images.is_none() && r.widths.is_none());
        assert!(r.distances.ssim.is_some_and(|s| s.is_finite() && s <= 1.0));
        assert!(
            events[0].samples[0]
                .logged
                .as_ref()
                .is_some_and(|l| l.image.len() == 432 && l.width.is_none())
        );
    }

    /// logits = W·x + b + 0·√(t − mean(x)): NaN logits and NaN gradients once mean(x) > t.
    struct NanAbove {
        inner: super::super::test_models::Linear,
        threshold: f64,
        zero: Tensor,
    }

    impl crate::models::Network for NanAbove {
        fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
            let mean = x.flatten_from(1)?.mean_keepdim(1)?;
            let guard = mean
                .affine(-1.0, self.threshold)?
                .sqrt()?
                .broadcast_mul(&self.zero)?;
            self.inner.forward(x)?.broadcast_add(&guard)
        }
    }

    #[test]
    fn nan_logits_are_rejected_and_never_propagate() {
        let shape = SHAPE;
        let classifier = super::super::test_models::with_network(shape, 3, |inner| {
            Box::new(NanAbove {
                inner,
                threshold: 0.5,
                zero: Tensor::zeros((1, 1), DType::F32, &Device::Cpu).expect("zero"),
            })
        });
        // A dark source, a bright target: the path crosses mean(x) = 0.5.
        let xs: Vec<f32> = random_image(1, shape).iter().map(|v| v * 0.6).collect();
        let xt: Vec<f32> = random_image(2, shape)
            .iter()
            .map(|v| 0.4 + 0.6 * v)
            .collect();
        let label = predicted(&classifier, &xs);
        let pairs = [LstPair {
            source: image_tensor(xs, shape),
            label,
            target: image_tensor(xt.clone(), shape),
            target_label: 0,
            pair_id: 0,
        }];
        let config = LstConfig {
            pthresh: 2.0,
            step_size: 0.2,
            iterations: 15,
            ..small_config()
        };
        let (out, events) = run(&classifier, &config, &pairs);
        assert_no_nan(&out, &events);
        assert!(
            events.iter().any(|e| !e.samples[0].accepted),
            "some proposal must be NaN"
        );
        let r = out[0].result.as_ref().expect("ran");
        let mean = r.x_star.iter().map(|&v| f64::from(v)).sum::<f64>() / DIM as f64;
        assert!(mean < 0.5);
        // A NaN source is skipped, not run.
        let bright = [LstPair {
            source: image_tensor(xt, shape),
            ..pairs[0].clone()
        }];
        let t = Traversal::new(&classifier, &config, &bright).expect("new");
        assert_eq!(
            t.starts()[0].skipped,
            Some(SkipReason::NonFiniteSourceLogits)
        );
        assert_eq!(t.starts()[0].p0, 0.0);
    }

    #[test]
    fn run_modes_and_tables() {
        let ex = examples_pairs(5);
        assert_eq!(ex.len(), 20);
        assert!(
            ex.iter()
                .all(|p| p.source != p.target && p.pair_id == (p.source * 5 + p.target) as u64)
        );
        let ev = evaluation_pairs(6, 5, 0).expect("n >= 2");
        assert_eq!(ev.len(), 30);
        for p in &ev {
            assert_ne!(p.source, p.target);
            assert_eq!(p.pair_id, (p.round * 6 + p.source) as u64);
        }
        for r in 0..5 {
            let mut targets: Vec<usize> = ev
                .iter()
                .filter(|p| p.round == r)
                .map(|p| p.target)
                .collect();
            targets.sort_unstable();
            assert_eq!(targets, (0..6).collect::<Vec<_>>());
        }
        assert_eq!(evaluation_pairs(1, 5, 0), None);
        assert_eq!(path_strip_frames(20), vec![3, 6, 10, 13, 16, 19]);
        assert_eq!(path_strip_frames(10), vec![2, 3, 5, 6, 8, 9]);
        assert_eq!(path_strip_frames(4), vec![0, 1, 2, 3]);

        let classifier = linear_classifier(SHAPE, 3, 3);
        let mut pairs = mixed_pairs(&classifier)[..3].to_vec();
        pairs[2].label = (pairs[2].label + 1) % 3;
        let (out, _) = run(
            &classifier,
            &LstConfig {
                iterations: 3,
                ..small_config()
            },
            &pairs,
        );
        let t = table1(&out);
        assert_eq!((t.pairs, t.skipped_pairs), (2, 1));
        let l2: Vec<f32> = out[..2]
            .iter()
            .map(|o| o.result.as_ref().expect("ran").distances.l2)
            .collect();
        let l2s = t.l2.expect("two pairs");
        assert!((l2s.mean - (f64::from(l2[0]) + f64::from(l2[1])) / 2.0).abs() < 1e-9);
        assert!(t.ssim.is_none() && t.lpips.is_none());
    }
}
