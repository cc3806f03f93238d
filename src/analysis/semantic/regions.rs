//! Region growing (ALGORITHMS.md §3.3–§3.5): Naive, OIR_B and OIR_W grow a box D = [a, b] in
//! z-units (Ω = [0, 100]ⁿ) around an initial point by gradient descent on both corners, with
//! the exact n-D rules (the 1-D rules are these at n = 1) and FIX clipping after each update.
//!
//! Everything here is in f64 and works on any [`RegionFunction`], so the rules are tested on
//! synthetic functions; `SemanticObjective` is the one backed by a model.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use super::objective::OirWGradient;
use super::params::SemanticError;
use crate::analysis::error::Result;

/// f (and ∇_z f) at points in z-units, as region growing needs them: one call per batch of
/// corners.
pub trait RegionFunction {
    fn values(&mut self, z: &[Vec<f64>]) -> Result<Vec<f64>>;
    /// f and g at each point; g is the gradient in z-units (its sign is the function's
    /// business, see [`OirWGradient`]).
    fn values_and_gradients(&mut self, z: &[Vec<f64>]) -> Result<(Vec<f64>, Vec<Vec<f64>>)>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionMethod {
    Naive,
    OirB,
    OirW,
}

impl RegionMethod {
    pub const ALL: [RegionMethod; 3] = [Self::Naive, Self::OirB, Self::OirW];

    /// snake_case, as in JSON and file names.
    pub fn key(self) -> &'static str {
        match self {
            Self::Naive => "naive",
            Self::OirB => "oir_b",
            Self::OirW => "oir_w",
        }
    }

    /// As tables and legends print it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Naive => "Naive",
            Self::OirB => "OIR_B",
            Self::OirW => "OIR_W",
        }
    }
}

/// The hyperparameters of §3.5, all in z-units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionConfig {
    /// η, the step size.
    pub eta: f64,
    /// α, the outer margin of OIR_B (and of the logged loss).
    pub alpha: f64,
    /// β, the OIR_W margin; 0 ≤ β < 2/(2n − 1).
    pub beta: f64,
    /// λ, Naive's penalty on the side lengths.
    pub lambda: f64,
    /// T, the number of updates.
    pub iterations: usize,
    /// Initial half-width.
    pub h0: f64,
    /// Smallest side FIX allows.
    pub w_min: f64,
    /// Log (1+α)ⁿ·Σf_C/Σf_D − 1 at each iteration (costs the outer corners for Naive and OIR_W).
    pub log_loss: bool,
    /// Which g OIR_W uses; read by the function that evaluates g.
    pub oir_w_gradient: OirWGradient,
}

impl Default for RegionConfig {
    fn default() -> Self {
        Self {
            eta: 0.1,
            alpha: 0.05,
            beta: 0.0009,
            lambda: 0.1,
            iterations: 600,
            h0: 1e-5,
            w_min: 1e-5,
            log_loss: false,
            oir_w_gradient: OirWGradient::Exact,
        }
    }
}

impl RegionConfig {
    /// Refuses settings the rules cannot run with, naming the setting.
    pub fn validate(&self, method: RegionMethod, n: usize) -> Result<(), SemanticError> {
        let bad = |name, value: f64, detail: &str| {
            Err(SemanticError::BadSetting {
                name,
                value,
                detail: detail.to_string(),
            })
        };
        if n == 0 {
            return Err(SemanticError::EmptyParams);
        }
        if !(self.eta.is_finite() && self.eta > 0.0) {
            return bad("eta", self.eta, "the step size must be positive");
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return bad("alpha", self.alpha, "the outer margin must be non-negative");
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return bad("lambda", self.lambda, "the penalty must be non-negative");
        }
        if !(self.h0.is_finite() && self.h0 > 0.0 && self.h0 < 50.0) {
            return bad("h0", self.h0, "the initial half-width must be in (0, 50)");
        }
        if !(self.w_min.is_finite() && self.w_min > 0.0 && self.w_min < 100.0) {
            return bad("w_min", self.w_min, "the smallest side must be in (0, 100)");
        }
        if method == RegionMethod::OirW {
            let bound = 2.0 / (2.0 * n as f64 - 1.0);
            if !(self.beta.is_finite() && self.beta >= 0.0 && self.beta < bound) {
                return Err(SemanticError::BadSetting {
                    name: "beta",
                    value: self.beta,
                    detail: format!(
                        "OIR_W needs 0 <= beta < 2/(2n - 1) = {bound:.4} for n = {n} parameters, so that its leading coefficient stays positive"
                    ),
                });
            }
        }
        Ok(())
    }

