//! The transform T(x, u) of ALGORITHMS.md §3.1, steps 1–6 in order (contrast, brightness, hue,
//! geometric warp, blur, clamp), with its exact derivatives in u.
//!
//! T runs on the host in f64 in forward mode: every step carries the pixels and, for each
//! requested parameter, the tangent ∂T/∂u_k. This is cheaper than an autograd graph for eight
//! or fewer parameters, and it keeps the model's input gradient on our engine: the chain rule
//! ∂f/∂u_k = ⟨∂f/∂x, ∂T/∂u_k⟩ needs one engine backward per batch (see `objective.rs`).
//! The warp is PyTorch's `affine_grid` + `grid_sample` (bilinear, zeros padding,
//! align_corners = false) written out as the spec's formulas.

use candle_core::{DType, Tensor};

use super::params::{FullParams, SemanticParam};
use crate::analysis::error::{Result, invalid};

/// Blur σ below this is the identity (§3.1 step 5).
const BLUR_IDENTITY_BELOW: f64 = 0.05;
/// The scale is clamped to at least this for evaluation (§3.1).
const MIN_SCALE: f64 = 1e-3;
/// Rec. 601 luminance weights, for the contrast pivot.
const LUMA: [f64; 3] = [0.299, 0.587, 0.114];

const GEOMETRIC: [SemanticParam; 4] = [
    SemanticParam::Rot,
    SemanticParam::Scale,
    SemanticParam::Tx,
    SemanticParam::Ty,
];

/// T(x, ·) for one image x.
#[derive(Clone, Debug)]
pub struct SemanticTransform {
    channels: usize,
    height: usize,
    width: usize,
    /// x as f64, [C, H, W] row-major.
    pixels: Vec<f64>,
    /// m of step 1: the mean luminance (C = 3) or channel mean (C = 1) of x.
    pivot: f64,
    /// R = ⌈3·σ_max⌉.
    blur_radius: usize,
}

/// T(x, u) and ∂T/∂u_k for the requested parameters, each [C, H, W] row-major.
#[derive(Clone, Debug)]
pub struct Transformed {
    pub pixels: Vec<f64>,
    /// One per requested parameter, in the order they were requested.
    pub tangents: Vec<Vec<f64>>,
}

/// The image being transformed with its tangents.
struct State {
    values: Vec<f64>,
    tangents: Vec<Vec<f64>>,
}

impl SemanticTransform {
    /// From an image tensor [C, H, W] (or [1, C, H, W]) in [0, 1]; `blur_max` is the blur
    /// domain's upper bound, which fixes the kernel radius.
    pub fn new(image: &Tensor, blur_max: f64) -> Result<Self> {
        let image = match image.rank() {
            4 if image.dim(0)? == 1 => image.squeeze(0)?,
            3 => image.clone(),
            _ => {
                return Err(invalid(format!(
                    "a semantic transform takes one image [C, H, W], not {:?}",
                    image.dims()
                )));
            }
        };
        let (c, h, w) = image.dims3()?;
        let pixels = image
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Self::from_host(pixels, [c, h, w], blur_max)
    }

    pub fn from_host(pixels: Vec<f64>, shape: [usize; 3], blur_max: f64) -> Result<Self> {
        let [channels, height, width] = shape;
        if channels != 1 && channels != 3 {
            return Err(invalid(format!(
                "images have 1 or 3 channels, not {channels}"
            )));
        }
        if pixels.len() != channels * height * width || pixels.is_empty() {
            return Err(invalid(format!(
                "{} pixel values for an image of shape {shape:?}",
                pixels.len()
            )));
        }
        let plane = height * width;
        let pivot = if channels == 3 {
            let sum: f64 = (0..plane)
                .map(|p| (0..3).map(|c| LUMA[c] * pixels[c * plane + p]).sum::<f64>())
                .sum();
            sum / plane as f64
        } else {
            pixels.iter().sum::<f64>() / plane as f64
        };
        let blur_radius = if blur_max.is_finite() && blur_max > 0.0 {
            (3.0 * blur_max).ceil() as usize
        } else {
            0
        };
        Ok(Self {
            channels,
            height,
            width,
            pixels,
            pivot,
            blur_radius,
        })
    }

    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    pub fn blur_radius(&self) -> usize {
        self.blur_radius
    }

