//! Checks a folder of models by running each through its pipeline on fixed inputs and
//! comparing with known answers (tf2onnx output bytes differ between runs, so a hash would
//! refuse good models; outputs do not).
//!
//! `cargo run -p ketang-models --example verify -- MODEL_DIR`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ketang_models::Frame;
use ketang_models::face::{FaceDetector, FaceEmbedder, Range};
use ketang_models::gallery::cosine;
use ketang_models::pose::{PoseEstimator, upper_body};
use ketang_models::vad::{self, Vad};

fn data(n: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(n)
}

fn check(dir: &Path) -> Result<(), String> {
    let e = |e: ketang_models::ModelError| e.to_string();
    let astronaut = Frame::open(&data("astronaut.png")).map_err(e)?;
    let mut faces = Vec::new();
    for (file, range) in [
        ("face_detection_full_range.onnx", Range::Full),
        ("face_detection_short_range.onnx", Range::Short),
    ] {
        let d = FaceDetector::load(&dir.join(file), range, 0.5).map_err(e)?;
        let f = d.detect(&astronaut).map_err(e)?;
        let ok = f.len() == 1 && {
            let (x, y) = f[0].centre();
            (x - 226.0).abs() < 20.0 && (y - 124.0).abs() < 20.0
        };
        if !ok {
            return Err(format!(
                "{file}: expected one face near (226, 124), got {f:?}"
            ));
        }
        println!("ok  {file}: face at {:?}", f[0].centre());
        faces = f;
    }
    let emb = FaceEmbedder::load(
        &dir.join("mobilefacenet_192_b1.onnx"),
        ketang_models::face::MOBILEFACENET,
    )
    .map_err(e)?;
    let mirrored = astronaut.mirrored();
    let short = FaceDetector::load(
        &dir.join("face_detection_short_range.onnx"),
        Range::Short,
        0.5,
    )
    .map_err(e)?;
    let fm = short.detect(&mirrored).map_err(e)?;
    let a = emb.embed(&astronaut, &faces[0]).map_err(e)?;
    let b = emb
        .embed(
            &mirrored,
            fm.first().ok_or("no face in the mirrored photo")?,
        )
        .map_err(e)?;
    let sim = cosine(&a, &b);
    if sim < 0.8 {
        return Err(format!(
            "mobilefacenet_192_b1.onnx: a face and its mirror image score {sim:.3} (< 0.8)"
        ));
    }
    println!("ok  mobilefacenet_192_b1.onnx: mirror similarity {sim:.3}");
    // dlib's descriptor: tract's output on a fixed chip against dlib's own (dlib 20.0.1,
    // compute_face_descriptor on the same 150 × 150 gradient), then the pipeline.
    let spec = ketang_models::face::DLIB_RESNET;
    let dlib = FaceEmbedder::load(&dir.join(spec.file), spec).map_err(e)?;
    let chip: Vec<f32> = (0..150 * 150)
        .flat_map(|i| {
            let (y, x) = (i / 150, i % 150);
            [x * 255 / 149, y * 255 / 149, (x + y) * 255 / 298].map(|v| v as f32)
        })
        .collect();
    let got = dlib.raw(&chip).map_err(e)?;
    let want = [
        -0.050978, 0.120987, 0.060109, 0.014236, -0.055703, -0.046085, -0.077943, -0.007109,
    ];
    let diff = want
        .iter()
        .zip(&got)
        .map(|(w, g)| (w - g).abs())
        .fold(0.0f32, f32::max);
    if got.len() != 128 || diff > 1e-4 {
        return Err(format!(
            "{}: differs from dlib's own descriptor by {diff:.2e} on the fixed chip (first values {:?})",
            spec.file,
            &got[..got.len().min(8)]
        ));
    }
    let a = dlib.embed(&astronaut, &faces[0]).map_err(e)?;
    let b = dlib
        .embed(
            &mirrored,
            fm.first().ok_or("no face in the mirrored photo")?,
        )
        .map_err(e)?;
    let sim = cosine(&a, &b);
    if sim < 0.97 {
        return Err(format!(
            "{}: a face and its mirror image score {sim:.3} (< 0.97)",
            spec.file
        ));
    }
    println!(
        "ok  {}: matches dlib to {diff:.1e} on a fixed chip; mirror similarity {sim:.3}",
        spec.file
    );
    let pose = PoseEstimator::load(&dir.join("movenet-lightning.onnx")).map_err(e)?;
    let k = pose
        .keypoints(&astronaut, upper_body(&faces[0], &astronaut))
        .map_err(e)?;
    let (fx, fy) = faces[0].centre();
    if k[0].score < 0.3 || (k[0].x - fx).abs() > 30.0 || (k[0].y - fy).abs() > 40.0 {
        return Err(format!(
            "movenet-lightning.onnx: nose {:?} is not on the face at ({fx}, {fy})",
            k[0]
        ));
    }
    println!(
        "ok  movenet-lightning.onnx: nose at ({:.0}, {:.0})",
        k[0].x, k[0].y
    );
    let people = ketang_models::person::PersonDetector::load(&dir.join("nanodet.onnx"), 0.5)
        .map_err(e)?
        .detect(&astronaut)
        .map_err(e)?;
    if people.len() != 1 || !people[0].contains((fx, fy)) {
        return Err(format!(
            "nanodet.onnx: expected one person around the face, got {people:?}"
        ));
    }
    println!(
        "ok  nanodet.onnx: one person, {:.0}×{:.0}",
        people[0].w, people[0].h
    );
    let v = Vad::load(&dir.join("silero_vad_16k_sequence.onnx")).map_err(e)?;
    let speech = vad::read_wav(&data("speech.wav")).map_err(e)?;
    let talk = vad::speech_seconds(&vad::segments(&v.speech_probs(&speech[0]).map_err(e)?));
    let quiet = vad::speech_seconds(&vad::segments(&v.speech_probs(&[0.0; 32_000]).map_err(e)?));
    if talk < 3.0 || quiet > 0.0 {
        return Err(format!(
            "silero_vad_16k_sequence.onnx: {talk:.1} s of speech in the speech sample, {quiet:.1} s in silence"
        ));
    }
    println!("ok  silero_vad_16k_sequence.onnx: {talk:.1} s of speech, none in silence");
    // The voice encoder: tract on a fixed mel input against PyTorch's LSTM equations run in
    // numpy on the checkpoint's own weights (models/convert/voice_reference.py).
    let voice =
        ketang_models::voice::VoiceEncoder::load(&dir.join("resemblyzer_voice_encoder.onnx"))
            .map_err(e)?;
    let mels: Vec<[f32; ketang_models::voice::MELS]> = (0..ketang_models::voice::FRAMES)
        .map(|t| std::array::from_fn(|m| ((t * 7 + m * 3) % 23) as f32 / 23.0 * 0.5))
        .collect();
    let raw = voice.raw(&mels).map_err(e)?;
    let want = [
        (4, 0.028946),
        (5, 0.247888),
        (8, 0.354780),
        (9, 0.084903),
        (10, 1.020043),
        (15, 0.166505),
        (16, 0.814157),
        (17, 0.247635),
    ];
    let diff = want
        .iter()
        .map(|&(i, w): &(usize, f32)| (raw[i] - w).abs())
        .fold(0.0f32, f32::max);
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    if diff > 1e-4 || (norm - 4.420_185).abs() > 1e-3 || raw[..4].iter().any(|x| *x != 0.0) {
        return Err(format!(
            "resemblyzer_voice_encoder.onnx: differs from the reference LSTM by {diff:.2e} on the fixed input (norm {norm:.5}, expected 4.42018)"
        ));
    }
    println!("ok  resemblyzer_voice_encoder.onnx: matches the reference LSTM to {diff:.1e}");
    // fer's expression model: tract against onnxruntime 1.32 on a fixed grey pattern, then
    // the pipeline on the astronaut's face (she smiles).
    let fer = ketang_models::expression::ExpressionModel::load(&dir.join("fer_emotion.onnx"))
        .map_err(e)?;
    let grey: Vec<f32> = (0..64 * 64)
        .map(|i| ((i % 64 * 7 + i / 64 * 3) % 64) as f32 / 32.0 - 1.0)
        .collect();
    let got = fer.raw(&grey).map_err(e)?;
    let want = [
        0.587372, 4e-06, 0.039651, 0.109443, 0.193842, 0.066383, 0.003306,
    ];
    let diff = want
        .iter()
        .zip(&got)
        .map(|(w, g)| (w - g).abs())
        .fold(0.0f32, f32::max);
    if diff > 1e-4 {
        return Err(format!(
            "fer_emotion.onnx: differs from onnxruntime by {diff:.2e} on the fixed pattern ({got:?})"
        ));
    }
    let s = fer.classify(&astronaut, &faces[0]).map_err(e)?;
    let mood = ketang_models::expression::Mood::of(&s);
    if mood != ketang_models::expression::Mood::Engaged {
        return Err(format!(
            "fer_emotion.onnx: the smiling astronaut reads as {mood:?} ({s:?})"
        ));
    }
    println!(
        "ok  fer_emotion.onnx: matches onnxruntime to {diff:.1e}; the astronaut smiles ({:.2} happy)",
        s[3]
    );
    Ok(())
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: verify MODEL_DIR");
        return ExitCode::from(2);
    };
    match check(Path::new(&dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verify: {e}");
            ExitCode::FAILURE
        }
    }
}
