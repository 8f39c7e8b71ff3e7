//! The lesson state machine: upcoming → open for check-in → in progress → ended, or
//! cancelled; the teacher may start early, end early or cancel.
//!
//! A lesson's state is a pure function of its timetable slot, what the teacher did (the
//! stored [`LessonControl`]) and the clock. So transitions missed while the board was off,
//! or skipped by a clock jump, resolve the same way every time: a board that boots
//! mid-lesson sees the lesson in progress; one that boots after it ended finalises it.
//! Two things never go backwards, whatever the clock does: a lesson the teacher ended or
//! cancelled, and a lesson already finalised (its report exists).

use std::time::Duration;

use chrono::{DateTime, TimeDelta};
use chrono_tz::Tz;
use ketang_sync::LessonControl;

use super::timetable::{LessonState, Slot};

/// A lesson may be started at most this long before its timetable start.
pub(crate) const MAX_EARLY_START: Duration = Duration::from_secs(30 * 60);

/// What a teacher can do to a lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LessonAction {
    Start,
    End,
    Cancel,
}

impl LessonAction {
    /// The `lesson` stream's name for it.
    pub(crate) const fn event(self) -> ketang_sync::LessonEvent {
        match self {
            Self::Start => ketang_sync::LessonEvent::Started,
            Self::End => ketang_sync::LessonEvent::Ended,
            Self::Cancel => ketang_sync::LessonEvent::Cancelled,
        }
    }

    pub(crate) const fn as_str(self) -> &'static str {
        self.event().as_str()
    }
}

/// The lesson's state at `now`.
pub(crate) fn state(
    slot: &Slot,
    control: Option<&LessonControl>,
    now: DateTime<Tz>,
    checkin_opens: Duration,
) -> LessonState {
    let scheduled = slot.state(now, checkin_opens);
    let Some(c) = control else {
        return scheduled;
    };
    if c.cancelled {
        LessonState::Cancelled
    } else if c.finalised || c.ended_at.is_some() {
        LessonState::Ended
    } else if c.started_at.is_some()
        && matches!(scheduled, LessonState::Upcoming | LessonState::Open)
    {
        LessonState::InProgress
    } else {
        scheduled
    }
}

/// Applies a teacher's action: the new control, or why the action does not apply now.
pub(crate) fn apply(
    action: LessonAction,
    slot: &Slot,
    control: &LessonControl,
    now: DateTime<Tz>,
    checkin_opens: Duration,
) -> Result<LessonControl, String> {
    let mut next = control.clone();
    let at = now.fixed_offset();
    match (action, state(slot, Some(control), now, checkin_opens)) {
        (_, LessonState::Cancelled) => return Err("the lesson was cancelled".into()),
        (_, LessonState::Ended) => return Err("the lesson has ended".into()),
        (LessonAction::Start, LessonState::InProgress) => {
            return Err("the lesson is already in progress".into());
        }
        (LessonAction::Start, _) => {
            let earliest =
                slot.starts_at - TimeDelta::from_std(MAX_EARLY_START).unwrap_or_default();
            if now < earliest {
                return Err(format!(
                    "the lesson starts at {}; it can be started at most {} minutes early",
                    slot.starts_at.format("%H:%M"),
                    MAX_EARLY_START.as_secs() / 60
                ));
            }
            next.started_at = Some(at);
        }
        (LessonAction::End, LessonState::InProgress) => next.ended_at = Some(at),
        (LessonAction::End, _) => {
            return Err("the lesson has not started; start it or cancel it".into());
        }
        (LessonAction::Cancel, _) => next.cancelled = true,
    }
    Ok(next)
}

/// Watches the clock for jumps between ticks.
#[derive(Debug, Default)]
pub(crate) struct ClockWatch {
    last: Option<DateTime<Tz>>,
}

/// A jump seen by [`ClockWatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Jump {
    Backwards(TimeDelta),
    Forwards(TimeDelta),
}

