//! Pure state of the drain: which outbox rows are in flight under which packet id, the
//! reconnect backoff, and the publish rate limit. No I/O; unit-tested.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Matches rumqttc's `Outgoing::Publish(pkid)` events to outbox rows.
///
/// Design: `AsyncClient::publish` returns no packet id (rumqtt #349), but the event loop
/// emits `Outgoing::Publish(pkid)` for requests in the order they were queued. So queued
/// rows wait in a FIFO until their pkid is known; a PUBACK then names the row. Non-outbox
/// publishes (the birth message) take a place in the FIFO as `None`.
#[derive(Debug, Default)]
pub struct InFlight {
    queued: VecDeque<Option<u64>>,
    by_pkid: HashMap<u16, Option<u64>>,
}

impl InFlight {
    /// A publish was queued: `Some(seq)` for an outbox row, `None` for anything else.
    pub fn queued(&mut self, seq: Option<u64>) {
        self.queued.push_back(seq);
    }

    /// The event loop sent a publish with `pkid`.
    pub fn sent(&mut self, pkid: u16) {
        if let Some(seq) = self.queued.pop_front() {
            self.by_pkid.insert(pkid, seq);
        }
    }

    /// A PUBACK for `pkid`: the acknowledged outbox seq, if it was one.
    pub fn acked(&mut self, pkid: u16) -> Option<u64> {
        self.by_pkid.remove(&pkid).flatten()
    }

    /// Outbox rows queued or sent and not yet acknowledged.
    pub fn seqs(&self) -> Vec<u64> {
        self.queued
            .iter()
            .flatten()
            .chain(self.by_pkid.values().flatten())
            .copied()
            .collect()
    }

    /// Publishes not yet acknowledged (outbox or not).
    pub fn len(&self) -> usize {
        self.queued.len() + self.by_pkid.len()
    }

    /// Nothing in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Capped exponential backoff with full jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Between `min` and `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            attempt: 0,
        }
    }

    /// The next wait: uniformly random in [min, min·2^attempt] capped at max.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self
            .min
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let span = cap.saturating_sub(self.min).as_millis() as u64;
        self.min
            + Duration::from_millis(if span == 0 {
                0
            } else {
                fastrand::u64(0..=span)
            })
    }

    /// Connected: start over.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A token bucket: `rate` tokens per second, burst `rate`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// `rate` per second.
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            tokens: rate,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        self.at = now;
    }

    /// How many whole tokens are available now (up to `want`); takes them.
    pub fn take(&mut self, want: usize, now: Instant) -> usize {
        self.refill(now);
        let n = (self.tokens.floor() as usize).min(want);
        self.tokens -= n as f64;
        n
    }

    /// How long until one token is available.
    pub fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkids_map_to_rows_in_queue_order_and_skip_non_outbox_publishes() {
        let mut f = InFlight::default();
        f.queued(None); // birth
        f.queued(Some(7));
        f.queued(Some(9));
        assert_eq!(f.len(), 3);
        f.sent(1);
        f.sent(2);
        f.sent(3);
        assert_eq!(f.acked(3), Some(9));
        assert_eq!(f.acked(1), None);
        assert_eq!(f.acked(2), Some(7));
        assert!(f.is_empty());
    }

    #[test]
    fn seqs_in_flight_include_queued_and_sent_rows() {
        let mut f = InFlight::default();
        f.queued(Some(1));
        f.queued(Some(2));
        f.sent(10);
        let mut s = f.seqs();
        s.sort_unstable();
        assert_eq!(s, vec![1, 2]);
        assert_eq!(f.acked(99), None);
    }

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        for _ in 0..50 {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_secs(5),
                "{d:?}"
            );
        }
        b.reset();
        let d = b.next_delay();
        assert!(d <= Duration::from_millis(100), "{d:?}");
    }

    #[test]
    fn the_token_bucket_limits_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        assert_eq!(b.take(100, t0), 10);
        assert_eq!(b.take(1, t0), 0);
        assert!(b.wait() > Duration::ZERO);
        assert_eq!(b.take(100, t0 + Duration::from_millis(500)), 5);
        assert_eq!(b.take(100, t0 + Duration::from_secs(60)), 10);
    }
}
