//! Latency of each model under tract on a fixed input (batch 1, one thread), and of the
//! whole face-attendance pipeline on a classroom frame of 40 faces. Prints one JSON line per
//! measurement; `bench/models.sh` sets these beside onnxruntime's.
//!
//! `cargo run --release -p ketang-models --example bench -- MODEL_DIR [RUNS]`
//! `… --example bench -- --classroom-png FILE [SHIFT]` writes the 40-face classroom frame
//! (every face SHIFT pixels to the right).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

// As in ketangd (daemon/src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ketang_models::face::{FaceDetector, FaceEmbedder, Range};
use ketang_models::gallery::Gallery;
use ketang_models::{Frame, Kernels, optimised_plan, run_plan};
use tract_onnx::prelude::*;

/// The bench input: value i is ((i · 7919) mod 255) / 255, scaled as the model expects.
fn input(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect()
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `file` twice on the same input: as tract ships (its kernels, `SimplePlan::run`)
/// and as Ketang runs it (`ketang_models::optimised_plan` + `run_plan`: Ketang's kernels,
/// the AVX state cleared after each node); rounds alternate, three each.
fn bench_raw(dir: &Path, file: &str, inputs: &[(DatumType, Vec<usize>)], runs: usize) {
    let mut tensors: TVec<TValue> = tvec![];
    for (dt, shape) in inputs {
        let n: usize = shape.iter().product();
        let vals = input(n);
        let t = if *dt == i32::datum_type() {
            let ints: Vec<i32> = vals.iter().map(|v| (v * 255.0) as i32).collect();
            Tensor::from_shape(shape, &ints).unwrap()
        } else if shape == &[1, 1, 128] {
            Tensor::zero::<f32>(shape).unwrap()
        } else {
            Tensor::from_shape(shape, &vals).unwrap()
        };
        tensors.push(t.into());
    }
    let facts: Vec<(DatumType, &[usize])> =
        inputs.iter().map(|(d, s)| (*d, s.as_slice())).collect();
    let path = dir.join(file);
    let tract = optimised_plan(&path, &facts, Kernels::Tract).unwrap();
    let ketang = optimised_plan(&path, &facts, Kernels::Ketang).unwrap();
    for _ in 0..3 {
        tract.run(tensors.clone()).unwrap();
        run_plan(&ketang, tensors.clone()).unwrap();
    }
    let (mut t_ms, mut k_ms) = (vec![], vec![]);
    let per_round = runs.div_ceil(3);
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1000.0
    };
    for _ in 0..3 {
        for _ in 0..per_round {
            t_ms.push(time(&|| drop(tract.run(tensors.clone()).unwrap())));
        }
        for _ in 0..per_round {
            k_ms.push(time(&|| drop(run_plan(&ketang, tensors.clone()).unwrap())));
        }
    }
    println!(
        "{{\"model\": \"{file}\", \"runtime\": \"tract\", \"median_ms\": {:.3}, \"ketang_ms\": {:.3}}}",
        median_ms(t_ms),
        median_ms(k_ms)
    );
}

