//! The board's clock: the system clock, or (demo and tests only, `--clock`) a clock that
//! starts at a given instant and runs at real speed.
//!
//! Whether the clock is NTP-synchronised is recorded with every event: a board may boot
//! with a wrong clock. `synced()` reports what systemd-timesyncd says
//! (`/run/systemd/timesync/synchronized` exists once it has synchronised); a simulated clock
//! counts as synced.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use chrono_tz::Tz;

const TIMESYNC_FLAG: &str = "/run/systemd/timesync/synchronized";

#[derive(Debug, Clone)]
pub(crate) struct Clock {
    tz: Tz,
    simulated: Option<(DateTime<Utc>, Instant)>,
}

impl Clock {
    pub(crate) fn system(tz: Tz) -> Self {
        Self {
            tz,
            simulated: None,
        }
    }

    /// A clock that reads `start` now and advances in real time.
    pub(crate) fn starting_at(tz: Tz, start: DateTime<FixedOffset>) -> Self {
        Self {
            tz,
            simulated: Some((start.with_timezone(&Utc), Instant::now())),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Tz> {
        let utc = match self.simulated {
            None => Utc::now(),
            Some((start, at)) => {
                start + TimeDelta::from_std(at.elapsed()).unwrap_or(TimeDelta::zero())
            }
        };
        utc.with_timezone(&self.tz)
    }

    /// Now, with its offset fixed (the form stored and synced).
    pub(crate) fn now_fixed(&self) -> DateTime<FixedOffset> {
        self.now().fixed_offset()
    }

    pub(crate) fn synced(&self) -> bool {
        self.simulated.is_some() || Path::new(TIMESYNC_FLAG).exists()
    }

    pub(crate) fn is_simulated(&self) -> bool {
        self.simulated.is_some()
    }

    pub(crate) fn timezone(&self) -> Tz {
        self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_clock_starts_where_it_is_told_and_runs_forward() {
        let start = DateTime::parse_from_rfc3339("2026-11-23T07:55:00+08:00").unwrap();
        let c = Clock::starting_at(chrono_tz::Asia::Shanghai, start);
        let a = c.now();
        assert!(a.fixed_offset() >= start && a.fixed_offset() < start + TimeDelta::seconds(5));
        assert_eq!(a.format("%H:%M").to_string(), "07:55");
        assert!(c.synced());
        assert!(c.now() >= a);
    }
}
