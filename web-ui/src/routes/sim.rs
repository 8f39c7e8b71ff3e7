//! Simulated hardware input (`/api/v1/sim/*`), mounted only when the device runs
//! simulated hardware.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SimCard {
    reader: String,
    uid: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SimTemperature {
    celsius: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SimButton {
    button: String,
}

#[tracing::instrument(skip_all)]
pub(super) async fn sim_card<D: DeviceApi>(
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
pub(super) async fn sim_temperature<D: DeviceApi>(
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
pub(super) async fn sim_button<D: DeviceApi>(
    State(d): State<Arc<D>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth::require_json(&headers)?;
    let req: SimButton = parse_json(&body)?;
    d.sim_button(req.button).await.map_err(ApiError::from)?;
    Ok(accepted())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SimClock {
    at: String,
}

#[tracing::instrument(skip_all)]
pub(super) async fn sim_clock<D: DeviceApi>(
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
pub(super) async fn sim_frame<D: DeviceApi>(
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
pub(super) async fn sim_audio<D: DeviceApi>(
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
