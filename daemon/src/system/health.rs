//! `ketangd health`: asks the board's own daemon whether it is healthy (`GET /healthz` on
//! the configured `http.listen`), for the post-update health check (`ketang-health`) and the
//! kiosk, which must not assume an address. A wildcard listen address (`0.0.0.0`, `[::]`)
//! is asked on loopback.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Where this board's own screen and scripts reach the daemon listening on `listen`.
pub(crate) fn local_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The class board's URL for the board's own browser.
pub(crate) fn local_url(listen: SocketAddr) -> String {
    format!("http://{}/", local_addr(listen))
}

/// One `GET /healthz`: `Ok` on 200, else what was wrong.
fn ask(addr: SocketAddr) -> Result<(), String> {
    let timeout = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("{addr}: {e}"))?;
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("{addr}: sending the request: {e}"))?;
    let mut head = Vec::new();
    // The status line is all we need; the body says why when it is not 200.
    s.take(4096)
        .read_to_end(&mut head)
        .map_err(|e| format!("{addr}: reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&head);
    let status = text.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        Err(format!(
            "{addr} answered {:?}: {}",
            status,
            body.chars().take(300).collect::<String>()
        ))
    }
}

/// Asks until healthy or `wait` has passed (at least once).
///
/// # Errors
/// The daemon did not answer healthy in time: the last reason.
pub(crate) fn check(listen: SocketAddr, wait: Duration) -> anyhow::Result<()> {
    let addr = local_addr(listen);
    let deadline = Instant::now() + wait;
    loop {
        match ask(addr) {
            Ok(()) => return Ok(()),
            Err(why) if Instant::now() >= deadline => anyhow::bail!("not healthy: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_asked_on_loopback_and_others_as_they_are() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(local_addr(a("0.0.0.0:8080")), a("127.0.0.1:8080"));
        assert_eq!(local_addr(a("[::]:9000")), a("[::1]:9000"));
        assert_eq!(local_addr(a("10.1.2.3:80")), a("10.1.2.3:80"));
        assert_eq!(local_url(a("[::]:8080")), "http://[::1]:8080/");
    }

    #[test]
    fn nothing_listening_is_not_healthy_and_says_where() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = check(addr, Duration::ZERO).unwrap_err().to_string();
        assert!(e.contains(&addr.to_string()), "{e}");
    }
}
