//! blindspot: find where vision models are blind.
//!
//! Layout (arrows point one way): `cli` and `app` use `run`, `eval`, `semantic`, `report`, `history` and `record`,
//! which use `analysis`, which uses `models`. `images`, `figures` and `paths` are leaves that depend on
//! nothing of ours.

pub mod analysis;
#[cfg(feature = "app")]
pub mod app;
pub mod atomic;
pub mod demo;
pub mod eval;
pub mod figures;
pub mod frequency_record;
pub mod fuzzing;
pub mod history;
pub mod images;
pub mod interrupt;
pub mod models;
pub mod paths;
pub mod reach;
pub mod record;
pub mod report;
pub mod run;
pub mod run_folder;
pub mod semantic;
