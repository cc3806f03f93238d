//! SRVR, the Semantic Robustness Volume Ratio (ALGORITHMS.md §3.6): per image, the three
//! methods grow a region from each initial point; SRVR is the mean of Vol(D)/Vol(Ω) over
//! images × initial points, per method, and "combined" is the mean of the three. Optionally a
//! map per image gives the mean f and the fractions f ≥ 0.1 and f ≥ 0.5 (§3.8). Also the cost
//! table of §3.7 with its numbers filled in.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use super::map::{MapStats, SemanticMap, compute_map};
use super::objective::SemanticObjective;
use super::regions::{RegionConfig, RegionMethod, RegionResult, RegionStep, grow_region};
use crate::analysis::error::Result;

/// How each image is evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SrvrConfig {
    /// The shared hyperparameters of the three methods.
    pub region: RegionConfig,
    /// Initial points in z-units; empty means the identity alone (§3.5's default).
    pub starts: Vec<Vec<f64>>,
    /// Points per axis of a map per image, when the map columns are wanted.
    pub map_points: Option<usize>,
}

/// SRVR of the three methods and their mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SrvrValues {
    pub naive: f64,
    pub oir_b: f64,
    pub oir_w: f64,
    pub combined: f64,
}

impl SrvrValues {
    fn from_methods(naive: f64, oir_b: f64, oir_w: f64) -> Self {
        Self {
            naive,
            oir_b,
            oir_w,
            combined: (naive + oir_b + oir_w) / 3.0,
        }
    }

    pub fn get(&self, method: RegionMethod) -> f64 {
        match method {
            RegionMethod::Naive => self.naive,
            RegionMethod::OirB => self.oir_b,
            RegionMethod::OirW => self.oir_w,
        }
    }
}

/// One image's evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSrvr {
    /// Where the image came from (a file, or `set.safetensors#i`).
    pub source: String,
    pub label: u32,
    /// f at the identity parameters.
    pub identity_confidence: f64,
    /// Vol(D)/Vol(Ω) of each start, per method (Naive, OIR_B, OIR_W).
    pub naive: Vec<f64>,
    pub oir_b: Vec<f64>,
    pub oir_w: Vec<f64>,
    /// Final boxes [a..., b...] in z-units, per method and start, in the order above.
    pub boxes: Vec<Vec<f64>>,
    pub map: Option<MapStats>,
}

impl ImageSrvr {
    pub fn volumes(&self, method: RegionMethod) -> &[f64] {
        match method {
            RegionMethod::Naive => &self.naive,
            RegionMethod::OirB => &self.oir_b,
            RegionMethod::OirW => &self.oir_w,
        }
    }
}

/// The regions and map of one image, for callers that record them.
pub struct ImageEvaluation {
    pub summary: ImageSrvr,
    pub regions: Vec<RegionResult>,
    pub map: Option<SemanticMap>,
}

/// Grows the three regions from every start (and the map, if asked) for one image.
/// `on_step` sees every update of every region and may stop the evaluation (the image is then
/// incomplete, and the caller should not count it).
pub fn evaluate_image(
    objective: &mut SemanticObjective<'_>,
    source: &str,
    label: u32,
    config: &SrvrConfig,
    mut on_step: impl FnMut(RegionMethod, &RegionStep<'_>) -> ControlFlow<()>,
) -> Result<(ImageEvaluation, bool)> {
    let starts = if config.starts.is_empty() {
        vec![objective.space().identity_z()]
    } else {
        config.starts.clone()
    };
    let identity = objective.space().identity_z();
    let identity_confidence = objective.values_u(&[objective.space().to_u(&identity)])?[0];
    let mut regions = Vec::new();
    let mut stopped = false;
    'methods: for method in RegionMethod::ALL {
        for start in &starts {
            let region = grow_region(objective, method, &config.region, start, |s| {
                on_step(method, s)
            })?;
            let broke = region.stopped;
            regions.push(region);
            if broke {
                stopped = true;
                break 'methods;
            }
        }
    }
    let map = match config.map_points {
        Some(points) if !stopped => Some(compute_map(objective, points, |_| {
            ControlFlow::Continue(())
        })?),
        _ => None,
    };
    let of = |m: RegionMethod| -> Vec<f64> {
        regions
            .iter()
            .filter(|r| r.method == m)
            .map(|r| r.volume_ratio)
            .collect()
    };
    let boxes = regions
        .iter()
        .map(|r| {
            let (a, b) = r.final_box();
            a.iter().chain(b).copied().collect()
        })
        .collect();
    let summary = ImageSrvr {
        source: source.to_string(),
        label,
        identity_confidence,
        naive: of(RegionMethod::Naive),
        oir_b: of(RegionMethod::OirB),
        oir_w: of(RegionMethod::OirW),
        boxes,
        map: map.as_ref().and_then(SemanticMap::stats),
    };
    Ok((
        ImageEvaluation {
            summary,
            regions,
            map,
        },
        !stopped,
    ))
}

