//! Faces: detection with BlazeFace (MediaPipe's short- and full-range models), alignment on
//! its eye, nose and mouth keypoints, and embeddings with a MobileFaceNet-class model.
//!
//! * **Detection**: the frame (or each tile of it) is letterboxed into the model's square
//!   input, RGB scaled to −1…1. Raw outputs are decoded against MediaPipe's SSD anchors
//!   (short range: 128 px, strides 8/16/16/16, 2 anchors per cell per layer, 896 in all;
//!   full range: 192 px, stride 4, one anchor per cell, 2304), scores through a sigmoid,
//!   overlapping boxes merged by weighted non-maximum suppression (IoU > 0.3), as
//!   MediaPipe's `TensorsToDetectionsCalculator` and `NonMaxSuppressionCalculator` do.
//!   A classroom frame's faces are a few dozen pixels wide, too small once the whole frame
//!   is shrunk to 192 px, so [`FaceDetector::detect_tiled`] also runs overlapping tiles
//!   and merges the results.
//! * **Alignment**: a similarity transform (least squares over four points) maps the
//!   detector's eyes, nose tip and mouth centre onto the embedder's template (dlib's
//!   150 × 150 face chip, or the 112 × 112 ArcFace one); the crop is sampled bilinearly
//!   through it.
//! * **Embedding**: the aligned crop, scaled as the model wants, gives a vector that is
//!   L2-normalised here, so cosine similarity is a dot product ([`crate::gallery`]).
//!
//! An embedder is an [`EmbedderSpec`]: file, input side, template, pixel scaling and
//! match threshold. Any model with an NHWC `[1, N, N, 3]` input and one `[1, D]` output
//! fits; [`EMBEDDERS`] lists the ones measured (`docs/models.md`).

use std::path::Path;

use tract_onnx::prelude::*;

use crate::error::{ModelError, Result};
use crate::frame::{Frame, Letterbox};
use crate::runtime::Model;

/// Which BlazeFace model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// Faces within about 2 m (128 × 128 input): a student at the class board.
    Short,
    /// Faces across a room (192 × 192 input): the classroom camera.
    Full,
}

impl Range {
    const fn size(self) -> usize {
        match self {
            Self::Short => 128,
            Self::Full => 192,
        }
    }

    const fn anchors_len(self) -> usize {
        match self {
            Self::Short => 896,
            Self::Full => 2304,
        }
    }
}

/// A face found in a frame, in frame pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
    /// Detector confidence 0–1.
    pub score: f32,
    /// Right eye, left eye (the person's), nose tip, mouth centre, right ear, left ear.
    pub keypoints: [(f32, f32); 6],
}

impl Face {
    /// Intersection over union of two boxes.
    #[must_use]
    pub fn iou(&self, o: &Self) -> f32 {
        crate::frame::iou((self.x, self.y, self.w, self.h), (o.x, o.y, o.w, o.h))
    }

