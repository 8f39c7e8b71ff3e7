//! Why a staff action was refused or failed, in the classroom's own terms. The HTTP adapter
//! (`daemon/src/api.rs`) maps it to a status code in one place; the cloud's remote commands
//! (`daemon/src/uplink.rs`) put its message in their ack.

/// Why an action was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ActionError {
    /// The action was malformed or names impossible values; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// What the action names (lesson, student, follow-up, alarm, notice, device) does not
    /// exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The action does not apply now (the message says why), e.g. ending a lesson that
    /// has ended.
    #[error("{0}")]
    Conflict(String),
    /// A part of the board needed for it is not available now (the whiteboard does not
    /// answer, the daemon is shutting down).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Something inside the board failed (the store); logged, and answered generically.
    #[error("internal error: {0}")]
    Internal(String),
}
