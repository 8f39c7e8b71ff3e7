//! 晨午检: pairing an IR thermometer reading with the card tap of the student measured.
//!
//! The door has one order, `school.health_order`: **reading first** (measure, then tap the
//! card; the default) or **card first** (tap, then measure). The first event of a student
//! waits; the second pairs with it when they are at most `window` apart. The rule
//! (`docs/domain.md`, "Health checks"), which never stores a reading under another
//! student as long as every student follows the door's order within the window:
//!
//! * a second event pairs only when **exactly one** first event waits; none waiting: no
//!   health check (a card tap is still a check-in);
//! * two or more waiting (two students measured, or two tapped, before either finished) is
//!   **ambiguous**: nothing is stored, the board says so, the waiting events are dropped,
//!   and until `window` after the last dropped one a second event does not pair (it may be
//!   a dropped student's own and could otherwise pair with someone else): ambiguous too
//!   when something waits, nothing when nothing does;
//! * events older than `window` are forgotten.
//!
//! A student who swaps the order at a door where the others keep it can still be paired
//! with another student's event: one order per door, said on screen. Readings outside
//! 30–45 °C are sensor faults (nobody in school has them), never fever, and never reach
//! the pairing.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta};
use chrono_tz::Tz;
use ketang_sync::HealthWindow;

/// The plausible range of a human skin/forehead reading, in °C.
pub(crate) const PLAUSIBLE_C: std::ops::RangeInclusive<f64> = 30.0..=45.0;

/// Which comes first at the door (`school.health_order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Order {
    /// Measure, then tap the card (测温后刷卡).
    #[default]
    ReadingFirst,
    /// Tap the card, then measure (刷卡后测温).
    CardFirst,
}

impl Order {
    /// The config name.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::ReadingFirst => "reading_first",
            Self::CardFirst => "card_first",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Paired {
    pub(crate) student_id: String,
    pub(crate) temp_c: f64,
    pub(crate) at: DateTime<Tz>,
}

/// What an event did to the pairing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// A reading and a student, to store.
    Paired(Paired),
    /// The event waits for its partner (or has none: a tap without a reading).
    Nothing,
    /// More than one student was waiting: nothing stored; the board asks them to measure
    /// one at a time.
    Ambiguous,
}

/// One waiting first event: a reading, or a student's tap.
#[derive(Debug, Clone)]
enum First {
    Reading(f64),
    Tap(String),
}

#[derive(Debug, Default)]
pub(crate) struct Pairing {
    window: Duration,
    order: Order,
    waiting: Vec<(First, DateTime<Tz>)>,
    /// Second events before this are refused (after an ambiguity).
    refuse_until: Option<DateTime<Tz>>,
}

impl Pairing {
    pub(crate) fn new(window: Duration, order: Order) -> Self {
        Self {
            window,
            order,
            ..Self::default()
        }
    }

    /// The door's order.
    pub(crate) const fn order(&self) -> Order {
        self.order
    }

    fn w(&self) -> TimeDelta {
        TimeDelta::from_std(self.window).unwrap_or_default()
    }

    fn forget_old(&mut self, now: DateTime<Tz>) {
        let w = self.w();
        self.waiting.retain(|(_, at)| now - *at <= w);
    }

    fn first(&mut self, e: First, at: DateTime<Tz>) -> Outcome {
        self.forget_old(at);
        // The same student tapping twice waits once.
        if let First::Tap(id) = &e {
            self.waiting
                .retain(|(f, _)| !matches!(f, First::Tap(other) if other == id));
        }
        self.waiting.push((e, at));
        Outcome::Nothing
    }

    fn second(&mut self, at: DateTime<Tz>, pair: impl FnOnce(&First) -> Option<Paired>) -> Outcome {
        self.forget_old(at);
        let refusing = self.refuse_until.is_some_and(|u| at <= u);
        match self.waiting.len() {
            0 => Outcome::Nothing,
            // Within a window of an ambiguity this may be a dropped student's own event:
            // refused; the one waiting keeps waiting for its own.
            1 if refusing => Outcome::Ambiguous,
            1 => {
                let (f, _) = self.waiting.remove(0);
                pair(&f).map_or(Outcome::Nothing, Outcome::Paired)
            }
            _ => {
                let last = self.waiting.iter().map(|(_, t)| *t).max().unwrap_or(at);
                self.refuse_until = Some(last + self.w());
                self.waiting.clear();
                Outcome::Ambiguous
            }
        }
    }