    /// The centre of the box.
    #[must_use]
    pub fn centre(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
}

/// MediaPipe SSD anchor centres (normalised), in the models' output order.
fn anchors(range: Range) -> Vec<(f32, f32)> {
    // (grid side, anchors per cell) per stride group.
    let groups: &[(usize, usize)] = match range {
        Range::Short => &[(16, 2), (8, 6)],
        Range::Full => &[(48, 1)],
    };
    let mut out = Vec::with_capacity(range.anchors_len());
    for &(side, per_cell) in groups {
        for y in 0..side {
            for x in 0..side {
                for _ in 0..per_cell {
                    out.push((
                        (x as f32 + 0.5) / side as f32,
                        (y as f32 + 0.5) / side as f32,
                    ));
                }
            }
        }
    }
    out
}

/// Weighted non-maximum suppression: each group of boxes overlapping the best remaining one
/// by more than `iou` becomes their score-weighted mean, with the best score.
fn weighted_nms(mut faces: Vec<Face>, iou: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(best) = faces.first().cloned() {
        let (group, rest): (Vec<Face>, Vec<Face>) =
            faces.into_iter().partition(|f| best.iou(f) > iou);
        faces = rest;
        let total: f32 = group.iter().map(|f| f.score).sum();
        let mut m = Face {
            x: 0.0,
            y: 0.0,
            w: 0.0,
            h: 0.0,
            score: best.score,
            keypoints: [(0.0, 0.0); 6],
        };
        for f in &group {
            let k = f.score / total;
            m.x += f.x * k;
            m.y += f.y * k;
            m.w += f.w * k;
            m.h += f.h * k;
            for (mk, fk) in m.keypoints.iter_mut().zip(&f.keypoints) {
                mk.0 += fk.0 * k;
                mk.1 += fk.1 * k;
            }
        }
        out.push(m);
    }
    out
}

/// A BlazeFace detector.
#[derive(Debug)]
pub struct FaceDetector {
    model: Model,
    range: Range,
    anchors: Vec<(f32, f32)>,
    min_score: f32,
    boxes_out: usize,
    scores_out: usize,
}

impl FaceDetector {
    /// Loads BlazeFace from `path` (`face_detection_short_range.onnx` or
    /// `face_detection_full_range.onnx`). Faces scoring under `min_score` (0–1; MediaPipe
    /// uses 0.5) are dropped.
    ///
    /// # Errors
    /// The file is missing or is not a BlazeFace model of this range (named).
    pub fn load(path: &Path, range: Range, min_score: f32) -> Result<Self> {
        let s = range.size();
        let model = Model::load(path, &[(f32::datum_type(), &[1, s, s, 3])], 2)?;
        let input = Tensor::zero::<f32>(&[1, s, s, 3]).map_err(|e| ModelError::Load {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let out = model.run(tvec!(input.into()))?;
        let n = range.anchors_len();
        let sizes: Vec<usize> = (0..out.len())
            .map(|i| Model::out_shape(&out, i).iter().product())
            .collect();
        let boxes_out = sizes.iter().position(|&l| l == n * 16);
        let scores_out = sizes.iter().position(|&l| l == n);
        let (Some(boxes_out), Some(scores_out)) = (boxes_out, scores_out) else {
            return Err(ModelError::Shape {
                path: path.to_owned(),
                what: format!(
                    "expected outputs of {} box values and {n} scores for {range:?} range, got sizes {sizes:?}",
                    n * 16
                ),
            });
        };
        Ok(Self {
            model,
            range,
            anchors: anchors(range),
            min_score,
            boxes_out,
            scores_out,
        })
    }

    /// Faces in the frame region (`rx`, `ry`, `rw`, `rh`), in frame pixels.
    fn detect_region(
        &self,
        frame: &Frame,
        rx: f32,
        ry: f32,
        rw: f32,
        rh: f32,
    ) -> Result<Vec<Face>> {
        let s = self.range.size();
        let lb = Letterbox::fit(rx, ry, rw, rh, s);
        let mut input = vec![0f32; s * s * 3];
        frame.warp_into(
            s,
            &mut input,
            |u, v| (lb.x0 + u * lb.scale, lb.y0 + v * lb.scale),
            |p| p / 127.5 - 1.0,
        );
        let t = Tensor::from_shape(&[1, s, s, 3], &input)
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let out = self.model.run(tvec!(t.into()))?;
        let n = self.anchors.len();
        let boxes = self.model.floats(&out, self.boxes_out, n * 16)?;
        let scores = self.model.floats(&out, self.scores_out, n)?;
        let sf = s as f32;
        let mut faces = Vec::new();
        for (i, &(ax, ay)) in self.anchors.iter().enumerate() {
            let score = 1.0 / (1.0 + (-scores[i].clamp(-100.0, 100.0)).exp());
            if score < self.min_score {
                continue;
            }
            let r = &boxes[i * 16..i * 16 + 16];
            let (cx, cy) = (r[0] / sf + ax, r[1] / sf + ay);
            let (w, h) = (r[2] / sf, r[3] / sf);
            let (x0, y0) = lb.to_frame(cx - w / 2.0, cy - h / 2.0, s);
            let (x1, y1) = lb.to_frame(cx + w / 2.0, cy + h / 2.0, s);
            let mut keypoints = [(0.0, 0.0); 6];
            for (k, kp) in keypoints.iter_mut().enumerate() {
                *kp = lb.to_frame(r[4 + 2 * k] / sf + ax, r[5 + 2 * k] / sf + ay, s);
            }
            faces.push(Face {
                x: x0,
                y: y0,
                w: x1 - x0,
                h: y1 - y0,
                score,
                keypoints,
            });
        }
        Ok(weighted_nms(faces, 0.3))
    }

    /// Faces in the whole frame (letterboxed into the model's input).
    ///
    /// # Errors
    /// Running the model failed.
    pub fn detect(&self, frame: &Frame) -> Result<Vec<Face>> {
        self.detect_region(frame, 0.0, 0.0, frame.width() as f32, frame.height() as f32)
    }

    /// Faces in the whole frame and in overlapping square tiles of `tile` pixels (a quarter
    /// overlap), merged: for classroom frames whose faces are too small for one pass.
    ///
    /// # Errors
    /// Running the model failed.
    pub fn detect_tiled(&self, frame: &Frame, tile: u32) -> Result<Vec<Face>> {
        let mut all = self.detect(frame)?;
        let (fw, fh) = (frame.width(), frame.height());
        let tile = tile.clamp(crate::frame::MIN_SIDE, fw.max(fh));
        if tile < fw.max(fh) {
            let step = (tile * 3 / 4).max(1);
            let starts = |len: u32| -> Vec<u32> {
                let mut v: Vec<u32> = (0..)
                    .map(|i| i * step)
                    .take_while(|&p| p + tile < len)
                    .collect();
                v.push(len.saturating_sub(tile));
                v.dedup();
                v
            };
            for y in starts(fh) {
                for x in starts(fw) {
                    all.extend(self.detect_region(
                        frame,
                        x as f32,
                        y as f32,
                        tile.min(fw) as f32,
                        tile.min(fh) as f32,
                    )?);
                }
            }
        }
        // A face cut by a tile edge scores lower and overlaps the whole one: merge.
        Ok(weighted_nms(all, 0.3))
    }
}

/// A face embedding model the pipeline knows: its file, input side, where the eyes, nose
/// and mouth go in its aligned crop, how pixels are scaled, and the cosine similarity
/// that makes a match (`docs/models.md`, "Face embedders", measures both).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbedderSpec {
    /// The name stored with each template it made (`inference.face_model`).
    pub name: &'static str,
    /// Its file in the models directory.
    pub file: &'static str,
    /// The side of its square NHWC RGB input.
    pub size: usize,
    /// Right eye, left eye (the person's: image left, image right), nose tip, mouth
    /// centre, in input pixels.
    pub template: [(f32, f32); 4],
    /// Input = (pixel 0–255 − `offset`) × `scale`.
    pub offset: f32,
    /// See `offset`.
    pub scale: f32,
    /// The default match threshold (cosine of the L2-normalised embeddings).
    pub threshold: f32,
    /// The default lead a match needs over the second most similar student.
    pub margin: f32,
}

/// dlib's ResNet face descriptor (128-d; Davis King, CC0/public domain), converted from
/// dlib's own files by `models/obtain.sh`. Its crop is dlib's 150 × 150 face chip (padding
/// 0.25): the template is dlib's mean face shape (`get_face_chip_details`) at those
/// points — eye centres (mean of each eye's six points), nose tip (point 30), mouth centre
/// (between the inner lips, points 62 and 66). The model scales pixels itself.
pub const DLIB_RESNET: EmbedderSpec = EmbedderSpec {
    name: "dlib_resnet_v1",
    file: "dlib_face_recognition_resnet_v1.onnx",
    size: 150,
    template: [
        (47.549, 46.599),
        (100.476, 46.599),
        (74.013, 76.563),
        (74.013, 105.527),
    ],
    offset: 0.0,
    scale: 1.0,
    threshold: 0.94,
    margin: 0.01,
};

/// MobileFaceNet-192 (weights without a licence: `docs/models.md`), on the ArcFace 112 ×
/// 112 template (mouth centre: the mean of the template's mouth corners).
pub const MOBILEFACENET: EmbedderSpec = EmbedderSpec {
    name: "mobilefacenet_192_b1",
    file: "mobilefacenet_192_b1.onnx",
    size: 112,
    template: [
        (38.2946, 51.6963),
        (73.5318, 51.5014),
        (56.0252, 71.7366),
        (56.1396, 92.2848),
    ],
    offset: 127.5,
    scale: 1.0 / 128.0,
    threshold: 0.45,
    margin: 0.05,
};

/// Every embedder the pipeline knows, the default first.
pub const EMBEDDERS: [EmbedderSpec; 2] = [DLIB_RESNET, MOBILEFACENET];

impl EmbedderSpec {
    /// The embedder called `name`.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        EMBEDDERS.into_iter().find(|e| e.name == name)
    }
}

/// The similarity transform (`a` as a complex scale-rotation, `t` a shift) taking `src`
/// points onto `dst` in the least-squares sense.
fn similarity(src: &[(f32, f32)], dst: &[(f32, f32)]) -> ((f32, f32), (f32, f32)) {
    let n = src.len() as f32;
    let ms = src
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.0 / n, a.1 + p.1 / n));
    let md = dst
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.0 / n, a.1 + p.1 / n));
    let (mut re, mut im, mut norm) = (0.0f32, 0.0f32, 0.0f32);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s.0 - ms.0, s.1 - ms.1);
        let (dx, dy) = (d.0 - md.0, d.1 - md.1);
        // conj(s) · d
        re += sx * dx + sy * dy;
        im += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    let a = if norm > 0.0 {
        (re / norm, im / norm)
    } else {
        (1.0, 0.0)
    };
    let t = (
        md.0 - (a.0 * ms.0 - a.1 * ms.1),
        md.1 - (a.0 * ms.1 + a.1 * ms.0),
    );
    (a, t)
}

