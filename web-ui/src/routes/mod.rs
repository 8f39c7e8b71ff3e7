//! The router and its handlers.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::actions::{Action, Credential, View};
use crate::auth::{self, Actor, Sessions};
use crate::{ApiError, SimError, StatusReport, metrics};

mod events;
mod pages;
mod session;
mod sim;
mod staff;
mod tech;
#[cfg(test)]
mod tests;

use events::events;
use pages::{
    board, board_css, board_js, device_qr, duty, epaper_png, healthz, ime_js, index, metrics_text,
    pinyin_json, status, tech_js, tech_page,
};
use session::{login, logout, session_info};
use sim::{sim_audio, sim_button, sim_card, sim_clock, sim_frame, sim_temperature};
use staff::{
    act, view_audit, view_faces, view_followups, view_lesson, view_report, view_staff, view_tech,
};
use tech::{provision, provisioned, provisioning, upload_update};

/// What every handler can reach.
struct AppState<D> {
    device: Arc<D>,
    sessions: Arc<Sessions>,
    guard: Arc<crate::guard::LoginGuard>,
    /// Turns true when the server shuts down: live event streams end then, so the
    /// graceful shutdown is not held up by open pages.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl<D> Clone for AppState<D> {
    fn clone(&self) -> Self {
        Self {
            device: self.device.clone(),
            sessions: self.sessions.clone(),
            guard: self.guard.clone(),
            stopping: self.stopping.clone(),
        }
    }
}

impl<D> FromRef<AppState<D>> for Arc<D> {
    fn from_ref(s: &AppState<D>) -> Self {
        s.device.clone()
    }
}

async fn not_supported<T>() -> Result<T, ApiError> {
    Err(ApiError::Unavailable(
        "this device does not support that".to_owned(),
    ))
}

/// What the HTTP layer needs from the device. The daemon implements it.
pub trait DeviceApi: Send + Sync + 'static {
    /// The current status.
    fn status(&self) -> impl Future<Output = Result<StatusReport, ApiError>> + Send;
    /// `Ok` when the daemon can do its job (its store answers); otherwise why not.
    fn health(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// Daemon version.
    fn version(&self) -> String;
    /// Whether hardware is simulated (mounts the `/api/v1/sim/*` routes).
    fn simulated(&self) -> bool;
    /// A simulated card tap on reader `reader`.
    fn sim_card(
        &self,
        reader: String,
        uid: String,
    ) -> impl Future<Output = Result<(), SimError>> + Send;
    /// A simulated thermometer reading.
    fn sim_temperature(&self, celsius: f64) -> impl Future<Output = Result<(), SimError>> + Send;
    /// A simulated button press.
    fn sim_button(&self, button: String) -> impl Future<Output = Result<(), SimError>> + Send;
    /// A frame from the simulated classroom camera (PNG or JPEG bytes).
    fn sim_frame(&self, _image: Vec<u8>) -> impl Future<Output = Result<(), SimError>> + Send {
        async {
            Err(SimError::BadInput(
                "this device has no simulated camera".to_owned(),
            ))
        }
    }
    /// A recording from the simulated classroom microphone (WAV bytes), ending now.
    fn sim_audio(&self, _wav: Vec<u8>) -> impl Future<Output = Result<(), SimError>> + Send {
        async {
            Err(SimError::BadInput(
                "this device has no simulated microphone".to_owned(),
            ))
        }
    }
    /// Sets the simulated clock to `at` (RFC 3339); only with a simulated clock.
    fn sim_clock(&self, _at: String) -> impl Future<Output = Result<(), SimError>> + Send {
        async { Err(SimError::BadInput("the clock is not simulated".to_owned())) }
    }
    /// Checks a credential: `Ok(None)` when it is wrong.
    fn login(
        &self,
        _credential: Credential,
    ) -> impl Future<Output = Result<Option<Actor>, ApiError>> + Send {
        not_supported()
    }
    /// Does `action` for `actor` (whose role was checked); answers what happened.
    fn act(
        &self,
        _actor: Actor,
        _action: Action,
    ) -> impl Future<Output = Result<serde_json::Value, ApiError>> + Send {
        not_supported()
    }
    /// The image of honour `id` (MIME type and bytes).
    fn honour_image(
        &self,
        _id: String,
    ) -> impl Future<Output = Result<(&'static str, Vec<u8>), ApiError>> + Send {
        not_supported()
    }
    /// The door sign's current face as PNG, if there is a sign.
    fn epaper_png(&self) -> Option<Vec<u8>> {
        None
    }
    /// Live events for the board's screen; `None` when the device has none.
    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<crate::BoardEvent>> {
        None
    }
    /// Whether the technician password has been set (provisioning).
    fn provisioned(&self) -> impl Future<Output = Result<bool, ApiError>> + Send {
        not_supported()
    }
    /// Sets the technician password once (409 when already set).
    fn provision(&self, _password: String) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_supported()
    }
    /// Applies a provisioning file's text entered by a technician (then restarts).
    fn apply_provisioning(
        &self,
        _actor: Actor,
        _text: String,
    ) -> impl Future<Output = Result<serde_json::Value, ApiError>> + Send {
        not_supported()
    }
    /// Receives a system update bundle a technician uploads: `length` is the announced size,
    /// `body` the bytes, streamed to the data partition and handed to the installer.
    fn receive_update(
        &self,
        _actor: Actor,
        _length: Option<u64>,
        _body: Upload,
    ) -> impl Future<Output = Result<serde_json::Value, ApiError>> + Send {
        not_supported()
    }
    /// Answers `view` for `actor` (whose role was checked).
    fn view(
        &self,
        _actor: Actor,
        _view: View,
    ) -> impl Future<Output = Result<serde_json::Value, ApiError>> + Send {
        not_supported()
    }
}

