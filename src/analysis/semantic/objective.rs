//! f(u) = p(T(x, u))[c] and its gradient, for maps and region growing (ALGORITHMS.md §3).
//!
//! The transform runs on the host (f64, forward mode), the model on the classifier's device.
//! ∂f/∂u comes from one `Classifier::input_gradient` call per batch, chained through T by the
//! transform's tangents: ∂f/∂u_k = ⟨∂f/∂x, ∂T/∂u_k⟩.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::params::{ParamSpace, SemanticError};
use super::regions::RegionFunction;
use super::transform::{SemanticTransform, Transformed};
use crate::analysis::error::{Result, invalid};
use crate::models::{Classifier, Objective};

/// Which g the OIR_W rule uses (§3.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OirWGradient {
    /// g = +∇_z f: the Taylor surrogate of OIR_B.
    #[default]
    Exact,
    /// g = ∇_z[logsumexp(p) − p_c], p = softmax(logits): the reference implementation's (≈ −∇f).
    Reference,
}

/// f over the active parameters of `space` for one image and class.
pub struct SemanticObjective<'a> {
    classifier: &'a Classifier,
    transform: SemanticTransform,
    space: ParamSpace,
    class: u32,
    batch: usize,
    gradient: OirWGradient,
}

impl<'a> SemanticObjective<'a> {
    /// `image` is [C, H, W] (or [1, C, H, W]) in [0, 1] at the model's input size; `batch` is
    /// how many transformed images go through the model at once.
    pub fn new(
        classifier: &'a Classifier,
        image: &Tensor,
        class: u32,
        space: ParamSpace,
        batch: usize,
    ) -> Result<Self> {
        let spec = classifier.spec();
        if batch == 0 {
            return Err(invalid("the semantic batch size must be at least 1"));
        }
        if class as usize >= spec.num_classes() {
            return Err(invalid(format!(
                "class {class} is out of range for a model with {} classes",
                spec.num_classes()
            )));
        }
        // The same check as ParamSpace::new, for spaces built for another model.
        ParamSpace::new(space.params(), &[], spec.channels)?;
        let transform = SemanticTransform::new(image, space.blur_max())?;
        let [h, w] = spec.input_size;
        if transform.shape() != [spec.channels, h, w] {
            return Err(invalid(format!(
                "image of shape {:?}; the model takes [{}, {h}, {w}]",
                transform.shape(),
                spec.channels
            )));
        }
        Ok(Self {
            classifier,
            transform,
            space,
            class,
            batch,
            gradient: OirWGradient::Exact,
        })
    }

    /// Use `gradient` for the g of OIR_W.
    pub fn with_gradient(mut self, gradient: OirWGradient) -> Self {
        self.gradient = gradient;
        self
    }

    pub fn space(&self) -> &ParamSpace {
        &self.space
    }

    pub fn class(&self) -> u32 {
        self.class
    }

    pub fn transform(&self) -> &SemanticTransform {
        &self.transform
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// T(x, u) for points in natural units, with tangents for every active parameter when
    /// `tangents` is set.
    fn transform_points(&self, points_u: &[Vec<f64>], tangents: bool) -> Vec<Transformed> {
        let wanted = if tangents { self.space.params() } else { &[] };
        points_u
            .par_iter()
            .map(|u| self.transform.apply(&self.space.full(u), wanted))
            .collect()
    }

    /// The transformed images as a batch tensor [B, C, H, W] in the model's dtype.
    fn batch_tensor(&self, transformed: &[Transformed]) -> Result<Tensor> {
        let [c, h, w] = self.transform.shape();
        let data: Vec<f64> = transformed
            .iter()
            .flat_map(|t| t.pixels.iter().copied())
            .collect();
        let x = Tensor::from_vec(data, (transformed.len(), c, h, w), &Device::Cpu)?
            .to_dtype(self.classifier.dtype())?
            .to_device(self.classifier.device())?;
        Ok(x)
    }

    /// T(x, u) as f32 images [B, C, H, W] on the CPU, for display (corner renders, hover).
    pub fn images(&self, points_u: &[Vec<f64>]) -> Result<Tensor> {
        let transformed = self.transform_points(points_u, false);
        Ok(self
            .batch_tensor(&transformed)?
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?)
    }

    /// f at points in natural units, evaluated in batches.
    pub fn values_u(&self, points_u: &[Vec<f64>]) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(points_u.len());
        for chunk in points_u.chunks(self.batch) {
            let x = self.batch_tensor(&self.transform_points(chunk, false))?;
            let logits = self.classifier.forward(&x)?;
            out.extend(probabilities_of(&logits, self.class)?);
        }
        Ok(out)
    }

    /// f and ∂f/∂u at points in natural units; `objective` picks which scalar is
    /// differentiated (its gradient is what is returned; f is always p[c]).
    fn values_and_gradients_u(
        &self,
        points_u: &[Vec<f64>],
        gradient: OirWGradient,
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let mut values = Vec::with_capacity(points_u.len());
        let mut gradients = Vec::with_capacity(points_u.len());
        for chunk in points_u.chunks(self.batch) {
            let transformed = self.transform_points(chunk, true);
            let x = self.batch_tensor(&transformed)?;
            let labels = vec![self.class; chunk.len()];
            let objective = match gradient {
                OirWGradient::Exact => Objective::Probability(labels),
                OirWGradient::Reference => Objective::ProbabilityCrossEntropy(labels),
            };
            let (logits, grad_x) = self.classifier.input_gradient(&x, &objective)?;
            values.extend(probabilities_of(&logits, self.class)?);
            let grad_x = grad_x
                .to_device(&Device::Cpu)?
                .to_dtype(DType::F64)?
                .flatten_all()?
                .to_vec1::<f64>()?;
            let per_image = grad_x.len() / chunk.len().max(1);
            for (t, g) in transformed.iter().zip(grad_x.chunks(per_image)) {
                gradients.push(
                    t.tangents
                        .iter()
                        .map(|tangent| tangent.iter().zip(g).map(|(a, b)| a * b).sum())
                        .collect(),
                );
            }
        }
        Ok((values, gradients))
    }

    /// f and ∂f/∂u (natural units) with g = +∇f.
    pub fn gradient_u(&self, points_u: &[Vec<f64>]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        self.values_and_gradients_u(points_u, OirWGradient::Exact)
    }
}

impl RegionFunction for SemanticObjective<'_> {
    fn values(&mut self, z: &[Vec<f64>]) -> Result<Vec<f64>> {
        let u: Vec<Vec<f64>> = z.iter().map(|p| self.space.to_u(p)).collect();
        self.values_u(&u)
    }

    fn values_and_gradients(&mut self, z: &[Vec<f64>]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let u: Vec<Vec<f64>> = z.iter().map(|p| self.space.to_u(p)).collect();
        let (values, grads_u) = self.values_and_gradients_u(&u, self.gradient)?;
        let scale = self.space.z_scale();
        let grads_z = grads_u
            .into_iter()
            .map(|g| g.iter().zip(&scale).map(|(a, s)| a * s).collect())
            .collect();
        Ok((values, grads_z))
    }
}

/// softmax(logits)[class] per row, in f64, stable.
fn probabilities_of(logits: &Tensor, class: u32) -> Result<Vec<f64>> {
    let rows = logits
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .to_vec2::<f64>()?;
    Ok(rows
        .iter()
        .map(|row| {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
            (row[class as usize] - max).exp() / sum
        })
        .collect())
}

impl From<SemanticError> for crate::analysis::AnalysisError {
    fn from(e: SemanticError) -> Self {
        Self::Semantic(e)
    }
}
