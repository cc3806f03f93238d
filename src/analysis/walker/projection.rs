//! The projected direction of a walk step (ALGORITHMS.md §1.2, §2.2) and the per-row tensor
//! helpers the walker shares.

use candle_core::Tensor;

use super::super::error::Result;

/// f32::MIN_POSITIVE: a value at or below it is "tiny" (§0.2).
pub(crate) const TINY: f32 = f32::MIN_POSITIVE;

/// Which components of J a step removes from v = x_t − x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sidedness {
    /// LST: always remove the J component (both signs).
    TwoSided,
    /// NSPGD: remove it only when moving along v would lower the confidence (⟨J, v⟩ < 0);
    /// otherwise nd is v itself, bit for bit.
    OneSided,
}
/// The projected direction of a batch (§1.2).
#[derive(Clone, Debug)]
pub struct Projection {
    /// nd = v − (⟨J, v⟩/⟨J, J⟩)·J per row, nd = v where ⟨J, J⟩ is tiny. [b, D].
    pub nd: Tensor,
    /// J with every row that holds a non-finite value (or whose ⟨J, J⟩ or ⟨J, v⟩ is not
    /// finite) replaced by zeros. [b, D].
    pub grad: Tensor,
    /// ⟨J, v⟩/⟨J, J⟩ per row, 0 where tiny or zeroed (and, one-sided, where positive).
    pub coef: Vec<f32>,
}

/// Projects v onto the orthogonal complement of J, per row of [b, D] tensors. The inner
/// products are f32 candle reductions; the coefficient is divided in f64.
pub fn project_orthogonal(v: &Tensor, j: &Tensor) -> Result<Projection> {
    project(v, j, Sidedness::TwoSided)
}

/// Projects v per row of [b, D] tensors, two- or one-sided (`coef` is 0 where nothing is
/// removed, so nd = v exactly there).
pub fn project(v: &Tensor, j: &Tensor, sidedness: Sidedness) -> Result<Projection> {
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
        .map(|c| match sidedness {
            // c > 0: moving along v raises the confidence, so v is kept as it is.
            Sidedness::OneSided if c > 0.0 => 0.0,
            _ => c,
        })
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
pub(crate) fn select_rows(mask: &[bool], on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
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
pub(crate) fn row_distances(a: &Tensor, b: &Tensor) -> Result<Vec<(f32, f32)>> {
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
