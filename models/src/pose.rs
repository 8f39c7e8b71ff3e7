//! Pose keypoints with MoveNet Lightning (single person, 17 COCO keypoints) on person
//! crops, for the behaviour rules of [`crate::behaviour`].
//!
//! MoveNet takes one person per call: the crop is letterboxed into its 192 × 192 int32 RGB
//! input (0–255) and the keypoints (y, x, score, normalised to the input) are mapped back
//! to frame pixels. Where a person box comes from a face (no person detector run), the
//! crop is the upper body implied by the face: four face widths wide, from one face
//! height above the face to four below ([`upper_body`]).

use std::path::Path;

use tract_onnx::prelude::*;

use crate::behaviour::Keypoint;
use crate::error::{ModelError, Result};
use crate::face::Face;
use crate::frame::{Frame, Letterbox};
use crate::runtime::Model;

const SIZE: usize = 192;

/// A MoveNet single-person pose model.
#[derive(Debug)]
pub struct PoseEstimator {
    model: Model,
}

/// The upper-body box (x, y, w, h) a face implies, clipped to the frame.
#[must_use]
pub fn upper_body(face: &Face, frame: &Frame) -> (f32, f32, f32, f32) {
    let (cx, _) = face.centre();
    let w = face.w * 4.0;
    let x0 = (cx - w / 2.0).max(0.0);
    let y0 = (face.y - face.h).max(0.0);
    let x1 = (cx + w / 2.0).min(frame.width() as f32);
    let y1 = (face.y + face.h * 5.0).min(frame.height() as f32);
    (x0, y0, x1 - x0, y1 - y0)
}

impl PoseEstimator {
    /// Loads MoveNet (`movenet-lightning.onnx`: int32 `[1, 192, 192, 3]` →
    /// `[1, 1, 17, 3]`).
    ///
    /// # Errors
    /// The file is missing or its shapes differ (named).
    pub fn load(path: &Path) -> Result<Self> {
        let model = Model::load(path, &[(i32::datum_type(), &[1, SIZE, SIZE, 3])], 1)?;
        let input = Tensor::zero::<i32>(&[1, SIZE, SIZE, 3])
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let out = model.run(tvec!(input.into()))?;
        let shape = Model::out_shape(&out, 0);
        if shape.iter().product::<usize>() != 17 * 3 {
            return Err(ModelError::Shape {
                path: path.to_owned(),
                what: format!("output {shape:?} is not 17 keypoints × (y, x, score)"),
            });
        }
        Ok(Self { model })
    }

    /// The 17 keypoints of the person in the region (`x`, `y`, `w`, `h`), in frame pixels.
    ///
    /// # Errors
    /// The region is empty, or running the model failed.
    pub fn keypoints(&self, frame: &Frame, region: (f32, f32, f32, f32)) -> Result<[Keypoint; 17]> {
        let (rx, ry, rw, rh) = region;
        if rw < 8.0 || rh < 8.0 {
            return Err(ModelError::Input(format!(
                "a person region of {rw:.0}×{rh:.0} px is too small for pose"
            )));
        }
        let lb = Letterbox::fit(rx, ry, rw, rh, SIZE);
        let mut px = vec![0f32; SIZE * SIZE * 3];
        frame.warp_into(
            SIZE,
            &mut px,
            |u, v| (lb.x0 + u * lb.scale, lb.y0 + v * lb.scale),
            |p| p,
        );
        let ints: Vec<i32> = px
            .iter()
            .map(|&p| p.round().clamp(0.0, 255.0) as i32)
            .collect();
        let t = Tensor::from_shape(&[1, SIZE, SIZE, 3], &ints)
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let out = self.model.run(tvec!(t.into()))?;
        let v = self.model.floats(&out, 0, 51)?;
        let mut k = [Keypoint::default(); 17];
        for (i, kp) in k.iter_mut().enumerate() {
            let (x, y) = lb.to_frame(v[i * 3 + 1], v[i * 3], SIZE);
            *kp = Keypoint {
                x,
                y,
                score: v[i * 3 + 2],
            };
        }
        Ok(k)
    }
}