/// A 1920×1080 classroom frame: 40 faces (the test photos' faces, scaled to 60–80 px as a
/// front camera sees rows of students) on a grey wall.
fn classroom(data: &Path, shift: usize) -> Frame {
    let a = Frame::open(&data.join("astronaut.png")).unwrap();
    let c = Frame::open(&data.join("camera.png")).unwrap();
    let (w, h) = (1920usize, 1080usize);
    let mut rgb = vec![128u8; w * h * 3];
    let faces = [
        a.crop(136, 20, 180, 200).unwrap(),
        a.mirrored().crop(196, 20, 180, 200).unwrap(),
    ];
    let _ = c;
    for row in 0..5 {
        for col in 0..8 {
            let src = &faces[(row + col) % 2];
            let size = 150 - row * 12; // nearer rows bigger
            let x0 = 40 + col * 235 + shift;
            let y0 = 20 + row * 210;
            for y in 0..size {
                for x in 0..size {
                    let sx = x * src.width() as usize / size;
                    let sy = y * src.height() as usize / size;
                    let si = (sy * src.width() as usize + sx) * 3;
                    let di = ((y0 + y) * w + x0 + x) * 3;
                    rgb[di..di + 3].copy_from_slice(&src.rgb()[si..si + 3]);
                }
            }
        }
    }
    Frame::from_rgb(w as u32, h as u32, rgb).unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next().expect("MODEL_DIR, or --classroom-png FILE");
    if first == "--classroom-png" {
        // The 40-face classroom frame, for bench/inference-cpu.sh.
        let out = PathBuf::from(args.next().expect("FILE"));
        // SHIFT: every face that many pixels to the right (the class moved).
        let shift = args
            .next()
            .map_or(0, |s| s.parse().expect("SHIFT (pixels)"));
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let f = classroom(&data, shift);
        image::RgbImage::from_raw(f.width(), f.height(), f.rgb().to_vec())
            .expect("a whole frame")
            .save(&out)
            .expect("writing the PNG");
        return;
    }
    let dir = PathBuf::from(first);
    let runs: usize = args.next().map_or(30, |r| r.parse().expect("RUNS"));
    let f32t = f32::datum_type();
    bench_raw(
        &dir,
        "face_detection_short_range.onnx",
        &[(f32t, vec![1, 128, 128, 3])],
        runs,
    );
    bench_raw(
        &dir,
        "face_detection_full_range.onnx",
        &[(f32t, vec![1, 192, 192, 3])],
        runs,
    );
    bench_raw(
        &dir,
        "mobilefacenet_192_b1.onnx",
        &[(f32t, vec![1, 112, 112, 3])],
        runs,
    );
    bench_raw(
        &dir,
        "dlib_face_recognition_resnet_v1.onnx",
        &[(f32t, vec![1, 150, 150, 3])],
        runs,
    );
    bench_raw(
        &dir,
        "movenet-lightning.onnx",
        &[(i32::datum_type(), vec![1, 192, 192, 3])],
        runs,
    );
    bench_raw(&dir, "nanodet.onnx", &[(f32t, vec![1, 3, 416, 416])], runs);
    bench_raw(
        &dir,
        "silero_vad_16k_sequence.onnx",
        &[
            (f32t, vec![31, 576]),
            (f32t, vec![1, 1, 128]),
            (f32t, vec![1, 1, 128]),
        ],
        runs,
    );
    bench_raw(
        &dir,
        "resemblyzer_voice_encoder.onnx",
        &[(f32t, vec![1, 160, 40])],
        runs,
    );

    // Whole pipeline: capture (decode) → detect (tiled) → align + embed each → match.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let frame = classroom(&data, 0);
    let det = FaceDetector::load(
        &dir.join("face_detection_full_range.onnx"),
        Range::Full,
        0.5,
    )
    .unwrap();
    for spec in ketang_models::face::EMBEDDERS {
        let Ok(emb) = FaceEmbedder::load(&dir.join(spec.file), spec) else {
            eprintln!(
                "bench: no {} in {}; its pipeline is skipped",
                spec.file,
                dir.display()
            );
            continue;
        };
        let mut gallery = Gallery::new(spec.threshold, spec.margin);
        for i in 0..40 {
            let v: Vec<f32> = (0..emb.dim())
                .map(|j| ((i * 31 + j * 7) % 13) as f32 - 6.0)
                .collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            gallery.add(&format!("s{i:02}"), v.iter().map(|x| x / n).collect());
        }
        let mut detect_ms = Vec::new();
        let mut embed_ms = Vec::new();
        let mut found = 0;
        for _ in 0..runs.clamp(1, 5) {
            let t = Instant::now();
            let faces = det.detect_tiled(&frame, 480).unwrap();
            detect_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            for f in &faces {
                if let Ok(e) = emb.embed(&frame, f) {
                    let _ = gallery.best(&e);
                }
            }
            embed_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            found = faces.len();
        }
        let (d, e) = (median_ms(detect_ms), median_ms(embed_ms));
        println!(
            "{{\"pipeline\": \"classroom frame 1920x1080, 40 faces, {}\", \"faces_found\": {found}, \"detect_ms\": {d:.1}, \"embed_match_ms\": {e:.1}, \"total_ms\": {:.1}}}",
            spec.name,
            d + e
        );
    }
}
