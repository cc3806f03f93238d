//! The one walker behind LST (ALGORITHMS.md §1.2) and NSPGD (§2.2).
//!
//! [`Traversal`] runs a batch of (source, target) pairs one step at a time, so a caller can
//! stream per-step events and stop between any two steps; [`run_walk`] drives it with a
//! callback. What differs between the two walks is a rule of [`WalkConfig`] (gradient,
//! projection, clamp, noise, adversarial term, acceptance, stopping, widths); the loop is
//! this one. Per sample, each step is:
//! ```text
//! J  ← ∇_x objective            # LST: CE at x; NSPGD: p(clamp(x))[y], through the clamp
//! v  ← x_t − x;  c ← ⟨J, v⟩/⟨J, J⟩ (0 when ⟨J, J⟩ is tiny)
//! nd ← v − c·J                  # NSPGD: only when c ≤ 0, else nd = v
//! A  ← clamp(A + (ε/2)·J, −ε, ε)                      # LST only, every iteration
//! x' ← x + η·nd − (adv ? A : 0), clamped to [0, 1]    # NSPGD: no A and no clamp
//! if p0 − p(clamp(x'))[y] < δ (LST) or τ (NSPGD): x ← x'
//! ```
//! Implementation choices:
//! - The iterate, target, gradient and accumulator live on the classifier's device as [b, C·H·W]
//!   f32 tensors; per-sample inner products are candle reductions read back as b scalars.
//! - The cached-gradient form of §1.2: the forward+backward runs at x', and J(x') is kept when
//!   the step is accepted, J(x) otherwise. One forward+backward per iteration, plus one at the
//!   start.
//! - Confidences are host softmaxes of the logits in f64 (see `confidence`).
//! - A proposal whose confidence is undefined (non-finite logits) is rejected. A gradient with a
//!   non-finite value (or whose ⟨J, J⟩ overflows f32) is treated as zero for that sample and
//!   step, so nd = v and A is unchanged; nothing non-finite ever enters the iterate.
//! - A sample that can never move again is frozen (LST with adv off, as §1.2 states); when
//!   every sample is frozen the proposal evaluation is skipped. Its logs and widths go on.
//! - An NSPGD sample finishes at its first rejection: its state leaves the batch, so the
//!   samples still walking are the only ones computed.
//! - Samples whose source is misclassified (or whose logits are not finite) are not run; they are
//!   reported as skipped (LST) or invalid (NSPGD).

mod config;
mod projection;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_nspgd;

use std::ops::ControlFlow;

use candle_core::{DType, Tensor};

use self::config::OnReject;
pub use self::config::{Method, WalkConfig};
pub use self::projection::{Projection, Sidedness, project, project_orthogonal};
use self::projection::{row_distances, select_rows};
pub use self::types::{
    LoggedIterate, PairOutput, PairResult, PairStart, PairStatus, SampleStep, SkipReason,
    StepEvent, WalkPair,
};
use super::confidence::{argmax, logits_rows, or_zero, softmax_at};
use super::error::{Result, invalid};
use super::lst::initial_noise;
use super::metrics::{Distances, distances, lpips_distances};
use super::width::{WidthMeasurement, measure_width};
use crate::models::{Classifier, Lpips, Objective};

/// The running state of the samples that walk.
struct Active {
    /// Input index of each running sample.
    pairs: Vec<usize>,
    labels: Vec<u32>,
    target_labels: Vec<u32>,
    pair_ids: Vec<u64>,
    p0: Vec<f32>,
    /// x_t, x, J(x) and (LST) A: [b, D] f32 on the classifier's device.
    xt: Tensor,
    x: Tensor,
    grad: Tensor,
    acc: Option<Tensor>,
    /// p(clamp(x))[y] and p(clamp(x))[y_t] of the current iterates (NaN when undefined).
    conf_src: Vec<f32>,
    conf_tgt: Vec<f32>,
    /// (L2_norm, L∞) of the current iterates to their targets.
    dist: Vec<(f32, f32)>,
    /// Can never move again (but is still logged).
    frozen: Vec<bool>,
    /// The iteration of each sample's first rejection.
    first_rejection: Vec<Option<usize>>,
    accepted: Vec<usize>,
    logs: Vec<Vec<LogRecord>>,
}

