//! Where the model tests find models and inputs.
#![allow(dead_code, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// The model directory (`ketang_testkit::models_dir`: `KETANG_MODELS`, else `target/models`,
/// what `models/obtain.sh` writes).
pub(crate) fn models() -> PathBuf {
    ketang_testkit::models_dir("dlib_face_recognition_resnet_v1.onnx")
}

pub(crate) fn model(name: &str) -> PathBuf {
    models().join(name)
}

pub(crate) fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}
