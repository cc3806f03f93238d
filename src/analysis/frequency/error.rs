//! Why a frequency-margin analysis cannot run on the given input or model.

/// Bad inputs to the DCT subspaces, the transforms and subspace DeepFool (ALGORITHMS.md §4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrequencyError {
    /// The DCT subspaces are square blocks, so the method needs H = W.
    #[error(
        "frequency margins need square images, but the input is {height}×{width} (H ≠ W); use a model with a square input size"
    )]
    NotSquare { height: usize, width: usize },
    /// A band (subspace block) of K×K coefficients does not fit an N×N image.
    #[error(
        "the frequency band of {band}×{band} coefficients is larger than the {size}×{size} image"
    )]
    BandTooLarge { band: usize, size: usize },
    /// A transform's bandwidth b does not fit the N×N image.
    #[error(
        "the bandwidth {bandwidth} of `{transform}` is outside 1..={size} for a {size}×{size} image"
    )]
    BandwidthOutOfRange {
        transform: String,
        bandwidth: usize,
        size: usize,
    },
    /// Band size or step 0.
    #[error("the frequency {what} must be at least 1")]
    Zero { what: &'static str },
    /// DeepFool needs a second class to cross to.
    #[error("subspace DeepFool needs a model with at least 2 classes, this one has {classes}")]
    TooFewClasses { classes: usize },
    /// Images of another channel count or size than the subspaces were planned for.
    #[error("images have shape {found:?}, the subspaces were planned for {expected:?}")]
    ShapeMismatch {
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    /// An `--input-transform` that is not flip, lowpass:B, highpass:B or cutlow:B.
    #[error(
        "unknown input transform `{0}`: expected flip, lowpass[:B], highpass[:B] or cutlow[:B]"
    )]
    UnknownTransform(String),
    /// A hyperparameter outside its range.
    #[error("{0}")]
    Invalid(String),
}
