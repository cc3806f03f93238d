//! The triangular convex hull of a source and two LST outputs (ALGORITHMS.md §1.7, §1.9) and the
//! linear-interpolation profile (§1.8).

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::confidence::batch_confidences;
use super::error::{Result, invalid};
use super::stats::{MeanStd, mean_std};
use crate::models::Classifier;

/// Hull lattice resolution n of both presets.
pub const HULL_RESOLUTION: usize = 10;
/// The δ of the metrics frac_δ, (3)–(6).
pub const HULL_DELTAS: [f64; 4] = [0.0, 0.1, 0.2, 0.3];
/// sin θ below this draws the degenerate layout.
pub const DEGENERATE_SIN: f64 = 1e-6;

/// One lattice point (i, j), i + j ≤ n, with weights ((n−i−j)/n, i/n, j/n) for (x_s, x₁, x₂).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatticePoint {
    pub i: usize,
    pub j: usize,
    pub weights: [f32; 3],
}

/// Number of lattice points, (n+1)(n+2)/2.
pub fn lattice_len(n: usize) -> usize {
    (n + 1) * (n + 2) / 2
}

/// Position of (i, j) in lattice order (i outer, j inner).
pub fn lattice_index(n: usize, i: usize, j: usize) -> usize {
    i * (n + 1) - i * i.saturating_sub(1) / 2 + j
}

/// The exact barycentric lattice: all integers i, j ≥ 0 with i + j ≤ n, i outer and j inner,
/// weights computed from integers. n = 0 gives the source alone.
pub fn lattice(n: usize) -> Vec<LatticePoint> {
    let denom = n.max(1) as f32;
    let mut points = Vec::with_capacity(lattice_len(n));
    for i in 0..=n {
        for j in 0..=n - i {
            points.push(LatticePoint {
                i,
                j,
                weights: [
                    (n - i - j) as f32 / denom,
                    i as f32 / denom,
                    j as f32 / denom,
                ],
            });
        }
    }
    points
}

/// One image [C, H, W] on the classifier's device, as f32.
fn on_device(classifier: &Classifier, x: &Tensor) -> Result<Tensor> {
    Ok(x.to_device(classifier.device())?.to_dtype(DType::F32)?)
}

/// P = w0·x_s + w1·x₁ + w2·x₂, evaluated as (w0·x_s + w1·x₁) + w2·x₂ (no clamp: a convex
/// combination of images in [0, 1]). Vertices reproduce their image bit for bit.
fn combine(xs: &Tensor, x1: &Tensor, x2: &Tensor, w: [f32; 3]) -> Result<Tensor> {
    let a = xs.affine(f64::from(w[0]), 0.0)?;
    let b = x1.affine(f64::from(w[1]), 0.0)?;
    let c = x2.affine(f64::from(w[2]), 0.0)?;
    Ok(((a + b)? + c)?)
}

/// The lattice images [P, C, H, W] for `points`, on the device of `x_s`.
pub fn lattice_images(
    x_s: &Tensor,
    x1: &Tensor,
    x2: &Tensor,
    points: &[LatticePoint],
) -> Result<Tensor> {
    let device = x_s.device();
    let x1 = x1.to_device(device)?.to_dtype(x_s.dtype())?;
    let x2 = x2.to_device(device)?.to_dtype(x_s.dtype())?;
    let images = points
        .iter()
        .map(|p| combine(x_s, &x1, &x2, p.weights))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::stack(&images, 0)?)
}

/// The eight per-triangle metrics of §1.7.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriangleMetrics {
    /// (1) conf at the source vertex.
    pub p_src: f32,
    /// (2) mean conf over the lattice.
    pub mean_hull: f32,
    /// (3)–(6) #{conf > p_src − δ} / #points for δ = 0, 0.1, 0.2, 0.3 (strict).
    pub frac: [f32; 4],
    /// (7) mean over edge1 ⧺ edge2, 2(n+1) values (the source counted twice).
    pub mean_edges: f32,
    /// (8) min over both edges of conf − p_src, ≤ 0.
    pub edge_min: f32,
}

impl TriangleMetrics {
    /// The metrics as the [8] row of §1.4.
    pub fn to_array(&self) -> [f32; 8] {
        [
            self.p_src,
            self.mean_hull,
            self.frac[0],
            self.frac[1],
            self.frac[2],
            self.frac[3],
            self.mean_edges,
            self.edge_min,
        ]
    }