    /// What the user should know before a run: n ≥ 3 is outside the validated regime.
    pub fn warnings(n: usize) -> Vec<String> {
        if n >= 3 {
            vec![format!(
                "region growing with n = {n} parameters: the exact rules run, but growth from a box of half-width h0 is proportional to h0^{} and is negligible; n <= 2 is the validated regime (ALGORITHMS.md §3.5)",
                n - 1
            )]
        } else {
            Vec::new()
        }
    }
}

/// One update, as the per-iteration callback sees it (after FIX).
#[derive(Clone, Debug)]
pub struct RegionStep<'a> {
    /// 1-based: the box after this many updates.
    pub iteration: usize,
    pub a: &'a [f64],
    pub b: &'a [f64],
    /// The logged loss of the box before this update, when logging.
    pub loss: Option<f64>,
}

/// One grown region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionResult {
    pub method: RegionMethod,
    /// The initial point z0.
    pub start: Vec<f64>,
    /// (a, b) after FIX at the start and after every update: [T + 1][2][n] when not stopped.
    pub trace: Vec<[Vec<f64>; 2]>,
    /// The logged loss per update (`None` where Σf_D was tiny), when logging was on.
    pub loss: Option<Vec<Option<f64>>>,
    /// Vol(D)/Vol(Ω) of the final box.
    pub volume_ratio: f64,
    /// Whether the callback stopped the run before T updates.
    pub stopped: bool,
}

impl RegionResult {
    /// The final box (a, b).
    pub fn final_box(&self) -> (&[f64], &[f64]) {
        let [a, b] = &self.trace[self.trace.len() - 1];
        (a, b)
    }
}

/// Vol(D)/Vol(Ω) = Π(b_i − a_i)/100ⁿ.
pub fn volume_ratio(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(lo, hi)| (hi - lo) / 100.0).product()
}

/// Corner k of [a, b]: coordinate i is b_i if bit i of k is set, a_i otherwise.
pub fn corners(a: &[f64], b: &[f64]) -> Vec<Vec<f64>> {
    let n = a.len();
    (0..1usize << n)
        .map(|k| {
            (0..n)
                .map(|i| if k >> i & 1 == 1 { b[i] } else { a[i] })
                .collect()
        })
        .collect()
}

/// The outer box Q = [a − (α/2)r, b + (α/2)r].
pub fn outer_box(a: &[f64], b: &[f64], alpha: f64) -> (Vec<f64>, Vec<f64>) {
    let r: Vec<f64> = a.iter().zip(b).map(|(lo, hi)| hi - lo).collect();
    (
        a.iter().zip(&r).map(|(v, r)| v - alpha / 2.0 * r).collect(),
        b.iter().zip(&r).map(|(v, r)| v + alpha / 2.0 * r).collect(),
    )
}

/// (ΣF(a_i), ΣF(b_i)) for every i: the sums over the corners with bit i clear / set.
fn face_sums(f: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut low = vec![0.0; n];
    let mut high = vec![0.0; n];
    for (k, v) in f.iter().enumerate() {
        for i in 0..n {
            if k >> i & 1 == 1 {
                high[i] += v;
            } else {
                low[i] += v;
            }
        }
    }
    (low, high)
}

