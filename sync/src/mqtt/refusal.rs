//! Telling a dead link from a broker that refuses a record: slow start after a broker
//! close, blame only when a record was alone in flight, and moving a record that can never
//! be delivered aside (`docs/mqtt.md`, "Nothing wedges the sync").

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};

use crate::StoreHandle;

use super::state::{Failure, InFlight};
use super::status::SyncStatus;

/// Largest MQTT packet the board sends (rumqttc's outgoing limit); a stored record that
/// cannot fit is moved aside as refused instead of being sent.
pub const MAX_OUTGOING_PACKET: usize = 1024 * 1024;

/// What the worker learnt from connections the broker closed (see `give_up`).
#[derive(Debug, Default)]
pub(super) struct Careful {
    /// Start the next session with one record in flight, widening with each PUBACK.
    pub(super) slow_start: bool,
    /// The last close with nothing in flight: the broker (or a twin) closes us anyway.
    pub(super) kicked_at: Option<Instant>,
}

/// The longest a broker refusing a record may take to close the connection.
pub(super) const REFUSAL_WINDOW: Duration = Duration::from_secs(2);

/// How long a close with nothing in flight keeps records from being blamed.
pub(super) const KICKS_REMEMBERED: Duration = Duration::from_secs(600);

/// A session that lasted this long (or delivered records) forgets earlier refusals.
pub(super) const STABLE_AFTER: Duration = Duration::from_secs(10);

/// Whether a connection error means the broker closed the connection on us (rather than
/// the link going quiet): rumqttc reports a read of zero bytes as "closed by peer".
pub(super) fn closed_by_peer(e: &rumqttc::ConnectionError) -> bool {
    use rumqttc::{ConnectionError as C, StateError as S};
    let io_closed = |io: &std::io::Error| {
        matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::BrokenPipe
        )
    };
    match e {
        C::MqttState(S::ConnectionAborted) => true,
        C::MqttState(S::Io(io)) | C::Io(io) => io_closed(io),
        C::MqttState(S::Deserialization(rumqttc::mqttbytes::Error::Io(io))) => io_closed(io),
        _ => false,
    }
}

/// Why a session that had its CONNACK ended.
pub(super) enum SessionError {
    /// The broker closed the connection (DISCONNECT, EOF, reset).
    ClosedByBroker(String),
    /// The link failed otherwise (timeouts, I/O).
    Link(String),
    /// Something on the board (a task stopped).
    Local(String),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClosedByBroker(e) | Self::Link(e) | Self::Local(e) => f.write_str(e),
        }
    }
}

/// How a failed connection attempt (before CONNACK) counts for the reconnect policy.
pub fn connect_failure(e: &rumqttc::ConnectionError) -> Failure {
    use rumqttc::ConnectionError as C;
    match e {
        // The broker itself said no (server unavailable, bad credentials, not authorised),
        // or TLS failed: a broker is there, and retrying fast helps nobody.
        C::ConnectionRefused(_) | C::NotConnAck(_) | C::Tls(_) => Failure::Refused,
        // Refused port, unreachable, DNS, timed out, or TCP accepted and closed before
        // CONNACK. The last is what a load balancer in front of a broker cluster with no
        // healthy node does (and the partition test's proxy): treating it as a refusal
        // would keep boards away for minutes after the cluster is back. The connect
        // timeout itself spaces attempts at a broker that accepts but never answers.
        _ => Failure::Unreachable,
    }
}

/// The session failed: count an attempt for every row sent without a PUBACK (they are
/// still in the outbox and go out again on the next connection, in drain order).
///
/// When the broker closed the connection with records in flight, the next session
/// starts carefully (one record in flight, then widening). When the only record
/// unacknowledged was one alone, the broker refused that record: counted, and moved
/// aside once it happened [`crate::REFUSED_AFTER_PROBES`] times.
///
/// Design: a broker also closes connections for reasons of its own: another client with
/// the same id (a cloned board) takes over the session, an operator kicks it. Such
/// closes come at any moment, also with nothing in flight; a refusal comes right after
/// the record arrives. So a record is blamed only when the close came `quick`ly after
/// sending it (twice the connect time, 0.2 s to [`REFUSAL_WINDOW`]), and not at all for
/// [`KICKS_REMEMBERED`] after a close with nothing in flight.
pub(super) async fn give_up(
    store: &StoreHandle,
    status: &SyncStatus,
    (now, synced): (DateTime<FixedOffset>, bool),
    inflight: &InFlight,
    e: &SessionError,
    careful: &mut Careful,
    quick: bool,
) {
    let seqs = inflight.seqs();
    if !seqs.is_empty() {
        let _ = store.outbox_attempted(seqs.clone()).await;
    }
    let SessionError::ClosedByBroker(cause) = e else {
        return;
    };
    if seqs.is_empty() {
        careful.kicked_at = Some(Instant::now());
        return;
    }
    careful.slow_start = true;
    let kicked = careful
        .kicked_at
        .is_some_and(|t| t.elapsed() < KICKS_REMEMBERED);
    if let ([only], Some(sent)) = (seqs.as_slice(), inflight.oldest_sent())
        && *only == sent
        && quick
        && !kicked
    {
        match store.outbox_refused(sent, cause.clone(), now, synced).await {
            Ok(Some(r)) => {
                status.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    seq = sent,
                    rejected_seq = r,
                    "The broker refused an outbox record every time it was sent alone: moved aside and reported on the rejected stream."
                );
            }
            Ok(None) => {
                tracing::info!(
                    seq = sent,
                    "The broker closed the connection while one record was in flight; it goes alone next time."
                );
            }
            Err(err) => tracing::error!(error = %err, "Counting a refused record failed."),
        }
    }
}

/// Moves a record that can never be sent aside (reported on the `rejected` stream).
pub(super) async fn reject(
    store: &StoreHandle,
    status: &SyncStatus,
    (now, synced): (DateTime<FixedOffset>, bool),
    seq: u64,
    reason: String,
) {
    match store.outbox_reject(seq, reason, now, synced).await {
        Ok(r) => {
            status.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(seq, rejected_seq = ?r, "An outbox record can never be sent: moved aside and reported on the rejected stream.");
        }
        Err(e) => {
            tracing::error!(seq, error = %e, "Moving a record that cannot be sent aside failed.")
        }
    }
}
