//! Built-in class-name presets.

pub const CIFAR10: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

pub const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Class names for a classifier with `num_classes` outputs and `channels` input channels when
/// nothing better is known: digits for a 10-class grey-scale model (MNIST-like: a CIFAR preset
/// would label a "7" as "horse"), CIFAR-10 for other 10-class models, ImageNet-1k for 1000,
/// `class N` otherwise. Returns the names and where they came from.
pub fn default_class_names(num_classes: usize, channels: usize) -> (Vec<String>, &'static str) {
    match num_classes {
        10 if channels == 1 => (
            DIGITS.iter().map(|s| s.to_string()).collect(),
            "built-in digit preset (10 classes, 1 channel)",
        ),
        10 => (
            CIFAR10.iter().map(|s| s.to_string()).collect(),
            "built-in CIFAR-10 preset",
        ),
        1000 => (
            imagenet_names().map(str::to_string).collect(),
            "built-in ImageNet-1k preset",
        ),
        k => (
            (0..k).map(|i| format!("class {i}")).collect(),
            "numbered (no names known)",
        ),
    }
}

/// The 1000 ImageNet-1k class names in the standard (wnid-sorted) order.
pub fn imagenet_names() -> impl Iterator<Item = &'static str> {
    IMAGENET_1K.lines().map(str::trim).filter(|l| !l.is_empty())
}

const IMAGENET_1K: &str = include_str!("imagenet_classes.txt");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_classes_and_channels() {
        assert_eq!(default_class_names(10, 1).0[7], "7");
        assert_eq!(default_class_names(10, 3).0[7], "horse");
        assert_eq!(default_class_names(1000, 3).0.len(), 1000);
        assert_eq!(
            default_class_names(3, 1).0,
            ["class 0", "class 1", "class 2"]
        );
    }
}
