//! Every face in some photos, embedded as the daemon's camera path does (full-range
//! BlazeFace, tiled, the short-range one when that finds nothing), one JSON line per face:
//! the photo, the face box, the eye distance in pixels and the L2-normalised embedding.
//! For measuring embedders (`models/convert/compare_embedders.py`, `docs/models.md`).
//!
//! `cargo run --release -p ketang-models --example embed -- MODEL_DIR EMBEDDER IMAGE...`
//! (EMBEDDER: `dlib_resnet_v1` or `mobilefacenet_192_b1`)
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::ExitCode;

use ketang_models::Frame;
use ketang_models::face::{EmbedderSpec, FaceDetector, FaceEmbedder, Range};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, name, images @ ..] = args.as_slice() else {
        eprintln!("usage: embed MODEL_DIR EMBEDDER IMAGE...");
        return ExitCode::from(2);
    };
    let Some(spec) = EmbedderSpec::named(name) else {
        eprintln!("embed: no embedder called {name}");
        return ExitCode::from(2);
    };
    let dir = Path::new(dir);
    let load = || -> Result<_, ketang_models::ModelError> {
        Ok((
            FaceDetector::load(
                &dir.join("face_detection_full_range.onnx"),
                Range::Full,
                0.5,
            )?,
            FaceDetector::load(
                &dir.join("face_detection_short_range.onnx"),
                Range::Short,
                0.5,
            )?,
            FaceEmbedder::load(&dir.join(spec.file), spec)?,
        ))
    };
    let (room, near, emb) = match load() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::FAILURE;
        }
    };
    for image in images {
        let result = Frame::open(Path::new(image)).and_then(|frame| {
            let mut faces = room.detect_tiled(&frame, 480)?;
            if faces.is_empty() {
                faces = near.detect(&frame)?;
            }
            for f in faces {
                let (r, l) = (f.keypoints[0], f.keypoints[1]);
                let eyes = ((r.0 - l.0).powi(2) + (r.1 - l.1).powi(2)).sqrt();
                let Ok(e) = emb.embed(&frame, &f) else {
                    continue;
                };
                println!(
                    "{}",
                    serde_json::json!({
                        "image": image, "face": [f.x, f.y, f.w, f.h], "eyes_px": eyes, "embedding": e,
                    })
                );
            }
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("embed: {image}: {e}");
        }
    }
    ExitCode::SUCCESS
}
