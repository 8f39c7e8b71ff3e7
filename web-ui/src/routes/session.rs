//! Teacher mode and the technician: login, the session, logout.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    #[serde(default)]
    staff_id: Option<String>,
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    card: bool,
    #[serde(default)]
    password: Option<String>,
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
pub(super) async fn login<D: DeviceApi>(
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
pub(super) async fn session_info<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match s.sessions.find(&headers)? {
        Some(f) => Ok(Json(session_json(&f.actor, &f.csrf)).into_response()),
        None => Err(ApiError::Unauthorized("not unlocked".to_owned())),
    }
}

#[tracing::instrument(skip_all)]
pub(super) async fn logout<D: DeviceApi>(
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
