//! The school path (`docs/mqtt.md`, "The school path"): a second, small MQTT link to the
//! school's own broker on the LAN. The board keeps its alarms now there as one retained
//! message and reads every other board's, so the other classrooms and the duty room learn
//! of an alarm without the regional cloud.
//!
//! Design: state, not events. Each board's message replaces its previous one, so a board
//! that was cut off announces its current alarms when it is back, a board that starts
//! late reads everyone's from the retained messages, and a clear is just a state without
//! that alarm. Who may write a board's topic is the school broker's decision (a login per
//! board and an ACL that lets each write only its own topic, `docs/technician.md`); the
//! board refuses messages whose body names another school or another board than the topic.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::TlsSettings;
use super::topics::ROOT;
use crate::SchoolAlarmState;

/// Everything the school link needs.
#[derive(Clone)]
pub struct SchoolLinkSettings {
    /// The school broker's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS, or plain TCP on the school LAN when `None`.
    pub tls: Option<TlsSettings>,
    /// This board's login on the school broker.
    pub credentials: Option<(String, String)>,
    /// School id (topics).
    pub school_id: String,
    /// Device id (topics and client id).
    pub device_id: String,
    /// MQTT keep-alive: how soon a dead LAN link is noticed (1.5 intervals at most).
    pub keep_alive: Duration,
}

impl std::fmt::Debug for SchoolLinkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchoolLinkSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("school_id", &self.school_id)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// `ketang/v1/{school}/{device}/school/alarm`.
#[must_use]
pub fn school_alarm_topic(school: &str, device: &str) -> String {
    format!("{ROOT}/{school}/{device}/school/alarm")
}

#[derive(Default)]
struct View {
    connected: bool,
    state: String,
    /// Other boards' latest states, by device id.
    boards: BTreeMap<String, SchoolAlarmState>,
    /// This board's own state as the school broker sent it back.
    echoed: Option<SchoolAlarmState>,
    refused: u64,
}

/// The board's end of the school path. Cheap to clone.
#[derive(Clone)]
pub struct SchoolLink {
    own: Arc<watch::Sender<Option<SchoolAlarmState>>>,
    view: Arc<Mutex<View>>,
}

impl std::fmt::Debug for SchoolLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (connected, state, refused) = self.status();
        f.debug_struct("SchoolLink")
            .field("connected", &connected)
            .field("state", &state)
            .field("refused", &refused)
            .finish_non_exhaustive()
    }
}

impl SchoolLink {
    /// Starts the link's task; `on_change` runs (on that task) whenever another board's
    /// state changed, so screens can re-read at once.
    ///
    /// # Errors
    /// The TLS files cannot be read (named).
    pub fn start(
        settings: SchoolLinkSettings,
        on_change: impl Fn() + Send + Sync + 'static,
        stop: CancellationToken,
    ) -> Result<Self, String> {
        let tls = settings
            .tls
            .as_ref()
            .map(super::tls::client_config)
            .transpose()
            .map_err(|e| format!("school_link: {e}"))?;
        let (own, own_rx) = watch::channel(None);
        let link = Self {
            own: Arc::new(own),
            view: Arc::new(Mutex::new(View {
                state: "connecting".into(),
                ..View::default()
            })),
        };
        let task = Task {
            settings,
            tls,
            view: link.view.clone(),
            on_change: Box::new(on_change),
            stop,
        };
        tokio::spawn(task.run(own_rx));
        Ok(link)
    }

    /// Announces this board's alarms now (sent at once when connected, else on connect).
    pub fn announce(&self, state: SchoolAlarmState) {
        self.own.send_replace(Some(state));
    }

    /// Other boards' states that hold alarms, by device id.
    #[must_use]
    pub fn others(&self) -> Vec<SchoolAlarmState> {
        self.lock()
            .boards
            .values()
            .filter(|s| !s.alarms.is_empty())
            .cloned()
            .collect()
    }

    /// Every other board heard from on the school path, by device id, with or without
    /// alarms (the duty room lists them all).
    #[must_use]
    pub fn boards(&self) -> Vec<SchoolAlarmState> {
        self.lock().boards.values().cloned().collect()
    }

    /// Whether the school broker has the alarm: this board's state came back through it
    /// holding `alarm_id` (it then reaches every board that is connected).
    #[must_use]
    pub fn delivered(&self, alarm_id: &str) -> bool {
        self.lock()
            .echoed
            .as_ref()
            .is_some_and(|s| s.alarms.iter().any(|a| a.alarm_id == alarm_id))
    }