/// SRVR over one class (or all images).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassSrvr {
    pub class: u32,
    pub name: String,
    pub images: usize,
    pub srvr: SrvrValues,
    pub map: Option<MapStats>,
}

/// SRVR of a model over a set of images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SrvrSummary {
    pub srvr: SrvrValues,
    pub images: usize,
    pub per_class: Vec<ClassSrvr>,
    /// Map statistics averaged over images, when maps were computed.
    pub map: Option<MapStats>,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if count == 0 { 0.0 } else { sum / count as f64 }
}

fn srvr_of(images: &[&ImageSrvr]) -> SrvrValues {
    let of = |m: RegionMethod| mean(images.iter().flat_map(|i| i.volumes(m).iter().copied()));
    SrvrValues::from_methods(
        of(RegionMethod::Naive),
        of(RegionMethod::OirB),
        of(RegionMethod::OirW),
    )
}

fn map_of(images: &[&ImageSrvr]) -> Option<MapStats> {
    let stats: Vec<MapStats> = images.iter().filter_map(|i| i.map).collect();
    (!stats.is_empty()).then(|| MapStats {
        mean: mean(stats.iter().map(|s| s.mean)),
        fraction_at_least_0_1: mean(stats.iter().map(|s| s.fraction_at_least_0_1)),
        fraction_at_least_0_5: mean(stats.iter().map(|s| s.fraction_at_least_0_5)),
    })
}

/// SRVR over all images and per class (classes in label order); `None` for no images.
pub fn summarize(images: &[ImageSrvr], class_name: impl Fn(u32) -> String) -> Option<SrvrSummary> {
    if images.is_empty() {
        return None;
    }
    let all: Vec<&ImageSrvr> = images.iter().collect();
    let mut classes: Vec<u32> = images.iter().map(|i| i.label).collect();
    classes.sort_unstable();
    classes.dedup();
    let per_class = classes
        .into_iter()
        .map(|class| {
            let members: Vec<&ImageSrvr> =
                all.iter().copied().filter(|i| i.label == class).collect();
            ClassSrvr {
                class,
                name: class_name(class),
                images: members.len(),
                srvr: srvr_of(&members),
                map: map_of(&members),
            }
        })
        .collect();
    Some(SrvrSummary {
        srvr: srvr_of(&all),
        images: images.len(),
        per_class,
        map: map_of(&all),
    })
}

/// One row of the §3.7 cost table, numbers filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostRow {
    pub paradigm: String,
    pub direction: String,
    pub forward_per_step: String,
    pub gradient_per_step: String,
    /// Forward passes in all.
    pub total_forward: u64,
    /// Backward passes to u in all.
    pub total_gradient: u64,
    pub black_box: bool,
    pub finds: String,
}

