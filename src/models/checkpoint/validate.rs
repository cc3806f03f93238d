//! The one check every checkpoint passes at load, whatever its format, before any model runs:
//! every float tensor is finite (and, stored as F64, fits in f32), and every BatchNorm running
//! variance is non-negative (0 is valid: `eps` keeps the division finite). A weight that breaks
//! one of these does not fail later; it makes every probability NaN, or 100% of one class.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};

/// The first tensor (in name order) that cannot be a trained weight: its name and what is
/// wrong with it.
pub(super) fn first_bad_tensor(tensors: &BTreeMap<String, Tensor>) -> Option<(String, String)> {
    tensors
        .iter()
        .find_map(|(name, t)| problem(name, t).map(|p| (name.clone(), p)))
}

fn problem(name: &str, t: &Tensor) -> Option<String> {
    if !matches!(
        t.dtype(),
        DType::F16 | DType::BF16 | DType::F32 | DType::F64
    ) {
        return None;
    }
    // F64 holds every value of the other float types exactly.
    let values = match t.flatten_all().and_then(|f| f.to_dtype(DType::F64)) {
        Ok(f) => match f.to_vec1::<f64>() {
            Ok(v) => v,
            Err(e) => return Some(format!("cannot be read as numbers: {e}")),
        },
        Err(e) => return Some(format!("cannot be read as numbers: {e}")),
    };
    let dims = t.dims();
    let count_first = |bad: &dyn Fn(f64) -> bool| {
        let mut hits = values.iter().enumerate().filter(|(_, v)| bad(**v));
        hits.next().map(|(first, &v)| (1 + hits.count(), first, v))
    };
    if let Some((n, first, _)) = count_first(&|v| v.is_nan()) {
        return Some(format!(
            "holds {n} NaN value{} (the first at index {}): a checkpoint with NaN weights \
             cannot classify",
            plural(n),
            index(dims, first)
        ));
    }
    if let Some((n, first, v)) = count_first(&|v| v.is_infinite()) {
        return Some(format!(
            "holds {n} infinite value{} (the first, {v}, at index {}): a checkpoint with \
             infinite weights cannot classify",
            plural(n),
            index(dims, first)
        ));
    }
    if t.dtype() == DType::F64 {
        let too_big = |v: f64| v.abs() > f64::from(f32::MAX);
        if let Some((n, first, v)) = count_first(&too_big) {
            return Some(format!(
                "holds {n} F64 value{} too large for f32 (the first, {v:e}, at index {}), \
                 which the model computes in",
                plural(n),
                index(dims, first)
            ));
        }
    }
    if (name == "running_var" || name.ends_with(".running_var"))
        && let Some((_, first, v)) = count_first(&|v| v < 0.0)
    {
        return Some(format!(
            "has a negative value ({v}) at index {}: a BatchNorm running variance cannot be \
             negative",
            index(dims, first)
        ));
    }
    None
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A flat (row-major) index as the tensor's own: `3` for a vector, `[0, 2, 1, 1]` otherwise.
fn index(dims: &[usize], flat: usize) -> String {
    if dims.len() <= 1 {
        return flat.to_string();
    }
    let mut rest = flat;
    let mut idx = vec![0; dims.len()];
    for (i, &d) in dims.iter().enumerate().rev() {
        if d > 0 {
            idx[i] = rest % d;
            rest /= d;
        }
    }
    format!("{idx:?}")
}

/// The float tensors not stored as F32, by dtype, with their count: what a load converts.
pub(super) fn non_f32_floats(tensors: &BTreeMap<String, Tensor>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in tensors.values() {
        if matches!(t.dtype(), DType::F16 | DType::BF16 | DType::F64) {
            *out.entry(format!("{:?}", t.dtype())).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn one(name: &str, t: Tensor) -> Option<(String, String)> {
        first_bad_tensor(&[(name.to_string(), t)].into())
    }

    #[test]
    fn finite_weights_and_variances_pass() {
        let t = Tensor::new(&[0.0f32, 1.0, -2.0], &Device::Cpu).unwrap();
        assert_eq!(one("conv.weight", t.clone()), None);
        // A negative value is fine outside a variance, and a zero variance is valid.
        let v = Tensor::new(&[0.0f32, 1.0], &Device::Cpu).unwrap();
        assert_eq!(one("bn.running_var", v), None);
        let i = Tensor::new(&[-1i64], &Device::Cpu).unwrap();
        assert_eq!(one("bn.num_batches_tracked", i), None);
    }

    #[test]
    fn nan_inf_negative_variance_and_f64_overflow() {
        let nan = Tensor::new(&[[0.0f32, f32::NAN], [f32::NAN, 1.0]], &Device::Cpu).unwrap();
        let (name, p) = one("conv1.weight", nan).unwrap();
        assert_eq!(name, "conv1.weight");
        assert!(
            p.starts_with("holds 2 NaN values (the first at index [0, 1])"),
            "{p}"
        );
        let inf = Tensor::new(&[1.0f64, f64::NEG_INFINITY], &Device::Cpu).unwrap();
        let p = one("fc.bias", inf).unwrap().1;
        assert!(
            p.starts_with("holds 1 infinite value (the first, -inf, at index 1)"),
            "{p}"
        );
        let var = Tensor::new(&[1.0f32, 0.5, 0.0, -1.0], &Device::Cpu).unwrap();
        let p = one("layer1.0.bn1.running_var", var).unwrap().1;
        assert!(p.starts_with("has a negative value (-1) at index 3"), "{p}");
        let big = Tensor::new(&[1e300f64], &Device::Cpu).unwrap();
        let p = one("w", big).unwrap().1;
        assert!(p.contains("too large for f32"), "{p}");
        let half = Tensor::new(&[1.0f32], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap();
        assert_eq!(
            non_f32_floats(&[("a".to_string(), half)].into()),
            [("F16".to_string(), 1)].into()
        );
    }
}