/// A face embedding model.
#[derive(Debug)]
pub struct FaceEmbedder {
    model: Model,
    spec: EmbedderSpec,
    dim: usize,
}

impl FaceEmbedder {
    /// Loads the embedder `spec` from `path` (its `[1, size, size, 3]` input, one `[1, D]`
    /// output).
    ///
    /// # Errors
    /// The file is missing, or its output is not one vector.
    pub fn load(path: &Path, spec: EmbedderSpec) -> Result<Self> {
        let n = spec.size;
        let model = Model::load(path, &[(f32::datum_type(), &[1, n, n, 3])], 1)?;
        let input =
            Tensor::zero::<f32>(&[1, n, n, 3]).map_err(|e| ModelError::Input(e.to_string()))?;
        let out = model.run(tvec!(input.into()))?;
        let shape = Model::out_shape(&out, 0);
        let dim: usize = shape.iter().product();
        if !(64..=4096).contains(&dim) || shape.first() != Some(&1) {
            return Err(ModelError::Shape {
                path: path.to_owned(),
                what: format!("output {shape:?} is not one embedding vector"),
            });
        }
        Ok(Self { model, spec, dim })
    }

    /// Length of the embeddings.
    #[must_use]
    pub const fn dim(&self) -> usize {
        self.dim
    }

