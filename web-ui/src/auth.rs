//! Sessions, roles, CSRF and login rate limiting.
//!
//! * Roles: `kiosk` (no session: what anyone at the board may do), `teacher` (unlocked by
//!   PIN or staff card), `technician`.
//! * A session is a random token in an `HttpOnly; SameSite=Strict` cookie, kept in memory
//!   (a daemon restart logs everyone out, which is the safe direction). It expires after
//!   [`TEACHER_IDLE`] (teacher) or [`TECHNICIAN_IDLE`] without requests, and after
//!   [`MAX_AGE`] in any case.
//! * CSRF: every state-changing request with a session must carry the session's token in
//!   `X-CSRF-Token`; requests without a session must be `application/json` (which a
//!   cross-site form cannot send without a CORS preflight, and no CORS is allowed).
//! * Failed logins are limited per client address and per account, and verifications are
//!   capped: see [`crate::guard`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// Teacher mode locks itself after this long without a request.
pub const TEACHER_IDLE: Duration = Duration::from_secs(180);
/// Technician sessions expire after this long without a request.
pub const TECHNICIAN_IDLE: Duration = Duration::from_secs(900);
/// No session lives longer than this.
pub const MAX_AGE: Duration = Duration::from_secs(8 * 3600);
/// The session cookie's name.
pub const COOKIE: &str = "ketang_session";
/// The CSRF header's name.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who may do what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Anyone at the board, no session.
    Kiosk,
    /// A teacher, unlocked by PIN or staff card.
    Teacher,
    /// A technician (password, separate pages).
    Technician,
}

impl Role {
    /// The name used in JSON and the audit log.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Kiosk => "kiosk",
            Self::Teacher => "teacher",
            Self::Technician => "technician",
        }
    }

    fn idle(self) -> Duration {
        match self {
            Self::Technician => TECHNICIAN_IDLE,
            _ => TEACHER_IDLE,
        }
    }
}

/// The person behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// Staff id ("kiosk" for no session).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
}

impl Actor {
    /// The actor of a request without a session.
    #[must_use]
    pub fn kiosk() -> Self {
        Self {
            id: "kiosk".to_owned(),
            name: String::new(),
            role: Role::Kiosk,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    actor: Actor,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// A session found for a request.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) token: String,
    pub(crate) actor: Actor,
    pub(crate) csrf: String,
}

/// The live sessions.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    /// Opens a session; returns (token, csrf token).
    pub(crate) fn open(&self, actor: Actor) -> (String, String) {
        let (t, csrf) = (token(), token());
        let now = Instant::now();
        let mut s = lock(&self.sessions);
        s.retain(|_, v| !expired(v, now));
        s.insert(
            t.clone(),
            Session {
                actor,
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        (t, csrf)
    }

    pub(crate) fn close(&self, token: &str) {
        lock(&self.sessions).remove(token);
    }

    /// Whether `token` names a live unlocked session now, without touching it (a live
    /// event stream asks for every event: it must neither keep a session alive nor keep
    /// names flowing after the session was locked or closed).
    pub(crate) fn unlocked(&self, token: Option<&str>) -> bool {
        let Some(token) = token else { return false };
        lock(&self.sessions)
            .get(token)
            .is_some_and(|v| !expired(v, Instant::now()) && v.actor.role != Role::Kiosk)
    }

    /// The session named by the request's cookie, touched. `Ok(None)`: no cookie.
    ///
    /// # Errors
    /// The cookie names a session that expired or does not exist (401).
    pub(crate) fn find(&self, headers: &HeaderMap) -> Result<Option<Found>, ApiError> {
        let Some(t) = cookie(headers, COOKIE) else {
            return Ok(None);
        };
        let now = Instant::now();
        let mut s = lock(&self.sessions);
        match s.get_mut(&t) {
            Some(v) if !expired(v, now) => {
                v.last_seen = now;
                Ok(Some(Found {
                    token: t,
                    actor: v.actor.clone(),
                    csrf: v.csrf.clone(),
                }))
            }
            Some(_) => {
                s.remove(&t);
                Err(ApiError::Unauthorized(
                    "the session expired (locked after inactivity); unlock again".to_owned(),
                ))
            }
            None => Err(ApiError::Unauthorized(
                "the session is unknown (the device may have restarted); unlock again".to_owned(),
            )),
        }
    }
}

fn expired(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last_seen) >= s.actor.role.idle()
        || now.duration_since(s.created) >= MAX_AGE
}

/// The value of cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The `Set-Cookie` value for a session token.
pub(crate) fn set_cookie(token: &str) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        MAX_AGE.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// `a == b` in time that depends only on the lengths (a CSRF token must not be guessable
/// byte by byte from response times).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `ip` is this machine's loopback, also as an IPv4-mapped IPv6 address
/// (`::ffff:127.0.0.1`, how IPv4 clients appear on a `[::]` listener).
pub(crate) fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        v4 => v4.is_loopback(),
    }
}