    /// T(x, u), with ∂T/∂u_k for each parameter in `derivatives` (u in natural units; angles
    /// differentiate per degree).
    pub fn apply(&self, u: &FullParams, derivatives: &[SemanticParam]) -> Transformed {
        let mut state = self.colour(u, derivatives);
        let warped = GEOMETRIC
            .iter()
            .any(|p| u[p.index()] != p.identity() || derivatives.contains(p));
        if warped {
            state = self.warp(&state, u, derivatives);
        }
        let sigma = u[SemanticParam::Blur.index()];
        if sigma >= BLUR_IDENTITY_BELOW && self.blur_radius > 0 {
            state = self.blur(&state, sigma, derivatives);
        }
        clamp(&mut state);
        Transformed {
            pixels: state.values,
            tangents: state.tangents,
        }
    }

    /// Steps 1–3: contrast about the pivot, brightness, hue rotation about the grey axis.
    fn colour(&self, u: &FullParams, derivatives: &[SemanticParam]) -> State {
        let kappa = u[SemanticParam::Contrast.index()];
        let delta = u[SemanticParam::Bright.index()];
        let hue = u[SemanticParam::Hue.index()].to_radians();
        let m = self.pivot;
        let plane = self.height * self.width;
        let mut values = vec![0.0; self.pixels.len()];
        let mut tangents = vec![vec![0.0; self.pixels.len()]; derivatives.len()];
        let rotate = self.channels == 3 && hue != 0.0;
        let (mh, dmh) = hue_matrices(hue);
        for p in 0..plane {
            let at = |c: usize| c * plane + p;
            let mut v = [0.0; 3];
            let mut centred = [0.0; 3];
            for c in 0..self.channels {
                centred[c] = self.pixels[at(c)] - m;
                v[c] = m + kappa * centred[c] + delta;
            }
            if !rotate {
                for c in 0..self.channels {
                    values[at(c)] = v[c];
                }
                for (k, param) in derivatives.iter().enumerate() {
                    for c in 0..self.channels {
                        tangents[k][at(c)] = match param {
                            SemanticParam::Contrast => centred[c],
                            SemanticParam::Bright => 1.0,
                            // d/dh of M_h v at h = 0 is [a]× v (per degree).
                            SemanticParam::Hue if self.channels == 3 => {
                                mat_vec(&dmh, &v)[c] * std::f64::consts::PI / 180.0
                            }
                            _ => 0.0,
                        };
                    }
                }
                continue;
            }
            let rotated = mat_vec(&mh, &v);
            for c in 0..3 {
                values[at(c)] = rotated[c];
            }
            for (k, param) in derivatives.iter().enumerate() {
                let t = match param {
                    SemanticParam::Contrast => mat_vec(&mh, &centred),
                    SemanticParam::Bright => mat_vec(&mh, &[1.0; 3]),
                    SemanticParam::Hue => {
                        mat_vec(&dmh, &v).map(|x| x * std::f64::consts::PI / 180.0)
                    }
                    _ => [0.0; 3],
                };
                for c in 0..3 {
                    tangents[k][at(c)] = t[c];
                }
            }
        }
        State { values, tangents }
    }

