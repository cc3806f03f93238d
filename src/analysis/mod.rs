//! Analyses over a classifier: no UI, no file formats.

pub mod accuracy;
pub mod pgd;
