//! The embedded default: our own synthetic image set and the demo models trained on it.

mod embedded;
pub mod generator;
pub mod train;

use std::path::Path;

use crate::models::{
    Classifier, LoadOptions, ModelError, checkpoint::Checkpoint, classifier_from_checkpoint,
};

/// The two demo models shipped in `weights/` and embedded in the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemoModel {
    Standard,
    Robust,
}

impl DemoModel {
    pub const ALL: [DemoModel; 2] = [Self::Standard, Self::Robust];

    /// The repository path it is built from (and the name shown for it).
    pub fn file(self) -> &'static str {
        match self {
            Self::Standard => "weights/demo-standard.safetensors",
            Self::Robust => "weights/demo-robust.safetensors",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Standard => "demo standard",
            Self::Robust => "demo robust",
        }
    }

    fn bytes(self) -> Option<&'static [u8]> {
        match self {
            Self::Standard => embedded::STANDARD,
            Self::Robust => embedded::ROBUST,
        }
    }

    /// Loads the embedded model.
    pub fn load(self, opts: &LoadOptions) -> Result<Classifier, ModelError> {
        let path = Path::new(self.file());
        let bytes = self.bytes().ok_or_else(|| {
            ModelError::Invalid(format!(
                "{}: this build has no embedded demo model: run `cargo run --release -- train-demo --out {}{}` and rebuild",
                path.display(),
                self.file(),
                if self == Self::Robust { " --robust" } else { "" }
            ))
        })?;
        let ckpt = Checkpoint::from_safetensors_bytes(path, bytes)?;
        classifier_from_checkpoint(ckpt, sha256_hex(bytes), opts)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The gallery images (`<class>_<n>`, PNG bytes), sorted by name.
pub fn gallery() -> &'static [(&'static str, &'static [u8])] {
    embedded::GALLERY
}
