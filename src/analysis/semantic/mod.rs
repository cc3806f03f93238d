//! Semantic robustness (ALGORITHMS.md §3, Hamdi & Ghanem): a differentiable transform T(x, u)
//! over eight semantic parameters, Network Semantic Maps of f(u) = p(T(x, u))[c] on a grid,
//! region growing (Naive, OIR_B, OIR_W) in normalised z-units, and SRVR over image sets.
//!
//! One concern per file: `params` (names, domains, units, validation), `transform` (T and
//! ∂T/∂u), `objective` (f and ∂f/∂u through the classifier), `map` (grid sampling), `regions`
//! (the update rules and the iteration), `srvr` (per-image evaluation and summaries, and the
//! §3.7 cost table).

pub mod map;
pub mod objective;
pub mod params;
pub mod regions;
pub mod srvr;
pub mod transform;

pub use map::{
    MAP_POINTS_1D, MAP_POINTS_2D, MapProgress, MapStats, SemanticMap, compute_map, default_points,
    grid_points, map_grid,
};
pub use objective::{OirWGradient, SemanticObjective};
pub use params::{
    Domain, FullParams, ParamSpace, SemanticError, SemanticParam, identity_params, parse_domain,
    parse_params, parse_point,
};
pub use regions::{
    RegionConfig, RegionFunction, RegionMethod, RegionResult, RegionStep, grow_region, volume_ratio,
};
pub use srvr::{
    ClassSrvr, CostRow, ImageEvaluation, ImageSrvr, SrvrConfig, SrvrSummary, SrvrValues,
    cost_table, evaluate_image, summarize,
};
pub use transform::{SemanticTransform, Transformed};
