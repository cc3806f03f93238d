//! The analysis math: Level Set Traversal and NSPGD (one walker, two rule sets) with their
//! path, distance, hull, path-width and reach evaluations (ALGORITHMS.md §0–§2), and the
//! semantic robustness maps and regions of §3 (`semantic`). No UI, no
//! file I/O; it builds on `models::Classifier` and knows nothing of layers.

pub mod accuracy;
pub mod confidence;
pub mod error;
pub mod frequency;
pub mod hull;
pub mod lst;
pub mod metrics;
pub mod nspgd;
pub mod pgd;
pub mod plans;
pub mod reach;
pub mod rng;
pub mod semantic;
pub mod stats;
pub mod tables;
pub mod walker;
pub mod width;

#[cfg(test)]
pub(crate) mod test_models;

pub use error::{AnalysisError, Result};
pub use hull::{
    HullEvaluation, HullGeometry, LatticePoint, TriangleMetrics, aggregate_triangles,
    down_triangles, evaluate_hull, hull_geometry, interpolation_profile, lattice,
    lattice_positions, table2, up_triangles,
};
pub use lst::LstConfig;
pub use metrics::Distances;
pub use nspgd::NspgdConfig;
pub use plans::{PairPlan, ReachPlan};
pub use stats::MeanStd;
pub use tables::{Table1, table1};
pub use walker::{
    LoggedIterate, Method, PairOutput, PairResult, PairStatus, SampleStep, SkipReason, StepEvent,
    Traversal, WalkConfig, WalkPair, run_walk,
};
pub use width::{WidthConfig, WidthDirections, WidthMeasurement, WidthStatus, measure_width};