    /// Which embedder this is.
    #[must_use]
    pub const fn spec(&self) -> EmbedderSpec {
        self.spec
    }

    /// The face's aligned crop as the model's input.
    fn aligned(&self, frame: &Frame, face: &Face) -> Vec<f32> {
        let src = [
            face.keypoints[0],
            face.keypoints[1],
            face.keypoints[2],
            face.keypoints[3],
        ];
        // Template → frame, so each output pixel finds its source.
        let (a, t) = similarity(&self.spec.template, &src);
        let n = self.spec.size;
        let mut input = vec![0f32; n * n * 3];
        let (offset, scale) = (self.spec.offset, self.spec.scale);
        frame.warp_into(
            n,
            &mut input,
            |u, v| (a.0 * u - a.1 * v + t.0, a.1 * u + a.0 * v + t.1),
            |p| (p - offset) * scale,
        );
        input
    }

    /// The model's own output (not normalised) for an input already aligned and scaled:
    /// `size × size × 3` floats, row by row. For checking a converted model against the
    /// original on fixed inputs (`models/examples/verify.rs`).
    ///
    /// # Errors
    /// The input has the wrong length, or running the model failed.
    pub fn raw(&self, input: &[f32]) -> Result<Vec<f32>> {
        let n = self.spec.size;
        let t = Tensor::from_shape(&[1, n, n, 3], input).map_err(|e| {
            ModelError::Input(format!(
                "{} floats for a {n} × {n} × 3 input: {e}",
                input.len()
            ))
        })?;
        let out = self.model.run(tvec!(t.into()))?;
        self.model.floats(&out, 0, self.dim)
    }

