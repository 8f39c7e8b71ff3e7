//! What staff do and see: actions (`/api/v1/actions`) and the views behind a session.

#[allow(clippy::wildcard_imports)]
use super::*;

#[tracing::instrument(skip_all)]
pub(super) async fn act<D: DeviceApi>(
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

pub(super) async fn view_staff<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Staff).await
}

/// `?id=YYYY-MM-DD/P`: one of today's lessons (a teacher corrects an ended one).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LessonQuery {
    id: Option<String>,
}

pub(super) async fn view_lesson<D: DeviceApi>(
    State(s): State<AppState<D>>,
    axum::extract::Query(q): axum::extract::Query<LessonQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Lesson { lesson_id: q.id }).await
}

pub(super) async fn view_report<D: DeviceApi>(
    State(s): State<AppState<D>>,
    Path((date, period)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lesson_id = format!("{date}/{period}");
    view(&s, &headers, View::Report { lesson_id }).await
}

pub(super) async fn view_followups<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Followups).await
}

pub(super) async fn view_voice<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Voice).await
}

pub(super) async fn view_tech<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Technician).await
}

/// The diagnostics bundle as a file to save (technician).
pub(super) async fn diagnostics<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut r = view(&s, &headers, View::Diagnostics).await?;
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static("attachment; filename=\"ketang-diagnostics.json\""),
    );
    Ok(r)
}

/// Face enrolment state (technician).
pub(super) async fn view_faces<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Faces).await
}

pub(super) async fn view_audit<D: DeviceApi>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view(&s, &headers, View::Audit).await
}