    /// Step 4: inverse warp with bilinear sampling and zero fill.
    fn warp(&self, input: &State, u: &FullParams, derivatives: &[SemanticParam]) -> State {
        let (h, w) = (self.height, self.width);
        let (hf, wf) = (h as f64, w as f64);
        let theta = u[SemanticParam::Rot.index()].to_radians();
        let raw_scale = u[SemanticParam::Scale.index()];
        let scale = raw_scale.max(MIN_SCALE);
        let scale_clamped = raw_scale < MIN_SCALE;
        let (tx, ty) = (u[SemanticParam::Tx.index()], u[SemanticParam::Ty.index()]);
        let (sin, cos) = theta.sin_cos();
        let deg = std::f64::consts::PI / 180.0;
        let plane = h * w;
        let mut values = vec![0.0; input.values.len()];
        let mut tangents = vec![vec![0.0; input.values.len()]; derivatives.len()];
        for i in 0..h {
            for j in 0..w {
                let dx = j as f64 + 0.5 - wf / 2.0 - tx * wf;
                let dy = i as f64 + 0.5 - hf / 2.0 - ty * hf;
                let qx = (cos * dx - sin * dy) / scale;
                let qy = (sin * dx + cos * dy) / scale;
                let col = qx + wf / 2.0 - 0.5;
                let row = qy + hf / 2.0 - 0.5;
                // (∂col/∂u_k, ∂row/∂u_k) of each geometric parameter.
                let geometric = |param: &SemanticParam| -> Option<(f64, f64)> {
                    match param {
                        SemanticParam::Rot => Some((-qy * deg, qx * deg)),
                        SemanticParam::Scale if scale_clamped => Some((0.0, 0.0)),
                        SemanticParam::Scale => Some((-qx / scale, -qy / scale)),
                        SemanticParam::Tx => Some((-cos * wf / scale, -sin * wf / scale)),
                        SemanticParam::Ty => Some((sin * hf / scale, -cos * hf / scale)),
                        _ => None,
                    }
                };
                let sample = Bilinear::new(col, row, h, w);
                let out = i * w + j;
                for c in 0..self.channels {
                    let src = &input.values[c * plane..(c + 1) * plane];
                    let (value, d_col, d_row) = sample.eval(src);
                    values[c * plane + out] = value;
                    for (k, param) in derivatives.iter().enumerate() {
                        tangents[k][c * plane + out] = match geometric(param) {
                            Some((dc, dr)) => d_col * dc + d_row * dr,
                            None => {
                                sample
                                    .eval(&input.tangents[k][c * plane..(c + 1) * plane])
                                    .0
                            }
                        };
                    }
                }
            }
        }
        State { values, tangents }
    }

    /// Step 5: separable Gaussian (horizontal, then vertical) with replicated edges and the
    /// fixed radius R, differentiated in σ through the normalised weights.
    fn blur(&self, input: &State, sigma: f64, derivatives: &[SemanticParam]) -> State {
        let (weights, d_weights) = gaussian_weights(sigma, self.blur_radius);
        let horizontal = |v: &[f64], k: &[f64]| self.pass(v, k, true);
        let vertical = |v: &[f64], k: &[f64]| self.pass(v, k, false);
        let across = horizontal(&input.values, &weights);
        let values = vertical(&across, &weights);
        let tangents = derivatives
            .iter()
            .zip(&input.tangents)
            .map(|(param, t)| {
                if *param == SemanticParam::Blur {
                    // d/dσ V(H(x)) = V'(H(x)) + V(H'(x)); x itself does not depend on σ.
                    let outer = vertical(&across, &d_weights);
                    let inner = vertical(&horizontal(&input.values, &d_weights), &weights);
                    outer.iter().zip(&inner).map(|(a, b)| a + b).collect()
                } else {
                    vertical(&horizontal(t, &weights), &weights)
                }
            })
            .collect();
        State { values, tangents }
    }

    /// One 1-D convolution pass over every row (`along_rows`) or column, edges replicated.
    fn pass(&self, v: &[f64], kernel: &[f64], along_rows: bool) -> Vec<f64> {
        let (h, w) = (self.height, self.width);
        let radius = (kernel.len() / 2) as isize;
        let mut out = vec![0.0; v.len()];
        for c in 0..self.channels {
            let base = c * h * w;
            for i in 0..h {
                for j in 0..w {
                    let mut acc = 0.0;
                    for (t, weight) in kernel.iter().enumerate() {
                        let offset = t as isize - radius;
                        let (si, sj) = if along_rows {
                            (i, (j as isize + offset).clamp(0, w as isize - 1) as usize)
                        } else {
                            ((i as isize + offset).clamp(0, h as isize - 1) as usize, j)
                        };
                        acc += weight * v[base + si * w + sj];
                    }
                    out[base + i * w + j] = acc;
                }
            }
        }
        out
    }
}