/// An uploaded body, streamed.
pub type Upload = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>,
>;

/// Builds the router for `device`.
pub fn router<D: DeviceApi>(device: Arc<D>) -> Router {
    router_with(device, Arc::new(tokio::sync::watch::channel(false).0))
}

fn router_with<D: DeviceApi>(
    device: Arc<D>,
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
) -> Router {
    let simulated = device.simulated();
    let state = AppState {
        device,
        sessions: Arc::new(Sessions::default()),
        guard: Arc::default(),
        stopping,
    };
    let mut r = Router::new()
        .route("/", get(board))
        .route("/status", get(index))
        .route("/duty", get(duty))
        .route("/assets/board.js", get(board_js))
        .route("/assets/board.css", get(board_css))
        .route("/assets/ime.js", get(ime_js))
        .route("/assets/pinyin.json", get(pinyin_json))
        .route("/healthz", get(healthz::<D>))
        .route("/api/v1/status", get(status::<D>))
        .route("/metrics", get(metrics_text::<D>))
        .route(
            "/api/v1/session",
            get(session_info::<D>).post(login::<D>).delete(logout::<D>),
        )
        .route("/api/v1/actions", post(act::<D>))
        .route("/api/v1/events", get(events::<D>))
        .route("/api/v1/staff", get(view_staff::<D>))
        .route("/api/v1/honours/{id}/image", get(pages::honour_image::<D>))
        .route("/api/v1/lesson", get(view_lesson::<D>))
        .route("/api/v1/reports/{date}/{period}", get(view_report::<D>))
        .route("/api/v1/followups", get(view_followups::<D>))
        .route("/api/v1/voice", get(staff::view_voice::<D>))
        .route("/api/v1/audit", get(view_audit::<D>))
        .route("/tech", get(tech_page))
        .route("/assets/tech.js", get(tech_js))
        .route("/api/v1/tech", get(view_tech::<D>))
        .route("/api/v1/tech/epaper.png", get(epaper_png::<D>))
        .route("/api/v1/tech/faces", get(view_faces::<D>))
        .route("/api/v1/tech/diagnostics", get(staff::diagnostics::<D>))
        .route("/api/v1/device/qr.svg", get(device_qr::<D>))
        .route("/api/v1/tech/update", post(upload_update::<D>))
        .route("/api/v1/tech/provisioning", post(provisioning::<D>))
        .route(
            "/api/v1/tech/provision",
            get(provisioned::<D>).post(provision::<D>),
        );
    if simulated {
        r = r
            .route("/api/v1/sim/card", post(sim_card::<D>))
            .route("/api/v1/sim/temperature", post(sim_temperature::<D>))
            .route("/api/v1/sim/button", post(sim_button::<D>))
            .route("/api/v1/sim/clock", post(sim_clock::<D>))
            .route("/api/v1/sim/frame", post(sim_frame::<D>))
            .route("/api/v1/sim/audio", post(sim_audio::<D>));
    }
    r.fallback(not_found)
        .layer(axum::middleware::from_fn(auth::check_host))
        .layer(axum::middleware::from_fn(auth::cleartext))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// Every refusal is JSON `{"error": …}` (docs/api.md), also the ones axum makes itself: a
/// body over its limit (413), a method the path does not take (405). Found by fuzzing.
async fn json_errors(res: Response) -> Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    let code = res.status();
    let json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(code.is_client_error() || code.is_server_error()) || json {
        return res;
    }
    let why = match code {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "this path does not take that method".to_owned(),
        other => other.canonical_reason().unwrap_or("refused").to_lowercase(),
    };
    let mut out = (code, Json(serde_json::json!({ "error": why }))).into_response();
    for (k, v) in res.headers() {
        if k != CONTENT_TYPE && k != CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// Serves `device` on `listener` until `shutdown` resolves, then finishes in-flight requests.
///
/// # Errors
/// Accepting connections failed.
pub async fn serve<D: DeviceApi>(
    listener: tokio::net::TcpListener,
    device: Arc<D>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = Arc::new(tokio::sync::watch::channel(false).0);
    let app = router_with(device, stopping.clone());
    crate::server::run(listener, app, tls, async move {
        shutdown.await;
        let _ = stopping.send(true);
    })
    .await
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

/// Parses a JSON body with a 400 that says what is wrong (axum's `Json` answers 415/422).
fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    // serde quotes offending values whole (an unknown variant, a wrong type): cut them.
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid JSON body: {}",
            crate::actions::cut(&e.to_string(), 300)
        ))
    })
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"accepted": true})),
    )
        .into_response()
}

fn peer(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}
