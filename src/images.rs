//! Loading images and bringing them to a model's input (placeholder until the module lands).

use serde::{Deserialize, Serialize};

/// How an image file is brought to the model's input size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preprocess {
    /// Resize to exactly `height` x `width` (small models: CIFAR, demo).
    Resize { height: u32, width: u32 },
    /// torchvision `Resize(resize)` on the shorter side, then `CenterCrop(height, width)`.
    ResizeShorterCenterCrop { resize: u32, height: u32, width: u32 },
}
