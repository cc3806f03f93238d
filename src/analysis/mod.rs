//! The analysis math: Level Set Traversal with its path, distance, hull and path-width
//! evaluations (ALGORITHMS.md §0–§1). No UI, no file I/O; it builds on `models::Classifier`
//! and knows nothing of layers.

pub mod accuracy;
pub mod confidence;
pub mod error;
pub mod hull;
pub mod lst;
pub mod metrics;
pub mod pgd;
pub mod rng;
pub mod stats;
pub mod width;

#[cfg(test)]
pub(crate) mod test_models;

pub use error::{AnalysisError, Result};
pub use hull::{
    HullEvaluation, HullGeometry, LatticePoint, TriangleMetrics, aggregate_triangles,
    down_triangles, evaluate_hull, hull_geometry, interpolation_profile, lattice,
    lattice_positions, table2, up_triangles,
};
pub use lst::{
    LoggedIterate, LstConfig, LstPair, PairOutput, PairResult, PairStatus, SampleStep, SkipReason,
    StepEvent, Traversal, run_lst,
};
pub use metrics::Distances;
pub use stats::MeanStd;
pub use width::{WidthConfig, WidthDirections, WidthMeasurement, WidthStatus, measure_width};
