//! Architectures, checkpoint loading and model specs: the only place that knows layers.

pub mod checkpoint;
pub mod cifar_resnet;
pub mod classes;
pub mod classifier;
pub mod efficientnet_lite;
pub mod engine;
pub mod error;
pub mod layers;
pub mod load;
pub mod lpips;
pub mod plain_cnn;
pub mod spec;
pub mod threads;
pub mod torchvision_resnet;
pub mod vit;
pub mod weights;
pub mod zoo;

pub use classifier::{Classifier, Network, Objective};
pub use error::{ModelError, Result};
pub use load::{
    Architecture, LoadOptions, Sidecar, classifier_from_checkpoint, detect_architecture,
    load_classifier, rename_tensors,
};
pub use lpips::{Lpips, load_lpips, locate_lpips};
pub use spec::{ModelSpec, Normalization, Provenance};
pub use threads::{compute_threads, set_compute_threads};
