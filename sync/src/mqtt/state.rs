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
    /// pkid → (outbox seq, send order).
    by_pkid: HashMap<u16, (Option<u64>, u64)>,
    sends: u64,
}

impl InFlight {
    /// A publish was queued: `Some(seq)` for an outbox row, `None` for anything else.
    pub fn queued(&mut self, seq: Option<u64>) {
        self.queued.push_back(seq);
    }

    /// The event loop sent a publish with `pkid`.
    pub fn sent(&mut self, pkid: u16) {
        if let Some(seq) = self.queued.pop_front() {
            self.sends += 1;
            self.by_pkid.insert(pkid, (seq, self.sends));
        }
    }

    /// A PUBACK for `pkid`: the acknowledged outbox seq, if it was one.
    pub fn acked(&mut self, pkid: u16) -> Option<u64> {
        self.by_pkid.remove(&pkid).and_then(|(seq, _)| seq)
    }

    /// Outbox rows queued or sent and not yet acknowledged.
    pub fn seqs(&self) -> Vec<u64> {
        self.queued
            .iter()
            .flatten()
            .chain(self.by_pkid.values().filter_map(|(s, _)| s.as_ref()))
            .copied()
            .collect()
    }

    /// The outbox row sent earliest of those not yet acknowledged: the one a broker that
    /// processes a connection in order was handling when it closed the connection.
    pub fn oldest_sent(&self) -> Option<u64> {
        self.by_pkid
            .values()
            .filter_map(|(s, order)| s.map(|s| (order, s)))
            .min()
            .map(|(_, s)| s)
    }

    /// Outbox rows queued or sent and not yet acknowledged.
    pub fn outbox_len(&self) -> usize {
        self.queued.iter().flatten().count()
            + self.by_pkid.values().filter(|(s, _)| s.is_some()).count()
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

/// Why a connection attempt or a session failed, as the reconnect policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No broker answered: the port was closed (connection refused), the network or host
    /// was unreachable, the name did not resolve, the connect timed out; or an established
    /// session was lost. Retrying costs the broker nothing until it is back.
    Unreachable,
    /// A broker answered and would not or could not take us: a CONNACK refusal (server
    /// unavailable, bad credentials, not authorised) or a TLS handshake refused. Retrying
    /// fast would add to its load and cannot fix a configuration.
    Refused,
}

/// The reconnect policy (docs/mqtt.md "Reconnecting"):
/// * [`Failure::Unreachable`]: a delay drawn uniformly from `retry` (default 0.25–2 s),
///   however long the outage lasts, so a board is back within about a second of its
///   broker (median ≈ 0.7 s, never more than the upper bound plus the connect itself);
///   the jitter spreads a fleet's reconnections over the whole window;
/// * [`Failure::Refused`]: exponential backoff with full jitter from `refused` (default
///   2 s doubling up to 120 s), so a broker that is overloaded or refuses is backed off
///   hard and the fleet arrives spread over minutes;
/// * [`Reconnect::stable`] (a session that lasted or delivered) forgets the refusals.
#[derive(Debug, Clone)]
pub struct Reconnect {
    retry: (Duration, Duration),
    refused: (Duration, Duration),
    refusals: u32,
}

impl Reconnect {
    /// Delays for unreachable brokers drawn from `retry` (min, max); refusals back off from
    /// `refused.0` doubling up to `refused.1`.
    pub fn new(retry: (Duration, Duration), refused: (Duration, Duration)) -> Self {
        Self {
            retry,
            refused,
            refusals: 0,
        }
    }

    /// The wait before the next attempt after `failure`.
    pub fn next_delay(&mut self, failure: Failure) -> Duration {
        match failure {
            Failure::Unreachable => {
                let (lo, hi) = (self.retry.0, self.retry.1.max(self.retry.0));
                lo + jitter(hi - lo)
            }
            Failure::Refused => {
                let cap = self
                    .refused
                    .0
                    .saturating_mul(1u32 << self.refusals.min(16))
                    .min(self.refused.1);
                self.refusals = self.refusals.saturating_add(1);
                jitter(cap)
            }
        }
    }

    /// The broker refusals counted so far.
    pub fn refusals(&self) -> u32 {
        self.refusals
    }

    /// A session was stable (it lasted, or delivered records): forget the refusals.
    pub fn stable(&mut self) {
        self.refusals = 0;
    }
}

/// Uniform in [0, span].
fn jitter(span: Duration) -> Duration {
    let ms = span.as_millis() as u64;
    Duration::from_millis(if ms == 0 { 0 } else { fastrand::u64(0..=ms) })
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
    fn the_oldest_sent_row_is_the_first_sent_not_the_lowest_seq() {
        let mut f = InFlight::default();
        f.queued(None);
        f.queued(Some(50)); // an alarm overtook older rows
        f.queued(Some(7));
        assert_eq!(f.oldest_sent(), None, "nothing sent yet");
        f.sent(1);
        f.sent(2);
        f.sent(3);
        assert_eq!(f.oldest_sent(), Some(50));
        assert_eq!(f.outbox_len(), 2);
        assert_eq!(f.acked(2), Some(50));
        assert_eq!(f.oldest_sent(), Some(7));
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
    fn unreachable_brokers_are_retried_within_the_short_window_however_long_the_outage() {
        let mut r = Reconnect::new(
            (Duration::from_millis(250), Duration::from_secs(2)),
            (Duration::from_secs(2), Duration::from_secs(120)),
        );
        let mut sum = Duration::ZERO;
        for _ in 0..10_000 {
            let d = r.next_delay(Failure::Unreachable);
            assert!(
                d >= Duration::from_millis(250) && d <= Duration::from_secs(2),
                "{d:?}"
            );
            sum += d;
        }
        // Uniform over the window: the mean is its middle (1.125 s).
        let mean = sum / 10_000;
        assert!(
            mean > Duration::from_millis(1050) && mean < Duration::from_millis(1200),
            "{mean:?}"
        );
        assert_eq!(r.refusals(), 0);
    }

    #[test]
    fn refusals_back_off_exponentially_to_their_cap_and_a_stable_session_forgets_them() {
        let mut r = Reconnect::new(
            (Duration::from_millis(250), Duration::from_secs(2)),
            (Duration::from_secs(2), Duration::from_secs(120)),
        );
        let caps = [2u64, 4, 8, 16, 32, 64, 120, 120, 120];
        for cap in caps {
            let d = r.next_delay(Failure::Refused);
            assert!(d <= Duration::from_secs(cap), "{d:?} > {cap} s");
        }
        // Full jitter at the cap: over many draws the mean is near half of it.
        let mean = (0..2000)
            .map(|_| r.next_delay(Failure::Refused))
            .sum::<Duration>()
            / 2000;
        assert!(
            mean > Duration::from_secs(50) && mean < Duration::from_secs(70),
            "{mean:?}"
        );
        // Unreachable in between does not forget the refusals; a stable session does.
        let _ = r.next_delay(Failure::Unreachable);
        assert!(r.refusals() > 9);
        r.stable();
        assert_eq!(r.refusals(), 0);
        assert!(r.next_delay(Failure::Refused) <= Duration::from_secs(2));
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
