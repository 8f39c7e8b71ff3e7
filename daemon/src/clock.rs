//! The board's clock: the system clock, or (demo and tests only, `--clock`) a clock that
//! starts at a given instant and runs at real speed, and can be set (`POST
//! /api/v1/sim/clock`) to run a school day in minutes. Clones share the simulated time.
//!
//! Whether the clock is NTP-synchronised is recorded with every event: a board may boot
//! with a wrong clock. `synced()` reports what the time service says: chrony on the image
//! (asked every minute by [`watch_chrony`]; NTS first, `image/rootfs/chrony.conf`), or
//! systemd-timesyncd elsewhere (`/run/systemd/timesync/synchronized` exists once it has
//! synchronised); a simulated clock counts as synced.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use chrono_tz::Tz;

const TIMESYNC_FLAG: &str = "/run/systemd/timesync/synchronized";
const CHRONYC: &str = "/usr/bin/chronyc";

/// What chrony said last (false until it says it is synchronised).
static CHRONY_SYNCED: AtomicBool = AtomicBool::new(false);

/// chrony's last answer in words (`/api/v1/status` `clock.source`), once asked.
static CHRONY_SOURCE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// `chronyc -c tracking` in words: the reference, its stratum and the offset when
/// synchronised, else that it is not.
pub(crate) fn chrony_source(csv: &str) -> String {
    let line = csv.lines().next().unwrap_or_default();
    let f: Vec<&str> = line.split(',').collect();
    if !chrony_says_synced(csv) || f.len() < 5 {
        return "chrony: not synchronised".to_owned();
    }
    let offset_ms = f[4]
        .trim()
        .parse::<f64>()
        .map_or(String::new(), |s| format!(", off by {:.3} ms", s * 1000.0));
    format!(
        "chrony: {} (stratum {}){offset_ms}",
        f[1].trim(),
        f[2].trim()
    )
}

/// Whether `chronyc -c tracking` says the clock is synchronised: its last field, the leap
/// status, is `Normal` (or announces a leap second), not `Not synchronised`.
pub(crate) fn chrony_says_synced(csv: &str) -> bool {
    csv.lines()
        .next()
        .and_then(|l| l.rsplit(',').next())
        .is_some_and(|leap| matches!(leap.trim(), "Normal" | "Insert second" | "Delete second"))
}

/// Asks chrony, where it is installed, every minute until `stop`.
pub(crate) async fn watch_chrony(stop: tokio_util::sync::CancellationToken) {
    if !Path::new(CHRONYC).exists() {
        return;
    }
    loop {
        let out = tokio::process::Command::new(CHRONYC)
            .args(["-n", "-c", "tracking"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let (synced, source) = match tokio::time::timeout(Duration::from_secs(5), out).await {
            Ok(Ok(o)) if o.status.success() => {
                let csv = String::from_utf8_lossy(&o.stdout);
                (chrony_says_synced(&csv), chrony_source(&csv))
            }
            Ok(Ok(o)) => (false, format!("chrony: chronyc failed ({})", o.status)),
            Ok(Err(e)) => (false, format!("chrony: chronyc could not run: {e}")),
            Err(_) => (false, "chrony: no answer within 5 s".to_owned()),
        };
        *CHRONY_SOURCE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(source);
        if CHRONY_SYNCED.swap(synced, Ordering::Relaxed) != synced {
            tracing::info!(synced, "chrony's view of the clock changed.");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
            () = stop.cancelled() => return,
        }
    }
}

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
        self.simulated.is_some()
            || CHRONY_SYNCED.load(Ordering::Relaxed)
            || Path::new(TIMESYNC_FLAG).exists()
    }

    /// Where the time comes from and its state, in words (`/status`).
    pub(crate) fn source(&self) -> String {
        if self.simulated.is_some() {
            return "simulated (--clock)".to_owned();
        }
        if let Some(s) = CHRONY_SOURCE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return s;
        }
        if Path::new(TIMESYNC_FLAG).exists() {
            "systemd-timesyncd: synchronised".to_owned()
        } else {
            "system clock: no time service seen".to_owned()
        }
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
    fn chronys_leap_status_says_whether_the_clock_is_synchronised() {
        let synced = "A29FC87B,time.cloudflare.com,3,1764982800.123,-0.000012,0.000010,0.000020,-12.345,0.001,0.020,0.012,0.001,64.5,Normal\n";
        assert!(chrony_says_synced(synced));
        assert_eq!(
            chrony_source(synced),
            "chrony: time.cloudflare.com (stratum 3), off by -0.012 ms"
        );
        let not = "00000000,,0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,1.0,0.0,Not synchronised\n";
        assert_eq!(chrony_source(not), "chrony: not synchronised");
        assert!(!chrony_says_synced(not));
        assert!(!chrony_says_synced(""));
    }

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
