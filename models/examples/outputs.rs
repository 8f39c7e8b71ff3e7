//! Every model's outputs on fixed inputs, written as JSON, and a comparison of two such
//! files: how an arm64 build proves that tract's ARM kernels give what the x86 ones give
//! (`scripts/test-arm64`; docs/models.md, "arm64").
//!
//! ```text
//! cargo run -p ketang-models --example outputs -- MODEL_DIR OUT.json [--full]
//! cargo run -p ketang-models --example outputs -- --compare REFERENCE.json OTHER.json
//! ```
//!
//! The inputs are the packaged test photos and speech sample and two synthetic patterns
//! (the same ones `verify` checks against dlib and onnxruntime). Each output is a list of
//! numbers with the tolerance it is compared by: pixels for boxes and keypoints, absolute
//! for scores, probabilities and unit-length embeddings.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ketang_models::Frame;
use ketang_models::expression::ExpressionModel;
use ketang_models::face::{DLIB_RESNET, FaceDetector, FaceEmbedder, MOBILEFACENET, Range};
use ketang_models::person::PersonDetector;
use ketang_models::pose::{PoseEstimator, upper_body};
use ketang_models::vad::{self, Vad};
use serde_json::{Value, json};

fn data(n: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(n)
}

/// Outputs by name: (tolerance, values).
type Outputs = BTreeMap<String, (f32, Vec<f32>)>;

const PIXELS: f32 = 0.5;
const SCORES: f32 = 1e-3;
const EMBEDDINGS: f32 = 1e-3;

fn run(dir: &Path, full: bool) -> Result<Outputs, String> {
    let e = |e: ketang_models::ModelError| e.to_string();
    let mut out = Timed {
        outputs: Outputs::new(),
        last: Some(std::time::Instant::now()),
    };
    // Under qemu-user every float operation is emulated (a minute or more per network): the
    // quick set is the face detectors, dlib's descriptor on a fixed chip, voice activity and
    // expressions; `--full` adds MobileFaceNet, the descriptor through the pipeline, pose and
    // the person detector, on every photo.
    let names: &[&str] = if full {
        &["astronaut.png", "camera.png", "mosaic.png"]
    } else {
        &["astronaut.png"]
    };
    let photos: Vec<(&str, Frame)> = names
        .iter()
        .map(|n| Ok((*n, Frame::open(&data(n)).map_err(e)?)))
        .collect::<Result<_, String>>()?;
    let astronaut = &photos[0].1;
    let mut faces = Vec::new();
    for (file, range) in [
        ("face_detection_full_range.onnx", Range::Full),
        ("face_detection_short_range.onnx", Range::Short),
    ] {
        let d = FaceDetector::load(&dir.join(file), range, 0.5).map_err(e)?;
        for (name, frame) in &photos {
            let f = d.detect(frame).map_err(e)?;
            out.boxes(
                &format!("{file} {name}"),
                f.iter().map(|f| [f.x, f.y, f.w, f.h, f.score]).collect(),
            );
            if *name == "astronaut.png" && range == Range::Short {
                faces = f;
            }
        }
    }
    let face = faces.first().ok_or("no face on the astronaut")?;
    for spec in [MOBILEFACENET, DLIB_RESNET] {
        let path = dir.join(spec.file);
        if !path.exists() || !full {
            continue;
        }
        let emb = FaceEmbedder::load(&path, spec).map_err(e)?;
        out.insert(
            format!("{} astronaut.png embedding", spec.file),
            (EMBEDDINGS, emb.embed(astronaut, face).map_err(e)?),
        );
    }
    let side = DLIB_RESNET.size;
    let chip: Vec<f32> = (0..side * side)
        .flat_map(|i| {
            let (y, x) = (i / side, i % side);
            let m = side - 1;
            [x * 255 / m, y * 255 / m, (x + y) * 255 / (2 * m)].map(|v| v as f32)
        })
        .collect();
    let dlib = FaceEmbedder::load(&dir.join(DLIB_RESNET.file), DLIB_RESNET).map_err(e)?;
    out.insert(
        format!("{} gradient chip raw", DLIB_RESNET.file),
        (EMBEDDINGS, dlib.raw(&chip).map_err(e)?),
    );
    if full {
        pose_and_people(dir, &photos, face, &mut out)?;
    }
    let v = Vad::load(&dir.join("silero_vad_16k_sequence.onnx")).map_err(e)?;
    let speech = vad::read_wav(&data("speech.wav")).map_err(e)?;
    out.insert(
        "silero_vad_16k_sequence.onnx speech.wav probabilities".into(),
        (SCORES, v.speech_probs(&speech[0]).map_err(e)?),
    );
    let enc = ketang_models::voice::VoiceEncoder::load(&dir.join("resemblyzer_voice_encoder.onnx"))
        .map_err(e)?;
    let two = vad::read_wav(&data("two_speakers.wav")).map_err(e)?;
    let mels = ketang_models::voice::MelSpectrogram::default().compute(&two[0][..25_600]);
    out.insert(
        "resemblyzer_voice_encoder.onnx two_speakers.wav first 1.6 s raw".into(),
        (SCORES, enc.raw(&mels).map_err(e)?),
    );
    let fer = ExpressionModel::load(&dir.join("fer_emotion.onnx")).map_err(e)?;
    let grey: Vec<f32> = (0..64 * 64)
        .map(|i| ((i % 64 * 7 + i / 64 * 3) % 64) as f32 / 32.0 - 1.0)
        .collect();
    out.insert(
        "fer_emotion.onnx grey pattern raw".into(),
        (SCORES, fer.raw(&grey).map_err(e)?.to_vec()),
    );
    out.insert(
        "fer_emotion.onnx astronaut.png".into(),
        (SCORES, fer.classify(astronaut, face).map_err(e)?.to_vec()),
    );
    Ok(out.outputs)
}