    /// The metrics from the lattice confidences (lattice order).
    pub fn from_confidences(n: usize, confs: &[f32]) -> Result<Self> {
        if confs.len() != lattice_len(n) {
            return Err(invalid(format!(
                "{} confidences for a lattice of {} points",
                confs.len(),
                lattice_len(n)
            )));
        }
        let p_src = confs[lattice_index(n, 0, 0)];
        let p = f64::from(p_src);
        let count = confs.len() as f64;
        let mean_hull = confs.iter().map(|&c| f64::from(c)).sum::<f64>() / count;
        let mut frac = [0f32; 4];
        for (f, delta) in frac.iter_mut().zip(HULL_DELTAS) {
            let above = confs.iter().filter(|&&c| f64::from(c) > p - delta).count();
            *f = (above as f64 / count) as f32;
        }
        let edges: Vec<f64> = (0..=n)
            .map(|i| confs[lattice_index(n, i, 0)])
            .chain((0..=n).map(|j| confs[lattice_index(n, 0, j)]))
            .map(f64::from)
            .collect();
        let mean_edges = edges.iter().sum::<f64>() / edges.len() as f64;
        let edge_min = edges.iter().map(|c| c - p).fold(f64::INFINITY, f64::min);
        Ok(Self {
            p_src,
            mean_hull: mean_hull as f32,
            frac,
            mean_edges: mean_edges as f32,
            edge_min: edge_min as f32,
        })
    }
}

/// The lattice confidences of one triangle and its metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HullEvaluation {
    pub n: usize,
    /// conf_ij = p(P_ij)[y] in lattice order.
    pub confidences: Vec<f32>,
    pub metrics: TriangleMetrics,
}

impl HullEvaluation {
    pub fn confidence(&self, i: usize, j: usize) -> f32 {
        self.confidences[lattice_index(self.n, i, j)]
    }
}

/// Evaluates the hull of (x_s, x₁, x₂), each [C, H, W], for class `label`: (n+1)(n+2)/2 images
/// forwarded `chunk` at a time. Undefined (NaN) confidences count as 0.
pub fn evaluate_hull(
    classifier: &Classifier,
    x_s: &Tensor,
    x1: &Tensor,
    x2: &Tensor,
    label: u32,
    n: usize,
    chunk: usize,
) -> Result<HullEvaluation> {
    let all = evaluate_hull_live(classifier, x_s, x1, x2, label, n, chunk, |_, _| {
        std::ops::ControlFlow::Continue(())
    })?;
    all.ok_or_else(|| invalid("hull evaluation stopped"))
}

/// [`evaluate_hull`], with `on_chunk(done, total)` called after every forward pass; breaking
/// stops there and returns `None` (a partial lattice has no metrics).
#[allow(clippy::too_many_arguments)]
pub fn evaluate_hull_live(
    classifier: &Classifier,
    x_s: &Tensor,
    x1: &Tensor,
    x2: &Tensor,
    label: u32,
    n: usize,
    chunk: usize,
    mut on_chunk: impl FnMut(usize, usize) -> std::ops::ControlFlow<()>,
) -> Result<Option<HullEvaluation>> {
    if n == 0 {
        return Err(invalid("hull resolution must be at least 1"));
    }
    if x_s.dims() != x1.dims() || x_s.dims() != x2.dims() {
        return Err(invalid(format!(
            "hull images have shapes {:?}, {:?}, {:?}",
            x_s.dims(),
            x1.dims(),
            x2.dims()
        )));
    }
    let xs = on_device(classifier, x_s)?;
    let x1 = on_device(classifier, x1)?;
    let x2 = on_device(classifier, x2)?;
    let points = lattice(n);
    let chunk = chunk.max(1);
    let mut confidences = Vec::with_capacity(points.len());
    for part in points.chunks(chunk) {
        let images = lattice_images(&xs, &x1, &x2, part)?;
        let labels = vec![label; part.len()];
        confidences.extend(batch_confidences(classifier, &images, &labels, chunk)?);
        if on_chunk(confidences.len(), points.len()).is_break() {
            return Ok(None);
        }
    }
    let metrics = TriangleMetrics::from_confidences(n, &confidences)?;
    Ok(Some(HullEvaluation {
        n,
        confidences,
        metrics,
    }))
}

