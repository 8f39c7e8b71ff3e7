//! Validated MQTT settings, built by the daemon from its config.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::StreamBudget;

/// TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// CA bundle (PEM); `None` trusts the Mozilla root programme (webpki-roots).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_auth: Option<(PathBuf, PathBuf)>,
}

/// An HTTP proxy the broker is reached through (HTTP CONNECT; school networks that let
/// nothing out but through their proxy).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy host.
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// Basic authentication, when the proxy asks for it.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Everything the sync worker needs.
#[derive(Clone)]
pub struct MqttSettings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS, or plain TCP when `None` (warned about).
    pub tls: Option<TlsSettings>,
    /// Username and password.
    pub credentials: Option<(String, String)>,
    /// The HTTP proxy to reach the broker through, if the school's network needs one.
    pub proxy: Option<ProxySettings>,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// School id (topics).
    pub school_id: String,
    /// Device id (topics and MQTT client id).
    pub device_id: String,
    /// Daemon version (birth message).
    pub version: String,
    /// Random id of this daemon start (birth message and last will).
    pub boot_id: String,
    /// Hash of the applied config (birth message).
    pub config_hash: String,
    /// Publish rate limit; `None` = unlimited.
    pub max_publish_per_s: Option<NonZeroU32>,
    /// Most unacknowledged publishes at once.
    pub inflight: u16,
    /// Reconnect delay window (min, max) while the broker is unreachable: each retry waits
    /// a uniformly random time in it (see [`super::state::Reconnect`]).
    pub backoff: (Duration, Duration),
    /// Backoff after a broker refused or closed the connection before CONNACK: full
    /// jitter, from the first value doubling up to the second.
    pub refused_backoff: (Duration, Duration),
    /// Time for TCP, TLS and CONNACK together before an attempt counts as failed.
    pub connect_timeout: Duration,
    /// With publishes waiting for their PUBACK, no packet at all from the broker for this
    /// long means the link is dead (faster than keep-alive, which needs two intervals).
    pub ack_timeout: Duration,
    /// Budgets of evictable streams, enforced periodically.
    pub budgets: Vec<StreamBudget>,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("proxy", &self.proxy)
            .field("device_id", &self.device_id)
            .field("max_publish_per_s", &self.max_publish_per_s)
            .field("inflight", &self.inflight)
            .finish_non_exhaustive()
    }
}

impl MqttSettings {
    /// Defaults for everything but the broker and identity.
    pub fn new(host: String, port: u16, school_id: String, device_id: String) -> Self {
        Self {
            host,
            port,
            tls: None,
            credentials: None,
            proxy: None,
            keep_alive: Duration::from_secs(30),
            school_id,
            device_id,
            version: String::new(),
            boot_id: String::new(),
            config_hash: String::new(),
            max_publish_per_s: NonZeroU32::new(100),
            inflight: 100,
            backoff: (Duration::from_millis(250), Duration::from_secs(2)),
            refused_backoff: (Duration::from_secs(2), Duration::from_secs(120)),
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(15),
            budgets: default_budgets(),
        }
    }
}

/// Default budgets: telemetry 50k rows / 20 MB / 7 days; behaviour detail 20k / 20 MB / 7
/// days; acks 20k / 10 MB / 30 days (an ack lost to the budget makes the cloud resend its
/// message, which is then acknowledged as a duplicate).
pub fn default_budgets() -> Vec<StreamBudget> {
    let week = Duration::from_secs(7 * 24 * 3600);
    vec![
        StreamBudget {
            stream: crate::Stream::Telemetry,
            max_rows: 50_000,
            max_bytes: 20_000_000,
            max_age: week,
        },
        StreamBudget {
            stream: crate::Stream::Behaviour,
            max_rows: 20_000,
            max_bytes: 20_000_000,
            max_age: week,
        },
        StreamBudget {
            stream: crate::Stream::Ack,
            max_rows: 20_000,
            max_bytes: 10_000_000,
            max_age: Duration::from_secs(30 * 24 * 3600),
        },
    ]
}
