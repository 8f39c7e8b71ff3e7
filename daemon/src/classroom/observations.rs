//! What the camera and microphone observe of a lesson, as class-level aggregates only:
//! head count, behaviour (hand raising, standing, head down) and talk time.

use ketang_sync::{
    BehaviourBody, ClassScope, LessonReport, LessonTimeline, ReportBehaviour, ReportHeadCount,
    ReportTalkTime,
};

use crate::engine::timetable::Slot;
use chrono::{DateTime, FixedOffset, Utc};
use ketang_models::behaviour::{LessonBehaviour, Posture};
use ketang_models::vad::{Segment, StAnalysis};
use ketang_sync::AttendanceStatus;

use super::Classroom;

/// S-T analysis samples the lesson this often.
pub(super) const ST_INTERVAL_S: f32 = 30.0;

/// The lesson timeline's buckets (the board's report draws one bar per bucket).
const BUCKET_MIN: u32 = 5;

/// One looked-at frame, class-level: when, whether most heads were down, hands that went up.
#[derive(Debug, Clone, Copy)]
struct FrameObs {
    at: DateTime<Utc>,
    most_heads_down: bool,
    hand_raises: u32,
}

/// Rounds to three decimals for reports.
pub(super) fn r3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

/// Three decimals, `None` for NaN or infinity (sent as `null`).
fn finite(x: f32) -> Option<f64> {
    Some(r3(x)).filter(|v| v.is_finite())
}

/// Class-level observations of one lesson, kept in memory while it runs (a restart
/// mid-lesson starts them again): never who, only how many and how much.
#[derive(Debug)]
pub(crate) struct LessonObs {
    lesson_id: String,
    people_max: u32,
    behaviour: LessonBehaviour,
    /// Each frame, for the timeline (a 45-minute lesson at one frame per 2 s: ~1,400).
    frames: Vec<FrameObs>,
    speech: Vec<(DateTime<Utc>, DateTime<Utc>, bool)>,
    heard: bool,
    method: &'static str,
    /// Faces by expression over the lesson (engaged, neutral, negative), when the school
    /// opted in: the class's totals only.
    expressions: [u64; 3],
}

impl Classroom {
    /// The observations of the lesson open now (started afresh when the lesson changes).
    pub(super) fn observing(&mut self) -> Option<&mut LessonObs> {
        let id = self.current_slot()?.id();
        if self.observed.as_ref().is_none_or(|o| o.lesson_id != id) {
            self.observed = Some(LessonObs::new(id));
        }
        self.observed.as_mut()
    }

    /// The camera's head count: the lesson's is the most people seen at once.
    pub(crate) fn head_count_seen(&mut self, people: u32) {
        if let Some(o) = self.observing() {
            o.people_max = o.people_max.max(people);
        }
    }

    /// One frame's postures, into the lesson's behaviour aggregates.
    pub(crate) fn behaviour_seen(&mut self, postures: &[Posture]) {
        let at = self.clock.now().with_timezone(&Utc);
        if let Some(o) = self.observing() {
            let before = o.behaviour.hand_raise_events();
            o.behaviour.add_frame(postures);
            let down = postures.iter().filter(|p| p.head_down).count();
            o.frames.push(FrameObs {
                at,
                most_heads_down: !postures.is_empty() && down * 2 > postures.len(),
                hand_raises: o.behaviour.hand_raise_events() - before,
            });
        }
    }

    /// One frame's faces by expression (opt-in), into the lesson's class-level totals.
    pub(crate) fn expressions_seen(&mut self, counts: [u32; 3]) {
        if let Some(o) = self.observing() {
            for (t, c) in o.expressions.iter_mut().zip(counts) {
                *t += u64::from(c);
            }
        }
    }

    /// Speech heard by the microphone, into the lesson's talk-time timeline.
    pub(crate) fn speech_heard(
        &mut self,
        segments: Vec<(DateTime<Utc>, DateTime<Utc>, bool)>,
        method: &'static str,
    ) {
        if let Some(o) = self.observing() {
            o.heard = true;
            o.method = method;
            o.speech.extend(segments);
        }
    }

    /// What was observed in lesson `lesson_id`, if anything.
    pub(crate) fn observed_in(&self, lesson_id: &str) -> Option<&LessonObs> {
        self.observed.as_ref().filter(|o| o.lesson_id == lesson_id)
    }
}

impl LessonObs {
    /// The class's behaviour aggregates for the `behaviour` stream, if the camera looked at
    /// this lesson (the same figures as the report's `behaviour`).
    pub(super) fn behaviour_body(&self, slot: &Slot) -> Option<BehaviourBody> {
        let b = &self.behaviour;
        (b.frames() > 0).then(|| BehaviourBody {
            lesson_id: slot.id(),
            date: slot.date,
            period: slot.period.period,
            roster_id: slot.period.roster_id.clone(),
            scope: ClassScope::Class,
            frames: u64::from(b.frames()),
            hand_raise_events: u64::from(b.hand_raise_events()),
            share_most_heads_down: finite(b.share_most_heads_down()),
            heads_up_rate: finite(b.heads_up_rate()),
            standing_max: Some(u64::from(b.standing_max())),
        })
    }

    pub(super) fn new(lesson_id: String) -> Self {
        Self {
            lesson_id,
            people_max: 0,
            behaviour: LessonBehaviour::default(),
            frames: Vec::new(),
            speech: Vec::new(),
            heard: false,
            method: "room_mic",
            expressions: [0; 3],
        }
    }

