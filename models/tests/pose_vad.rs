#![allow(clippy::unwrap_used)]
//! Pose keypoints and voice activity on the real models and real inputs.

mod common;

use common::{data, model};
use ketang_models::Frame;
use ketang_models::behaviour::kp;
use ketang_models::face::{FaceDetector, Range};
use ketang_models::pose::{PoseEstimator, upper_body};
use ketang_models::vad::{self, Vad};

#[test]
fn keypoints_land_on_the_astronauts_face_and_shoulders() {
    let f = Frame::open(&data("astronaut.png")).unwrap();
    let faces = FaceDetector::load(&model("face_detection_full_range.onnx"), Range::Full, 0.5)
        .unwrap()
        .detect(&f)
        .unwrap();
    let p = PoseEstimator::load(&model("movenet-lightning.onnx")).unwrap();
    let k = p.keypoints(&f, upper_body(&faces[0], &f)).unwrap();
    let nose = k[kp::NOSE];
    assert!(nose.score > 0.3, "{nose:?}");
    let (fx, fy) = faces[0].centre();
    assert!(
        (nose.x - fx).abs() < 30.0 && (nose.y - fy).abs() < 40.0,
        "{nose:?} vs face {fx},{fy}"
    );
    let (l, r) = (k[kp::L_SHOULDER], k[kp::R_SHOULDER]);
    assert!(l.score > 0.3 && r.score > 0.3, "{l:?} {r:?}");
    // Shoulders below the nose, on either side of it, the person's left on the image right.
    assert!(l.y > nose.y + 50.0 && r.y > nose.y + 50.0, "{l:?} {r:?}");
    assert!(l.x > nose.x && r.x < nose.x, "{l:?} {r:?}");
    // Looking ahead, hands down: none of the behaviours.
    let posture = ketang_models::behaviour::posture(&k).unwrap();
    assert!(!posture.hand_raised && !posture.head_down, "{posture:?}");
}

#[test]
fn speech_is_detected_in_speech_and_not_in_silence_or_noise() {
    let v = Vad::load(&model("silero_vad_16k_sequence.onnx")).unwrap();
    let ch = vad::read_wav(&data("speech.wav")).unwrap();
    assert_eq!(ch.len(), 1);
    let secs = ch[0].len() as f32 / vad::RATE as f32;
    assert!((secs - 141_870.0 / 22_050.0).abs() < 0.01, "{secs}");
    assert!(vad::check_audio(&ch).is_empty());
    let segs = vad::segments(&v.speech_probs(&ch[0]).unwrap());
    let talk = vad::speech_seconds(&segs);
    assert!(
        talk > 0.5 * secs && talk <= secs,
        "{talk} s of {secs} s: {segs:?}"
    );

    // Two seconds of silence before the speech: its start moves by two seconds.
    let mut padded = vec![0.0f32; 2 * vad::RATE as usize];
    padded.extend_from_slice(&ch[0]);
    let later = vad::segments(&v.speech_probs(&padded).unwrap());
    assert!(
        (later[0].start_s - segs[0].start_s - 2.0).abs() < 0.15,
        "{later:?} vs {segs:?}"
    );

    let silence = vec![0.0f32; 5 * vad::RATE as usize];
    assert!(vad::segments(&v.speech_probs(&silence).unwrap()).is_empty());
    assert!(!vad::check_audio(&[silence]).is_empty());
    // Quiet fan-like noise is not speech.
    let mut x = 12345u32;
    let noise: Vec<f32> = (0..5 * vad::RATE)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((x >> 16) as f32 / 32768.0 - 1.0) * 0.02
        })
        .collect();
    assert!(vad::speech_seconds(&vad::segments(&v.speech_probs(&noise).unwrap())) < 0.5);
}

#[test]
fn a_wav_that_is_not_one_is_named() {
    let e = vad::read_wav(&data("astronaut.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("astronaut.png"), "{e}");
}
