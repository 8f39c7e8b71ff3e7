//! The sync worker: one task owns the rumqttc event loop (docs/development.md §2), drains the outbox
//! by lane then seq, deletes a row only after its PUBACK, and hands downlinks to a second
//! task that validates, applies and acknowledges them.
//!
//! Invariants:
//! * A row leaves the outbox only after the broker acknowledged it (QoS 1).
//! * Each connection is a new clean session with a new event loop: nothing rumqttc kept
//!   from an old connection is replayed. Unacknowledged rows are simply still in the outbox
//!   and are fetched again, in drain order.
//! * At most `inflight` rows are unacknowledged; the fetch skips them.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::downlink::{Command, DownlinkBody, parse_downlink};
use super::state::{Failure, InFlight, Reconnect, TokenBucket};
use super::{MqttSettings, tls, topics};
use crate::PendingRecord;
use crate::{OutboxRecord, StoreHandle, Stream};
use std::collections::VecDeque;

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

    fn set(&self, connected: bool, state: impl Into<String>) {
        self.connected.store(connected, Ordering::Relaxed);
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = state.into();
    }
}

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
pub struct UrgentReceiver(mpsc::Receiver<(Stream, Vec<u8>)>);

/// Drains the outbox to the broker and takes the downlink.
pub struct SyncWorker<H> {
    urgent: Option<UrgentReceiver>,
    store: StoreHandle,
    settings: MqttSettings,
    status: Arc<SyncStatus>,
    handler: Arc<H>,
    stop: CancellationToken,
}

impl<H> std::fmt::Debug for SyncWorker<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncWorker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Why a session ended.
enum End {
    Stopped,
    Failed(String, Failure),
}

/// Largest MQTT packet the board sends (rumqttc's outgoing limit); a stored record that
/// cannot fit is moved aside as refused instead of being sent.
pub const MAX_OUTGOING_PACKET: usize = 1024 * 1024;

/// What the worker learnt from connections the broker closed (see `give_up`).
#[derive(Debug, Default)]
struct Careful {
    /// Start the next session with one record in flight, widening with each PUBACK.
    slow_start: bool,
    /// The last close with nothing in flight: the broker (or a twin) closes us anyway.
    kicked_at: Option<Instant>,
}

/// The longest a broker refusing a record may take to close the connection.
const REFUSAL_WINDOW: Duration = Duration::from_secs(2);

/// How long a close with nothing in flight keeps records from being blamed.
const KICKS_REMEMBERED: Duration = Duration::from_secs(600);

