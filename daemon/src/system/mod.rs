//! The board as a system, beside the classroom: its identity (`identity.rs`), provisioning (`provision.rs`), factory
//! reset (`reset.rs`), Wi-Fi (`wifi.rs`), signed updates (`update.rs`, their downloads in `download.rs`) and the local health check that the
//! post-update trial and the kiosk ask (`health.rs`). The root side of these lives in
//! `image/rootfs/` (docs/development.md).

pub(crate) mod download;
pub(crate) mod health;
pub(crate) mod https;
pub(crate) mod identity;
pub(crate) mod netinfo;
pub(crate) mod power;
pub(crate) mod provision;
pub(crate) mod reset;
pub(crate) mod sms;
pub(crate) mod update;
pub(crate) mod wifi;