/// Outputs as they are made, each printed with the time it took since the previous one.
#[derive(Default)]
struct Timed {
    outputs: Outputs,
    last: Option<std::time::Instant>,
}

impl Timed {
    fn insert(&mut self, name: String, value: (f32, Vec<f32>)) {
        let now = std::time::Instant::now();
        let took = self.last.map(|t| now - t).unwrap_or_default();
        eprintln!("{:8.2} s  {name}", took.as_secs_f32());
        self.last = Some(now);
        self.outputs.insert(name, value);
    }

    /// Boxes (x, y, w, h, score) as two outputs, `NAME boxes` and `NAME scores`, in a fixed
    /// order (left to right, then top to bottom), whatever order the detector gave.
    fn boxes(&mut self, name: &str, mut b: Vec<[f32; 5]>) {
        b.sort_by(|p, q| {
            (p[0], p[1])
                .partial_cmp(&(q[0], q[1]))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let coords = b.iter().flat_map(|b| b[..4].to_vec()).collect();
        self.insert(format!("{name} boxes"), (PIXELS, coords));
        self.insert(
            format!("{name} scores"),
            (SCORES, b.iter().map(|b| b[4]).collect()),
        );
    }
}

/// The heavier networks (`--full`): pose on the astronaut, people on every photo.
fn pose_and_people(
    dir: &Path,
    photos: &[(&str, Frame)],
    face: &ketang_models::face::Face,
    out: &mut Timed,
) -> Result<(), String> {
    let e = |e: ketang_models::ModelError| e.to_string();
    let astronaut = &photos[0].1;
    let pose = PoseEstimator::load(&dir.join("movenet-lightning.onnx")).map_err(e)?;
    let k = pose
        .keypoints(astronaut, upper_body(face, astronaut))
        .map_err(e)?;
    out.insert(
        "movenet-lightning.onnx astronaut.png keypoints".into(),
        (PIXELS, k.iter().flat_map(|k| [k.x, k.y]).collect()),
    );
    out.insert(
        "movenet-lightning.onnx astronaut.png scores".into(),
        (SCORES, k.iter().map(|k| k.score).collect()),
    );
    let people = PersonDetector::load(&dir.join("nanodet.onnx"), 0.3).map_err(e)?;
    for (name, frame) in photos {
        let p = people.detect(frame).map_err(e)?;
        out.boxes(
            &format!("nanodet.onnx {name}"),
            p.iter().map(|p| [p.x, p.y, p.w, p.h, p.score]).collect(),
        );
    }
    Ok(())
}

fn to_json(o: &Outputs) -> Value {
    let arch = std::env::consts::ARCH;
    let m: serde_json::Map<String, Value> = o
        .iter()
        .map(|(k, (tol, v))| (k.clone(), json!({ "tolerance": tol, "values": v })))
        .collect();
    json!({ "arch": arch, "outputs": m })
}

fn from_json(path: &Path) -> Result<(String, Outputs), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let arch = v["arch"].as_str().unwrap_or("?").to_string();
    let outputs = v["outputs"]
        .as_object()
        .ok_or_else(|| format!("{}: no \"outputs\" object", path.display()))?;
    let mut o = Outputs::new();
    for (k, e) in outputs {
        let tol = e["tolerance"]
            .as_f64()
            .ok_or_else(|| format!("{}: {k}: no tolerance", path.display()))?;
        let vals = e["values"]
            .as_array()
            .ok_or_else(|| format!("{}: {k}: no values", path.display()))?
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| format!("{}: {k}: a value is not a number", path.display()))?;
        o.insert(k.clone(), (tol as f32, vals));
    }
    Ok((arch, o))
}

