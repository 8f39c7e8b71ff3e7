//! 晨午检: pairing an IR thermometer reading with the card tap of the student measured.
//!
//! At the door a student taps their card and holds their wrist or forehead to the
//! thermometer, in either order. A reading pairs with a tap when the two are at most
//! `window` apart; each tap and each reading pairs at most once. Readings outside
//! 30–45 °C are sensor faults (nobody in school has them), never fever.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta};
use chrono_tz::Tz;
use ketang_sync::HealthWindow;

/// The plausible range of a human skin/forehead reading, in °C.
pub(crate) const PLAUSIBLE_C: std::ops::RangeInclusive<f64> = 30.0..=45.0;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Paired {
    pub(crate) student_id: String,
    pub(crate) temp_c: f64,
    pub(crate) at: DateTime<Tz>,
}

#[derive(Debug, Default)]
pub(crate) struct Pairing {
    window: Duration,
    last_tap: Option<(String, DateTime<Tz>)>,
    last_reading: Option<(f64, DateTime<Tz>)>,
}

impl Pairing {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            ..Self::default()
        }
    }

    fn close(&self, a: DateTime<Tz>, b: DateTime<Tz>) -> bool {
        (a - b).abs() <= TimeDelta::from_std(self.window).unwrap_or_default()
    }

    /// A plausible reading (check [`PLAUSIBLE_C`] first). Pairs with a recent tap, if any.
    pub(crate) fn on_reading(&mut self, temp_c: f64, at: DateTime<Tz>) -> Option<Paired> {
        match self.last_tap.take() {
            Some((student_id, tap_at)) if self.close(at, tap_at) => Some(Paired {
                student_id,
                temp_c,
                at,
            }),
            _ => {
                self.last_reading = Some((temp_c, at));
                None
            }
        }
    }

    /// A tap by a known student. Pairs with a recent reading, if any.
    pub(crate) fn on_tap(&mut self, student_id: &str, at: DateTime<Tz>) -> Option<Paired> {
        match self.last_reading.take() {
            Some((temp_c, read_at)) if self.close(at, read_at) => Some(Paired {
                student_id: student_id.to_owned(),
                temp_c,
                at: read_at,
            }),
            _ => {
                self.last_tap = Some((student_id.to_owned(), at));
                None
            }
        }
    }
}

/// Which check a time belongs to.
pub(crate) fn window_of(
    t: NaiveTime,
    morning: (NaiveTime, NaiveTime),
    noon: (NaiveTime, NaiveTime),
) -> HealthWindow {
    if t >= morning.0 && t < morning.1 {
        HealthWindow::Morning
    } else if t >= noon.0 && t < noon.1 {
        HealthWindow::Noon
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

    #[test]
    fn a_reading_after_a_tap_pairs_with_that_student() {
        let mut p = Pairing::new(Duration::from_secs(10));
        assert_eq!(p.on_tap("S1", at("2026-11-23T07:30:00+08:00")), None);
        let got = p.on_reading(36.6, at("2026-11-23T07:30:04+08:00")).unwrap();
        assert_eq!(got.student_id, "S1");
        // The tap is used up.
        assert_eq!(p.on_reading(36.7, at("2026-11-23T07:30:05+08:00")), None);
    }

    #[test]
    fn a_reading_before_a_tap_pairs_too() {
        let mut p = Pairing::new(Duration::from_secs(10));
        assert_eq!(p.on_reading(37.9, at("2026-11-23T07:30:00+08:00")), None);
        let got = p.on_tap("S2", at("2026-11-23T07:30:09+08:00")).unwrap();
        assert_eq!((got.student_id.as_str(), got.temp_c), ("S2", 37.9));
    }

    #[test]
    fn readings_and_taps_too_far_apart_do_not_pair() {
        let mut p = Pairing::new(Duration::from_secs(10));
        p.on_tap("S1", at("2026-11-23T07:30:00+08:00"));
        assert_eq!(p.on_reading(36.6, at("2026-11-23T07:30:11+08:00")), None);
        assert_eq!(p.on_tap("S3", at("2026-11-23T07:31:00+08:00")), None);
    }

    #[test]
    fn windows_follow_the_configured_times() {
        let t = |s| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        let m = (t("07:00"), t("08:30"));
        let n = (t("12:30"), t("14:30"));
        assert_eq!(window_of(t("07:45"), m, n), HealthWindow::Morning);
        assert_eq!(window_of(t("13:00"), m, n), HealthWindow::Noon);
        assert_eq!(window_of(t("08:30"), m, n), HealthWindow::Other);
    }
}
