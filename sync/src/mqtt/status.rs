//! What the sync worker shows the rest of the daemon: its live status, and the trait
//! through which it hands over remote commands.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, FixedOffset};

use super::downlink::Command;

/// What the daemon provides to the sync worker.
pub trait CommandHandler: Send + Sync + 'static {
    /// The board's clock now, and whether it is synchronised.
    fn now(&self) -> (DateTime<FixedOffset>, bool);
    /// Executes a command; `Err` lists why it was not executed.
    fn command(&self, cmd: Command) -> impl Future<Output = Result<(), Vec<String>>> + Send;
    /// Downlink data of `kind` was applied to the store (e.g. reload the timetable).
    fn applied(&self, kind: &str) -> impl Future<Output = ()> + Send;
}

/// Live state of the link, for the status page and metrics.
#[derive(Debug, Default)]
pub struct SyncStatus {
    connected: AtomicBool,
    state: Mutex<String>,
    /// Outbox records published (including re-sends).
    pub published: AtomicU64,
    /// Outbox records acknowledged by the broker.
    pub acked: AtomicU64,
    /// Connections made.
    pub connections: AtomicU64,
    /// Downlink messages received.
    pub downlinks: AtomicU64,
    /// Connection attempts started.
    pub attempts: AtomicU64,
    /// Records moved aside because they can never be sent.
    pub rejected: AtomicU64,
}

impl SyncStatus {
    /// Connected to the broker now.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// A word for people.
    pub fn state(&self) -> String {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set(&self, connected: bool, state: impl Into<String>) {
        self.connected.store(connected, Ordering::Relaxed);
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = state.into();
    }
}