    /// The L2-normalised embedding of `face` in `frame`.
    ///
    /// # Errors
    /// Running the model failed, or the face is too small to embed (its eyes closer than
    /// 8 pixels).
    pub fn embed(&self, frame: &Frame, face: &Face) -> Result<Vec<f32>> {
        let (r, l) = (face.keypoints[0], face.keypoints[1]);
        let eyes = ((r.0 - l.0).powi(2) + (r.1 - l.1).powi(2)).sqrt();
        if eyes < 8.0 {
            return Err(ModelError::Input(format!(
                "a face with eyes {eyes:.1} px apart is too small to recognise (8 px at least)"
            )));
        }
        let input = self.aligned(frame, face);
        let n = self.spec.size;
        let t = Tensor::from_shape(&[1, n, n, 3], &input)
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let out = self.model.run(tvec!(t.into()))?;
        let mut v = self.model.floats(&out, 0, self.dim)?;
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !n.is_finite() || n == 0.0 {
            return Err(ModelError::Run {
                model: self.model.path.display().to_string(),
                reason: "the embedding is zero or not finite".into(),
            });
        }
        for x in &mut v {
            *x /= n;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_match_the_models_output_counts_and_lie_inside_the_input() {
        for r in [Range::Short, Range::Full] {
            let a = anchors(r);
            assert_eq!(a.len(), r.anchors_len());
            assert!(
                a.iter()
                    .all(|&(x, y)| (0.0..1.0).contains(&x) && (0.0..1.0).contains(&y))
            );
        }
        // Short range: the 16×16 layer first, two anchors per cell.
        let a = anchors(Range::Short);
        assert_eq!(a[0], a[1]);
        assert!((a[0].0 - 1.0 / 32.0).abs() < 1e-6);
        assert!((a[512].0 - 1.0 / 16.0).abs() < 1e-6);
    }

    fn face(x: f32, score: f32) -> Face {
        Face {
            x,
            y: 0.0,
            w: 10.0,
            h: 10.0,
            score,
            keypoints: [(x, 0.0); 6],
        }
    }

    #[test]
    fn overlapping_boxes_merge_weighted_and_separate_ones_stay() {
        let out = weighted_nms(vec![face(0.0, 0.9), face(1.0, 0.6), face(50.0, 0.7)], 0.3);
        assert_eq!(out.len(), 2);
        assert!((out[0].score - 0.9).abs() < 1e-6);
        assert!((out[0].x - 0.4).abs() < 1e-4, "{}", out[0].x);
        assert!((out[1].x - 50.0).abs() < 1e-6);
    }

    #[test]
    fn the_similarity_transform_recovers_a_rotation_scale_and_shift() {
        // dst = (2 + 1i)·src + (5, -3)
        let src = [(0.0, 0.0), (10.0, 0.0), (3.0, 7.0), (-4.0, 2.0)];
        let dst: Vec<(f32, f32)> = src
            .iter()
            .map(|&(x, y)| (2.0 * x - y + 5.0, x + 2.0 * y - 3.0))
            .collect();
        let (a, t) = similarity(&src, &dst);
        assert!(
            (a.0 - 2.0).abs() < 1e-4 && (a.1 - 1.0).abs() < 1e-4,
            "{a:?}"
        );
        assert!(
            (t.0 - 5.0).abs() < 1e-3 && (t.1 + 3.0).abs() < 1e-3,
            "{t:?}"
        );
    }
}
