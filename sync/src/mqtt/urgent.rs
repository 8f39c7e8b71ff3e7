//! The urgent path: an alarm the full store could not take is published directly by the
//! worker, bypassing the outbox (its record follows once there is room).

use tokio::sync::mpsc;

use crate::Stream;

/// Best-effort publishes that bypass the outbox: an alarm that cannot be stored because the
/// disk is full. Queued in memory (at most [`URGENT_QUEUE`]), sent at once when connected
/// or first thing after the next CONNACK, ahead of the backlog; lost if the session drops
/// before the PUBACK (the daemon keeps the event and stores it when space returns).
#[derive(Debug, Clone)]
pub struct Urgent(mpsc::Sender<(Stream, Vec<u8>)>);

/// Urgent publishes waiting for a connection.
pub const URGENT_QUEUE: usize = 16;

impl Urgent {
    /// A sender and the receiver to give the worker ([`SyncWorker::with_urgent`]).
    pub fn channel() -> (Self, UrgentReceiver) {
        let (tx, rx) = mpsc::channel(URGENT_QUEUE);
        (Self(tx), UrgentReceiver(rx))
    }

    /// Queues `envelope` (from [`crate::unsequenced_envelope`]) on `stream`; `false` when
    /// the queue is full or the worker is gone.
    pub fn publish(&self, stream: Stream, envelope: Vec<u8>) -> bool {
        self.0.try_send((stream, envelope)).is_ok()
    }
}

/// The worker's end of [`Urgent`].
#[derive(Debug)]
pub struct UrgentReceiver(pub(super) mpsc::Receiver<(Stream, Vec<u8>)>);