impl ClockWatch {
    /// Backwards by more than 2 s, or forwards by more than 5 min between two looks.
    pub(crate) fn observe(&mut self, now: DateTime<Tz>) -> Option<Jump> {
        let jump = self.last.and_then(|last| {
            let d = now - last;
            if d < TimeDelta::seconds(-2) {
                Some(Jump::Backwards(-d))
            } else if d > TimeDelta::minutes(5) {
                Some(Jump::Forwards(d))
            } else {
                None
            }
        });
        self.last = Some(now);
        jump
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;
    use chrono_tz::Asia::Shanghai;
    use ketang_sync::Period;
    use proptest::prelude::*;

    use super::*;

    const TEN_MIN: Duration = Duration::from_secs(600);

    fn at(hm: &str) -> DateTime<Tz> {
        DateTime::parse_from_rfc3339(&format!("2026-11-23T{hm}:00+08:00"))
            .unwrap()
            .with_timezone(&Shanghai)
    }

    fn slot() -> Slot {
        let t = |s| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        Slot {
            date: at("08:00").date_naive(),
            period: Period {
                weekday: 1,
                period: 1,
                starts: t("08:00"),
                ends: t("08:45"),
                subject: "数学".into(),
                teacher: "陈建国".into(),
                room: None,
                roster_id: "g7-c3".into(),
            },
            starts_at: at("08:00"),
            ends_at: at("08:45"),
            change: None,
        }
    }

    #[test]
    fn without_teacher_actions_the_timetable_decides() {
        let s = slot();
        assert_eq!(state(&s, None, at("07:00"), TEN_MIN), LessonState::Upcoming);
        assert_eq!(state(&s, None, at("07:55"), TEN_MIN), LessonState::Open);
        assert_eq!(
            state(&s, None, at("08:10"), TEN_MIN),
            LessonState::InProgress
        );
        assert_eq!(state(&s, None, at("09:00"), TEN_MIN), LessonState::Ended);
    }

    #[test]
    fn start_early_end_early_and_cancel() {
        let s = slot();
        let c = LessonControl::default();
        let started = apply(LessonAction::Start, &s, &c, at("07:52"), TEN_MIN).unwrap();
        assert_eq!(
            state(&s, Some(&started), at("07:53"), TEN_MIN),
            LessonState::InProgress
        );
        let err = apply(LessonAction::Start, &s, &started, at("07:53"), TEN_MIN).unwrap_err();
        assert!(err.contains("already"), "{err}");
        let ended = apply(LessonAction::End, &s, &started, at("08:30"), TEN_MIN).unwrap();
        assert_eq!(
            state(&s, Some(&ended), at("08:31"), TEN_MIN),
            LessonState::Ended
        );
        assert!(apply(LessonAction::Cancel, &s, &ended, at("08:31"), TEN_MIN).is_err());
        let cancelled = apply(LessonAction::Cancel, &s, &c, at("07:00"), TEN_MIN).unwrap();
        assert_eq!(
            state(&s, Some(&cancelled), at("08:10"), TEN_MIN),
            LessonState::Cancelled
        );
    }

    #[test]
    fn actions_that_do_not_apply_say_why() {
        let s = slot();
        let c = LessonControl::default();
        let e = apply(LessonAction::Start, &s, &c, at("07:00"), TEN_MIN).unwrap_err();
        assert!(e.contains("at most 30 minutes early"), "{e}");
        let e = apply(LessonAction::End, &s, &c, at("07:55"), TEN_MIN).unwrap_err();
        assert!(e.contains("has not started"), "{e}");
        let e = apply(LessonAction::End, &s, &c, at("09:00"), TEN_MIN).unwrap_err();
        assert!(e.contains("has ended"), "{e}");
    }

    #[test]
    fn a_finalised_or_ended_lesson_stays_ended_when_the_clock_jumps_back() {
        let s = slot();
        let finalised = LessonControl {
            finalised: true,
            ..LessonControl::default()
        };
        assert_eq!(
            state(&s, Some(&finalised), at("08:10"), TEN_MIN),
            LessonState::Ended
        );
        let ended = LessonControl {
            ended_at: Some(at("08:30").fixed_offset()),
            ..LessonControl::default()
        };
        assert_eq!(
            state(&s, Some(&ended), at("08:20"), TEN_MIN),
            LessonState::Ended
        );
    }

    #[test]
    fn the_clock_watch_flags_jumps_both_ways() {
        let mut w = ClockWatch::default();
        assert_eq!(w.observe(at("08:00")), None);
        assert_eq!(w.observe(at("08:01")), None);
        assert_eq!(
            w.observe(at("07:00")),
            Some(Jump::Backwards(TimeDelta::minutes(61)))
        );
        assert_eq!(
            w.observe(at("09:00")),
            Some(Jump::Forwards(TimeDelta::hours(2)))
        );
    }

    proptest! {
        /// Whatever the teacher does, whenever, and however the clock moves, the state is
        /// one of the five, an action either applies or says why, and an ended or cancelled
        /// lesson never comes back.
        #[test]
        fn ended_and_cancelled_are_final(steps in prop::collection::vec((0u8..4, 0i64..240), 1..30)) {
            let s = slot();
            let mut c = LessonControl::default();
            let mut final_state: Option<LessonState> = None;
            for (a, minute) in steps {
                let now = at("07:00") + TimeDelta::minutes(minute);
                if a < 3 {
                    let action = [LessonAction::Start, LessonAction::End, LessonAction::Cancel][a as usize];
                    match apply(action, &s, &c, now, TEN_MIN) {
                        Ok(n) => c = n,
                        Err(e) => prop_assert!(!e.is_empty()),
                    }
                }
                let st = state(&s, Some(&c), now, TEN_MIN);
                if let Some(f) = final_state
                    && (c.cancelled || c.ended_at.is_some())
                {
                    prop_assert_eq!(st, f);
                }
                if c.cancelled || c.ended_at.is_some() {
                    final_state = Some(st);
                }
            }
        }
    }
}
