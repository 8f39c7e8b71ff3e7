//! HTTP errors.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to an HTTP client. 5xx answers are generic; the cause is logged.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request was wrong; the message says how (sent to the client).
    #[error("{0}")]
    BadRequest(String),
    /// No such resource.
    #[error("not found: {0}")]
    NotFound(String),
    /// Something inside the device failed; the message is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// A part of the device is not available right now (sent to the client).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// No valid session, or it expired: log in (again).
    #[error("{0}")]
    Unauthorized(String),
    /// The session's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (e.g. ending a lesson that has ended).
    #[error("{0}")]
    Conflict(String),
    /// The upload is larger than the device takes (413).
    #[error("{0}")]
    TooLarge(String),
    /// The device has no room for it (507).
    #[error("{0}")]
    InsufficientStorage(String),
    /// The body's media type is not accepted (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request names another host (421): DNS rebinding or a misconfigured proxy.
    #[error("{0}")]
    MisdirectedRequest(String),
    /// Too many failed attempts; try again after `retry_after_s` seconds.
    #[error("{message}")]
    TooManyRequests {
        /// What to tell the user.
        message: String,
        /// Seconds until the next attempt is accepted.
        retry_after_s: u64,
    },
}

/// Why simulated input was refused.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The input names something that does not exist or is malformed (400).
    #[error("{0}")]
    BadInput(String),
    /// The device cannot take input now, e.g. shutting down (503).
    #[error("{0}")]
    Unavailable(String),
}

impl From<SimError> for ApiError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::BadInput(m) => ApiError::BadRequest(m),
            SimError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, message) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, self.to_string()),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, self.to_string()),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone()),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m.clone()),
            ApiError::InsufficientStorage(m) => (StatusCode::INSUFFICIENT_STORAGE, m.clone()),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m.clone()),
            ApiError::MisdirectedRequest(m) => (StatusCode::MISDIRECTED_REQUEST, m.clone()),
            ApiError::TooManyRequests {
                message,
                retry_after_s,
            } => {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(axum::http::header::RETRY_AFTER, retry_after_s.to_string())],
                    Json(serde_json::json!({
                        "error": message,
                        "error_zh": format!("尝试次数过多，请 {retry_after_s} 秒后再试"),
                        "retry_after_s": retry_after_s
                    })),
                )
                    .into_response();
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "Request failed inside the device.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the device log)".to_owned(),
                )
            }
        };
        let zh = crate::zh::refusal_zh(&message);
        (
            code,
            Json(serde_json::json!({ "error": message, "error_zh": zh })),
        )
            .into_response()
    }
}