    /// A plausible reading (check [`PLAUSIBLE_C`] first).
    pub(crate) fn on_reading(&mut self, temp_c: f64, at: DateTime<Tz>) -> Outcome {
        match self.order {
            Order::ReadingFirst => self.first(First::Reading(temp_c), at),
            Order::CardFirst => self.second(at, |f| match f {
                First::Tap(student_id) => Some(Paired {
                    student_id: student_id.clone(),
                    temp_c,
                    at,
                }),
                First::Reading(_) => None,
            }),
        }
    }

    /// A tap by a known student.
    pub(crate) fn on_tap(&mut self, student_id: &str, at: DateTime<Tz>) -> Outcome {
        match self.order {
            Order::CardFirst => self.first(First::Tap(student_id.to_owned()), at),
            Order::ReadingFirst => self.second(at, |f| match f {
                First::Reading(temp_c) => Some(Paired {
                    student_id: student_id.to_owned(),
                    temp_c: *temp_c,
                    at,
                }),
                First::Tap(_) => None,
            }),
        }
    }
}

/// Which check a time belongs to.
pub(crate) fn window_of(
    t: NaiveTime,
    morning: (NaiveTime, NaiveTime),
    noon: (NaiveTime, NaiveTime),
    evening: Option<(NaiveTime, NaiveTime)>,
) -> HealthWindow {
    let inside = |w: (NaiveTime, NaiveTime)| t >= w.0 && t < w.1;
    if inside(morning) {
        HealthWindow::Morning
    } else if inside(noon) {
        HealthWindow::Noon
    } else if evening.is_some_and(inside) {
        HealthWindow::Evening
    } else {
        HealthWindow::Other
    }
}

#[cfg(test)]
mod tests {
    use chrono_tz::Asia::Shanghai;

    use super::*;

