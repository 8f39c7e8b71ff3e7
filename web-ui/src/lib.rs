//! Ketang's local HTTP API and the class board UI, served by axum.
//!
//! This crate declares what it needs from the device as the [`DeviceApi`] trait; the daemon
//! implements it (docs/development.md §1), so of the workspace this crate depends only on the
//! pure-data contract (`ketang-contract`).
//!
//! Routes (contract, see `docs/api.md`):
//! * `GET /healthz`: 200 and JSON when the daemon and its store answer, 503 otherwise.
//! * `GET /api/v1/status`: the device's status as JSON ([`StatusReport`]).
//! * `GET /metrics`: Prometheus/OpenMetrics text.
//! * `POST /api/v1/sim/card|temperature|button`: simulated hardware input, mounted only
//!   when the device runs simulated hardware.
//! * `GET /`: a status page for people.

mod actions;
pub mod auth;
mod error;
mod events;
pub mod guard;
mod metrics;
mod routes;
pub mod server;
mod status;
mod zh;
pub use zh::refusal_zh;

pub use actions::{Action, Credential, View};
pub use auth::{Actor, Role};
pub use error::{ApiError, SimError};
pub use events::{BoardEvent, TapOutcome};
pub use routes::{DeviceApi, Upload, router, serve};
pub use status::*;
