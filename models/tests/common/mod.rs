//! Where the model tests find models and inputs.
#![allow(dead_code, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// The model directory: `KETANG_MODELS`, else `target/models` (what `models/obtain.sh`
/// writes), else the shared cache beside the checkout.
pub(crate) fn models() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        std::env::var_os("KETANG_MODELS").map(PathBuf::from),
        Some(root.join("target/models")),
        Some(root.join("../shared/models")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.join("face_detection_full_range.onnx").is_file() {
            return c;
        }
    }
    panic!(
        "no models: run models/obtain.sh (or set KETANG_MODELS to a folder holding them; see docs/models.md)"
    );
}

pub(crate) fn model(name: &str) -> PathBuf {
    models().join(name)
}

pub(crate) fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}