/// Per-source aggregation: metrics (1)–(7) averaged over the source's triangles, (8) their
/// minimum. `None` for no triangles.
pub fn aggregate_triangles(triangles: &[TriangleMetrics]) -> Option<TriangleMetrics> {
    if triangles.is_empty() {
        return None;
    }
    let rows: Vec<[f32; 8]> = triangles.iter().map(TriangleMetrics::to_array).collect();
    let mean =
        |k: usize| (rows.iter().map(|r| f64::from(r[k])).sum::<f64>() / rows.len() as f64) as f32;
    Some(TriangleMetrics {
        p_src: mean(0),
        mean_hull: mean(1),
        frac: [mean(2), mean(3), mean(4), mean(5)],
        mean_edges: mean(6),
        edge_min: rows.iter().map(|r| r[7]).fold(f32::INFINITY, f32::min),
    })
}

/// Table 2 for one model: mean ± std over sources of each of the eight aggregated metrics
/// (Table 2 shows the first seven; the eighth is the optional edge_min column).
pub fn table2(per_source: &[TriangleMetrics]) -> [Option<MeanStd>; 8] {
    std::array::from_fn(|k| {
        let column: Vec<f64> = per_source
            .iter()
            .map(|m| f64::from(m.to_array()[k]))
            .collect();
        mean_std(&column)
    })
}

/// Plot placement of the triangle (§1.9): x_s at (0, 0), x₁ at `p1`, x₂ at `p2`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HullGeometry {
    pub p1: [f64; 2],
    pub p2: [f64; 2],
    /// True when the right isosceles fallback (0,0), (1,0), (0,1) is drawn.
    pub degenerate: bool,
}

/// f32::MIN_POSITIVE: a norm at or below it is "tiny" (§0.2).
const TINY: f64 = f32::MIN_POSITIVE as f64;

/// True-geometry placement: ρ = ‖x₂ − x_s‖/‖x₁ − x_s‖, cos θ the normalised inner product
/// clamped to [−1, 1], sin θ ≥ 0, P₂ = (ρ cos θ, ρ sin θ). Degenerate when a norm is tiny or
/// sin θ < 1e-6. Computed in f64 on host slices of equal length.
pub fn hull_geometry(x_s: &[f32], x1: &[f32], x2: &[f32]) -> Result<HullGeometry> {
    if x1.len() != x_s.len() || x2.len() != x_s.len() {
        return Err(invalid(format!(
            "hull images have {}, {} and {} values",
            x_s.len(),
            x1.len(),
            x2.len()
        )));
    }
    let (mut n1, mut n2, mut dot) = (0f64, 0f64, 0f64);
    for ((&s, &a), &b) in x_s.iter().zip(x1).zip(x2) {
        let (u, v) = (f64::from(a) - f64::from(s), f64::from(b) - f64::from(s));
        n1 += u * u;
        n2 += v * v;
        dot += u * v;
    }
    let (n1, n2) = (n1.sqrt(), n2.sqrt());
    let fallback = HullGeometry {
        p1: [1.0, 0.0],
        p2: [0.0, 1.0],
        degenerate: true,
    };
    if !(n1 > TINY && n2 > TINY) {
        return Ok(fallback);
    }
    let cos = (dot / (n1 * n2)).clamp(-1.0, 1.0);
    let sin = (1.0 - cos * cos).max(0.0).sqrt();
    if sin.is_nan() || sin < DEGENERATE_SIN {
        return Ok(fallback);
    }
    let rho = n2 / n1;
    Ok(HullGeometry {
        p1: [1.0, 0.0],
        p2: [rho * cos, rho * sin],
        degenerate: false,
    })
}

/// Plot positions of the lattice points (lattice order): (i/n)·P₁ + (j/n)·P₂.
pub fn lattice_positions(geometry: &HullGeometry, n: usize) -> Vec<[f64; 2]> {
    let denom = n.max(1) as f64;
    lattice(n)
        .iter()
        .map(|p| {
            let (a, b) = (p.i as f64 / denom, p.j as f64 / denom);
            [
                a * geometry.p1[0] + b * geometry.p2[0],
                a * geometry.p1[1] + b * geometry.p2[1],
            ]
        })
        .collect()
}

/// Upward small triangles (i,j), (i+1,j), (i,j+1) for i + j ≤ n−1, as lattice indices.
pub fn up_triangles(n: usize) -> Vec<[usize; 3]> {
    let mut out = Vec::with_capacity(n * (n + 1) / 2);
    for i in 0..n {
        for j in 0..n - i {
            out.push([
                lattice_index(n, i, j),
                lattice_index(n, i + 1, j),
                lattice_index(n, i, j + 1),
            ]);
        }
    }
    out
}

