//! Network Semantic Maps (ALGORITHMS.md §3.2): f on an evenly spaced grid over one parameter
//! (181 points) or two (61 × 61, the first parameter along rows), evaluated in batches, with a
//! callback after every batch so a view can stream the rows and cancel.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use super::objective::SemanticObjective;
use super::params::{Domain, ParamSpace, SemanticError, SemanticParam};
use crate::analysis::error::Result;

/// N₁: points of a 1-D map.
pub const MAP_POINTS_1D: usize = 181;
/// N₂: points per axis of a 2-D map.
pub const MAP_POINTS_2D: usize = 61;

/// The spec's grid size for a map over `n` parameters.
pub fn default_points(n: usize) -> usize {
    if n == 1 { MAP_POINTS_1D } else { MAP_POINTS_2D }
}

/// A map over one or two parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SemanticMap {
    pub params: Vec<SemanticParam>,
    pub domains: Vec<Domain>,
    /// The grid of each axis in natural units (`points` values each).
    pub grid: Vec<Vec<f64>>,
    /// f row-major (first parameter along rows); shorter than `points`ⁿ when stopped early.
    pub values: Vec<f64>,
    /// The class whose confidence is mapped.
    pub class: u32,
}

/// Mean f over a map and the fractions of it with f ≥ 0.1 and f ≥ 0.5 (the §3.8 columns).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapStats {
    pub mean: f64,
    pub fraction_at_least_0_1: f64,
    pub fraction_at_least_0_5: f64,
}

impl MapStats {
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let share = |t: f64| values.iter().filter(|v| **v >= t).count() as f64 / n;
        Some(Self {
            mean: values.iter().sum::<f64>() / n,
            fraction_at_least_0_1: share(0.1),
            fraction_at_least_0_5: share(0.5),
        })
    }
}

impl SemanticMap {
    /// Points per axis.
    pub fn points(&self) -> usize {
        self.grid.first().map_or(0, Vec::len)
    }

    pub fn total(&self) -> usize {
        self.grid.iter().map(Vec::len).product()
    }

    pub fn is_complete(&self) -> bool {
        self.values.len() == self.total()
    }

    pub fn stats(&self) -> Option<MapStats> {
        MapStats::of(&self.values)
    }
}

/// What the callback sees after each batch.
pub struct MapProgress<'a> {
    pub done: usize,
    pub total: usize,
    /// All values so far, row-major.
    pub values: &'a [f64],
}

/// z_k = 100k/(N − 1) in natural units, per axis of `space`.
pub fn map_grid(space: &ParamSpace, points: usize) -> Result<Vec<Vec<f64>>, SemanticError> {
    if !(1..=2).contains(&space.dim()) {
        return Err(SemanticError::Unsupported(format!(
            "a semantic map is over one or two parameters, not {} ({} forward passes would be needed)",
            space.dim(),
            (points as f64).powi(space.dim() as i32)
        )));
    }
    if points < 2 {
        return Err(SemanticError::BadSetting {
            name: "points",
            value: points as f64,
            detail: "a map needs at least 2 points per axis".into(),
        });
    }
    Ok(space
        .domains()
        .iter()
        .map(|d| {
            (0..points)
                .map(|k| d.lo + d.width() * (k as f64 / (points - 1) as f64))
                .collect()
        })
        .collect())
}

/// Every grid point in natural units, row-major (the last parameter fastest).
pub fn grid_points(grid: &[Vec<f64>]) -> Vec<Vec<f64>> {
    match grid {
        [axis] => axis.iter().map(|&u| vec![u]).collect(),
        [rows, cols] => rows
            .iter()
            .flat_map(|&r| cols.iter().map(move |&c| vec![r, c]))
            .collect(),
        _ => Vec::new(),
    }
}

/// The map of f over the objective's parameters, `points` per axis, one batch of the
/// objective's batch size at a time. `on_batch` runs after each batch; `Break` stops the map
/// there, and the values so far are returned.
pub fn compute_map(
    objective: &SemanticObjective<'_>,
    points: usize,
    mut on_batch: impl FnMut(&MapProgress<'_>) -> ControlFlow<()>,
) -> Result<SemanticMap> {
    let space = objective.space();
    let grid = map_grid(space, points)?;
    let all = grid_points(&grid);
    let mut values = Vec::with_capacity(all.len());
    for chunk in all.chunks(objective.batch()) {
        values.extend(objective.values_u(chunk)?);
        let progress = MapProgress {
            done: values.len(),
            total: all.len(),
            values: &values,
        };
        if on_batch(&progress).is_break() {
            break;
        }
    }
    Ok(SemanticMap {
        params: space.params().to_vec(),
        domains: space.domains().to_vec(),
        grid,
        values,
        class: objective.class(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_models::{image_tensor, linear_classifier, random_image};

    #[test]
    fn grids_are_inclusive_and_maps_row_major_in_batches() {
        let shape = [3, 8, 8];
        let model = linear_classifier(shape, 4, 3);
        let image = image_tensor(random_image(5, shape), shape);
        let space = ParamSpace::new(&[SemanticParam::Rot, SemanticParam::Bright], &[], 3).unwrap();
        let grid = map_grid(&space, 5).unwrap();
        assert_eq!(grid[0], vec![-180.0, -90.0, 0.0, 90.0, 180.0]);
        assert_eq!(grid[1], vec![-0.5, -0.25, 0.0, 0.25, 0.5]);
        let objective = SemanticObjective::new(&model, &image, 1, space.clone(), 7).unwrap();
        let mut batches = Vec::new();
        let map = compute_map(&objective, 5, |p| {
            batches.push(p.done);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(batches, vec![7, 14, 21, 25]);
        assert!(map.is_complete());
        // values[i·5 + j] is f at (rot = grid0[i], bright = grid1[j]).
        let direct = objective.values_u(&[vec![90.0, -0.25]]).unwrap()[0];
        assert_eq!(map.values[3 * 5 + 1], direct);
        // The batch size does not change a value (per-sample semantics, §0.1).
        let single = SemanticObjective::new(&model, &image, 1, space, 1).unwrap();
        let again = compute_map(&single, 5, |_| ControlFlow::Continue(())).unwrap();
        for (a, b) in map.values.iter().zip(&again.values) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1e-6));
        }
        let stats = map.stats().unwrap();
        assert!((0.0..=1.0).contains(&stats.mean));
    }

    #[test]
    fn a_map_stops_within_one_batch_and_refuses_three_parameters() {
        let shape = [3, 6, 6];
        let model = linear_classifier(shape, 3, 1);
        let image = image_tensor(random_image(2, shape), shape);
        let space = ParamSpace::new(&[SemanticParam::Scale], &[], 3).unwrap();
        let objective = SemanticObjective::new(&model, &image, 0, space, 10).unwrap();
        let map = compute_map(&objective, 181, |p| {
            if p.done >= 20 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(map.values.len(), 20);
        assert!(!map.is_complete());
        let three = ParamSpace::new(
            &[SemanticParam::Rot, SemanticParam::Tx, SemanticParam::Ty],
            &[],
            3,
        )
        .unwrap();
        assert!(map_grid(&three, 61).is_err());
    }
}