/// Compares `other` with `reference`: the same outputs, the same lengths (as many faces,
/// people), every value within its tolerance. Prints each output's largest difference.
fn compare(reference: &Path, other: &Path) -> Result<(), String> {
    let (ra, r) = from_json(reference)?;
    let (oa, o) = from_json(other)?;
    println!("{oa} against {ra}: largest difference per output (tolerance)");
    let mut bad = Vec::new();
    for (k, (tol, want)) in &r {
        let Some((_, got)) = o.get(k) else {
            bad.push(format!("{k}: missing on {oa}"));
            continue;
        };
        if got.len() != want.len() {
            bad.push(format!(
                "{k}: {} values on {oa}, {} on {ra}",
                got.len(),
                want.len()
            ));
            continue;
        }
        // f32::max ignores NaN: a NaN anywhere is a difference of its own.
        let d = want
            .iter()
            .zip(got)
            .map(|(a, b)| {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    (a - b).abs()
                }
            })
            .fold(0.0f32, |m, x| {
                if x.is_nan() || m.is_nan() {
                    f32::NAN
                } else {
                    m.max(x)
                }
            });
        println!("  {d:9.2e} ({tol:.0e})  {k} [{}]", want.len());
        if d.is_nan() || d > *tol {
            bad.push(format!("{k}: differs by {d:.2e} (tolerance {tol:.0e})"));
        }
    }
    for k in o.keys().filter(|k| !r.contains_key(*k)) {
        bad.push(format!("{k}: only on {oa}"));
    }
    if bad.is_empty() {
        println!("all {} outputs match", r.len());
        Ok(())
    } else {
        Err(bad.join("\n"))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag, a, b] if flag == "--compare" => compare(Path::new(a), Path::new(b)),
        [dir, out] | [dir, out, _] => {
            run(Path::new(dir), args.get(2).is_some_and(|a| a == "--full")).and_then(|o| {
                std::fs::write(out, to_json(&o).to_string()).map_err(|e| format!("{out}: {e}"))
            })
        }
        _ => {
            eprintln!(
                "usage: outputs MODEL_DIR OUT.json [--full] | outputs --compare REFERENCE.json OTHER.json"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outputs: {e}");
            ExitCode::FAILURE
        }
    }
}