/// What a rule reads at the current box: f at the inner corners, and f at the outer corners
/// (OIR_B) or g at the inner corners (OIR_W).
pub struct CornerValues<'a> {
    pub inner: &'a [f64],
    pub outer: Option<&'a [f64]>,
    pub gradients: Option<&'a [Vec<f64>]>,
}

/// (∂L/∂a, ∂L/∂b) of `method` at the box [a, b] (§3.4, n-D rules).
pub fn direction(
    method: RegionMethod,
    config: &RegionConfig,
    a: &[f64],
    b: &[f64],
    corners: &CornerValues<'_>,
) -> Result<(Vec<f64>, Vec<f64>), SemanticError> {
    let n = a.len();
    let r: Vec<f64> = a.iter().zip(b).map(|(lo, hi)| hi - lo).collect();
    let size_norm = r.iter().product::<f64>() / (1u64 << n) as f64;
    let (fa, fb) = face_sums(corners.inner, n);
    let missing = |what: &str| {
        SemanticError::Unsupported(format!("{} needs {what} at the corners", method.label()))
    };
    let mut da = vec![0.0; n];
    let mut db = vec![0.0; n];
    match method {
        RegionMethod::Naive => {
            let lambda = config.lambda;
            for i in 0..n {
                let face = 2.0 * size_norm / r[i];
                da[i] = face * fa[i] - lambda * r[i];
                db[i] = -face * fb[i] + lambda * r[i];
            }
        }
        RegionMethod::OirB => {
            let outer = corners
                .outer
                .ok_or_else(|| missing("f at the outer corners"))?;
            let (qa, qb) = face_sums(outer, n);
            let alpha = config.alpha;
            let grow = (1.0 + alpha).powi(n as i32 - 1);
            for i in 0..n {
                let face = 2.0 * size_norm / r[i];
                // Written term by term so that n = 1 (grow = face = 1) is the 1-D rule to
                // the last bit.
                let (inner_w, outer_w) = (grow * (1.0 + alpha / 2.0), grow * (alpha / 2.0));
                da[i] = face * (2.0 * fa[i] - inner_w * qa[i] - outer_w * qb[i]);
                db[i] = face * (-2.0 * fb[i] + inner_w * qb[i] + outer_w * qa[i]);
            }
        }
        RegionMethod::OirW => {
            let g = corners.gradients.ok_or_else(|| missing("gradients"))?;
            let beta = config.beta;
            let lead = 2.0 - (2.0 * n as f64 - 1.0) * beta;
            for k in 0..n {
                // Σ over the corners of face a_k (bit k clear) and face b_k (bit k set).
                let mut g_own = [0.0; 2];
                let mut g_cross = [0.0; 2];
                for (c, gc) in g.iter().enumerate() {
                    let side = c >> k & 1;
                    g_own[side] += gc[k];
                    for i in (0..n).filter(|&i| i != k) {
                        let at_b = c >> i & 1 == 1;
                        // s_i(c) on face a_k: +1 at a_i; s'_i(c) on face b_k: +1 at b_i.
                        let sign = match (side, at_b) {
                            (0, false) | (1, true) => 1.0,
                            _ => -1.0,
                        };
                        g_cross[side] += r[i] * sign * gc[i];
                    }
                }
                da[k] = size_norm
                    * ((lead * fa[k] - beta * fb[k]) / r[k]
                        + beta * g_own[0]
                        + beta / r[k] * g_cross[0]);
                db[k] = size_norm
                    * (-(lead * fb[k] - beta * fa[k]) / r[k]
                        + beta * g_own[1]
                        + beta / r[k] * g_cross[1]);
            }
        }
    }
    Ok((da, db))
}

