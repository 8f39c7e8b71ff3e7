//! Who may try a PIN or the technician password now.
//!
//! * **One slot per attempt, taken before verifying.** An attempt reserves a place in its
//!   address's and its account's counters under one lock, so concurrent guesses count
//!   before Argon2 runs: at most [`MAX_FAILURES`] guesses per address in
//!   [`FAILURE_WINDOW`], however many arrive at once.
//! * **Per account, across all addresses.** [`ACCOUNT_FAILURES`] wrong guesses for one
//!   staff id (or the technician password) within [`ACCOUNT_WINDOW`], from anywhere, lock
//!   that account's PIN for [`ACCOUNT_LOCK`]. The teacher gets back in at once with their
//!   staff card on the board (a card unlock clears the lock), or waits it out; the
//!   technician's password waits it out. Unknown staff ids are counted like known ones, so
//!   the answer does not tell them apart.
//! * **At most [`MAX_VERIFYING`] verifications at a time** (each Argon2 check takes 19 MiB
//!   and tens of milliseconds): a login that finds them busy is answered 429 at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiError;

/// Wrong guesses allowed per client address within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window over which an address's failures count.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(300);
/// Wrong guesses for one account, from any address, before it is locked.
pub const ACCOUNT_FAILURES: u32 = 5;
/// The window over which an account's failures count.
pub const ACCOUNT_WINDOW: Duration = Duration::from_secs(900);
/// How long a locked account stays locked (a staff card unlock ends it at once).
pub const ACCOUNT_LOCK: Duration = Duration::from_secs(900);
/// PIN or password verifications running at once.
pub const MAX_VERIFYING: usize = 2;
/// Accounts and addresses remembered at most (beyond, new ones are refused until old
/// entries expire): bounds memory against guesses from many addresses or for many ids.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Counter {
    failures: u32,
    pending: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

impl Counter {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            pending: 0,
            since: now,
            locked_until: None,
        }
    }

    /// Starts a new window when the old one is over (pending attempts carry over).
    fn roll(&mut self, now: Instant, window: Duration) {
        if now.duration_since(self.since) >= window {
            self.failures = 0;
            self.since = now;
        }
        if self.locked_until.is_some_and(|t| t <= now) {
            self.locked_until = None;
            self.failures = 0;
            self.since = now;
        }
    }

    fn idle(&self, now: Instant, window: Duration) -> bool {
        self.pending == 0
            && self.locked_until.is_none_or(|t| t <= now)
            && now.duration_since(self.since) >= window
    }
}

#[derive(Debug, Default)]
struct State {
    by_ip: HashMap<IpAddr, Counter>,
    by_account: HashMap<String, Counter>,
}

/// The login guard of one server.
#[derive(Debug)]
pub(crate) struct LoginGuard {
    state: Mutex<State>,
    verifying: Arc<Semaphore>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            verifying: Arc::new(Semaphore::new(MAX_VERIFYING)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn too_many(message: String, retry: Duration) -> ApiError {
    ApiError::TooManyRequests {
        message,
        retry_after_s: retry.as_secs().max(1),
    }
}

/// An attempt that holds its slots (and a verification permit) until it is settled; a
/// dropped attempt (the verification failed to run) frees them without counting.
#[derive(Debug)]
pub(crate) struct Attempt<'a> {
    guard: &'a LoginGuard,
    ip: Option<IpAddr>,
    account: String,
    settled: bool,
    _permit: OwnedSemaphorePermit,
}

impl LoginGuard {
    /// Reserves an attempt for `account` (e.g. `staff:T01`, `technician`) from `ip`.
    ///
    /// # Errors
    /// 429 when verifications are busy, the address has used its guesses, or the account
    /// is locked; the message says which, and for how long.
    pub(crate) fn begin(
        &self,
        ip: Option<IpAddr>,
        account: &str,
        now: Instant,
    ) -> Result<Attempt<'_>, ApiError> {
        let permit = self.verifying.clone().try_acquire_owned().map_err(|_| {
            too_many(
                "another unlock is being checked; try again in a second".to_owned(),
                Duration::from_secs(1),
            )
        })?;
        let mut st = lock(&self.state);
        if st.by_ip.len() >= MAX_ENTRIES {
            st.by_ip.retain(|_, c| !c.idle(now, FAILURE_WINDOW));
        }
        if st.by_account.len() >= MAX_ENTRIES {
            st.by_account.retain(|_, c| !c.idle(now, ACCOUNT_WINDOW));
        }
        let full = |n: usize, known: bool| n >= MAX_ENTRIES && !known;
        if full(st.by_account.len(), st.by_account.contains_key(account))
            || ip.is_some_and(|ip| full(st.by_ip.len(), st.by_ip.contains_key(&ip)))
        {
            return Err(too_many(
                "too many failed unlocks on this board; try again later".to_owned(),
                FAILURE_WINDOW,
            ));
        }
        if let Some(ip) = ip {
            let c = st.by_ip.entry(ip).or_insert_with(|| Counter::new(now));
            c.roll(now, FAILURE_WINDOW);
            if c.failures + c.pending >= MAX_FAILURES {
                let left = FAILURE_WINDOW.saturating_sub(now.duration_since(c.since));
                return Err(too_many(
                    format!(
                        "too many wrong attempts from this device; try again in {} s",
                        left.as_secs().max(1)
                    ),
                    left,
                ));
            }
        }
        let c = st
            .by_account
            .entry(account.to_owned())
            .or_insert_with(|| Counter::new(now));
        c.roll(now, ACCOUNT_WINDOW);
        if let Some(until) = c.locked_until {
            let left = until.saturating_duration_since(now);
            return Err(too_many(
                format!(
                    "this account is locked for {} more minutes after {ACCOUNT_FAILURES} wrong attempts; a teacher can unlock with their staff card on the board",
                    left.as_secs().div_ceil(60).max(1)
                ),
                left,
            ));
        }
        if c.failures + c.pending >= ACCOUNT_FAILURES {
            return Err(too_many(
                "this account has attempts being checked; try again in a second".to_owned(),
                Duration::from_secs(1),
            ));
        }
        c.pending += 1;
        if let Some(ip) = ip
            && let Some(c) = st.by_ip.get_mut(&ip)
        {
            c.pending += 1;
        }
        Ok(Attempt {
            guard: self,
            ip,
            account: account.to_owned(),
            settled: false,
            _permit: permit,
        })
    }

