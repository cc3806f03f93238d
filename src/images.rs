//! Loading images and bringing them to a model's input (placeholder until the module lands).

use serde::{Deserialize, Serialize};

/// How an image file is brought to the model's input size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preprocess {
    /// Resize to exactly `height` x `width` (small models: CIFAR, demo).
    Resize { height: u32, width: u32 },
    /// torchvision `Resize(resize)` on the shorter side, then `CenterCrop(height, width)`.
    ResizeShorterCenterCrop {
        resize: u32,
        height: u32,
        width: u32,
    },
}

impl Preprocess {
    pub fn for_input(height: u32, width: u32) -> Self {
        if height.min(width) >= 128 {
            Self::ResizeShorterCenterCrop {
                resize: (height.min(width) as f64 / 0.875).round() as u32,
                height,
                width,
            }
        } else {
            Self::Resize { height, width }
        }
    }
}
