//! The MQTT side of sync: drains the outbox to the regional broker and takes the downlink.
//!
//! Contract: `docs/mqtt.md` and `docs/asyncapi.yaml`. One task ([`SyncWorker`]) owns the
//! rumqttc event loop and never blocks on anything but the store's bounded channel.

mod downlink;
mod refusal;
mod school;
mod settings;
mod state;
mod status;
mod tasks;
mod tls;
pub mod topics;
mod urgent;
mod worker;

pub use downlink::{
    Command, Downlink, DownlinkBody, KINDS, MAX_DOWNLINK_BYTES, Rejected, parse_downlink,
};
pub use refusal::{MAX_OUTGOING_PACKET, connect_failure};
pub use school::{SchoolLink, SchoolLinkSettings, school_alarm_topic};
pub use settings::{MqttSettings, ProxySettings, TlsSettings, default_budgets};
pub use state::{Failure, InFlight, Reconnect, TokenBucket};
pub use status::{CommandHandler, SyncStatus};
pub use urgent::{URGENT_QUEUE, Urgent, UrgentReceiver};
pub use worker::SyncWorker;
