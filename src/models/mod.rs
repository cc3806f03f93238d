//! Architectures, checkpoint loading and model specs: the only place that knows layers.

pub mod checkpoint;
pub mod classes;
pub mod classifier;
pub mod error;
pub mod spec;

pub use classifier::{Classifier, Network, Objective};
pub use error::{ModelError, Result};
pub use spec::{ModelSpec, Normalization, Provenance};
