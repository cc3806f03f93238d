//! The embedded default: our own synthetic image set and the demo models trained on it.

pub mod generator;
pub mod train;
