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
        .route("/assets/board.js", get(board_js))
        .route("/assets/board.css", get(board_css))
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
        .route("/api/v1/lesson", get(view_lesson::<D>))
        .route("/api/v1/reports/{date}/{period}", get(view_report::<D>))
        .route("/api/v1/followups", get(view_followups::<D>))
        .route("/api/v1/audit", get(view_audit::<D>))
        .route("/tech", get(tech_page))
        .route("/assets/tech.js", get(tech_js))
        .route("/api/v1/tech", get(view_tech::<D>))
        .route("/api/v1/tech/epaper.png", get(epaper_png::<D>))
        .route("/api/v1/tech/faces", get(view_faces::<D>))
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

async fn board() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("assets/board.html")),
    )
}

async fn board_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("assets/board.js"),
    )
}

async fn board_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("assets/board.css"),
    )
}

async fn index() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("assets/status.html")),
    )
}

#[tracing::instrument(skip_all)]
async fn healthz<D: DeviceApi>(State(d): State<Arc<D>>) -> Response {
    match d.health().await {
        Ok(()) => Json(serde_json::json!({"status": "ok", "version": d.version()})).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unhealthy", "reason": reason, "version": d.version()})),
        )
            .into_response(),
    }
}

#[tracing::instrument(skip_all)]
async fn status<D: DeviceApi>(State(d): State<Arc<D>>) -> Result<Json<StatusReport>, ApiError> {
    Ok(Json(d.status().await?))
}

#[tracing::instrument(skip_all)]
async fn metrics_text<D: DeviceApi>(State(d): State<Arc<D>>) -> Result<Response, ApiError> {
    let s = d.status().await?;
    let text =
        metrics::render(&s).map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimCard {
    reader: String,
    uid: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimTemperature {
    celsius: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimButton {
    button: String,
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"accepted": true})),
    )
        .into_response()
}

#[tracing::instrument(skip_all)]
async fn sim_card<D: DeviceApi>(
    State(d): State<Arc<D>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth::require_json(&headers)?;
    let req: SimCard = parse_json(&body)?;
    d.sim_card(req.reader, req.uid)
        .await
        .map_err(ApiError::from)?;
    Ok(accepted())
}

#[tracing::instrument(skip_all)]
async fn sim_temperature<D: DeviceApi>(
    State(d): State<Arc<D>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth::require_json(&headers)?;
    let req: SimTemperature = parse_json(&body)?;
    d.sim_temperature(req.celsius)
        .await
        .map_err(ApiError::from)?;
    Ok(accepted())
}

#[tracing::instrument(skip_all)]
async fn sim_button<D: DeviceApi>(
    State(d): State<Arc<D>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth::require_json(&headers)?;
    let req: SimButton = parse_json(&body)?;
    d.sim_button(req.button).await.map_err(ApiError::from)?;
    Ok(accepted())
}

/// Server-sent events for the board (see [`crate::BoardEvent`]); a `hello` first, then
/// events as they happen, and a comment every 15 s to keep proxies from closing it.
async fn events<D: DeviceApi>(
    State(s): State<AppState<D>>,
    req: Request,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let loopback = peer(&req).is_some_and(auth::is_loopback);
    // Trust is checked again for every event: a session locked or closed while the page
    // stays open gets outcomes only from then on.
    let token = auth::cookie(req.headers(), auth::COOKIE);
    let sessions = s.sessions.clone();
    let rx = s
        .device
        .subscribe()
        .ok_or_else(|| ApiError::Unavailable("no live events on this device".to_owned()))?;
    let hello = futures_util::stream::once(async {
        Ok::<_, std::convert::Infallible>(Event::default().event("hello").data("{}"))
    });
    let live = futures_util::stream::unfold(rx, move |mut rx| {
        let trusted_now = {
            let (sessions, token) = (sessions.clone(), token.clone());
            move || loopback || sessions.unlocked(token.as_deref())
        };
        async move {
            let e = match rx.recv().await {
                Ok(ev) => Event::default()
                    .event(ev.kind())
                    .data(ev.to_json(trusted_now())),
                // A slow listener missed some: tell it to refetch the status.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    Event::default().event("changed").data("{}")
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok::<_, std::convert::Infallible>(e), rx))
        }
    });
    let mut stop = s.stopping.subscribe();
    let stopped = async move {
        let _ = stop.wait_for(|v| *v).await;
    };
    let stream =
        futures_util::StreamExt::take_until(futures_util::StreamExt::chain(hello, live), stopped);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimClock {
    at: String,
}