    /// How the lesson from `from` to `to` went over its course (`None`: nothing observed):
    /// per 5 minutes the share of frames with most heads down and the hands that went up,
    /// and the S-T samples.
    pub(crate) fn timeline(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Option<LessonTimeline> {
        if self.frames.is_empty() && !self.heard {
            return None;
        }
        let span = (to - from).num_seconds().max(0);
        let bucket_s = i64::from(BUCKET_MIN) * 60;
        // Every bucket the lesson touches, the one holding its last second included.
        let n = usize::try_from(span / bucket_s + 1).unwrap_or(1);
        let mut frames = vec![0u32; n];
        let mut down = vec![0u32; n];
        let mut hands = vec![0u32; n];
        for f in &self.frames {
            let s = (f.at.fixed_offset() - from).num_seconds();
            let Ok(i) = usize::try_from(s / bucket_s) else {
                continue;
            };
            if s < 0 || s > span || i >= n {
                continue;
            }
            frames[i] += 1;
            down[i] += u32::from(f.most_heads_down);
            hands[i] += f.hand_raises;
        }
        let heads_down = frames
            .iter()
            .zip(&down)
            .map(|(&f, &d)| (f > 0).then(|| r3(d as f32 / f as f32)))
            .collect();
        let st = if self.heard {
            StAnalysis::sequence(&self.teacher_segments(from, to), span as f32, ST_INTERVAL_S)
                .iter()
                .map(|&t| if t { 'T' } else { 'S' })
                .collect()
        } else {
            String::new()
        };
        Some(LessonTimeline {
            bucket_min: BUCKET_MIN,
            frames,
            heads_down,
            hand_raises: hands,
            st_interval_s: ST_INTERVAL_S as u32,
            st,
            expressions: (self.expressions.iter().sum::<u64>() > 0).then(|| {
                ketang_sync::ExpressionTotals {
                    engaged: self.expressions[0],
                    neutral: self.expressions[1],
                    negative: self.expressions[2],
                }
            }),
        })
    }

    /// Speech between `from` and `to`, as seconds from `from`: (all, the teacher's).
    fn segments(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> (Vec<Segment>, Vec<Segment>) {
        let secs = |t: &DateTime<Utc>| (t.fixed_offset() - from).as_seconds_f32();
        let inside: Vec<&(DateTime<Utc>, DateTime<Utc>, bool)> = self
            .speech
            .iter()
            .filter(|(s, e, _)| e.fixed_offset() > from && s.fixed_offset() < to)
            .collect();
        let seg = |(s, e, _): &&(DateTime<Utc>, DateTime<Utc>, bool)| Segment {
            start_s: secs(s).max(0.0),
            end_s: secs(e),
        };
        (
            inside.iter().map(seg).collect(),
            inside.iter().filter(|x| x.2).map(seg).collect(),
        )
    }

    /// Speech between `from` and `to` that is not the teacher's, as seconds from `from`.
    fn student_segments(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Vec<Segment> {
        let secs = |t: &DateTime<Utc>| (t.fixed_offset() - from).as_seconds_f32();
        self.speech
            .iter()
            .filter(|(s, e, teacher)| !teacher && e.fixed_offset() > from && s.fixed_offset() < to)
            .map(|(s, e, _)| Segment {
                start_s: secs(s).max(0.0),
                end_s: secs(e),
            })
            .collect()
    }

    fn teacher_segments(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Vec<Segment> {
        self.segments(from, to).1
    }

    /// Adds `head_count`, `behaviour` and `talk_time` to a lesson report.
    pub(crate) fn fill_report(
        &self,
        report: &mut LessonReport,
        roll: &[(String, Option<AttendanceStatus>)],
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) {
        if self.people_max > 0 {
            // People seen at once against who is marked in the room: a difference is worth a
            // look (someone unrecognised, or marked present but not there), never an
            // accusation of anyone.
            let present = roll
                .iter()
                .filter(|(_, s)| {
                    matches!(s, Some(AttendanceStatus::Present | AttendanceStatus::Late))
                })
                .count();
            report.head_count = Some(ReportHeadCount {
                people_max: u64::from(self.people_max),
                present: u64::try_from(present).unwrap_or(u64::MAX),
                mismatch: usize::try_from(self.people_max).unwrap_or(usize::MAX) != present,
            });
        }
        let b = &self.behaviour;
        if b.frames() > 0 {
            report.behaviour = Some(ReportBehaviour {
                frames: u64::from(b.frames()),
                hand_raise_events: u64::from(b.hand_raise_events()),
                share_most_heads_down: finite(b.share_most_heads_down()),
                heads_up_rate: finite(b.heads_up_rate()),
                standing_max: u64::from(b.standing_max()),
            });
        }
        if self.heard {
            let (all, teacher) = self.segments(from, to);
            let duration = (to - from).as_seconds_f32().max(0.0);
            // Students' turns where they can be told from the teacher: their speech is what
            // the teacher's is not (the other channel, or another voice than hers).
            let student_turns = (self.method != "room_mic").then(|| {
                let students = self.student_segments(from, to);
                u64::from(ketang_models::voice::student_turns(&students, &teacher))
            });
            let st = StAnalysis::from_segments(&teacher, duration, ST_INTERVAL_S);
            report.talk_time = Some(ReportTalkTime {
                speech_s: r3(ketang_models::vad::speech_seconds(&all)),
                teacher_s: r3(ketang_models::vad::speech_seconds(&teacher)),
                samples: u64::from(st.samples),
                rt: r3(st.rt),
                ch: r3(st.ch),
                lesson_type: format!("{:?}", st.lesson_type()).to_lowercase(),
                method: self.method.to_owned(),
                student_turns,
            });
        }
    }
}
