//! Faces at the same place as in the last frame are the same people: who they were
//! recognised as (or that they were not) is reused for a while instead of embedding each
//! face again every frame. A classroom sits still: in a 40-face frame the embeddings are
//! most of the work, and a seated student's box barely moves between frames 2 s apart.
//!
//! A face counts as the same when its box overlaps a tracked one by at least
//! [`SAME_PLACE_IOU`]; a recognised face is trusted for [`RECOGNISED_FOR`], an unrecognised
//! one for [`UNRECOGNISED_FOR`] (shorter: someone turning towards the camera should be
//! recognised soon). Then the face is embedded again, which also re-checks the identity.

use std::time::{Duration, Instant};

use crate::face::Face;

/// Boxes overlapping this much (intersection over union) are the same face.
pub const SAME_PLACE_IOU: f32 = 0.6;
/// How long a recognition is reused.
pub const RECOGNISED_FOR: Duration = Duration::from_secs(60);
/// How long "not recognised" is reused.
pub const UNRECOGNISED_FOR: Duration = Duration::from_secs(10);

/// What is known of a face from an earlier frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    /// The student it was recognised as (`None`: nobody).
    pub who: Option<String>,
    /// With `who`: the similarity; without: the closest template's (if any).
    pub score: Option<f32>,
    /// When it was embedded.
    pub at: Instant,
}

/// The faces of the last frame and what is known of each.
#[derive(Debug, Default)]
pub struct Tracks {
    last: Vec<(Face, Known)>,
}

impl Tracks {
    /// What is known of `face` at `now`: from the best-overlapping face of the last frame,
    /// if it overlaps enough and its knowledge has not expired.
    #[must_use]
    pub fn known(&self, face: &Face, now: Instant) -> Option<&Known> {
        let (f, k) = self
            .last
            .iter()
            .max_by(|a, b| face.iou(&a.0).total_cmp(&face.iou(&b.0)))?;
        let ttl = if k.who.is_some() {
            RECOGNISED_FOR
        } else {
            UNRECOGNISED_FOR
        };
        (face.iou(f) >= SAME_PLACE_IOU && now.saturating_duration_since(k.at) < ttl).then_some(k)
    }

    /// This frame's faces become the ones the next frame is compared with.
    pub fn replace(&mut self, faces: Vec<(Face, Known)>) {
        self.last = faces;
    }

    /// Forgets everything (the gallery changed: identities must be looked at again).
    pub fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32) -> Face {
        Face {
            x,
            y,
            w: 40.0,
            h: 40.0,
            score: 0.9,
            keypoints: [(0.0, 0.0); 6],
        }
    }

    fn known(who: Option<&str>, at: Instant) -> Known {
        Known {
            who: who.map(str::to_owned),
            score: Some(0.95),
            at,
        }
    }

    #[test]
    fn a_face_that_stayed_put_is_known_until_its_time_is_up() {
        let t0 = Instant::now();
        let mut t = Tracks::default();
        t.replace(vec![
            (face(100.0, 100.0), known(Some("s1"), t0)),
            (face(300.0, 100.0), known(None, t0)),
        ]);
        // Moved 4 px: the same student.
        let k = t.known(&face(104.0, 102.0), t0 + Duration::from_secs(2));
        assert_eq!(k.and_then(|k| k.who.as_deref()), Some("s1"));
        // Moved half a face: someone else, or the same one to be looked at again.
        assert!(t.known(&face(120.0, 100.0), t0).is_none());
        // A place nobody was tracked at.
        assert!(t.known(&face(500.0, 500.0), t0).is_none());
        // Recognised: 60 s; not recognised: 10 s.
        assert!(
            t.known(&face(100.0, 100.0), t0 + Duration::from_secs(59))
                .is_some()
        );
        assert!(
            t.known(&face(100.0, 100.0), t0 + Duration::from_secs(60))
                .is_none()
        );
        assert!(
            t.known(&face(300.0, 100.0), t0 + Duration::from_secs(9))
                .is_some()
        );
        assert!(
            t.known(&face(300.0, 100.0), t0 + Duration::from_secs(10))
                .is_none()
        );
        t.clear();
        assert!(t.known(&face(100.0, 100.0), t0).is_none());
    }
}
