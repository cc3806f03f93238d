//! blindspot: find where vision models are blind.
//!
//! Layout (arrows point one way): `cli` and `app` use `analysis`, which uses `models`.
//! `images` is a leaf that depends on nothing of ours.

pub mod analysis;
pub mod figures;
pub mod images;
pub mod models;
