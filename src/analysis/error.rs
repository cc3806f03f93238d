//! The error type of the analysis layer.

use crate::models::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The classifier failed (bad input shape, missing gradient, device error).
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An input or model the frequency-margin analysis cannot work on (§4).
    #[error(transparent)]
    Frequency(#[from] crate::analysis::frequency::FrequencyError),
    /// A semantic setting (parameter, domain, region hyperparameter) was refused.
    #[error(transparent)]
    Semantic(crate::analysis::semantic::SemanticError),
    /// Bad arguments: a shape, a label, a hyperparameter or an image value out of range.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = AnalysisError> = std::result::Result<T, E>;

/// Shorthand for an [`AnalysisError::Invalid`].
pub(crate) fn invalid(message: impl Into<String>) -> AnalysisError {
    AnalysisError::Invalid(message.into())
}