#[tracing::instrument(skip_all)]
async fn sim_clock<D: DeviceApi>(
    State(d): State<Arc<D>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth::require_json(&headers)?;
    let req: SimClock = parse_json(&body)?;
    d.sim_clock(req.at).await.map_err(ApiError::from)?;
    Ok(accepted())
}

#[tracing::instrument(skip_all)]
async fn sim_frame<D: DeviceApi>(
    State(d): State<Arc<D>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "send the frame as the body (PNG or JPEG bytes)".to_owned(),
        ));
    }
    d.sim_frame(body.to_vec()).await.map_err(ApiError::from)?;
    Ok(accepted())
}

#[tracing::instrument(skip_all)]
async fn sim_audio<D: DeviceApi>(
    State(d): State<Arc<D>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "send the recording as the body (WAV bytes)".to_owned(),
        ));
    }
    d.sim_audio(body.to_vec()).await.map_err(ApiError::from)?;
    Ok(accepted())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[serde(default)]
    staff_id: Option<String>,
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    card: bool,
    #[serde(default)]
    password: Option<String>,
}

fn peer(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

fn session_json(actor: &Actor, csrf: &str) -> serde_json::Value {
    let idle = match actor.role {
        auth::Role::Technician => auth::TECHNICIAN_IDLE,
        _ => auth::TEACHER_IDLE,
    };
    serde_json::json!({
        "id": actor.id, "name": actor.name, "role": actor.role,
        "csrf_token": csrf, "idle_timeout_s": idle.as_secs(),
    })
}

#[tracing::instrument(skip_all)]
async fn login<D: DeviceApi>(
    State(s): State<AppState<D>>,
    req: Request,
) -> Result<Response, ApiError> {
    let ip = peer(&req);
    auth::require_json(req.headers())?;
    // Logging in again replaces the session the browser had (rotation).
    let previous = auth::cookie(req.headers(), auth::COOKIE);
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
    let b: LoginBody = parse_json(&body)?;
    let credential = match (b.staff_id, b.pin, b.card) {
        (None, None, false) if b.password.is_some() => Credential::Technician {
            password: b.password.unwrap_or_default(),
        },
        (Some(staff_id), Some(pin), false) if b.password.is_none() => {
            if staff_id.is_empty() || staff_id.chars().count() > 64 {
                return Err(ApiError::BadRequest(
                    "a staff id is 1 to 64 characters".to_owned(),
                ));
            }
            if pin.len() < 4 || pin.len() > 12 || !pin.chars().all(|c| c.is_ascii_digit()) {
                return Err(ApiError::BadRequest("a PIN is 4 to 12 digits".to_owned()));
            }
            Credential::Pin { staff_id, pin }
        }
        (None, None, true) => {
            // The card unlock belongs to the board's own screen.
            if !ip.is_some_and(auth::is_loopback) {
                return Err(ApiError::Forbidden(
                    "card unlock works only on the board's own screen".to_owned(),
                ));
            }
            Credential::Card
        }
        _ => {
            return Err(ApiError::BadRequest(
                "send {\"staff_id\", \"pin\"}, {\"card\": true} or {\"password\"}".to_owned(),
            ));
        }
    };
    let card = credential == Credential::Card;
    // A slot per attempt, taken before verifying (crate::guard); none for the staff card.
    let attempt = match &credential {
        Credential::Pin { staff_id, .. } => Some(format!("staff:{staff_id}")),
        Credential::Technician { .. } => Some("technician".to_owned()),
        Credential::Card => None,
    }
    .map(|account| s.guard.begin(ip, &account, std::time::Instant::now()))
    .transpose()?;
    match s.device.login(credential).await? {
        Some(actor) => {
            if let Some(a) = attempt {
                a.succeeded();
            }
            if let Some(t) = &previous {
                s.sessions.close(t);
            }
            if card {
                // The teacher is at the board with their card: their PIN lock ends.
                s.guard.clear_account(&format!("staff:{}", actor.id));
            }
            let (token, csrf) = s.sessions.open(actor.clone());
            tracing::info!(role = actor.role.as_str(), "Unlocked.");
            Ok((
                [(header::SET_COOKIE, auth::set_cookie(&token))],
                Json(session_json(&actor, &csrf)),
            )
                .into_response())
        }
        None if card => Err(ApiError::Unauthorized(
            "no staff card was tapped in the last few seconds".to_owned(),
        )),
        None => {
            if let Some(a) = attempt {
                a.failed(std::time::Instant::now());
            }
            tracing::warn!("A wrong PIN, staff id or password was entered.");
            Err(ApiError::Unauthorized(
                "wrong staff id, PIN or password".to_owned(),
            ))
        }
    }
}

#[tracing::instrument(skip_all)]
async fn session_info<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match s.sessions.find(&headers)? {
        Some(f) => Ok(Json(session_json(&f.actor, &f.csrf)).into_response()),
        None => Err(ApiError::Unauthorized("not unlocked".to_owned())),
    }
}