/// M_h = cos h·I + (1 − cos h)·aaᵀ + sin h·[a]× and its derivative in h (radians).
fn hue_matrices(h: f64) -> ([[f64; 3]; 3], [[f64; 3]; 3]) {
    let a = 1.0 / 3f64.sqrt();
    let aat = a * a;
    // [a]× for a = (1, 1, 1)/√3.
    let cross = [[0.0, -a, a], [a, 0.0, -a], [-a, a, 0.0]];
    let (sin, cos) = h.sin_cos();
    let mut m = [[0.0; 3]; 3];
    let mut dm = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            let eye = if r == c { 1.0 } else { 0.0 };
            m[r][c] = cos * eye + (1.0 - cos) * aat + sin * cross[r][c];
            dm[r][c] = -sin * eye + sin * aat + cos * cross[r][c];
        }
    }
    (m, dm)
}

fn mat_vec(m: &[[f64; 3]; 3], v: &[f64; 3]) -> [f64; 3] {
    std::array::from_fn(|r| m[r][0] * v[0] + m[r][1] * v[1] + m[r][2] * v[2])
}

/// w_k = exp(−k²/(2σ²)) / Σ exp(−k'²/(2σ²)) for |k| ≤ R, and dw_k/dσ.
pub(crate) fn gaussian_weights(sigma: f64, radius: usize) -> (Vec<f64>, Vec<f64>) {
    let r = radius as isize;
    let e: Vec<f64> = (-r..=r)
        .map(|k| (-((k * k) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = e.iter().sum();
    let w: Vec<f64> = e.iter().map(|v| v / sum).collect();
    let k2_over_s3: Vec<f64> = (-r..=r).map(|k| (k * k) as f64 / sigma.powi(3)).collect();
    let mean: f64 = w.iter().zip(&k2_over_s3).map(|(a, b)| a * b).sum();
    let dw = w
        .iter()
        .zip(&k2_over_s3)
        .map(|(wk, k)| wk * (k - mean))
        .collect();
    (w, dw)
}

/// The four neighbours ⌊·⌋, ⌊·⌋+1 of a source position with their weights; neighbours outside
/// the image count as 0. At integer positions the derivative is that of the cell to the right
/// (the one-sided floor convention of §3.1).
struct Bilinear {
    /// Indices into an H×W plane of (row0,col0), (row0,col1), (row1,col0), (row1,col1).
    index: [Option<usize>; 4],
    fx: f64,
    fy: f64,
}

impl Bilinear {
    fn new(col: f64, row: f64, h: usize, w: usize) -> Self {
        let (c0, r0) = (col.floor(), row.floor());
        let inside = |r: f64, c: f64| {
            (r >= 0.0 && c >= 0.0 && r < h as f64 && c < w as f64)
                .then(|| r as usize * w + c as usize)
        };
        Self {
            index: [
                inside(r0, c0),
                inside(r0, c0 + 1.0),
                inside(r0 + 1.0, c0),
                inside(r0 + 1.0, c0 + 1.0),
            ],
            fx: col - c0,
            fy: row - r0,
        }
    }

    /// (value, ∂value/∂col, ∂value/∂row) of a plane at this position.
    fn eval(&self, plane: &[f64]) -> (f64, f64, f64) {
        let at = |k: usize| self.index[k].map_or(0.0, |i| plane[i]);
        let (v00, v01, v10, v11) = (at(0), at(1), at(2), at(3));
        let (fx, fy) = (self.fx, self.fy);
        let value = (1.0 - fx) * (1.0 - fy) * v00
            + fx * (1.0 - fy) * v01
            + (1.0 - fx) * fy * v10
            + fx * fy * v11;
        let d_col = (1.0 - fy) * (v01 - v00) + fy * (v11 - v10);
        let d_row = (1.0 - fx) * (v10 - v00) + fx * (v11 - v01);
        (value, d_col, d_row)
    }
}

/// Step 6: clamp to [0, 1]; the derivative is 1 on the closed interval and 0 outside.
fn clamp(state: &mut State) {
    for (i, v) in state.values.iter_mut().enumerate() {
        if *v < 0.0 || *v > 1.0 {
            *v = v.clamp(0.0, 1.0);
            for t in &mut state.tangents {
                t[i] = 0.0;
            }
        }
    }
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
