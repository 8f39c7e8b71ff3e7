//! The live event stream of the board (`/api/v1/events`).

#[allow(clippy::wildcard_imports)]
use super::*;

/// Server-sent events for the board (see [`crate::BoardEvent`]); a `hello` first, then
/// events as they happen, and a comment every 15 s to keep proxies from closing it.
pub(super) async fn events<D: DeviceApi>(
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