#[tracing::instrument(skip_all)]
async fn logout<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(f) = s.sessions.find(&headers).unwrap_or(None) {
        auth::check_csrf(&headers, Some(&f))?;
        s.sessions.close(&f.token);
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::clear_cookie())],
    )
        .into_response())
}

#[tracing::instrument(skip_all)]
async fn act<D: DeviceApi>(
    State(s): State<AppState<D>>,
    ConnectInfo(from): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let session = s.sessions.find(&headers)?;
    auth::check_csrf(&headers, session.as_ref())?;
    let action: Action = parse_json(&body)?;
    action.check_limits().map_err(ApiError::BadRequest)?;
    // A real alarm without a session comes from the board's own screen (loopback) or its
    // button; from any other device on the LAN it needs teacher mode.
    if session.is_none()
        && matches!(action, Action::RaiseAlarm { drill: false })
        && !auth::is_loopback(from.ip())
    {
        return Err(ApiError::Unauthorized(
            "an alarm from another device needs teacher mode; on the board, press the alarm button"
                .to_owned(),
        ));
    }
    let actor = session.map_or_else(Actor::kiosk, |f| f.actor);
    if !action.allowed(actor.role) {
        return Err(if actor.role == auth::Role::Kiosk {
            needs_login(action.allowed(auth::Role::Teacher), action.name())
        } else {
            ApiError::Forbidden(format!(
                "a {} may not {}",
                actor.role.as_str(),
                action.name()
            ))
        });
    }
    Ok(Json(s.device.act(actor, action).await?).into_response())
}

/// 401 for the board's screen without a session: a teacher's unlock, or the technician's
/// login where only the technician may.
fn needs_login(a_teacher_may: bool, what: &str) -> ApiError {
    ApiError::Unauthorized(if a_teacher_may {
        format!("{what} needs teacher mode: unlock first")
    } else {
        format!("{what} needs the technician: log in on /tech first")
    })
}

async fn view<D: DeviceApi>(
    s: &AppState<D>,
    headers: &HeaderMap,
    view: View,
) -> Result<Response, ApiError> {
    let actor = s
        .sessions
        .find(headers)?
        .map_or_else(Actor::kiosk, |f| f.actor);
    if !view.allowed(actor.role) {
        return Err(if actor.role == auth::Role::Kiosk {
            needs_login(view.allowed(auth::Role::Teacher), "this")
        } else {
            ApiError::Forbidden(format!("a {} may not see this", actor.role.as_str()))
        });
    }
    Ok(Json(s.device.view(actor, view).await?).into_response())
}

async fn view_staff<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Staff).await
}

async fn view_lesson<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Lesson).await
}

async fn view_report<D: DeviceApi>(
    State(s): State<AppState<D>>,
    Path((date, period)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lesson_id = format!("{date}/{period}");
    view(&s, &headers, View::Report { lesson_id }).await
}

async fn view_followups<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Followups).await
}

async fn view_tech<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Technician).await
}

/// The device id as a QR code (SVG, anyone): the technician scans it into the school's
/// records when provisioning; shown on `/status` and `/tech`.
async fn device_qr<D: DeviceApi>(State(d): State<Arc<D>>) -> Result<Response, ApiError> {
    let s = d.status().await?;
    let code = qrcode::QrCode::new(s.device.device_id.as_bytes())
        .map_err(|e| ApiError::Internal(format!("QR code of the device id: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    Ok(([(axum::http::header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// The technician's session for a state-changing request (CSRF checked).
fn technician_write<D: DeviceApi>(
    s: &AppState<D>,
    headers: &HeaderMap,
) -> Result<auth::Found, ApiError> {
    let Some(f) = s.sessions.find(headers)? else {
        return Err(ApiError::Unauthorized("log in as technician".to_owned()));
    };
    if f.actor.role != auth::Role::Technician {
        return Err(ApiError::Forbidden("technicians only".to_owned()));
    }
    auth::check_csrf(headers, Some(&f))?;
    Ok(f)
}

/// A provisioning file entered on the technician page (technician): the body is its TOML
/// text; applied like `ketangd provision` (every problem listed, nothing written unless all
/// is valid), then the daemon restarts with it.
#[tracing::instrument(skip_all)]
async fn provisioning<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = technician_write(&s, &headers)?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::BadRequest("the provisioning file is not UTF-8 text".to_owned()))?;
    Ok(Json(s.device.apply_provisioning(f.actor, text).await?).into_response())
}

/// A system update bundle (technician): the body is the bundle itself
/// (`application/octet-stream`), streamed to the data partition; 202 once it is handed to
/// the installer, which checks its signature and installs it (`docs/technician.md`).
#[tracing::instrument(skip_all)]
async fn upload_update<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    use futures_util::TryStreamExt as _;
    let f = technician_write(&s, &headers)?;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let out = s
        .device
        .receive_update(f.actor, length, Box::pin(stream))
        .await?;
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}

/// Face enrolment state (technician).
async fn view_faces<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Faces).await
}