    fn at(s: &str) -> DateTime<Tz> {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Shanghai)
    }

    fn paired(o: Outcome) -> Paired {
        match o {
            Outcome::Paired(p) => p,
            other => panic!("not paired: {other:?}"),
        }
    }

    #[test]
    fn card_first_a_reading_after_a_tap_pairs_with_that_student() {
        let mut p = Pairing::new(Duration::from_secs(10), Order::CardFirst);
        assert_eq!(
            p.on_tap("S1", at("2026-11-23T07:30:00+08:00")),
            Outcome::Nothing
        );
        let got = paired(p.on_reading(36.6, at("2026-11-23T07:30:04+08:00")));
        assert_eq!(got.student_id, "S1");
        // The tap is used up.
        assert_eq!(
            p.on_reading(36.7, at("2026-11-23T07:30:05+08:00")),
            Outcome::Nothing
        );
    }

    #[test]
    fn reading_first_a_reading_before_a_tap_pairs() {
        let mut p = Pairing::new(Duration::from_secs(10), Order::ReadingFirst);
        assert_eq!(
            p.on_reading(37.9, at("2026-11-23T07:30:00+08:00")),
            Outcome::Nothing
        );
        let got = paired(p.on_tap("S2", at("2026-11-23T07:30:09+08:00")));
        assert_eq!((got.student_id.as_str(), got.temp_c), ("S2", 37.9));
        // A tap alone (nobody measured) pairs with nothing.
        assert_eq!(
            p.on_tap("S3", at("2026-11-23T07:30:10+08:00")),
            Outcome::Nothing
        );
    }

    #[test]
    fn readings_and_taps_too_far_apart_do_not_pair() {
        let mut p = Pairing::new(Duration::from_secs(10), Order::CardFirst);
        p.on_tap("S1", at("2026-11-23T07:30:00+08:00"));
        assert_eq!(
            p.on_reading(36.6, at("2026-11-23T07:30:11+08:00")),
            Outcome::Nothing
        );
    }

    #[test]
    fn two_students_waiting_is_ambiguous_and_their_own_events_are_refused_for_a_window() {
        // The defect: A taps, B taps, A's reading was stored under B.
        let mut p = Pairing::new(Duration::from_secs(10), Order::CardFirst);
        p.on_tap("A", at("2026-11-23T07:30:00+08:00"));
        p.on_tap("B", at("2026-11-23T07:30:02+08:00"));
        assert_eq!(
            p.on_reading(36.6, at("2026-11-23T07:30:04+08:00")),
            Outcome::Ambiguous
        );
        // B's reading next, and C tapping meanwhile: still refused, B's tap may be behind it.
        p.on_tap("C", at("2026-11-23T07:30:05+08:00"));
        assert_eq!(
            p.on_reading(36.8, at("2026-11-23T07:30:07+08:00")),
            Outcome::Ambiguous
        );
        // A window after the last dropped tap, and C's tap forgotten: a fresh tap pairs.
        p.on_tap("D", at("2026-11-23T07:30:16+08:00"));
        assert_eq!(
            paired(p.on_reading(36.5, at("2026-11-23T07:30:18+08:00"))).student_id,
            "D"
        );
        // The same student tapping twice is one student.
        p.on_tap("E", at("2026-11-23T07:31:00+08:00"));
        p.on_tap("E", at("2026-11-23T07:31:01+08:00"));
        assert_eq!(
            paired(p.on_reading(36.5, at("2026-11-23T07:31:03+08:00"))).student_id,
            "E"
        );
    }

    proptest::proptest! {
        /// Students at one door keeping its order, arriving at any times (queues, crowds):
        /// a reading is only ever stored under the student it was taken of. Students far
        /// enough apart (two windows) are all paired.
        #[test]
        fn a_reading_is_never_stored_under_another_student(
            card_first in proptest::bool::ANY,
            students in proptest::collection::vec((0u32..600, 0u32..=10), 1..25),
        ) {
            let order = if card_first { Order::CardFirst } else { Order::ReadingFirst };
            let t0 = at("2026-11-23T07:30:00+08:00");
            // (time, first?, student, temperature): each student's first event, then the
            // second at most a window later; temperatures name the student.
            let mut events: Vec<(DateTime<Tz>, bool, usize)> = Vec::new();
            for (i, (start, gap)) in students.iter().enumerate() {
                let a = t0 + TimeDelta::seconds(i64::from(*start));
                events.push((a, true, i));
                events.push((a + TimeDelta::seconds(i64::from(*gap)), false, i));
            }
            events.sort_by_key(|(t, first, _)| (*t, !*first));
            let temp = |i: usize| 36.0 + i as f64 / 100.0;
            let mut p = Pairing::new(Duration::from_secs(10), order);
            let mut stored = Vec::new();
            for (t, first, i) in &events {
                let reading = *first != card_first;
                let out = if reading { p.on_reading(temp(*i), *t) } else { p.on_tap(&format!("S{i}"), *t) };
                if let Outcome::Paired(x) = out {
                    proptest::prop_assert_eq!(&x.student_id, &format!("S{}", *i), "{:?}", events);
                    proptest::prop_assert!((x.temp_c - temp(*i)).abs() < 1e-9, "{:?} {:?}", x, events);
                    stored.push(*i);
                }
            }
            // Alone within two windows on each side: always paired.
            for (i, (start, _)) in students.iter().enumerate() {
                let alone = students.iter().enumerate().all(|(j, (s2, _))| j == i || s2.abs_diff(*start) > 21);
                if alone {
                    proptest::prop_assert!(stored.contains(&i), "S{} alone but not paired: {:?}", i, events);
                }
            }
        }
    }

    #[test]
    fn windows_follow_the_configured_times() {
        let t = |s| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        let m = (t("07:00"), t("08:30"));
        let n = (t("12:30"), t("14:30"));
        assert_eq!(window_of(t("07:45"), m, n, None), HealthWindow::Morning);
        assert_eq!(window_of(t("13:00"), m, n, None), HealthWindow::Noon);
        assert_eq!(window_of(t("08:30"), m, n, None), HealthWindow::Other);
        // 晚检 only where the school has one (boarding schools).
        assert_eq!(window_of(t("19:00"), m, n, None), HealthWindow::Other);
        let e = Some((t("18:30"), t("20:30")));
        assert_eq!(window_of(t("19:00"), m, n, e), HealthWindow::Evening);
        assert_eq!(window_of(t("20:30"), m, n, e), HealthWindow::Other);
    }
}
