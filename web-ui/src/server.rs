//! The HTTP server loop: every connection has a deadline for its
//! request headers, and connections are capped per client address and in total, so slow
//! or idle clients on the LAN cannot use up the daemon's file descriptors. The board
//! itself (loopback: its kiosk screen, the health check) has a reserve of its own that the
//! LAN cannot take, so `/healthz` stays answerable under such load.
//!
//! One port speaks both HTTP and HTTPS: a connection whose first byte is a TLS handshake
//! (0x16) is served over TLS with the board's own certificate, and its requests carry
//! [`Secure`]. What may cross the LAN without TLS is decided in `auth::cleartext`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

use crate::auth::is_loopback;

/// A request's headers must arrive within this time; a kept-alive connection that sends
/// no next request is closed after it too.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections from other devices at once, in total.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections from one other device at once.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 16;
/// Connections from the board itself (loopback) at once, outside the two caps above.
pub const MAX_LOOPBACK_CONNECTIONS: usize = 128;
/// On shutdown, open connections get this long to finish their requests.
const DRAIN: Duration = Duration::from_secs(5);

/// Whether a request came over TLS (an extension of every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secure(pub bool);

/// The board's HTTPS identity: a certificate (DER) and its private key (PKCS#8 DER).
///
/// # Errors
/// The key or certificate is not usable for TLS.
pub fn tls_config(
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.into()], key)
        .map_err(|e| format!("the board's HTTPS certificate or key: {e}"))?;
    Ok(Arc::new(cfg))
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    loopback: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Admission to the server; a [`Slot`] is held for the life of a connection.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    counts: Mutex<Counts>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Limits {
    /// A slot for a connection from `ip`, or `None` when its cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut c = lock(&self.counts);
        if is_loopback(ip) {
            if c.loopback >= MAX_LOOPBACK_CONNECTIONS {
                return None;
            }
            c.loopback += 1;
        } else {
            let n = c.by_ip.get(&ip).copied().unwrap_or(0);
            if c.total >= MAX_CONNECTIONS || n >= MAX_CONNECTIONS_PER_ADDRESS {
                return None;
            }
            c.total += 1;
            c.by_ip.insert(ip, n + 1);
        }
        Some(Slot {
            limits: self.clone(),
            ip,
        })
    }
}

/// A connection's place; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.limits.counts);
        if is_loopback(self.ip) {
            c.loopback = c.loopback.saturating_sub(1);
        } else {
            c.total = c.total.saturating_sub(1);
            if let Some(n) = c.by_ip.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.by_ip.remove(&self.ip);
                }
            }
        }
    }
}

/// Accepts connections on `listener` and serves `app` on each (HTTP/1.1, with the
/// client's address as [`ConnectInfo`]) until `shutdown` resolves; then open connections
/// finish their requests (at most [`DRAIN`]).
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limits = Arc::new(Limits::default());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors or similar: the next accept may work.
                    tracing::warn!(error = %e, "Accepting an HTTP connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = limits.admit(peer.ip()) else {
            tracing::debug!("An HTTP connection over its cap was closed at once.");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        let acceptor = acceptor.clone();
        conns.spawn(async move {
            let _slot = slot;
            // A TLS handshake starts with 0x16; anything else is plain HTTP. The first byte
            // must come within the header deadline either way.
            let mut first = [0u8; 1];
            let tls = match tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await
            {
                Ok(Ok(1)) => first[0] == 0x16,
                _ => return,
            };
            match (tls, acceptor) {
                (true, Some(acceptor)) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        tracing::debug!("A TLS handshake failed or took too long.");
                        return;
                    };
                    serve_io(TokioIo::new(stream), app, peer, Secure(true), stop).await;
                }
                (true, None) => {}
                (false, _) => serve_io(TokioIo::new(stream), app, peer, Secure(false), stop).await,
            }
        });
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    conns.abort_all();
    Ok(())
}

/// Serves one connection until it ends or the server stops.
async fn serve_io<I>(
    io: I,
    app: Router,
    peer: SocketAddr,
    secure: Secure,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = app.map_request(move |mut req: axum::http::Request<_>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        req.extensions_mut().insert(secure);
        req
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(io, TowerToHyperService::new(svc));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_per_address_in_total_and_for_the_board_itself() {
        let l = Arc::new(Limits::default());
        let lan: IpAddr = "192.168.1.50".parse().unwrap();
        let held: Vec<Slot> = (0..100).filter_map(|_| l.admit(lan)).collect();
        assert_eq!(held.len(), MAX_CONNECTIONS_PER_ADDRESS);
        // The board's own connections are not held up by the LAN's.
        let own: Vec<Slot> = (0..MAX_LOOPBACK_CONNECTIONS)
            .filter_map(|_| l.admit("127.0.0.1".parse().unwrap()))
            .collect();
        assert_eq!(own.len(), MAX_LOOPBACK_CONNECTIONS);
        assert!(l.admit("::1".parse().unwrap()).is_none());
        drop(held);
        assert!(l.admit(lan).is_some());
        // In total.
        let many: Vec<Slot> = (0..=255u8)
            .flat_map(|i| (0..2).map(move |_| IpAddr::from([10, 0, 1, i])))
            .filter_map(|ip| l.admit(ip))
            .collect();
        assert_eq!(many.len(), MAX_CONNECTIONS);
    }
}