struct LogRecord {
    step: usize,
    confs: [f32; 2],
    image: Option<Vec<f32>>,
    width: Option<WidthMeasurement>,
}

/// A sample whose walk finished before the others' (NSPGD), kept on the host.
struct Retired {
    pair_index: usize,
    x: Vec<f32>,
    target: Vec<f32>,
    confs: [f32; 2],
    accepted: usize,
    /// The iteration whose step was rejected.
    finished_at: usize,
    logs: Vec<LogRecord>,
}

/// A batch of walks, advanced one iteration per [`Traversal::step`].
///
/// A sample's result does not depend on its batch-mates: all draws are keyed by its pair_id and
/// every operation is per row.
pub struct Traversal<'a> {
    classifier: &'a Classifier,
    config: WalkConfig,
    shape: [usize; 3],
    starts: Vec<PairStart>,
    meta: Vec<(u64, u32, u32)>,
    active: Option<Active>,
    retired: Vec<Retired>,
    step: usize,
    /// Fills Table 1's LPIPS column at `finish` when given.
    lpips: Option<&'a Lpips>,
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
    /// Checks the inputs, classifies the un-noised sources, draws the initial noise (LST) and
    /// takes the first gradient. Pairs whose source is misclassified are reported as skipped.
    pub fn new(
        classifier: &'a Classifier,
        config: impl Into<WalkConfig>,
        pairs: &[WalkPair],
    ) -> Result<Self> {
        let config: WalkConfig = config.into();
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
            config,
            shape,
            starts: Vec::new(),
            meta,
            active: None,
            retired: Vec::new(),
            step: 0,
            lpips: None,
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
        let x = match traversal.config.initial_noise() {
            Some(nu) => {
                let mut noise = Vec::with_capacity(b * dim);
                for &k in &run {
                    noise.extend(initial_noise(
                        traversal.config.seed(),
                        pairs[k].pair_id,
                        nu,
                        dim,
                    ));
                }
                let xi = Tensor::from_vec(noise, (b, dim), device)?;
                (xs + xi)?.clamp(0f32, 1f32)?
            }
            None => xs,
        };
        let labels: Vec<u32> = run.iter().map(|&k| pairs[k].label).collect();
        let target_labels: Vec<u32> = run.iter().map(|&k| pairs[k].target_label).collect();
        let (rows, grad) = gradient_at(classifier, &traversal.config, shape, &x, &labels)?;
        let conf_src = confidences(&rows, &labels);
        let conf_tgt = confidences(&rows, &target_labels);
        let dist = row_distances(&x, &xt)?;
        let acc = match traversal.config.accumulator() {
            Some(_) => Some(x.zeros_like()?),
            None => None,
        };
        traversal.active = Some(Active {
            pair_ids: run.iter().map(|&k| pairs[k].pair_id).collect(),
            p0: run.iter().map(|&k| traversal.starts[k].p0).collect(),
            pairs: run,
            labels,
            target_labels,
            acc,
            xt,
            x,
            grad,
            conf_src,
            conf_tgt,
            dist,
            frozen: vec![false; b],
            first_rejection: vec![None; b],
            accepted: vec![0; b],
            logs: (0..b).map(|_| Vec::new()).collect(),
        });
        Ok(traversal)
    }

    pub fn config(&self) -> &WalkConfig {
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

    /// True when all iterations ran, or no pair can run (or, NSPGD, every one finished).
    pub fn is_finished(&self) -> bool {
        self.active.is_none() || self.step >= self.config.iterations()
    }

    /// The current iterates [b, C·H·W] of the samples still walking, for inspection.
    pub fn iterates(&self) -> Option<&Tensor> {
        self.active.as_ref().map(|a| &a.x)
    }

    /// The current iterate of input pair `pair_index`, running or finished, [C·H·W].
    pub fn iterate_of(&self, pair_index: usize) -> Result<Option<Vec<f32>>> {
        if let Some(r) = self.retired.iter().find(|r| r.pair_index == pair_index) {
            return Ok(Some(r.x.clone()));
        }
        let Some(st) = &self.active else {
            return Ok(None);
        };
        match st.pairs.iter().position(|&k| k == pair_index) {
            Some(row) => Ok(Some(st.x.get(row)?.to_dtype(DType::F32)?.to_vec1::<f32>()?)),
            None => Ok(None),
        }
    }

    /// The adversarial accumulators A [b, C·H·W] (LST), for inspection.
    pub fn accumulators(&self) -> Option<&Tensor> {
        self.active.as_ref().and_then(|a| a.acc.as_ref())
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
        let Projection { nd, grad, .. } = project(&v, &st.grad, cfg.sidedness())?;
        drop(v);

        // A ← clamp(A + (ε/2)·J, −ε, ε), every iteration (LST).
        let acc = match (&st.acc, cfg.accumulator()) {
            (Some(acc), Some((eps, _))) => {
                Some((acc + grad.affine(f64::from(eps) / 2.0, 0.0)?)?.clamp(-eps, eps)?)
            }
            _ => None,
        };

        // Logging of the iterate before the step.
        let mut logged: Vec<Option<LoggedIterate>> = vec![None; b];
        if i.is_multiple_of(cfg.log_step()) {
            let log_index = i / cfg.log_step();
            let images = st.x.to_vec2::<f32>()?;
            let width_due = cfg.width_at(i);
            let nds = match width_due {
                Some(_) => Some(nd.to_vec2::<f32>()?),
                None => None,
            };
            for (k, image) in images.into_iter().enumerate() {
                let source_conf = or_zero(st.conf_src[k]);
                let width = match (&nds, width_due) {
                    (Some(nds), Some((key, skip_below))) => Some(measure_width(
                        classifier,
                        &st.x.get(k)?.reshape((c, h, w))?,
                        &nds[k],
                        st.labels[k],
                        source_conf,
                        skip_below,
                        cfg.width(),
                        cfg.seed(),
                        st.pair_ids[k],
                        key,
                    )?),
                    _ => None,
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
            let mut proposal = (&st.x + nd.affine(f64::from(cfg.step_size()), 0.0)?)?;
            if let (Some(acc), Some((_, true))) = (&acc, cfg.accumulator()) {
                proposal = (proposal - acc)?;
            }
            if cfg.clamps_iterate() {
                proposal = proposal.clamp(0f32, 1f32)?;
            }
            let (rows, next_grad) = gradient_at(classifier, cfg, shape, &proposal, &st.labels)?;
            let threshold = cfg.threshold();
            let mut confs = vec![[0f32; 2]; b];
            for k in 0..b {
                let p = softmax_at(&rows[k], st.labels[k] as usize);
                // A NaN confidence fails the test and is rejected.
                accept[k] = !st.frozen[k] && !p.is_nan() && st.p0[k] - p < threshold;
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
        let on_reject = cfg.on_reject();
        let mut finishing = vec![false; b];
        for k in 0..b {
            if accept[k] || st.frozen[k] {
                continue;
            }
            st.first_rejection[k].get_or_insert(i);
            match on_reject {
                OnReject::Continue => {}
                OnReject::Freeze => st.frozen[k] = true,
                OnReject::Finish => finishing[k] = true,
            }
        }
        let record_images = cfg.record_images();
        for (log, entry) in st.logs.iter_mut().zip(&logged) {
            if let Some(e) = entry {
                log.push(LogRecord {
                    step: i,
                    confs: [e.source_conf, e.target_conf],
                    image: record_images.then(|| e.image.clone()),
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
        if finishing.iter().any(|&f| f) {
            self.retire(&finishing, i)?;
        }
        Ok(Some(StepEvent { step: i, samples }))
    }

    /// Moves the samples marked in `finishing` (rows of the active batch) out of it.
    fn retire(&mut self, finishing: &[bool], step: usize) -> Result<()> {
        let Some(mut st) = self.active.take() else {
            return Ok(());
        };
        let keep: Vec<usize> = (0..finishing.len()).filter(|&k| !finishing[k]).collect();
        let mut logs = std::mem::take(&mut st.logs).into_iter();
        let mut kept_logs = Vec::with_capacity(keep.len());
        for (k, log) in (0..finishing.len()).zip(logs.by_ref()) {
            if !finishing[k] {
                kept_logs.push(log);
                continue;
            }
            self.retired.push(Retired {
                pair_index: st.pairs[k],
                x: st.x.get(k)?.to_vec1::<f32>()?,
                target: st.xt.get(k)?.to_vec1::<f32>()?,
                confs: [or_zero(st.conf_src[k]), or_zero(st.conf_tgt[k])],
                accepted: st.accepted[k],
                finished_at: step,
                logs: log,
            });
        }
        if keep.is_empty() {
            return Ok(());
        }
        let device = st.x.device().clone();
        let index = Tensor::from_vec(
            keep.iter().map(|&k| k as u32).collect::<Vec<_>>(),
            keep.len(),
            &device,
        )?;
        let pick = |t: &Tensor| t.index_select(&index, 0);
        fn filter<T: Clone>(v: &[T], keep: &[usize]) -> Vec<T> {
            keep.iter().map(|&k| v[k].clone()).collect()
        }
        self.active = Some(Active {
            pairs: filter(&st.pairs, &keep),
            labels: filter(&st.labels, &keep),
            target_labels: filter(&st.target_labels, &keep),
            pair_ids: filter(&st.pair_ids, &keep),
            p0: filter(&st.p0, &keep),
            xt: pick(&st.xt)?,
            x: pick(&st.x)?,
            grad: pick(&st.grad)?,
            acc: st.acc.as_ref().map(pick).transpose()?,
            conf_src: filter(&st.conf_src, &keep),
            conf_tgt: filter(&st.conf_tgt, &keep),
            dist: filter(&st.dist, &keep),
            frozen: filter(&st.frozen, &keep),
            first_rejection: filter(&st.first_rejection, &keep),
            accepted: filter(&st.accepted, &keep),
            logs: kept_logs,
        });
        Ok(())
    }

    /// Computes LPIPS(x*, x_t) for every pair at `finish` (Table 1's last column and the NSPGD
    /// hit test). Without it, LPIPS stays n/a.
    pub fn with_lpips(mut self, lpips: Option<&'a Lpips>) -> Self {
        self.lpips = lpips;
        self
    }

    /// The per-pair outputs, in input order. Pairs of a run stopped early get
    /// `PairStatus::Stopped` and describe their current iterate.
    pub fn finish(self) -> Result<Vec<PairOutput>> {
        let nspgd = self.config.method() == Method::Nspgd;
        let done = self.step >= self.config.iterations();
        let mut by_pair: Vec<Option<(PairResult, PairStatus)>> =
            (0..self.meta.len()).map(|_| None).collect();
        // x_t per pair that ran, for LPIPS after every result is built.
        let mut target_of: Vec<Option<Vec<f32>>> = (0..self.meta.len()).map(|_| None).collect();
        let build = |logs: Vec<LogRecord>,
                     x_star: Vec<f32>,
                     target: &[f32],
                     last: [f32; 2],
                     steps: usize,
                     accepted: usize|
         -> Result<PairResult> {
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
            confs.push(last);
            let distances: Distances = distances(&x_star, target, self.shape)?;
            Ok(PairResult {
                shape: self.shape,
                distances,
                x_star,
                confs,
                logged_steps,
                images: self.config.record_images().then_some(images),
                widths: self.config.width().enabled.then_some(widths),
                steps,
                accepted_steps: accepted,
            })
        };
        for r in self.retired {
            let status = PairStatus::Finished {
                steps: r.finished_at,
            };
            let result = build(
                r.logs,
                r.x,
                &r.target,
                r.confs,
                r.finished_at + 1,
                r.accepted,
            )?;
            by_pair[r.pair_index] = Some((result, status));
            target_of[r.pair_index] = Some(r.target);
        }
        if let Some(st) = self.active {
            let x_star = st.x.to_vec2::<f32>()?;
            let targets = st.xt.to_vec2::<f32>()?;
            let rows = st.logs.into_iter().zip(x_star).zip(targets);
            for (k, ((logs, x_star), target)) in rows.enumerate() {
                let status = match (done, nspgd, st.first_rejection[k]) {
                    (false, _, _) => PairStatus::Stopped { steps: self.step },
                    (true, false, _) => PairStatus::Done,
                    (true, true, None) => PairStatus::Completed,
                    (true, true, Some(steps)) => PairStatus::Finished { steps },
                };
                let last = [or_zero(st.conf_src[k]), or_zero(st.conf_tgt[k])];
                let result = build(logs, x_star, &target, last, self.step, st.accepted[k])?;
                by_pair[st.pairs[k]] = Some((result, status));
                target_of[st.pairs[k]] = Some(target);
            }
        }
        if let Some(lpips) = self.lpips {
            let ran: Vec<(usize, &[f32], &[f32])> = by_pair
                .iter()
                .zip(&target_of)
                .enumerate()
                .filter_map(|(i, (r, t))| Some((i, r.as_ref()?.0.x_star.as_slice(), t.as_deref()?)))
                .collect();
            let pairs: Vec<(&[f32], &[f32])> = ran.iter().map(|&(_, x, t)| (x, t)).collect();
            let values = lpips_distances(lpips, self.shape, &pairs)?;
            let indices: Vec<usize> = ran.iter().map(|&(i, _, _)| i).collect();
            for (i, value) in indices.into_iter().zip(values) {
                if let Some((result, _)) = by_pair[i].as_mut() {
                    result.distances.lpips = value;
                }
            }
        }
        Ok(self
            .starts
            .iter()
            .zip(&self.meta)
            .zip(by_pair)
            .map(|((start, &(pair_id, label, target_label)), ran)| {
                let (result, status) = match (ran, start.skipped) {
                    (Some((result, status)), _) => (Some(result), status),
                    (None, Some(reason)) if nspgd => (None, PairStatus::Invalid(reason)),
                    (None, Some(reason)) => (None, PairStatus::Skipped(reason)),
                    // Unreachable: every pair that is not skipped ran.
                    (None, None) => (None, PairStatus::Stopped { steps: 0 }),
                };
                PairOutput {
                    pair_index: start.pair_index,
                    pair_id,
                    label,
                    target_label,
                    p0: start.p0,
                    status,
                    result,
                }
            })
            .collect())
    }
}

/// Logits (host rows) and the walk's input gradient at a [b, D] batch; the gradient as a
/// detached [b, D] f32 tensor, so no autograd graph outlives the call. When the walk does not
/// clamp its iterate (NSPGD), the model sees clamp(x) and J is taken through the clamp, whose
/// derivative is 1 on [0, 1] and 0 outside (§0.1).
fn gradient_at(
    classifier: &Classifier,
    config: &WalkConfig,
    shape: [usize; 3],
    x: &Tensor,
    labels: &[u32],
) -> Result<(Vec<Vec<f32>>, Tensor)> {
    let [c, h, w] = shape;
    let b = labels.len();
    let through_clamp = !config.clamps_iterate();
    let seen = if through_clamp {
        x.clamp(0f32, 1f32)?
    } else {
        x.clone()
    };
    let objective: Objective = config.objective(labels);
    let (logits, grad) = classifier.input_gradient(&seen.reshape((b, c, h, w))?, &objective)?;
    let mut grad = grad
        .detach()
        .to_dtype(DType::F32)?
        .reshape((b, c * h * w))?;
    if through_clamp {
        let inside = (x.ge(0f32)?.to_dtype(DType::F32)? * x.le(1f32)?.to_dtype(DType::F32)?)?;
        grad = (grad * inside)?;
    }
    Ok((logits_rows(&logits)?, grad))
}

/// p(x)[label] per host logits row (NaN when undefined).
fn confidences(rows: &[Vec<f32>], labels: &[u32]) -> Vec<f32> {
    rows.iter()
        .zip(labels)
        .map(|(row, &y)| softmax_at(row, y as usize))
        .collect()
}

/// Runs a walk on a batch of pairs, calling `on_step` after every iteration; returning
/// `ControlFlow::Break` stops the run there (its running pairs are then `Stopped`).
pub fn run_walk(
    classifier: &Classifier,
    config: impl Into<WalkConfig>,
    pairs: &[WalkPair],
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