    /// Connected, and what the link is doing (for `/api/v1/status`).
    #[must_use]
    pub fn status(&self) -> (bool, String, u64) {
        let v = self.lock();
        (v.connected, v.state.clone(), v.refused)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Task {
    settings: SchoolLinkSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
    view: Arc<Mutex<View>>,
    on_change: Box<dyn Fn() + Send + Sync>,
    stop: CancellationToken,
}

impl Task {
    fn set(&self, connected: bool, state: impl Into<String>) {
        let mut v = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        v.connected = connected;
        v.state = state.into();
    }

    fn options(&self) -> MqttOptions {
        let s = &self.settings;
        // The client id differs from the regional one: both brokers may be the same
        // Mosquitto in a small school, and one id would make them kick each other out.
        let mut o = MqttOptions::new(format!("{}.school", s.device_id), s.host.clone(), s.port);
        o.set_keep_alive(s.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(64 * 1024, 64 * 1024);
        if let Some((u, p)) = &s.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(cfg) = &self.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                cfg.clone(),
            )));
        }
        o
    }

    async fn run(self, mut own: watch::Receiver<Option<SchoolAlarmState>>) {
        let s = &self.settings;
        let mine = school_alarm_topic(&s.school_id, &s.device_id);
        let filter = school_alarm_topic(&s.school_id, "+");
        loop {
            let (client, mut el) = AsyncClient::new(self.options(), 16);
            let mut net = el.network_options();
            net.set_tcp_nodelay(true);
            net.set_connection_timeout(3);
            el.set_network_options(net);
            let mut connected = false;
            let why = loop {
                tokio::select! {
                    () = self.stop.cancelled() => {
                        let _ = client.try_disconnect();
                        self.set(false, "stopped");
                        return;
                    }
                    changed = own.changed(), if connected => {
                        if changed.is_err() {
                            return;
                        }
                        let state = own.borrow_and_update().clone();
                        if let Some(state) = state {
                            publish(&client, &mine, &state);
                        }
                    }
                    ev = el.poll() => match ev {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            connected = true;
                            self.set(true, "connected");
                            tracing::info!(host = %s.host, port = s.port, "School path connected.");
                            if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                                break format!("subscribing failed: {e}");
                            }
                            let state = own.borrow_and_update().clone();
                            if let Some(state) = state {
                                publish(&client, &mine, &state);
                            }
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => self.received(&p.topic, &p.payload),
                        Ok(_) => {}
                        Err(e) => break e.to_string(),
                    }
                }
            };
            if connected {
                tracing::warn!(error = %why, "School path lost; reconnecting.");
            }
            self.set(false, format!("offline: {why}"));
            // A school broker serves tens of boards, not a city: a short jittered retry
            // brings the school path back within seconds of the LAN or broker.
            let wait = Duration::from_millis(fastrand::u64(500..=2000));
            tokio::select! {
                () = self.stop.cancelled() => { self.set(false, "stopped"); return; }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn received(&self, topic: &str, payload: &[u8]) {
        let s = &self.settings;
        let Some(device) = topic
            .strip_prefix(ROOT)
            .and_then(|t| t.strip_prefix('/'))
            .and_then(|t| t.strip_prefix(s.school_id.as_str()))
            .and_then(|t| t.strip_prefix('/'))
            .and_then(|t| t.strip_suffix("/school/alarm"))
            .filter(|d| !d.is_empty() && !d.contains('/'))
        else {
            return;
        };
        let mut v = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        if payload.is_empty() {
            // A retained message deleted (a board retired): forget it.
            if v.boards.remove(device).is_some() {
                drop(v);
                (self.on_change)();
            }
            return;
        }
        match SchoolAlarmState::parse(payload, &s.school_id, device) {
            Ok(state) if device == s.device_id => v.echoed = Some(state),
            Ok(state) => {
                if !state.alarms.is_empty() {
                    tracing::warn!(from = %device, alarms = state.alarms.len(), "Alarm state from another board of the school.");
                }
                v.boards.insert(device.to_owned(), state);
                drop(v);
                (self.on_change)();
            }
            Err(why) => {
                v.refused += 1;
                // Names the board of the topic and why; never the payload.
                tracing::warn!(from = %device, reason = %why, "School alarm message refused.");
            }
        }
    }
}

fn publish(client: &AsyncClient, topic: &str, state: &SchoolAlarmState) {
    match serde_json::to_vec(state) {
        Ok(bytes) => {
            if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, true, bytes) {
                tracing::error!(error = %e, "The board's alarm state could not be queued for the school path.");
            }
        }
        Err(e) => tracing::error!(error = %e, "The board's alarm state could not be encoded."),
    }
}
