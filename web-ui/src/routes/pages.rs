//! The pages and public reads: the class board, the status page, the technician page and
//! their assets, `/healthz`, the status document, metrics, the device QR code, the door
//! sign preview.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) async fn board() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("../assets/board.html")),
    )
}

pub(super) async fn board_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/board.js"),
    )
}

pub(super) async fn ime_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/ime.js"),
    )
}

/// The pinyin keyboard's lexicon (web-ui/ime/build-dict.mjs): ~1 MB, fetched once when a
/// text field is first focused.
pub(super) async fn pinyin_json() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("../assets/pinyin.json"),
    )
}

pub(super) async fn board_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/board.css"),
    )
}

/// The duty-room view: every board of the school on the school path (read-only, no names
/// of people, so any browser in the duty room may keep it open).
pub(super) async fn duty() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("../assets/duty.html")),
    )
}

pub(super) async fn index() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("../assets/status.html")),
    )
}

#[tracing::instrument(skip_all)]
pub(super) async fn healthz<D: DeviceApi>(State(d): State<Arc<D>>) -> Response {
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
pub(super) async fn status<D: DeviceApi>(
    State(d): State<Arc<D>>,
) -> Result<Json<StatusReport>, ApiError> {
    Ok(Json(d.status().await?))
}

#[tracing::instrument(skip_all)]
pub(super) async fn metrics_text<D: DeviceApi>(
    State(d): State<Arc<D>>,
) -> Result<Response, ApiError> {
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

/// The device id as a QR code (SVG, anyone): the technician scans it into the school's
/// records when provisioning; shown on `/status` and `/tech`.
pub(super) async fn device_qr<D: DeviceApi>(State(d): State<Arc<D>>) -> Result<Response, ApiError> {
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

/// An honour's image, shown on the board (public, like the board itself).
pub(super) async fn honour_image<D: DeviceApi>(
    State(s): State<AppState<D>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let (mime, bytes) = s.device.honour_image(id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}

/// The door sign's face (technician).
pub(super) async fn epaper_png<D: DeviceApi>(
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

pub(super) async fn tech_page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("../assets/tech.html")),
    )
}

pub(super) async fn tech_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/tech.js"),
    )
}
