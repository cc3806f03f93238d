//! Which pairs a reach evaluation walks (§2.3): the fixed targets, the sources, and the pair
//! ids, fixed before the first step and written to `plan.json`.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{ReachOptions, TARGET_MIN_CONFIDENCE, invalid};
use crate::analysis::confidence::{argmax, logits_rows, softmax_at};
use crate::analysis::plans::REACH_TARGET_RANKS;
use crate::analysis::reach::HitCriterion;
use crate::images::LabeledSet;
use crate::models::Classifier;
use crate::run::Result;

/// Which model an evaluation ran, so a resume can check it is the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIdentity {
    pub architecture: String,
    pub weights_path: String,
    pub weights_sha256: String,
}

impl ModelIdentity {
    pub fn of(classifier: &Classifier) -> Self {
        let spec = classifier.spec();
        Self {
            architecture: spec.architecture.clone(),
            weights_path: spec.weights_path.clone(),
            weights_sha256: spec.weights_sha256.clone(),
        }
    }

    /// A short name for tables: the weights file's stem, else the architecture.
    pub fn label(&self) -> String {
        crate::models::spec::short_name(&self.weights_path, &self.architecture)
    }
}

/// How a target was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetRule {
    /// The reference's k_c-th test image of class c (the full 10-class test set is there).
    FixedRank { rank: usize },
    /// The first image of the class, in data-set order, that every model of the comparison
    /// classifies correctly with confidence > 0.6 (§1.3).
    FirstConfident,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReachTarget {
    pub class: u32,
    pub class_name: String,
    pub dataset_index: usize,
    /// The file (or `file.safetensors#index`) it comes from.
    pub image: String,
    pub rule: TargetRule,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReachSource {
    pub dataset_index: usize,
    pub label: u32,
    /// Measures path widths on its pairs.
    pub widths: bool,
}

/// The fixed plan of an evaluation, as written to `plan.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReachPlanRecord {
    pub model: ModelIdentity,
    pub dataset: String,
    pub dataset_len: usize,
    pub options: ReachOptions,
    pub criterion: HitCriterion,
    /// The classes with a target (those that had none are left out, with a warning).
    pub classes: Vec<u32>,
    pub class_names: Vec<String>,
    pub targets: Vec<ReachTarget>,
    pub sources: Vec<ReachSource>,
    /// Requested classes without a usable target image.
    pub classes_without_target: Vec<u32>,
}

/// A planned pair: source `source` toward target `target`, pair_id = target·N + source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedPair {
    pub source: usize,
    pub target: usize,
    pub pair_id: u64,
}

impl ReachPlanRecord {
    pub fn pairs_total(&self) -> usize {
        self.sources.len() * self.targets.len()
    }

    /// Every source toward every target, target-major (§2.3's pair_id order).
    pub fn pairs(&self) -> Vec<PlannedPair> {
        crate::analysis::plans::reach_pairs(self.sources.len(), self.targets.len())
            .into_iter()
            .map(|p| PlannedPair {
                source: p.source,
                target: p.target_class,
                pair_id: p.pair_id,
            })
            .collect()
    }
}

/// The class names to show: the data set's own list where it has one (§2.3), else the
/// model's.
fn class_names(classifier: &Classifier, set: &LabeledSet, classes: &[u32]) -> Vec<String> {
    classes
        .iter()
        .map(|&c| {
            set.class_names()
                .and_then(|names| names.get(c as usize).cloned())
                .unwrap_or_else(|| classifier.spec().class_name(c as usize).to_string())
        })
        .collect()
}

/// Per class, its images in data-set order.
fn images_by_class(set: &LabeledSet, classes: &[u32]) -> Vec<Vec<usize>> {
    let mut by_class = vec![Vec::new(); classes.len()];
    for i in 0..set.len() {
        if let Some(k) = classes.iter().position(|&c| c == set.label(i)) {
            by_class[k].push(i);
        }
    }
    by_class
}

/// The first image of each class, in data-set order, that every model classifies correctly
/// with confidence above `min_confidence`; `None` for a class without one.
fn first_confident(
    models: &[&Classifier],
    set: &LabeledSet,
    by_class: &[Vec<usize>],
    min_confidence: f32,
) -> Result<Vec<Option<usize>>> {
    let spec = models[0].spec();
    let mut found = vec![None; by_class.len()];
    let mut cursor = vec![0usize; by_class.len()];
    // A few candidates of every class still open per forward pass.
    const PER_CLASS: usize = 4;
    loop {
        let mut batch: Vec<(usize, usize)> = Vec::new();
        for (k, images) in by_class.iter().enumerate() {
            if found[k].is_none() {
                let end = (cursor[k] + PER_CLASS).min(images.len());
                batch.extend(images[cursor[k]..end].iter().map(|&i| (k, i)));
                cursor[k] = end;
            }
        }
        if batch.is_empty() {
            return Ok(found);
        }
        let xs = batch
            .iter()
            .map(|&(_, i)| set.get(i, &spec.preprocess, spec.channels, &Device::Cpu))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let xs = Tensor::stack(&xs, 0)?;
        let mut rows = Vec::with_capacity(models.len());
        for m in models {
            rows.push(logits_rows(&m.forward(&xs)?)?);
        }
        for (b, &(k, i)) in batch.iter().enumerate() {
            let y = set.label(i) as usize;
            let ok = rows
                .iter()
                .all(|r| argmax(&r[b]) == Some(y) && softmax_at(&r[b], y) > min_confidence);
            // Candidates come in data-set order, so the first that passes is the first.
            if ok && found[k].is_none() {
                found[k] = Some(i);
            }
        }
    }
}