    /// A staff card unlocked `account` on the board: its lock and failures go.
    pub(crate) fn clear_account(&self, account: &str) {
        lock(&self.state).by_account.remove(account);
    }

    fn settle(&self, ip: Option<IpAddr>, account: &str, wrong: Option<Instant>) {
        let mut st = lock(&self.state);
        if let Some(ip) = ip {
            if wrong.is_none() {
                st.by_ip.remove(&ip);
            } else if let Some(c) = st.by_ip.get_mut(&ip) {
                c.pending = c.pending.saturating_sub(1);
                c.failures += 1;
            }
        }
        match wrong {
            None => {
                st.by_account.remove(account);
            }
            Some(now) => {
                if let Some(c) = st.by_account.get_mut(account) {
                    c.pending = c.pending.saturating_sub(1);
                    c.failures += 1;
                    if c.failures >= ACCOUNT_FAILURES {
                        c.locked_until = Some(now + ACCOUNT_LOCK);
                    }
                }
            }
        }
    }
}

impl Attempt<'_> {
    /// The PIN or password was right.
    pub(crate) fn succeeded(mut self) {
        self.settled = true;
        self.guard.settle(self.ip, &self.account, None);
    }

    /// It was wrong (or the account does not exist).
    pub(crate) fn failed(mut self, now: Instant) {
        self.settled = true;
        self.guard.settle(self.ip, &self.account, Some(now));
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut st = lock(&self.guard.state);
        if let Some(c) = self.ip.and_then(|ip| st.by_ip.get_mut(&ip)) {
            c.pending = c.pending.saturating_sub(1);
        }
        if let Some(c) = st.by_account.get_mut(&self.account) {
            c.pending = c.pending.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn concurrent_attempts_count_before_they_are_verified() {
        let g = LoginGuard {
            state: Mutex::default(),
            verifying: Arc::new(Semaphore::new(100)),
        };
        let now = Instant::now();
        // Forty at once from one address: five get a slot, before any is verified.
        let held: Vec<_> = (0..40)
            .filter_map(|i| g.begin(ip(1), &format!("staff:T{i}"), now).ok())
            .collect();
        assert_eq!(held.len(), MAX_FAILURES as usize);
        for a in held {
            a.failed(now);
        }
        assert!(g.begin(ip(1), "staff:T99", now).is_err());
        // The window ends.
        assert!(g.begin(ip(1), "staff:T99", now + FAILURE_WINDOW).is_ok());
    }

    #[test]
    fn an_account_locks_after_five_wrong_guesses_from_any_addresses_and_a_card_clears_it() {
        let g = LoginGuard::default();
        let now = Instant::now();
        for n in 0..ACCOUNT_FAILURES {
            g.begin(ip(n as u8), "staff:T01", now).unwrap().failed(now);
        }
        let e = g.begin(ip(100), "staff:T01", now).unwrap_err();
        assert!(
            matches!(e, ApiError::TooManyRequests { retry_after_s, .. } if retry_after_s == ACCOUNT_LOCK.as_secs()),
            "{e:?}"
        );
        // Other accounts are untouched.
        g.begin(ip(100), "staff:T02", now).unwrap().succeeded();
        // The lock ends after its time, or at once with the staff card.
        assert!(g.begin(ip(101), "staff:T01", now + ACCOUNT_LOCK).is_ok());
        g.clear_account("staff:T01");
        assert!(g.begin(ip(102), "staff:T01", now).is_ok());
    }

    #[test]
    fn verifications_are_capped_and_a_dropped_attempt_frees_its_slot() {
        let g = LoginGuard::default();
        let now = Instant::now();
        let a = g.begin(ip(1), "staff:T01", now).unwrap();
        let b = g.begin(ip(2), "staff:T02", now).unwrap();
        let busy = g.begin(ip(3), "staff:T03", now).unwrap_err();
        assert!(matches!(
            busy,
            ApiError::TooManyRequests {
                retry_after_s: 1,
                ..
            }
        ));
        drop(a);
        b.succeeded();
        // Nothing was counted for the dropped attempt.
        for _ in 0..MAX_FAILURES {
            g.begin(ip(1), "staff:T01", now).unwrap().failed(now);
        }
        assert!(g.begin(ip(1), "staff:T05", now).is_err());
    }
}