/// The door sign's face (technician).
async fn epaper_png<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let actor = s.sessions.find(&headers)?.map(|f| f.actor);
    match actor.map(|a| a.role) {
        Some(auth::Role::Technician) => {}
        Some(_) => return Err(ApiError::Forbidden("technicians only".to_owned())),
        None => return Err(ApiError::Unauthorized("log in as technician".to_owned())),
    }
    let png = s.device.epaper_png().ok_or_else(|| {
        ApiError::NotFound("a door sign (none configured, or not drawn yet)".to_owned())
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        png,
    )
        .into_response())
}

async fn tech_page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("assets/tech.html")),
    )
}

async fn tech_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("assets/tech.js"),
    )
}

async fn provisioned<D: DeviceApi>(State(d): State<Arc<D>>) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({"provisioned": d.provisioned().await?})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisionBody {
    password: String,
}

/// The technician password is set once, from the board itself (loopback): until then the
/// technician pages show only this form. Over the network the provisioning file sets it.
#[tracing::instrument(skip_all)]
async fn provision<D: DeviceApi>(
    State(d): State<Arc<D>>,
    req: Request,
) -> Result<Response, ApiError> {
    if !peer(&req).is_some_and(auth::is_loopback) {
        return Err(ApiError::Forbidden(
            "the technician password is set on the board itself or by the provisioning file"
                .to_owned(),
        ));
    }
    auth::check_csrf(req.headers(), None)?;
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
    let b: ProvisionBody = parse_json(&body)?;
    if b.password.chars().count() < 10 {
        return Err(ApiError::BadRequest(
            "the technician password needs at least 10 characters".to_owned(),
        ));
    }
    d.provision(b.password).await?;
    tracing::warn!("Technician password set (provisioning).");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn view_audit<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Audit).await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::*;

    #[derive(Default)]
    struct Fake {
        simulated: bool,
        healthy: bool,
        taps: Mutex<Vec<(String, String)>>,
    }

    fn report() -> StatusReport {
        StatusReport {
            device: DeviceInfo {
                school_id: "s".into(),
                classroom_id: "c".into(),
                device_id: "d".into(),
                class_name: "七年级(3)班".into(),
            },
            version: "0.0.0".into(),
            mode: "demo".into(),
            boot_id: "b".into(),
            started_at: "2026-11-23T08:00:00+08:00".into(),
            uptime_s: 5,
            clock: ClockInfo {
                now: "x".into(),
                timezone: "Asia/Shanghai".into(),
                synced: true,
                simulated: false,
            },
            store: StoreInfo {
                path: "p".into(),
                schema_version: 1,
                quarantined: None,
                disk_full: false,
                last_error: None,
            },
            outbox: OutboxInfo {
                pending: [("attendance".to_owned(), 3)].into(),
                total: 3,
            },
            sync: SyncInfo {
                connected: false,
                broker: None,
                state: "offline".into(),
                insecure: false,
                published: 0,
                acked: 0,
                connections: 0,
            },
            hardware: vec![HardwareStatus {
                name: "door".into(),
                kind: "card_reader".into(),
                driver: "simulated".into(),
                state: "ok".into(),
                detail: None,
            }],
            lesson: None,
            next_lesson: None,
            today: vec![],
            alarms: vec![],
            notices: vec![],
            counters: Counters {
                card_taps: 4,
                ..Counters::default()
            },
            system: SystemInfo {
                slot: None,
                image: None,
                updates: false,
                update: None,
                data_free_mb: None,
            },
        }
    }

    impl DeviceApi for Fake {
        async fn status(&self) -> Result<StatusReport, ApiError> {
            Ok(report())
        }
        async fn health(&self) -> Result<(), String> {
            if self.healthy {
                Ok(())
            } else {
                Err("store not answering".into())
            }
        }
        fn version(&self) -> String {
            "0.0.0".into()
        }
        fn simulated(&self) -> bool {
            self.simulated
        }
        async fn sim_card(&self, reader: String, uid: String) -> Result<(), SimError> {
            if reader != "door" {
                return Err(SimError::BadInput(format!("unknown reader {reader:?}")));
            }
            self.taps.lock().unwrap().push((reader, uid));
            Ok(())
        }
        async fn sim_temperature(&self, _c: f64) -> Result<(), SimError> {
            Ok(())
        }
        async fn sim_button(&self, b: String) -> Result<(), SimError> {
            if b == "alarm" {
                Ok(())
            } else {
                Err(SimError::BadInput(format!("unknown button {b:?}")))
            }
        }
    }

    async fn call(app: Router, method: &str, path: &str, body: &str) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:8080")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        let code = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (code, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn sim() -> Arc<Fake> {
        Arc::new(Fake {
            simulated: true,
            healthy: true,
            ..Fake::default()
        })
    }

    #[tokio::test]
    async fn healthz_answers_ok_when_the_device_is_healthy_and_503_when_not() {
        let (code, body) = call(router(sim()), "GET", "/healthz", "").await;
        assert_eq!(code, StatusCode::OK);
        assert!(body.contains("\"ok\""));
        let sick = Arc::new(Fake {
            healthy: false,
            ..Fake::default()
        });
        let (code, body) = call(router(sick), "GET", "/healthz", "").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("store not answering"));
    }

    #[tokio::test]
    async fn status_is_json_with_pending_outbox_by_stream() {
        let (code, body) = call(router(sim()), "GET", "/api/v1/status", "").await;
        assert_eq!(code, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["outbox"]["pending"]["attendance"], 3);
        assert_eq!(v["sync"]["connected"], false);
        assert_eq!(v["hardware"][0]["name"], "door");
    }

    #[tokio::test]
    async fn the_device_id_is_served_as_a_qr_code() {
        let (code, body) = call(router(sim()), "GET", "/api/v1/device/qr.svg", "").await;
        assert_eq!(code, StatusCode::OK);
        assert!(body.contains("<svg") && body.contains("<path"), "{body}");
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_text() {
        let (code, body) = call(router(sim()), "GET", "/metrics", "").await;
        assert_eq!(code, StatusCode::OK);
        assert!(
            body.contains("ketang_outbox_pending{stream=\"attendance\"} 3"),
            "{body}"
        );
        assert!(body.contains("ketang_card_taps_total 4"), "{body}");
        assert!(
            body.contains("ketang_hardware_ok{device=\"door\""),
            "{body}"
        );
        assert!(body.trim_end().ends_with("# EOF"));
    }

    #[tokio::test]
    async fn a_valid_sim_card_tap_is_accepted_with_202() {
        let dev = sim();
        let (code, _) = call(
            router(dev.clone()),
            "POST",
            "/api/v1/sim/card",
            r#"{"reader":"door","uid":"04A1B2C3"}"#,
        )
        .await;
        assert_eq!(code, StatusCode::ACCEPTED);
        assert_eq!(dev.taps.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn sim_endpoints_answer_400_with_a_message_on_bad_input() {
        for (path, body, expect) in [
            ("/api/v1/sim/card", "{not json", "invalid JSON body"),
            (
                "/api/v1/sim/card",
                r#"{"reader":"door"}"#,
                "missing field `uid`",
            ),
            (
                "/api/v1/sim/card",
                r#"{"reader":"back","uid":"04A1B2C3"}"#,
                "unknown reader",
            ),
            (
                "/api/v1/sim/card",
                r#"{"reader":"door","uid":"1","extra":1}"#,
                "unknown field `extra`",
            ),
            (
                "/api/v1/sim/temperature",
                r#"{"celsius":"hot"}"#,
                "invalid type",
            ),
            (
                "/api/v1/sim/button",
                r#"{"button":"doorbell"}"#,
                "unknown button",
            ),
            ("/api/v1/sim/button", "", "invalid JSON body"),
        ] {
            let (code, text) = call(router(sim()), "POST", path, body).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{path} {body}");
            assert!(text.contains(expect), "{path} {body}: {text}");
        }
    }

    #[tokio::test]
    async fn sim_endpoints_do_not_exist_on_real_hardware() {
        let real = Arc::new(Fake {
            healthy: true,
            ..Fake::default()
        });
        let (code, _) = call(
            router(real),
            "POST",
            "/api/v1/sim/card",
            r#"{"reader":"door","uid":"04A1B2C3"}"#,
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn unknown_routes_are_json_404s() {
        let (code, body) = call(router(sim()), "GET", "/nope", "").await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert!(body.contains("/nope"));
    }
}