/// Refuses a request that is not `Content-Type: application/json` (a cross-site page can
/// send `text/plain` without a CORS preflight, but not JSON).
///
/// # Errors
/// 415 naming the type that was sent.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "send Content-Type: application/json (got {:?})",
            ct.chars().take(40).collect::<String>()
        )))
    }
}

/// Whether a `Host` header names this board the way its users reach it: an IP address
/// (the board's screen uses 127.0.0.1; LAN browsers its address) or `localhost`, with or
/// without a port. A name resolving to the board (DNS rebinding: a page on
/// `evil.example` whose name now points at the board) is refused.
pub(crate) fn host_allowed(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest.split_once(']').is_some_and(|(ip, port)| {
            ip.parse::<std::net::Ipv6Addr>().is_ok()
                && (port.is_empty() || port.strip_prefix(':').is_some_and(valid_port))
        });
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if valid_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// Middleware: every request must carry an allowed `Host` ([`host_allowed`]); 421 else.
pub(crate) async fn check_host(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let ok = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(host_allowed);
    if ok {
        next.run(req).await
    } else {
        ApiError::MisdirectedRequest(
            "this board answers to its IP address or localhost, not to other names".to_owned(),
        )
        .into_response()
    }
}

/// No credential crosses the school network in clear (docs/privacy.md, "Cleartext"). From
/// another device over plain HTTP, a login, the technician password's provisioning and any
/// request sent with a session cookie are refused (403, naming the https address), and
/// the board's pages redirect to https; public reads (`/healthz`, the status, the live
/// outcomes) stay plain. The board's own screen (loopback) needs no TLS. Over TLS the
/// session cookie is also `Secure`.
pub(crate) async fn cleartext(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{Method, StatusCode, header};
    use axum::response::IntoResponse as _;
    let secure = req
        .extensions()
        .get::<crate::server::Secure>()
        .is_some_and(|s| s.0);
    let lan = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|c| !is_loopback(c.0.ip()));
    if lan && !secure {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| host_allowed(h))
            .map(str::to_owned);
        let path = req.uri().path();
        let page = req.method() == Method::GET && (path == "/" || path == "/tech");
        if let (true, Some(h)) = (page, &host) {
            let to = format!("https://{h}{path}");
            return (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, to)]).into_response();
        }
        let credential = cookie(req.headers(), COOKIE).is_some()
            || (path == "/api/v1/session" && req.method() != Method::GET)
            || (path == "/api/v1/tech/provision" && req.method() == Method::POST);
        if credential {
            let at = host.map_or_else(
                || "https://<board>/".to_owned(),
                |h| format!("https://{h}/"),
            );
            return ApiError::Forbidden(format!(
                "from another device, log in over {at} (PINs, passwords and sessions never cross the network in clear; check the certificate fingerprint against the board's technician page)"
            ))
            .into_response();
        }
    }
    let mut res = next.run(req).await;
    if secure {
        let cookies: Vec<_> = res
            .headers_mut()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(|s| format!("{s}; Secure")))
            .collect();
        if !cookies.is_empty() {
            res.headers_mut().remove(header::SET_COOKIE);
            for c in cookies {
                if let Ok(v) = axum::http::HeaderValue::from_str(&c) {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
        }
    }
    res
}

