//! Decision-boundary margins in DCT frequency subspaces ("Hold me tight", ALGORITHMS.md §4):
//! the DCT and its subspaces, the frequency-domain input transforms, subspace DeepFool and the
//! margin distribution over samples.

pub mod dct;
pub mod deepfool;
pub mod error;
pub mod margins;
pub mod subspace;
pub mod transforms;

pub use dct::Dct2;
pub use deepfool::{DeepFoolConfig, DeepFoolOutcome, DeepFoolStatus, subspace_deepfool};
pub use error::FrequencyError;
pub use margins::{
    MarginDistribution, MarginOptions, MarginProgress, SubspaceMargins, SubspaceSummary,
    SubspaceTask, measure_margins, measure_margins_resuming, plot_jitter, select_samples,
    summarize, table_csv, table_markdown,
};
pub use subspace::{Subspace, SubspacePlan};
pub use transforms::{FrequencyTransform, TransformedModel};
