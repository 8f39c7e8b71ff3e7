//! The board's clock: the system clock, or (demo and tests only, `--clock`) a clock that
//! starts at a given instant and runs at real speed, and can be set (`POST
//! /api/v1/sim/clock`) to run a school day in minutes. Clones share the simulated time.
//!
//! Whether the clock is NTP-synchronised is recorded with every event: a board may boot
//! with a wrong clock. `synced()` reports what systemd-timesyncd says
//! (`/run/systemd/timesync/synchronized` exists once it has synchronised); a simulated clock
//! counts as synced.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use chrono_tz::Tz;

const TIMESYNC_FLAG: &str = "/run/systemd/timesync/synchronized";

#[derive(Debug, Clone)]
pub(crate) struct Clock {
    tz: Tz,
    simulated: Option<Arc<RwLock<SimTime>>>,
}

/// A simulated clock: the time it read at an instant.
type SimTime = (DateTime<Utc>, Instant);

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
            simulated: Some(Arc::new(RwLock::new((
                start.with_timezone(&Utc),
                Instant::now(),
            )))),
        }
    }

    /// Sets a simulated clock to `at` (it runs on from there); `false` for the system clock.
    pub(crate) fn set(&self, at: DateTime<FixedOffset>) -> bool {
        let Some(s) = &self.simulated else {
            return false;
        };
        *s.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            (at.with_timezone(&Utc), Instant::now());
        true
    }

    pub(crate) fn now(&self) -> DateTime<Tz> {
        let utc = match &self.simulated {
            None => Utc::now(),
            Some(s) => {
                let (start, at) = *s.read().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let other = c.clone();
        let later = DateTime::parse_from_rfc3339("2026-11-23T12:00:00+08:00").unwrap();
        assert!(other.set(later));
        assert_eq!(c.now().format("%H:%M").to_string(), "12:00");
        assert!(!Clock::system(chrono_tz::Asia::Shanghai).set(later));
    }
}
