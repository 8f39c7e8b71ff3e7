//! Classroom behaviour from pose keypoints: rules, not a model, so each is explainable.
//!
//! Keypoints are COCO's 17 (MoveNet order), in image coordinates with y growing downwards;
//! a keypoint counts when its score is at least [`MIN_SCORE`]. Lengths are measured in
//! shoulder widths, so the rules hold at any distance from the camera. The geometry:
//!
//! * **hand raised**: a wrist above the nose by at least 0.3 shoulder widths, and above
//!   its own elbow (an arm up, not a hand at the face);
//! * **standing**: hips and knees visible, the thighs steep (the hip-to-knee line within
//!   35° of vertical) and at least 0.8 torso lengths long in the image. A seated student
//!   seen from the front of the room has foreshortened, near-horizontal thighs, or none
//!   visible under the desk;
//! * **head down**: the nose less than 0.25 shoulder widths above the shoulder line (it sits
//!   about 0.5–0.8 above when a student looks ahead), or the nose invisible while both
//!   shoulders are seen.
//!
//! Per-lesson aggregates ([`LessonBehaviour`]) are what a report may carry; per-student
//! flags stay on the device.

/// Keypoint indices (COCO order).
pub mod kp {
    /// Nose.
    pub const NOSE: usize = 0;
    /// Left shoulder.
    pub const L_SHOULDER: usize = 5;
    /// Right shoulder.
    pub const R_SHOULDER: usize = 6;
    /// Left elbow.
    pub const L_ELBOW: usize = 7;
    /// Right elbow.
    pub const R_ELBOW: usize = 8;
    /// Left wrist.
    pub const L_WRIST: usize = 9;
    /// Right wrist.
    pub const R_WRIST: usize = 10;
    /// Left hip.
    pub const L_HIP: usize = 11;
    /// Right hip.
    pub const R_HIP: usize = 12;
    /// Left knee.
    pub const L_KNEE: usize = 13;
    /// Right knee.
    pub const R_KNEE: usize = 14;
}

/// A keypoint is used from this score on.
pub const MIN_SCORE: f32 = 0.3;

/// One keypoint: position (any consistent unit, y down) and confidence.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Keypoint {
    /// Horizontal position.
    pub x: f32,
    /// Vertical position, growing downwards.
    pub y: f32,
    /// Confidence 0–1.
    pub score: f32,
}

/// What the rules see in one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Posture {
    /// A hand is raised.
    pub hand_raised: bool,
    /// Standing.
    pub standing: bool,
    /// Head down (looking at the desk, or resting on it).
    pub head_down: bool,
}

fn seen(k: &[Keypoint; 17], i: usize) -> Option<Keypoint> {
    let p = k[i];
    (p.score >= MIN_SCORE).then_some(p)
}

/// Applies the rules to one person's keypoints. `None` when the shoulders are not both
/// seen (no scale to measure by).
#[must_use]
pub fn posture(k: &[Keypoint; 17]) -> Option<Posture> {
    let ls = seen(k, kp::L_SHOULDER)?;
    let rs = seen(k, kp::R_SHOULDER)?;
    let sw = ((ls.x - rs.x).powi(2) + (ls.y - rs.y).powi(2)).sqrt();
    if sw <= f32::EPSILON {
        return None;
    }
    let shoulder_y = (ls.y + rs.y) / 2.0;
    let nose = seen(k, kp::NOSE);
    let hand = |w: usize, e: usize| -> bool {
        let (Some(w), Some(n)) = (seen(k, w), nose) else {
            return false;
        };
        let above_elbow = seen(k, e).is_none_or(|e| w.y < e.y);
        n.y - w.y >= 0.3 * sw && above_elbow
    };
    let hand_raised = hand(kp::L_WRIST, kp::L_ELBOW) || hand(kp::R_WRIST, kp::R_ELBOW);
    let head_down = nose.is_none_or(|n| shoulder_y - n.y < 0.25 * sw);
    let leg = |h: usize, kn: usize| -> Option<bool> {
        let (h, kn) = (seen(k, h)?, seen(k, kn)?);
        let (dx, dy) = (kn.x - h.x, kn.y - h.y);
        let torso = (h.y - shoulder_y).abs().max(f32::EPSILON);
        let steep = dy > 0.0 && dx.abs() <= dy * 35f32.to_radians().tan();
        Some(steep && dy >= 0.8 * torso)
    };
    let standing = match (leg(kp::L_HIP, kp::L_KNEE), leg(kp::R_HIP, kp::R_KNEE)) {
        (Some(a), Some(b)) => a && b,
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => false,
    };
    Some(Posture {
        hand_raised,
        standing,
        head_down,
    })
}

/// A lesson's behaviour, aggregated over sampled frames of the whole class.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LessonBehaviour {
    frames: u32,
    people_seen: u64,
    heads_up: u64,
    frames_most_heads_down: u32,
    hand_raise_events: u32,
    hands_up_before: u32,
    standing_max: u32,
}

impl LessonBehaviour {
    /// Adds one frame's postures.
    pub fn add_frame(&mut self, people: &[Posture]) {
        self.frames += 1;
        let n = people.len() as u64;
        let down = people.iter().filter(|p| p.head_down).count() as u64;
        let hands = people.iter().filter(|p| p.hand_raised).count() as u32;
        let standing = people.iter().filter(|p| p.standing).count() as u32;
        self.people_seen += n;
        self.heads_up += n - down;
        if n > 0 && down * 2 > n {
            self.frames_most_heads_down += 1;
        }
        // A raise counts when more hands are up than in the frame before.
        self.hand_raise_events += hands.saturating_sub(self.hands_up_before);
        self.hands_up_before = hands;
        self.standing_max = self.standing_max.max(standing);
    }

