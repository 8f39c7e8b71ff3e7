#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Ketang's kernels (`models/src/kernels.rs`) against tract's own on every model: same
//! outputs on two different inputs, and the kernels really in the plan.

mod common;

use common::{data, model};
use ketang_models::{Frame, Kernels, optimised_plan, run_plan};
use tract_onnx::prelude::*;

/// A model input: element type and shape.
type Input = (&'static str, &'static [usize]);

/// Each model with its inputs, as the pipelines fix them.
const MODELS: &[(&str, &[Input])] = &[
    (
        "face_detection_short_range.onnx",
        &[("f32", &[1, 128, 128, 3])],
    ),
    (
        "face_detection_full_range.onnx",
        &[("f32", &[1, 192, 192, 3])],
    ),
    ("mobilefacenet_192_b1.onnx", &[("f32", &[1, 112, 112, 3])]),
    (
        "dlib_face_recognition_resnet_v1.onnx",
        &[("f32", &[1, 150, 150, 3])],
    ),
    ("movenet-lightning.onnx", &[("i32", &[1, 192, 192, 3])]),
    ("nanodet.onnx", &[("f32", &[1, 3, 416, 416])]),
    (
        "silero_vad_16k_sequence.onnx",
        &[
            ("f32", &[31, 576]),
            ("f32", &[1, 1, 128]),
            ("f32", &[1, 1, 128]),
        ],
    ),
];

fn dt(t: &str) -> DatumType {
    if t == "i32" {
        i32::datum_type()
    } else {
        f32::datum_type()
    }
}

/// Input `which` for a tensor of `shape`: 0 a fixed pattern, 1 the astronaut photo's
/// pixels (repeated to fill, scaled to 0..1, or 0..255 for integer inputs).
fn input(which: usize, t: &str, shape: &[usize], photo: &[u8]) -> TValue {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| match which {
            0 => ((i * 7919) % 255) as f32 / 255.0,
            _ => f32::from(photo[i % photo.len()]) / 255.0,
        })
        .collect();
    if t == "i32" {
        let ints: Vec<i32> = v.iter().map(|x| (x * 255.0) as i32).collect();
        Tensor::from_shape(shape, &ints).unwrap().into()
    } else if shape == [1, 1, 128] {
        Tensor::zero::<f32>(shape).unwrap().into()
    } else {
        Tensor::from_shape(shape, &v).unwrap().into()
    }
}

fn floats(t: &TValue) -> Vec<f32> {
    let t = t.cast_to::<f32>().unwrap();
    t.try_as_plain_ram()
        .unwrap()
        .as_slice::<f32>()
        .unwrap()
        .to_vec()
}

#[test]
fn ketang_kernels_give_tracts_outputs_on_every_model() {
    let photo = Frame::open(&data("astronaut.png")).unwrap().rgb().to_vec();
    for (file, specs) in MODELS {
        let path = model(file);
        let facts: Vec<(DatumType, &[usize])> = specs.iter().map(|(t, s)| (dt(t), *s)).collect();
        let ours = optimised_plan(&path, &facts, Kernels::Ketang).unwrap();
        let theirs = optimised_plan(&path, &facts, Kernels::Tract).unwrap();
        let swapped = ours
            .model()
            .nodes
            .iter()
            .filter(|n| n.op.name().starts_with("Ketang"))
            .count();
        if !file.starts_with("silero") {
            assert!(swapped > 0, "{file}: no Ketang kernel in the plan");
        }
        for which in 0..2 {
            let inputs: TVec<TValue> = specs
                .iter()
                .map(|(t, s)| input(which, t, s, &photo))
                .collect();
            let a = run_plan(&ours, inputs.clone()).unwrap();
            let b = run_plan(&theirs, inputs).unwrap();
            assert_eq!(a.len(), b.len(), "{file}");
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert_eq!(a.shape(), b.shape(), "{file} output {i}");
                let (a, b) = (floats(a), floats(b));
                let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
                let worst = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst <= 1e-4 * scale,
                    "{file} output {i}, input {which}: differs by {worst} (scale {scale}, {swapped} Ketang nodes)"
                );
            }
        }
    }
}