/// The §3.7 table for n parameters, T iterations and N grid points per axis (`log_loss` adds
/// OIR_W's outer corners).
pub fn cost_table(n: usize, iterations: usize, points: usize, log_loss: bool) -> Vec<CostRow> {
    let corners = 1u64 << n.min(62);
    let t = iterations as u64;
    let row = |paradigm: &str,
               direction: &str,
               fwd: String,
               grad: String,
               total_forward: u64,
               total_gradient: u64,
               black_box: bool,
               finds: &str| CostRow {
        paradigm: paradigm.into(),
        direction: direction.into(),
        forward_per_step: fwd,
        gradient_per_step: grad,
        total_forward,
        total_gradient,
        black_box,
        finds: finds.into(),
    };
    let oir_w_forward = if log_loss { 2 * corners } else { corners };
    vec![
        row(
            "Grid sampling (NSM)",
            "top-down",
            "–".into(),
            "0".into(),
            (points as u64).saturating_pow(n as u32),
            0,
            true,
            "the whole map; does not scale with n",
        ),
        row(
            "Naive",
            "bottom-up",
            corners.to_string(),
            "0".into(),
            corners * t,
            0,
            true,
            "the strongly robust core around z0; often trivial or small",
        ),
        row(
            "OIR_B",
            "bottom-up",
            format!("{} (inner + outer)", 2 * corners),
            "0".into(),
            2 * corners * t,
            0,
            true,
            "regions bounded where f drops relative to the frame",
        ),
        row(
            "OIR_W",
            "bottom-up",
            if log_loss {
                format!("{oir_w_forward} (inner + outer for the loss)")
            } else {
                corners.to_string()
            },
            corners.to_string(),
            oir_w_forward * t,
            corners * t,
            false,
            "as OIR_B, first order",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::semantic::params::{ParamSpace, SemanticParam};
    use crate::analysis::test_models::{constant_classifier, image_tensor, random_image};

    fn image(label: u32, naive: f64, oir_b: f64, oir_w: f64) -> ImageSrvr {
        ImageSrvr {
            source: String::new(),
            label,
            identity_confidence: 1.0,
            naive: vec![naive],
            oir_b: vec![oir_b],
            oir_w: vec![oir_w],
            boxes: Vec::new(),
            map: None,
        }
    }

    #[test]
    fn srvr_averages_images_and_methods_per_class() {
        let images = [
            image(0, 0.1, 0.2, 0.3),
            image(0, 0.3, 0.4, 0.5),
            image(2, 1.0, 1.0, 1.0),
        ];
        let s = summarize(&images, |c| format!("c{c}")).unwrap();
        assert_eq!(s.images, 3);
        assert!((s.srvr.naive - 1.4 / 3.0).abs() < 1e-12);
        assert!(
            (s.srvr.combined - (s.srvr.naive + s.srvr.oir_b + s.srvr.oir_w) / 3.0).abs() < 1e-12
        );
        assert_eq!(s.per_class.len(), 2);
        assert!((s.per_class[0].srvr.oir_b - 0.3).abs() < 1e-12);
        assert_eq!(s.per_class[1].srvr.combined, 1.0);
        assert!(summarize(&[], |_| String::new()).is_none());
    }

    #[test]
    fn a_constant_model_fills_omega_so_srvr_is_one() {
        // p ≡ const: every method grows to Ω in 2-D (f ≈ 0.67 > what each rule needs to grow).
        let shape = [3, 8, 8];
        let (model, _) = constant_classifier(shape);
        let x = image_tensor(random_image(1, shape), shape);
        let space = ParamSpace::new(&[SemanticParam::Rot, SemanticParam::Scale], &[], 3).unwrap();
        let mut objective = SemanticObjective::new(&model, &x, 0, space, 8).unwrap();
        let config = SrvrConfig {
            region: RegionConfig {
                iterations: 300,
                ..RegionConfig::default()
            },
            starts: Vec::new(),
            map_points: Some(5),
        };
        let (eval, complete) = evaluate_image(&mut objective, "x", 0, &config, |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(complete);
        let s = summarize(&[eval.summary], |_| String::new()).unwrap();
        for m in RegionMethod::ALL {
            let v = s.srvr.get(m);
            assert!((0.0..=1.0).contains(&v));
            assert_eq!(v, 1.0, "{m:?}");
        }
        let map = s.map.unwrap();
        assert_eq!(map.fraction_at_least_0_5, 1.0);
    }

    #[test]
    fn the_cost_table_fills_in_n_t_and_n() {
        let rows = cost_table(2, 600, 61, false);
        assert_eq!(rows[0].total_forward, 3721);
        assert_eq!(rows[1].total_forward, 2400);
        assert_eq!(rows[2].total_forward, 4800);
        assert_eq!(
            (rows[3].total_forward, rows[3].total_gradient),
            (2400, 2400)
        );
        assert!(!rows[3].black_box);
        assert_eq!(cost_table(2, 600, 61, true)[3].total_forward, 4800);
    }
}