/// Fixes the targets and sources of an evaluation.
pub fn plan_reach(
    classifier: &Classifier,
    also: &[&Classifier],
    set: &LabeledSet,
    dataset_name: &str,
    opts: &ReachOptions,
    criterion: HitCriterion,
) -> Result<ReachPlanRecord> {
    let spec = classifier.spec();
    let k = spec.num_classes();
    if opts.classes.len() < 2 {
        return Err(invalid(format!(
            "the reach evaluation needs at least 2 classes; {} given",
            opts.classes.len()
        )));
    }
    if let Some(&c) = opts.classes.iter().find(|&&c| c as usize >= k) {
        return Err(invalid(format!(
            "model {} has {k} classes, but the reach evaluation walks toward a target of class {c} \
             (one fixed target per class of {}, §2.3); choose the classes with --classes",
            spec.architecture,
            opts.classes.len()
        )));
    }
    let mut seen = opts.classes.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != opts.classes.len() {
        return Err(invalid(format!(
            "the classes {:?} name a class twice",
            opts.classes
        )));
    }
    for m in also {
        if m.spec().input_size != spec.input_size || m.spec().channels != spec.channels {
            return Err(invalid(format!(
                "the models of a comparison need one input: {} takes {:?}x{}, {} takes {:?}x{}",
                spec.architecture,
                spec.input_size,
                spec.channels,
                m.spec().architecture,
                m.spec().input_size,
                m.spec().channels
            )));
        }
    }
    if opts.batch == 0 {
        return Err(invalid("the batch size must be at least 1".into()));
    }
    opts.config.validate()?;

    let by_class = images_by_class(set, &opts.classes);
    let present = by_class.iter().filter(|v| !v.is_empty()).count();
    if present < 2 {
        return Err(invalid(format!(
            "{dataset_name} has images of {present} of the classes {:?}; the reach evaluation needs \
             at least 2 (is it a labelled set: an ImageFolder tree with one folder per class, \
             a folder with labels.tsv, or a .safetensors file with images and labels?)",
            opts.classes
        )));
    }
    // The reference's targets exist only in the full, ordered 10-class test set.
    let full_test_set = opts.classes == (0..10).collect::<Vec<u32>>()
        && set.len() == 10_000
        && by_class.iter().all(|v| v.len() == 1000);
    let chosen: Vec<Option<(usize, TargetRule)>> = if full_test_set {
        by_class
            .iter()
            .zip(REACH_TARGET_RANKS)
            .map(|(images, rank)| Some((images[rank], TargetRule::FixedRank { rank })))
            .collect()
    } else {
        let mut models = vec![classifier];
        models.extend_from_slice(also);
        first_confident(&models, set, &by_class, TARGET_MIN_CONFIDENCE)?
            .into_iter()
            .map(|i| i.map(|i| (i, TargetRule::FirstConfident)))
            .collect()
    };
    let mut classes = Vec::new();
    let mut targets = Vec::new();
    let mut without = Vec::new();
    for (&c, pick) in opts.classes.iter().zip(&chosen) {
        match pick {
            Some((i, rule)) => {
                classes.push(c);
                targets.push(ReachTarget {
                    class: c,
                    class_name: String::new(),
                    dataset_index: *i,
                    image: set.describe(*i),
                    rule: *rule,
                });
            }
            None => without.push(c),
        }
    }
    if targets.len() < 2 {
        return Err(invalid(format!(
            "only {} of the classes {:?} have an image that every model classifies correctly with \
             confidence > {TARGET_MIN_CONFIDENCE}; the reach evaluation needs 2 targets",
            targets.len(),
            opts.classes
        )));
    }
    let names = class_names(classifier, set, &classes);
    for (t, name) in targets.iter_mut().zip(&names) {
        t.class_name = name.clone();
    }
    let mut sources: Vec<ReachSource> = Vec::new();
    for (&c, images) in opts.classes.iter().zip(&by_class) {
        if !classes.contains(&c) {
            continue;
        }
        let take = opts.per_class.unwrap_or(usize::MAX);
        sources.extend(
            images
                .iter()
                .take(take)
                .enumerate()
                .map(|(n, &i)| ReachSource {
                    dataset_index: i,
                    label: c,
                    widths: n < opts.width_sources,
                }),
        );
    }
    sources.sort_by_key(|s| s.dataset_index);
    Ok(ReachPlanRecord {
        model: ModelIdentity::of(classifier),
        dataset: dataset_name.to_string(),
        dataset_len: set.len(),
        options: opts.clone(),
        criterion,
        classes,
        class_names: names,
        targets,
        sources,
        classes_without_target: without,
    })
}