/// A session that lasted this long (or delivered records) forgets earlier refusals.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// Whether a connection error means the broker closed the connection on us (rather than
/// the link going quiet): rumqttc reports a read of zero bytes as "closed by peer".
fn closed_by_peer(e: &rumqttc::ConnectionError) -> bool {
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
enum SessionError {
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

impl<H: CommandHandler> SyncWorker<H> {
    /// A worker; run it with [`Self::run`]. It stops when `stop` is cancelled.
    pub fn new(
        store: StoreHandle,
        settings: MqttSettings,
        handler: Arc<H>,
        stop: CancellationToken,
    ) -> (Self, Arc<SyncStatus>) {
        let status = Arc::new(SyncStatus::default());
        status.set(false, "starting");
        (
            Self {
                urgent: None,
                store,
                settings,
                status: status.clone(),
                handler,
                stop,
            },
            status,
        )
    }

    /// Takes urgent publishes from `rx` (see [`Urgent`]).
    #[must_use]
    pub fn with_urgent(mut self, rx: UrgentReceiver) -> Self {
        self.urgent = Some(rx);
        self
    }

    /// Runs until stopped: connect, drain, reconnect with backoff.
    pub async fn run(mut self) {
        // Without a sender nothing ever arrives: a receiver whose sender is dropped.
        let mut urgent = self.urgent.take().unwrap_or_else(|| Urgent::channel().1);
        let s = &self.settings;
        let broker = format!(
            "{}://{}:{}",
            if s.tls.is_some() { "mqtts" } else { "mqtt" },
            s.host,
            s.port
        );
        if s.tls.is_none() {
            tracing::warn!(%broker, "MQTT without TLS: traffic to the broker is unencrypted. Use mqtts:// outside a lab.");
        }
        let tls = match s.tls.as_ref().map(tls::client_config).transpose() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "TLS configuration unusable; sync is off until it is fixed.");
                self.status
                    .set(false, format!("TLS configuration unusable: {e}"));
                self.stop.cancelled().await;
                return;
            }
        };
        let (dl_tx, dl_rx) = mpsc::channel(64);
        let downlinks = tokio::spawn(downlink_task(
            self.store.clone(),
            s.clone(),
            self.handler.clone(),
            dl_rx,
        ));
        let budgets = tokio::spawn(budget_task(
            self.store.clone(),
            s.clone(),
            self.handler.clone(),
            self.stop.clone(),
        ));
        let mut reconnect = Reconnect::new(s.backoff, s.refused_backoff);
        // After the broker closed a session with records in flight, the next one starts
        // with one record in flight and widens as PUBACKs come (slow start): the first
        // record of the session goes alone, so a record the broker refuses is found.
        let mut careful = Careful::default();
        loop {
            self.status.set(false, format!("connecting to {broker}"));
            self.status.attempts.fetch_add(1, Ordering::Relaxed);
            match self
                .session(
                    tls.clone(),
                    &dl_tx,
                    &mut reconnect,
                    &mut careful,
                    &mut urgent,
                )
                .await
            {
                End::Stopped => break,
                End::Failed(e, failure) => {
                    let wait = reconnect.next_delay(failure);
                    let refused = failure == Failure::Refused;
                    tracing::warn!(%broker, error = %e, refused, retry_in_ms = wait.as_millis() as u64, "MQTT connection lost or refused; records wait in the outbox.");
                    self.status.set(
                        false,
                        format!("disconnected: {e}; retrying in {:.1} s", wait.as_secs_f64()),
                    );
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.stop.cancelled() => break,
                    }
                }
            }
        }
        self.status.set(false, "stopped");
        drop(dl_tx);
        let _ = downlinks.await;
        budgets.abort();
    }

    fn options(&self, tls: Option<Arc<rustls::ClientConfig>>) -> MqttOptions {
        let s = &self.settings;
        let mut o = MqttOptions::new(s.device_id.clone(), s.host.clone(), s.port);
        o.set_keep_alive(s.keep_alive)
            .set_clean_session(true)
            .set_inflight(s.inflight.max(1))
            // Design: incoming up to 8 MiB so an oversized downlink reaches the validator and
            // is refused with an ack instead of breaking the connection.
            .set_max_packet_size(8 * 1024 * 1024, MAX_OUTGOING_PACKET)
            .set_last_will(LastWill::new(
                topics::status(&s.school_id, &s.device_id),
                json!({"state": "offline", "reason": "connection lost", "boot_id": s.boot_id, "device_id": s.device_id}).to_string(),
                QoS::AtLeastOnce,
                true,
            ));
        if let Some((u, p)) = &s.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(cfg) = tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(cfg)));
        }
        o
    }

    async fn session(
        &self,
        tls: Option<Arc<rustls::ClientConfig>>,
        dl_tx: &mpsc::Sender<(String, Vec<u8>)>,
        reconnect: &mut Reconnect,
        careful: &mut Careful,
        urgent: &mut UrgentReceiver,
    ) -> End {
        let s = &self.settings;
        // Design: our window is twice rumqttc's in-flight limit, so a publish is always
        // waiting in its request channel when a PUBACK frees a slot (as in a raw publish loop).
        // Packet ids are then reused while rows wait; the FIFO matching still holds because
        // rumqttc emits `Outgoing::Publish` in request order (a collided publish gets
        // `AwaitAck` first and its `Publish` event only when sent) and queues a PUBACK's
        // event before handling it, so an id's PUBACK always precedes its reuse (rumqttc
        // 0.25 `state.rs`: `handle_incoming_packet`, `handle_incoming_puback`).
        let cap = 2 * usize::from(s.inflight.max(1));
        let attempt_started = Instant::now();
        let (client, mut el) = AsyncClient::new(self.options(tls), cap * 2 + 16);
        // Small publishes in bursts: without TCP_NODELAY, Nagle's algorithm and delayed
        // ACKs stall each burst by tens of milliseconds.
        let mut net = el.network_options();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(s.connect_timeout.as_secs().max(1));
        el.set_network_options(net);
        // Wait for CONNACK.
        loop {
            tokio::select! {
                ev = el.poll() => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => break,
                    Ok(_) => {}
                    Err(e) => return End::Failed(e.to_string(), connect_failure(&e)),
                },
                () = self.stop.cancelled() => return End::Stopped,
            }
        }
        // Design: one task only polls the event loop and forwards its events, so rumqttc
        // refills its in-flight window the moment a PUBACK arrives; this task keeps the
        // books and publishes. Events arrive here in the order the event loop made them, so
        // the FIFO matching of packet ids to rows holds.
        let (ev_tx, mut events) =
            mpsc::channel::<Result<Event, rumqttc::ConnectionError>>(4 * cap + 64);
        let pump = AbortOnDrop(tokio::spawn(async move {
            loop {
                let ev = el.poll().await;
                let failed = ev.is_err();
                if ev_tx.send(ev).await.is_err() || failed {
                    return;
                }
            }
        }));
        let connected_at = Instant::now();
        // A refusal closes the connection about one round trip after the record; the
        // connect took two or more (TCP, CONNECT/CONNACK, TLS).
        let refusal_window = (connected_at - attempt_started)
            .saturating_mul(2)
            .clamp(Duration::from_millis(200), REFUSAL_WINDOW);
        let mut delivered = false;
        self.status.connections.fetch_add(1, Ordering::Relaxed);
        tracing::info!(host = %s.host, port = s.port, "Connected to the MQTT broker.");
        self.status.set(true, "connected");

        let mut inflight = InFlight::default();
        let birth = json!({
            "state": "online", "version": s.version, "boot_id": s.boot_id, "config_hash": s.config_hash,
            "device_id": s.device_id, "at": self.handler.now().0.to_rfc3339(),
        });
        if let Err(e) = client.try_publish(
            topics::status(&s.school_id, &s.device_id),
            QoS::AtLeastOnce,
            true,
            birth.to_string(),
        ) {
            return End::Failed(
                format!("queueing the birth message: {e}"),
                Failure::Unreachable,
            );
        }
        inflight.queued(None);
        for f in topics::down_filters(&s.school_id, &s.device_id) {
            if let Err(e) = client.try_subscribe(f, QoS::AtLeastOnce) {
                return End::Failed(
                    format!("subscribing to the downlink: {e}"),
                    Failure::Unreachable,
                );
            }
        }

        // Urgent publishes that waited for this connection go before the backlog.
        while let Ok((stream, payload)) = urgent.0.try_recv() {
            let topic = topics::up(&s.school_id, &s.device_id, stream.as_str());
            if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
                return End::Failed(
                    format!("queueing an urgent publish: {e}"),
                    Failure::Unreachable,
                );
            }
            inflight.queued(None);
        }
        let mut bucket = s
            .max_publish_per_s
            .map(|r| TokenBucket::new(r.get(), Instant::now()));
        // Read-ahead: rows fetched but not yet published, in drain order (lane, seq).
        // `cursor` is the highest seq per lane taken into the buffer, `sent` the highest
        // published. When new records arrive (they may outrank the buffer, e.g. an alarm) the
        // buffer is dropped and re-read from `sent`: rows in flight are never fetched twice.
        let mut buffer: VecDeque<PendingRecord> = VecDeque::new();
        let mut cursor = [0u64; 3];
        let mut sent = [0u64; 3];
        let mut recheck = true;
        let mut exhausted = false;
        // The read-ahead runs beside the event loop, so PUBACKs are handled while it reads.
        // `generation` discards a fetch made before a recheck.
        let mut fetch: Option<FetchFuture> = None;
        let (mut generation, mut fetch_generation) = (0u64, 0u64);
        let want = 2 * cap;
        // A suspect row (see `PendingRecord::suspect`) out alone: nothing else is published
        // until its PUBACK, so if the broker closes the connection the row is to blame.
        let mut solo: Option<u64> = None;
        // Most outbox rows in flight now (slow start after a close by the broker).
        let mut window = if careful.slow_start { 1 } else { cap };
        // When the newest outbox record was handed to rumqttc (a refusal comes right after).
        let mut last_publish = Instant::now();
        // The last packet from the broker: with publishes waiting, silence means a dead link.
        let mut heard = Instant::now();
        loop {
            if recheck {
                buffer.clear();
                cursor = sent;
                exhausted = false;
                recheck = false;
                generation += 1;
            }
            if fetch.is_none() && buffer.len() < cap && !exhausted {
                let store = self.store.clone();
                let at = cursor;
                fetch = Some(Box::pin(async move { store.outbox_fetch(at, want).await }));
                fetch_generation = generation;
            }
            if inflight.len() < cap && solo.is_none() {
                let free = (cap - inflight.len())
                    .min(window.saturating_sub(inflight.outbox_len()))
                    .min(buffer.len());
                // Up to the first suspect; a suspect goes only when nothing else is out.
                let mut k = 0;
                for r in buffer.iter().take(free) {
                    if r.suspect {
                        if k == 0 && inflight.outbox_len() == 0 {
                            k = 1;
                        }
                        break;
                    }
                    k += 1;
                }
                let n = bucket.as_mut().map_or(k, |b| b.take(k, Instant::now()));
                for r in buffer.drain(..n) {
                    let lane = usize::from(r.lane.min(2));
                    sent[lane] = sent[lane].max(r.seq);
                    let topic = topics::up(&s.school_id, &s.device_id, &r.stream);
                    // Fixed header (5) + topic length (2) + packet id (2).
                    let size = r.payload.len() + topic.len() + 9;
                    if size > MAX_OUTGOING_PACKET {
                        self.reject(
                            r.seq,
                            format!(
                                "the record's MQTT packet of {size} bytes exceeds the client's limit of {MAX_OUTGOING_PACKET} bytes"
                            ),
                        )
                        .await;
                        continue;
                    }
                    if r.suspect {
                        tracing::info!(seq = r.seq, stream = %r.stream, "Sending a record the broker may refuse alone, to find out.");
                        solo = Some(r.seq);
                    }
                    if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, r.payload) {
                        return End::Failed(
                            format!("queueing a publish: {e}"),
                            Failure::Unreachable,
                        );
                    }
                    inflight.queued(Some(r.seq));
                    last_publish = Instant::now();
                    self.status.published.fetch_add(1, Ordering::Relaxed);
                }
            }
            let throttled = !buffer.is_empty()
                && inflight.len() < cap
                && solo.is_none()
                && bucket.as_ref().is_some_and(|b| b.wait() > Duration::ZERO);
            let wait = bucket.as_ref().map_or(Duration::ZERO, TokenBucket::wait);
            let silent_until = (!inflight.is_empty()).then(|| heard + s.ack_timeout);
            tokio::select! {
                biased;
                () = self.stop.cancelled() => {
                    self.goodbye(&client, &mut events).await;
                    drop(pump);
                    return End::Stopped;
                }
                ev = events.recv() => {
                    let Some(ev) = ev else {
                        return End::Failed("the MQTT event loop stopped".into(), Failure::Unreachable);
                    };
                    heard = Instant::now();
                    // Handle this event and every other one already waiting, so a burst of
                    // PUBACKs becomes one delete transaction.
                    let mut acked = Vec::new();
                    let mut next = Some(ev);
                    while let Some(ev) = next.take() {
                        if let Err(e) = self.on_event(ev, &mut inflight, &mut acked, dl_tx).await {
                            let quick = last_publish.elapsed() < refusal_window;
                            self.give_up(&inflight, &e, careful, quick).await;
                            if delivered || !acked.is_empty() || connected_at.elapsed() >= STABLE_AFTER {
                                reconnect.stable();
                            }
                            return End::Failed(e.to_string(), Failure::Unreachable);
                        }
                        if acked.len() >= cap {
                            break;
                        }
                        next = events.try_recv().ok();
                    }
                    if !acked.is_empty() {
                        if !delivered {
                            delivered = true;
                            reconnect.stable();
                        }
                        if solo.is_some_and(|s| acked.contains(&s)) {
                            solo = None;
                        }
                        if window < cap {
                            window = (window + acked.len()).min(cap);
                            if window == cap {
                                careful.slow_start = false;
                            }
                        }
                        self.status.acked.fetch_add(acked.len() as u64, Ordering::Relaxed);
                        if let Err(e) = self.store.outbox_ack(acked).await {
                            return End::Failed(format!("deleting acknowledged rows: {e}"), Failure::Unreachable);
                        }
                    }
                }
                rows = async {
                    match fetch.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                }, if fetch.is_some() => {
                    fetch = None;
                    let rows = match rows {
                        Ok(r) => r,
                        Err(e) => return End::Failed(format!("reading the outbox: {e}"), Failure::Unreachable),
                    };
                    if fetch_generation == generation {
                        exhausted = rows.len() < want;
                        for r in rows {
                            let lane = usize::from(r.lane.min(2));
                            cursor[lane] = cursor[lane].max(r.seq);
                            buffer.push_back(r);
                        }
                        buffer.make_contiguous().sort_by_key(|r| (r.lane, r.seq));
                    }
                }
                Some((stream, payload)) = urgent.0.recv() => {
                    let topic = topics::up(&s.school_id, &s.device_id, stream.as_str());
                    if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
                        return End::Failed(format!("queueing an urgent publish: {e}"), Failure::Unreachable);
                    }
                    inflight.queued(None);
                    tracing::warn!(%stream, "Published directly, bypassing the full store.");
                }
                () = self.store.outbox_changed() => recheck = true,
                () = tokio::time::sleep(wait), if throttled => {}
                () = async {
                    match silent_until {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                }, if silent_until.is_some() => {
                    let e = format!(
                        "no packet from the broker for {} s while {} publishes waited for their acknowledgement; the link is taken as dead",
                        s.ack_timeout.as_secs(),
                        inflight.len()
                    );
                    let seqs = inflight.seqs();
                    if !seqs.is_empty() {
                        let _ = self.store.outbox_attempted(seqs).await;
                    }
                    return End::Failed(e, Failure::Unreachable);
                }
                () = tokio::time::sleep(Duration::from_secs(5)) => recheck = true,
            }
        }
    }

    /// Handles one event loop event; `Err` ends the session.
    async fn on_event(
        &self,
        ev: Result<Event, rumqttc::ConnectionError>,
        inflight: &mut InFlight,
        acked: &mut Vec<u64>,
        dl_tx: &mpsc::Sender<(String, Vec<u8>)>,
    ) -> Result<(), SessionError> {
        match ev {
            Ok(Event::Incoming(Packet::PubAck(a))) => {
                if let Some(seq) = inflight.acked(a.pkid) {
                    acked.push(seq);
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => inflight.sent(pkid),
            Ok(Event::Incoming(Packet::Publish(p))) => {
                self.status.downlinks.fetch_add(1, Ordering::Relaxed);
                if dl_tx.send((p.topic, p.payload.to_vec())).await.is_err() {
                    return Err(SessionError::Local("the downlink task stopped".into()));
                }
            }
            Ok(Event::Incoming(Packet::SubAck(a))) => {
                if a.return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    tracing::error!(
                        "The broker refused the downlink subscription (check its ACL); uplink continues."
                    );
                }
            }
            Ok(Event::Incoming(Packet::Disconnect)) => {
                return Err(SessionError::ClosedByBroker(
                    "the broker disconnected".into(),
                ));
            }
            Ok(_) => {}
            Err(e) if closed_by_peer(&e) => {
                return Err(SessionError::ClosedByBroker(e.to_string()));
            }
            Err(e) => return Err(SessionError::Link(e.to_string())),
        }
        Ok(())
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
    async fn give_up(
        &self,
        inflight: &InFlight,
        e: &SessionError,
        careful: &mut Careful,
        quick: bool,
    ) {
        let seqs = inflight.seqs();
        if !seqs.is_empty() {
            let _ = self.store.outbox_attempted(seqs.clone()).await;
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
            let (now, synced) = self.handler.now();
            match self
                .store
                .outbox_refused(sent, cause.clone(), now, synced)
                .await
            {
                Ok(Some(r)) => {
                    self.status.rejected.fetch_add(1, Ordering::Relaxed);
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
    async fn reject(&self, seq: u64, reason: String) {
        let (now, synced) = self.handler.now();
        match self.store.outbox_reject(seq, reason, now, synced).await {
            Ok(r) => {
                self.status.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(seq, rejected_seq = ?r, "An outbox record can never be sent: moved aside and reported on the rejected stream.");
            }
            Err(e) => {
                tracing::error!(seq, error = %e, "Moving a record that cannot be sent aside failed.")
            }
        }
    }

    /// Publishes the retained "offline" status and waits briefly for it to be acknowledged.
    async fn goodbye(
        &self,
        client: &AsyncClient,
        events: &mut mpsc::Receiver<Result<Event, rumqttc::ConnectionError>>,
    ) {
        let s = &self.settings;
        let bye = json!({"state": "offline", "reason": "shutdown", "boot_id": s.boot_id, "device_id": s.device_id});
        if client
            .try_publish(
                topics::status(&s.school_id, &s.device_id),
                QoS::AtLeastOnce,
                true,
                bye.to_string(),
            )
            .is_ok()
        {
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_millis(1500), async {
                while let Some(Ok(ev)) = events.recv().await {
                    if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
        self.status.set(false, "stopped");
        tracing::info!("Disconnected from the MQTT broker.");
    }
}

type FetchFuture =
    std::pin::Pin<Box<dyn Future<Output = crate::Result<Vec<PendingRecord>>> + Send>>;

/// Aborts the task when dropped (the event-loop pump must not outlive its session).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Validates, applies and acknowledges downlink messages one at a time.
async fn downlink_task<H: CommandHandler>(
    store: StoreHandle,
    s: MqttSettings,
    handler: Arc<H>,
    mut rx: mpsc::Receiver<(String, Vec<u8>)>,
) {
    while let Some((topic, payload)) = rx.recv().await {
        let Some((target, kind)) = topics::parse_down(&topic, &s.school_id, &s.device_id) else {
            tracing::warn!(%topic, "Message on an unexpected topic ignored.");
            continue;
        };
        let (now, synced) = handler.now();
        let result = match parse_downlink(kind, &target, &payload, &s.school_id, &s.device_id, now)
        {
            Err(r) => {
                tracing::warn!(
                    kind,
                    problems = r.problems.len(),
                    "Downlink message refused."
                );
                match r.id {
                    Some(id) => store
                        .apply_downlink(id, r.kind, None, r.problems, now, synced)
                        .await
                        .map(|_| ()),
                    None => store
                        .enqueue(OutboxRecord::new(
                            &crate::AckBody {
                                downlink_id: None,
                                kind: r.kind.chars().take(32).collect(),
                                ok: false,
                                problems: crate::limits::bound_problems(&r.problems),
                                duplicate: false,
                            },
                            now,
                            synced,
                        ))
                        .await
                        .map(|_| ()),
                }
            }
            Ok(dl) => match dl.body {
                DownlinkBody::Data(data) => match store
                    .apply_downlink(dl.id, dl.kind.clone(), Some(data), vec![], now, synced)
                    .await
                {
                    Ok(o) => {
                        tracing::info!(kind = %dl.kind, ok = o.ok, duplicate = o.duplicate, "Downlink handled.");
                        if o.ok && !o.duplicate {
                            handler.applied(&dl.kind).await;
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                DownlinkBody::Config(_) => {
                    let p = vec!["remote config changes are not supported by this version; edit the config file on the board".to_owned()];
                    store
                        .apply_downlink(dl.id, dl.kind, None, p, now, synced)
                        .await
                        .map(|_| ())
                }
                DownlinkBody::Command(cmd) => match store.downlink_seen(dl.id.clone()).await {
                    Ok(Some(_)) => store
                        .apply_downlink(dl.id, dl.kind, None, vec![], now, synced)
                        .await
                        .map(|_| ()),
                    Ok(None) => {
                        let name = cmd.name.clone();
                        let problems = handler.command(cmd).await.err().unwrap_or_default();
                        tracing::info!(command = %name, ok = problems.is_empty(), "Downlink command handled.");
                        store
                            .apply_downlink(dl.id, dl.kind, None, problems, now, synced)
                            .await
                            .map(|_| ())
                    }
                    Err(e) => Err(e),
                },
            },
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "Storing a downlink result failed; the cloud gets no ack for it.");
        }
    }
}

/// Enforces the outbox budgets every minute.
async fn budget_task<H: CommandHandler>(
    store: StoreHandle,
    s: MqttSettings,
    handler: Arc<H>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let (now, synced) = handler.now();
        match store.enforce_budgets(s.budgets.clone(), now, synced).await {
            Ok(ev) => {
                for e in ev {
                    tracing::warn!(stream = %e.stream, count = e.count, first_seq = e.first_seq, last_seq = e.last_seq, reason = %e.reason, "Outbox over budget: oldest records evicted and reported on the dropped stream.");
                }
            }
            Err(e) => tracing::error!(error = %e, "Enforcing outbox budgets failed."),
        }
    }
}