/// CSRF rule for a state-changing request (see the module docs).
pub(crate) fn check_csrf(headers: &HeaderMap, session: Option<&Found>) -> Result<(), ApiError> {
    match session {
        Some(s) => {
            let sent = headers.get(CSRF_HEADER).map(|v| v.as_bytes());
            if sent.is_some_and(|sent| constant_time_eq(sent, s.csrf.as_bytes())) {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "missing or wrong X-CSRF-Token header (use the token the login answered)"
                        .to_owned(),
                ))
            }
        }
        None => {
            let json = headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if json {
                Ok(())
            } else {
                Err(ApiError::BadRequest(
                    "state-changing requests must be Content-Type: application/json".to_owned(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// The cleartext rule on a router of two dummy routes: (status, Location, Set-Cookie).
    async fn through_cleartext(
        method: &str,
        path: &str,
        from: &str,
        secure: bool,
        cookie_sent: bool,
    ) -> (u16, Option<String>, Option<String>) {
        use tower::ServiceExt as _;
        let ok = || async {
            (
                [(
                    axum::http::header::SET_COOKIE,
                    "ketang_session=t; Path=/; HttpOnly",
                )],
                "ok",
            )
        };
        let app = axum::Router::new()
            .route("/", axum::routing::get(ok))
            .route("/api/v1/status", axum::routing::get(ok))
            .route("/api/v1/session", axum::routing::post(ok))
            .layer(axum::middleware::from_fn(cleartext));
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "192.168.1.10:8080");
        if cookie_sent {
            req = req.header("cookie", "ketang_session=abc");
        }
        let mut req = req.body(axum::body::Body::empty()).unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(
                from.parse().unwrap(),
            ));
        req.extensions_mut().insert(crate::server::Secure(secure));
        let res = app.oneshot(req).await.unwrap();
        let h = |n| {
            res.headers()
                .get(n)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        (
            res.status().as_u16(),
            h(axum::http::header::LOCATION),
            h(axum::http::header::SET_COOKIE),
        )
    }

    #[tokio::test]
    async fn no_credential_crosses_the_lan_in_clear() {
        let lan = "192.168.1.23:50000";
        // A login from another device over plain HTTP: refused, naming the https address.
        assert_eq!(
            through_cleartext("POST", "/api/v1/session", lan, false, false)
                .await
                .0,
            403
        );
        // Anything sent with a session cookie: refused.
        assert_eq!(
            through_cleartext("GET", "/api/v1/status", lan, false, true)
                .await
                .0,
            403
        );
        // The board's page redirects to https; public reads stay plain.
        let (code, to, _) = through_cleartext("GET", "/", lan, false, false).await;
        assert_eq!(
            (code, to.as_deref()),
            (308, Some("https://192.168.1.10:8080/"))
        );
        assert_eq!(
            through_cleartext("GET", "/api/v1/status", lan, false, false)
                .await
                .0,
            200
        );
        // Over TLS: allowed, and the cookie is Secure.
        let (code, _, cookie) =
            through_cleartext("POST", "/api/v1/session", lan, true, false).await;
        assert_eq!(code, 200);
        assert!(cookie.unwrap().ends_with("; Secure"));
        // The board's own screen (loopback) needs no TLS.
        let (code, _, cookie) =
            through_cleartext("POST", "/api/v1/session", "127.0.0.1:5", false, true).await;
        assert_eq!(code, 200);
        assert!(!cookie.unwrap().contains("Secure"));
    }

    fn teacher() -> Actor {
        Actor {
            id: "t-01".into(),
            name: "陈建国".into(),
            role: Role::Teacher,
        }
    }

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(v).unwrap(),
        );
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_among_others() {
        let s = Sessions::default();
        let (t, csrf) = s.open(teacher());
        let found = s
            .find(&with_cookie(&format!("a=b; {COOKIE}={t}; c=d")))
            .unwrap()
            .unwrap();
        assert_eq!(found.actor, teacher());
        assert_eq!(found.csrf, csrf);
        assert!(s.find(&HeaderMap::new()).unwrap().is_none());
        assert!(matches!(
            s.find(&with_cookie(&format!("{COOKIE}=nope"))),
            Err(ApiError::Unauthorized(_))
        ));
        s.close(&t);
        assert!(s.find(&with_cookie(&format!("{COOKIE}={t}"))).is_err());
    }

    #[test]
    fn csrf_needs_the_session_token_or_json_without_a_session() {
        let s = Sessions::default();
        let (t, csrf) = s.open(teacher());
        let mut h = with_cookie(&format!("{COOKIE}={t}"));
        let found = s.find(&h).unwrap().unwrap();
        assert!(check_csrf(&h, Some(&found)).is_err());
        h.insert(CSRF_HEADER, HeaderValue::from_str("wrong").unwrap());
        assert!(check_csrf(&h, Some(&found)).is_err());
        h.insert(CSRF_HEADER, HeaderValue::from_str(&csrf).unwrap());
        assert!(check_csrf(&h, Some(&found)).is_ok());
        let mut plain = HeaderMap::new();
        assert!(check_csrf(&plain, None).is_err());
        plain.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(check_csrf(&plain, None).is_ok());
    }

    #[test]
    fn hosts_are_ip_addresses_or_localhost_with_an_optional_port() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "192.168.3.40:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "[fe80::1]",
        ] {
            assert!(host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.nip.io",
            "[::1]x",
            "127.0.0.1:80a",
            "",
            "localhost:",
        ] {
            assert!(!host_allowed(bad), "{bad}");
        }
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("::ffff:192.168.1.2".parse().unwrap()));
    }
}
