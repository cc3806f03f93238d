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

/// Class names for a classifier with `num_classes` outputs when nothing better is known:
/// CIFAR-10 for 10, ImageNet-1k for 1000, `class N` otherwise. Returns the names and
/// where they came from.
pub fn default_class_names(num_classes: usize) -> (Vec<String>, &'static str) {
    match num_classes {
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