    /// Frames aggregated.
    #[must_use]
    pub const fn frames(&self) -> u32 {
        self.frames
    }

    /// Hands that went up during the lesson.
    #[must_use]
    pub const fn hand_raise_events(&self) -> u32 {
        self.hand_raise_events
    }

    /// Share of sampled frames where most people had their heads down (0–1).
    #[must_use]
    pub fn share_most_heads_down(&self) -> f32 {
        if self.frames == 0 {
            0.0
        } else {
            self.frames_most_heads_down as f32 / self.frames as f32
        }
    }

    /// Share of person-observations with the head up (抬头率, 0–1).
    #[must_use]
    pub fn heads_up_rate(&self) -> f32 {
        if self.people_seen == 0 {
            0.0
        } else {
            self.heads_up as f32 / self.people_seen as f32
        }
    }

    /// Most people standing at once.
    #[must_use]
    pub const fn standing_max(&self) -> u32 {
        self.standing_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seated student facing the camera: shoulders 100 apart at y=300, nose at y=240,
    /// hands on the desk, hips under the desk (not seen).
    fn seated() -> [Keypoint; 17] {
        let mut k = [Keypoint::default(); 17];
        let mut set = |i: usize, x: f32, y: f32| {
            k[i] = Keypoint { x, y, score: 0.9 };
        };
        set(kp::NOSE, 200.0, 240.0);
        set(1, 190.0, 230.0);
        set(2, 210.0, 230.0);
        set(kp::L_SHOULDER, 250.0, 300.0);
        set(kp::R_SHOULDER, 150.0, 300.0);
        set(kp::L_ELBOW, 265.0, 370.0);
        set(kp::R_ELBOW, 135.0, 370.0);
        set(kp::L_WRIST, 240.0, 400.0);
        set(kp::R_WRIST, 160.0, 400.0);
        k
    }

    #[test]
    fn a_seated_student_looking_ahead_is_none_of_the_three() {
        assert_eq!(posture(&seated()), Some(Posture::default()));
    }

    #[test]
    fn a_wrist_above_the_head_and_its_elbow_is_a_raised_hand() {
        let mut k = seated();
        k[kp::R_ELBOW] = Keypoint {
            x: 130.0,
            y: 240.0,
            score: 0.9,
        };
        k[kp::R_WRIST] = Keypoint {
            x: 135.0,
            y: 170.0,
            score: 0.9,
        };
        assert!(posture(&k).unwrap().hand_raised);
        // A hand at the chin is not.
        let mut k = seated();
        k[kp::R_WRIST] = Keypoint {
            x: 195.0,
            y: 250.0,
            score: 0.9,
        };
        assert!(!posture(&k).unwrap().hand_raised);
        // An unsure wrist is not used.
        let mut k = seated();
        k[kp::R_WRIST] = Keypoint {
            x: 135.0,
            y: 150.0,
            score: 0.1,
        };
        assert!(!posture(&k).unwrap().hand_raised);
    }

    #[test]
    fn a_nose_near_the_shoulder_line_or_hidden_is_head_down() {
        let mut k = seated();
        k[kp::NOSE].y = 290.0;
        assert!(posture(&k).unwrap().head_down);
        let mut k = seated();
        k[kp::NOSE].score = 0.05;
        assert!(posture(&k).unwrap().head_down);
    }

    #[test]
    fn long_steep_thighs_are_standing_and_foreshortened_ones_are_not() {
        let mut k = seated();
        let mut set = |i: usize, x: f32, y: f32| k[i] = Keypoint { x, y, score: 0.8 };
        set(kp::L_HIP, 235.0, 460.0);
        set(kp::R_HIP, 165.0, 460.0);
        set(kp::L_KNEE, 238.0, 610.0);
        set(kp::R_KNEE, 162.0, 612.0);
        assert!(posture(&k).unwrap().standing);
        // Seated: knees forward and barely lower than the hips.
        let mut s = k;
        s[kp::L_KNEE] = Keypoint {
            x: 300.0,
            y: 500.0,
            score: 0.8,
        };
        s[kp::R_KNEE] = Keypoint {
            x: 100.0,
            y: 500.0,
            score: 0.8,
        };
        assert!(!posture(&s).unwrap().standing);
    }

    #[test]
    fn without_both_shoulders_there_is_no_verdict() {
        let mut k = seated();
        k[kp::L_SHOULDER].score = 0.0;
        assert_eq!(posture(&k), None);
    }

    #[test]
    fn lesson_aggregates_count_raises_heads_down_frames_and_heads_up_rate() {
        let up = Posture::default();
        let down = Posture {
            head_down: true,
            ..up
        };
        let hand = Posture {
            hand_raised: true,
            ..up
        };
        let mut l = LessonBehaviour::default();
        l.add_frame(&[up, up, down, down, down]); // most heads down
        l.add_frame(&[hand, up, down, up, up]); // one hand goes up
        l.add_frame(&[hand, hand, up, up, up]); // a second
        l.add_frame(&[up, up, up, up, up]); // hands down
        assert_eq!(l.frames(), 4);
        assert_eq!(l.hand_raise_events(), 2);
        assert!((l.share_most_heads_down() - 0.25).abs() < 1e-6);
        assert!((l.heads_up_rate() - 16.0 / 20.0).abs() < 1e-6);
    }
}
