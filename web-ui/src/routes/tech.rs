//! The technician's writes: provisioning, the technician password, update uploads.

#[allow(clippy::wildcard_imports)]
use super::*;

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
pub(super) async fn provisioning<D: DeviceApi>(
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
pub(super) async fn upload_update<D: DeviceApi>(
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

pub(super) async fn provisioned<D: DeviceApi>(
    State(d): State<Arc<D>>,
) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({"provisioned": d.provisioned().await?})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProvisionBody {
    password: String,
}

/// The technician password is set once, from the board itself (loopback): until then the
/// technician pages show only this form. Over the network the provisioning file sets it.
#[tracing::instrument(skip_all)]
pub(super) async fn provision<D: DeviceApi>(
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
