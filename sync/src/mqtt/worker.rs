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

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{PendingRecord, StoreHandle};

use super::refusal::{
    self, Careful, MAX_OUTGOING_PACKET, REFUSAL_WINDOW, STABLE_AFTER, SessionError, closed_by_peer,
    connect_failure,
};
use super::state::{Failure, InFlight, Reconnect, TokenBucket};
use super::status::{CommandHandler, SyncStatus};
use super::tasks::{AbortOnDrop, budget_task, downlink_task};
use super::urgent::{Urgent, UrgentReceiver};
use super::{MqttSettings, tls, topics};

/// Drains the outbox to the broker and takes the downlink.
pub struct SyncWorker<H> {
    pub(super) urgent: Option<UrgentReceiver>,
    pub(super) store: StoreHandle,
    pub(super) settings: MqttSettings,
    pub(super) status: Arc<SyncStatus>,
    pub(super) handler: Arc<H>,
    pub(super) stop: CancellationToken,
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
        if let Some(p) = &s.proxy {
            // TLS to the broker runs inside the proxy's tunnel: the proxy sees only bytes.
            o.set_proxy(rumqttc::Proxy {
                ty: rumqttc::ProxyType::Http,
                auth: match &p.credentials {
                    Some((u, pw)) => rumqttc::ProxyAuth::Basic {
                        username: u.clone(),
                        password: pw.clone(),
                    },
                    None => rumqttc::ProxyAuth::None,
                },
                addr: p.host.clone(),
                port: p.port,
            });
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
                        refusal::reject(
                            &self.store,
                            &self.status,
                            self.handler.now(),
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
                            refusal::give_up(
                                &self.store,
                                &self.status,
                                self.handler.now(),
                                &inflight,
                                &e,
                                careful,
                                quick,
                            )
                            .await;
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
