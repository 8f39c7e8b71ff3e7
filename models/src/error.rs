//! Errors of the inference pipelines: each names the model file or input it concerns.

use std::path::PathBuf;

/// Why loading or running a model failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read or parsed as ONNX, or tract could not optimise it.
    #[error("model {path}: {reason}")]
    Load {
        /// The model file.
        path: PathBuf,
        /// tract's account, as text.
        reason: String,
    },
    /// The model loads but its inputs or outputs are not what this pipeline needs.
    #[error("model {path}: {what}")]
    Shape {
        /// The model file.
        path: PathBuf,
        /// What was expected and found.
        what: String,
    },
    /// Running the model failed.
    #[error("running {model}: {reason}")]
    Run {
        /// Which model (file name).
        model: String,
        /// tract's account.
        reason: String,
    },
    /// An input that cannot be used: an unreadable image or WAV file, a frame too small,
    /// audio at a rate that cannot be converted.
    #[error("{0}")]
    Input(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
