//! blindspot: find where vision models are blind.
//!
//! Layout (arrows point one way): `cli` and `app` use `analysis`, which uses `models`.
//! `images` is a leaf that depends on nothing of ours.

pub mod analysis;
pub mod demo;
pub mod eval;
pub mod images;
pub mod models;
pub mod record;
pub mod run;