/// Downward small triangles (i+1,j), (i,j+1), (i+1,j+1) for i + j ≤ n−2, as lattice indices.
pub fn down_triangles(n: usize) -> Vec<[usize; 3]> {
    let mut out = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n.saturating_sub(1) {
        for j in 0..n - 1 - i {
            out.push([
                lattice_index(n, i + 1, j),
                lattice_index(n, i, j + 1),
                lattice_index(n, i + 1, j + 1),
            ]);
        }
    }
    out
}

/// Steps of the linear-interpolation profile: t = k/20.
pub const PROFILE_STEPS: usize = 20;

/// conf(t) = p((1−t)·x_s + t·x_end)[label] at t = k/steps, k = 0..=steps (§1.8), for images
/// [C, H, W]. The weights come from integers, so t = 0 and t = 1 are x_s and x_end exactly.
pub fn interpolation_profile(
    classifier: &Classifier,
    x_s: &Tensor,
    x_end: &Tensor,
    label: u32,
    steps: usize,
) -> Result<Vec<f32>> {
    if steps == 0 {
        return Err(invalid("the interpolation profile needs at least 1 step"));
    }
    if x_s.dims() != x_end.dims() {
        return Err(invalid(format!(
            "profile images have shapes {:?} and {:?}",
            x_s.dims(),
            x_end.dims()
        )));
    }
    let xs = on_device(classifier, x_s)?;
    let xe = on_device(classifier, x_end)?;
    let denom = steps as f32;
    let images = (0..=steps)
        .map(|k| {
            let a = xs.affine(f64::from((steps - k) as f32 / denom), 0.0)?;
            let b = xe.affine(f64::from(k as f32 / denom), 0.0)?;
            a + b
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let batch = Tensor::stack(&images, 0)?;
    batch_confidences(
        classifier,
        &batch,
        &vec![label; steps + 1],
        super::confidence::DEFAULT_CHUNK,
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_models::{
        constant_classifier, image_tensor, linear_classifier, random_image,
    };
    use super::*;

    const SHAPE: [usize; 3] = [3, 8, 8];

    #[test]
    fn lattice_has_66_exact_points() {
        let pts = lattice(10);
        assert_eq!(pts.len(), 66);
        assert_eq!(lattice_len(10), 66);
        for (k, p) in pts.iter().enumerate() {
            assert_eq!(lattice_index(10, p.i, p.j), k);
            assert!(p.i + p.j <= 10);
            let [w0, w1, w2] = p.weights;
            assert_eq!(w1, p.i as f32 / 10.0);
            assert_eq!(w2, p.j as f32 / 10.0);
            assert_eq!(w0, (10 - p.i - p.j) as f32 / 10.0);
            assert!(w0 >= 0.0);
        }
        assert!(pts.iter().any(|p| (p.i, p.j) == (8, 2)));
        assert!(pts.iter().any(|p| (p.i, p.j) == (9, 1)));
        assert_eq!(pts[lattice_index(10, 8, 2)].weights[0], 0.0);
        for n in 1..15 {
            assert_eq!(lattice(n).len(), (n + 1) * (n + 2) / 2);
        }
        assert_eq!(lattice(0).len(), 1);
    }

    #[test]
    fn vertices_are_bit_identical_and_source_conf_is_p0() {
        let classifier = linear_classifier(SHAPE, 3, 1);
        let xs = image_tensor(random_image(1, SHAPE), SHAPE);
        let x1 = image_tensor(random_image(2, SHAPE), SHAPE);
        let x2 = image_tensor(random_image(3, SHAPE), SHAPE);
        let pts = lattice(10);
        let images = lattice_images(&xs, &x1, &x2, &pts).expect("images");
        let row = |k: usize| {
            images
                .get(k)
                .expect("row")
                .flatten_all()
                .expect("f")
                .to_vec1::<f32>()
                .expect("v")
        };
        let flat = |t: &Tensor| t.flatten_all().expect("f").to_vec1::<f32>().expect("v");
        assert_eq!(row(lattice_index(10, 0, 0)), flat(&xs));
        assert_eq!(row(lattice_index(10, 10, 0)), flat(&x1));
        assert_eq!(row(lattice_index(10, 0, 10)), flat(&x2));

        let eval = evaluate_hull(&classifier, &xs, &x1, &x2, 0, 10, 64).expect("hull");
        let logits = classifier
            .forward(&xs.unsqueeze(0).expect("b"))
            .expect("forward")
            .to_vec2::<f32>()
            .expect("v");
        let p0 = crate::analysis::confidence::softmax_at(&logits[0], 0);
        assert!((eval.confidence(0, 0) - p0).abs() <= 1e-6);
        assert_eq!(eval.metrics.p_src, eval.confidence(0, 0));
        // Chunking does not matter.
        let other = evaluate_hull(&classifier, &xs, &x1, &x2, 0, 10, 7).expect("hull");
        for (a, b) in eval.confidences.iter().zip(&other.confidences) {
            assert!((a - b).abs() < 1e-6);
        }
        assert!(eval.metrics.edge_min <= 0.0);
        assert!(eval.confidences.iter().all(|c| c.is_finite()));
    }

    #[test]
    fn metrics_by_hand() {
        // n = 2: points (0,0) (0,1) (0,2) (1,0) (1,1) (2,0).
        let confs = [0.8f32, 0.9, 0.45, 0.75, 0.55, 0.65];
        let m = TriangleMetrics::from_confidences(2, &confs).expect("metrics");
        assert_eq!(m.p_src, 0.8);
        assert!((m.mean_hull - 4.1 / 6.0).abs() < 1e-6);
        // > 0.8: {0.9}; > 0.7: adds 0.8, 0.75; > 0.6: adds 0.65; > 0.5: adds 0.55.
        let expected = [1.0 / 6.0, 3.0 / 6.0, 4.0 / 6.0, 5.0 / 6.0];
        for (f, e) in m.frac.iter().zip(expected) {
            assert!((f - e).abs() < 1e-6, "{:?}", m.frac);
        }
        // edge1 = (0.8, 0.75, 0.65), edge2 = (0.8, 0.9, 0.45).
        assert!((m.mean_edges - 4.35 / 6.0).abs() < 1e-6);
        assert!((m.edge_min - (0.45 - 0.8)).abs() < 1e-6);
        assert!(TriangleMetrics::from_confidences(2, &confs[..5]).is_err());
    }

    #[test]
    fn constant_model_hull() {
        let (classifier, c) = constant_classifier(SHAPE);
        let xs = image_tensor(random_image(1, SHAPE), SHAPE);
        let x1 = image_tensor(random_image(2, SHAPE), SHAPE);
        let x2 = image_tensor(random_image(3, SHAPE), SHAPE);
        let eval = evaluate_hull(&classifier, &xs, &x1, &x2, 0, 10, 64).expect("hull");
        let m = eval.metrics;
        assert_eq!(eval.confidences.len(), 66);
        assert_eq!(m.p_src, c);
        assert_eq!(m.mean_hull, c);
        assert_eq!(m.frac, [0.0, 1.0, 1.0, 1.0]);
        assert_eq!(m.mean_edges, c);
        assert_eq!(m.edge_min, 0.0);
    }

    #[test]
    fn aggregation_and_table2() {
        let a = TriangleMetrics {
            p_src: 0.9,
            mean_hull: 0.5,
            frac: [0.1, 0.2, 0.3, 0.4],
            mean_edges: 0.6,
            edge_min: -0.2,
        };
        let b = TriangleMetrics {
            p_src: 0.7,
            mean_hull: 0.3,
            frac: [0.3, 0.4, 0.5, 0.6],
            mean_edges: 0.4,
            edge_min: -0.5,
        };
        let agg = aggregate_triangles(&[a, b]).expect("two");
        let row = agg.to_array();
        let expected = [0.8, 0.4, 0.2, 0.3, 0.4, 0.5, 0.5, -0.5];
        for (g, e) in row.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{row:?}");
        }
        assert_eq!(aggregate_triangles(&[]), None);
        let t = table2(&[a, b]);
        let p = t[0].expect("two sources");
        assert!((p.mean - 0.8).abs() < 1e-6 && (p.std - 0.02f64.sqrt()).abs() < 1e-6);
        assert!(table2(&[]).iter().all(Option::is_none));
    }

    #[test]
    fn geometry_orthogonal_and_degenerate() {
        // x1 − xs and x2 − xs on disjoint pixels with equal norm.
        let xs = vec![0.25f32; 6];
        let mut x1 = xs.clone();
        let mut x2 = xs.clone();
        x1[0] = 0.75;
        x2[3] = 0.75;
        let g = hull_geometry(&xs, &x1, &x2).expect("geometry");
        assert!(!g.degenerate);
        assert_eq!(g.p1, [1.0, 0.0]);
        assert!(
            g.p2[0].abs() < 1e-12 && (g.p2[1] - 1.0).abs() < 1e-12,
            "{g:?}"
        );
        // x2 − xs = 2(x1 − xs).
        let x1: Vec<f32> = xs
            .iter()
            .enumerate()
            .map(|(k, v)| v + 0.125 * (k % 2) as f32)
            .collect();
        let x2: Vec<f32> = xs
            .iter()
            .enumerate()
            .map(|(k, v)| v + 0.25 * (k % 2) as f32)
            .collect();
        let g = hull_geometry(&xs, &x1, &x2).expect("geometry");
        assert!(g.degenerate);
        assert_eq!((g.p1, g.p2), ([1.0, 0.0], [0.0, 1.0]));
        // A tiny norm.
        let g = hull_geometry(&xs, &xs, &x2).expect("geometry");
        assert!(g.degenerate);
        // A general triangle: 60° with ρ = 2.
        let xs = vec![0.0f32; 2];
        let x1 = vec![0.25f32, 0.0];
        let x2 = vec![0.25f32, 0.25 * 3f32.sqrt()];
        let g = hull_geometry(&xs, &x1, &x2).expect("geometry");
        assert!((g.p2[0] - 1.0).abs() < 1e-6 && (g.p2[1] - 3f64.sqrt()).abs() < 1e-6);
        assert!(hull_geometry(&xs, &x1, &[0.0]).is_err());
    }

    #[test]
    fn positions_and_small_triangles() {
        let g = HullGeometry {
            p1: [1.0, 0.0],
            p2: [0.5, 2.0],
            degenerate: false,
        };
        let pos = lattice_positions(&g, 10);
        assert_eq!(pos.len(), 66);
        assert_eq!(pos[lattice_index(10, 0, 0)], [0.0, 0.0]);
        assert_eq!(pos[lattice_index(10, 10, 0)], [1.0, 0.0]);
        assert_eq!(pos[lattice_index(10, 0, 10)], [0.5, 2.0]);
        let p = pos[lattice_index(10, 3, 4)];
        assert!((p[0] - (0.3 + 0.2)).abs() < 1e-12 && (p[1] - 0.8).abs() < 1e-12);
        for n in 1..12 {
            let up = up_triangles(n);
            let down = down_triangles(n);
            assert_eq!(up.len(), n * (n + 1) / 2);
            assert_eq!(down.len(), n * (n - 1) / 2);
            assert_eq!(up.len() + down.len(), n * n);
            let len = lattice_len(n);
            assert!(up.iter().chain(&down).flatten().all(|&k| k < len));
        }
        let pts = lattice(2);
        let up = up_triangles(2);
        let ij = |k: usize| (pts[k].i, pts[k].j);
        assert_eq!(
            up.iter().map(|t| t.map(ij)).collect::<Vec<_>>(),
            vec![
                [(0, 0), (1, 0), (0, 1)],
                [(0, 1), (1, 1), (0, 2)],
                [(1, 0), (2, 0), (1, 1)],
            ]
        );
        assert_eq!(
            down_triangles(2)
                .iter()
                .map(|t| t.map(ij))
                .collect::<Vec<_>>(),
            vec![[(1, 0), (0, 1), (1, 1)],]
        );
    }

    #[test]
    fn interpolation_profile_endpoints() {
        let classifier = linear_classifier(SHAPE, 3, 2);
        let xs = image_tensor(random_image(5, SHAPE), SHAPE);
        let xe = image_tensor(random_image(6, SHAPE), SHAPE);
        let prof = interpolation_profile(&classifier, &xs, &xe, 2, PROFILE_STEPS).expect("p");
        assert_eq!(prof.len(), 21);
        let conf = |x: &Tensor| {
            crate::analysis::confidence::batch_confidences(
                &classifier,
                &x.unsqueeze(0).expect("b"),
                &[2],
                1,
            )
            .expect("c")[0]
        };
        assert_eq!(prof[0], conf(&xs));
        assert_eq!(prof[20], conf(&xe));
        assert!(prof.iter().all(|p| (0.0..=1.0).contains(p)));
        let (cst, c) = constant_classifier(SHAPE);
        let flat = interpolation_profile(&cst, &xs, &xe, 0, 4).expect("p");
        assert_eq!(flat, vec![c; 5]);
    }
}