/// FIX of §3.5: clip to [0, 100], then widen any side below w_min about its clamped centre.
pub fn fix(a: &mut [f64], b: &mut [f64], w_min: f64) {
    for (lo, hi) in a.iter_mut().zip(b.iter_mut()) {
        *lo = lo.clamp(0.0, 100.0);
        *hi = hi.clamp(0.0, 100.0);
        // Not `< w_min`: a NaN width must be caught too, and then lands in the middle of Ω.
        let wide_enough = matches!(
            (*hi - *lo).partial_cmp(&w_min),
            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
        );
        if !wide_enough {
            let mid = (*lo + *hi) / 2.0;
            let mid = if mid.is_nan() { 50.0 } else { mid };
            let m = mid.clamp(w_min / 2.0, 100.0 - w_min / 2.0);
            *lo = m - w_min / 2.0;
            *hi = m + w_min / 2.0;
        }
    }
}

/// The logged loss (1+α)ⁿ·Σf_C/Σf_D − 1, or `None` when Σf_D is tiny (§0.2).
fn logged_loss(inner: &[f64], outer: &[f64], alpha: f64) -> Option<f64> {
    let sum_d: f64 = inner.iter().sum();
    let sum_c: f64 = outer.iter().sum();
    let n = inner.len().trailing_zeros() as i32;
    (sum_d.abs() > f64::from(f32::MIN_POSITIVE))
        .then(|| (1.0 + alpha).powi(n) * sum_c / sum_d - 1.0)
}

/// Grows one region of `method` from `start` (z-units). `on_step` sees every update and may
/// stop the run; the result then holds the updates made so far.
pub fn grow_region(
    f: &mut dyn RegionFunction,
    method: RegionMethod,
    config: &RegionConfig,
    start: &[f64],
    mut on_step: impl FnMut(&RegionStep<'_>) -> ControlFlow<()>,
) -> Result<RegionResult> {
    let n = start.len();
    config.validate(method, n)?;
    let mut a: Vec<f64> = start.iter().map(|z| z - config.h0).collect();
    let mut b: Vec<f64> = start.iter().map(|z| z + config.h0).collect();
    fix(&mut a, &mut b, config.w_min);
    let mut trace = vec![[a.clone(), b.clone()]];
    let mut losses = config.log_loss.then(Vec::new);
    let mut stopped = false;
    let needs_outer = method == RegionMethod::OirB || config.log_loss;
    for iteration in 1..=config.iterations {
        let inner_points = corners(&a, &b);
        let outer_points = if needs_outer {
            let (qa, qb) = outer_box(&a, &b, config.alpha);
            corners(&qa, &qb)
        } else {
            Vec::new()
        };
        let (inner, outer, gradients) = if method == RegionMethod::OirW {
            let (inner, g) = f.values_and_gradients(&inner_points)?;
            let outer = if needs_outer {
                f.values(&outer_points)?
            } else {
                Vec::new()
            };
            (inner, outer, Some(g))
        } else {
            // Inner and outer corners in one batch.
            let mut all = inner_points;
            all.extend(outer_points);
            let mut values = f.values(&all)?;
            let outer = values.split_off(1 << n);
            (values, outer, None)
        };
        let values = CornerValues {
            inner: &inner,
            outer: needs_outer.then_some(outer.as_slice()),
            gradients: gradients.as_deref(),
        };
        let (da, db) = direction(method, config, &a, &b, &values)?;
        let loss = if config.log_loss {
            logged_loss(&inner, &outer, config.alpha)
        } else {
            None
        };
        if let Some(l) = losses.as_mut() {
            l.push(loss);
        }
        for i in 0..n {
            a[i] -= config.eta * da[i];
            b[i] -= config.eta * db[i];
        }
        fix(&mut a, &mut b, config.w_min);
        trace.push([a.clone(), b.clone()]);
        let step = RegionStep {
            iteration,
            a: &a,
            b: &b,
            loss,
        };
        if on_step(&step).is_break() {
            stopped = iteration < config.iterations;
            break;
        }
    }
    Ok(RegionResult {
        method,
        start: start.to_vec(),
        volume_ratio: volume_ratio(&a, &b),
        trace,
        loss: losses,
        stopped,
    })
}

#[cfg(test)]
#[path = "regions_tests.rs"]
mod tests;
