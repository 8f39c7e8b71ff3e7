//! Fetching an update bundle for a `system.update` command, in-process (no curl): HTTPS
//! only (redirects too), the server checked against the public Web PKI or the CA of
//! `update.ca_file`, every byte counted against `update.max_bundle_mb` whatever the server
//! says (chunked answers included), the data partition's free space checked before and
//! while writing, resumed with `Range` after a broken connection. Errors name the host and
//! what went wrong, never the URL's path or query (they may carry tokens).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

const MIB: u64 = 1024 * 1024;

/// Why a download did not finish.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failed {
    /// Trying again cannot help (refused, too large, no room, untrusted).
    Permanent(String),
    /// A broken connection or a server error: resumed later.
    Transient(String),
}

/// What a download is allowed.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// The largest bundle.
    pub(crate) max_bytes: u64,
    /// Room the data partition keeps besides the bundle (the store must keep working).
    pub(crate) margin_bytes: u64,
    /// Trust only these CAs (PEM file), else the public Web PKI.
    pub(crate) ca_file: Option<PathBuf>,
    /// The school's HTTP proxy (HTTPS runs inside its CONNECT tunnel).
    pub(crate) proxy: Option<crate::config::ProxyUrl>,
}

/// The HTTP client: HTTPS only, at most 5 redirects, a read that stalls 60 s fails; through
/// the school's proxy when there is one.
///
/// # Errors
/// `ca_file` cannot be read or holds no certificate.
pub(crate) fn agent(
    ca_file: Option<&Path>,
    proxy: Option<&crate::config::ProxyUrl>,
) -> Result<ureq::Agent, String> {
    let proxy = match proxy {
        None => None,
        Some(p) => {
            let mut u = url::Url::parse(&p.url()).map_err(|e| format!("sync.proxy_url: {e}"))?;
            if let Some(c) = &p.credentials {
                // Percent-encoded by `url`; ureq sends them as Basic authentication.
                let _ = u.set_username(&c.username);
                let _ = u.set_password(Some(c.password.expose()));
            }
            Some(ureq::Proxy::new(u.as_str()).map_err(|e| format!("sync.proxy_url: {e}"))?)
        }
    };
    let roots = match ca_file {
        None => RootCerts::WebPki,
        Some(p) => {
            let pem = std::fs::read(p)
                .map_err(|e| format!("reading update.ca_file {}: {e}", p.display()))?;
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(format!(
                    "update.ca_file {} holds no PEM certificate",
                    p.display()
                ));
            }
            RootCerts::Specific(Arc::new(certs))
        }
    };
    Ok(ureq::Agent::config_builder()
        .https_only(true)
        .max_redirects(5)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("ketangd/", env!("CARGO_PKG_VERSION")))
        .proxy(proxy)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into())
}

/// The host of `url`, for messages.
fn host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "the server".to_owned())
}

/// One attempt: fetches `url` into `part` (resuming what is there), until done, an error
/// or `stop`.
///
/// # Errors
/// Why it did not finish, and whether trying again can help.
pub(crate) fn attempt(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    limits: &Limits,
    stop: &CancellationToken,
) -> Result<u64, Failed> {
    let host = host(url);
    if !url.starts_with("https://") {
        return Err(Failed::Permanent(format!(
            "only https:// downloads are allowed (from {host})"
        )));
    }
    let have = std::fs::metadata(part).map_or(0, |m| m.len());
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| classify(&host, &e))?;
    let status = resp.status().as_u16();
    let resume = match status {
        200 => false,
        206 if have > 0 => true,
        // The part is complete or the server cannot resume it: start again.
        416 => {
            let _ = std::fs::remove_file(part);
            return Err(Failed::Transient(format!(
                "{host} could not resume the download; starting again"
            )));
        }
        400..=499 => {
            return Err(Failed::Permanent(format!(
                "{host} refused the download: HTTP {status}"
            )));
        }
        _ => {
            return Err(Failed::Transient(format!("{host} answered HTTP {status}")));
        }
    };
    let already = if resume { have } else { 0 };
    let announced = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = announced {
        check_size(already + n, limits.max_bytes)?;
        check_room(part, n, limits)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resume)
        .truncate(!resume)
        .open(part)
        .map_err(|e| Failed::Permanent(format!("opening {}: {e}", part.display())))?;
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = already;
    let mut since_check = 0u64;
    loop {
        if stop.is_cancelled() {
            return Err(Failed::Permanent(
                "the daemon stopped during the download".to_owned(),
            ));
        }
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                return Err(Failed::Transient(format!(
                    "the download from {host} broke off after {} MiB: {e}",
                    total / MIB
                )));
            }
        };
        let n64 = n as u64;
        total += n64;
        check_size(total, limits.max_bytes)?;
        since_check += n64;
        if since_check >= 64 * MIB {
            check_room(part, 0, limits)?;
            since_check = 0;
        }
        file.write_all(&buf[..n]).map_err(|e| {
            Failed::Permanent(if e.raw_os_error() == Some(nix::libc::ENOSPC) {
                format!("the data partition filled up after {} MiB", total / MIB)
            } else {
                format!("writing the download after {} MiB: {e}", total / MIB)
            })
        })?;
    }
    file.sync_all()
        .map_err(|e| Failed::Permanent(format!("writing the download: {e}")))?;
    Ok(total)
}

fn check_size(n: u64, max: u64) -> Result<(), Failed> {
    if n > max {
        Err(Failed::Permanent(format!(
            "the bundle is larger than {} MiB (update.max_bundle_mb)",
            max / MIB
        )))
    } else {
        Ok(())
    }
}

/// Whether `more` bytes still fit beside the margin.
fn check_room(part: &Path, more: u64, limits: &Limits) -> Result<(), Failed> {
    let dir = part.parent().unwrap_or(part);
    if let Some(free) = super::update::free_bytes(dir)
        && free < more.saturating_add(limits.margin_bytes)
    {
        return Err(Failed::Permanent(format!(
            "the data partition has {} MiB free; the bundle needs {} MiB more and {} MiB stay for the store",
            free / MIB,
            more.div_ceil(MIB),
            limits.margin_bytes / MIB
        )));
    }
    Ok(())
}

fn classify(host: &str, e: &ureq::Error) -> Failed {
    match e {
        ureq::Error::RequireHttpsOnly(_) => Failed::Permanent(format!(
            "{host} redirected to a plain http:// address; only https:// downloads are allowed"
        )),
        ureq::Error::TooManyRedirects => {
            Failed::Permanent(format!("{host} redirected more than 5 times"))
        }
        ureq::Error::Rustls(err) => Failed::Permanent(format!(
            "{host}'s TLS certificate is not trusted (update.ca_file, or the public Web PKI): {err}"
        )),
        ureq::Error::BadUri(_) | ureq::Error::InvalidProxyUrl => {
            Failed::Permanent(format!("the address of {host} is not a valid URL"))
        }
        other if other.to_string().contains("certificate") => Failed::Permanent(format!(
            "{host}'s TLS certificate is not trusted (update.ca_file, or the public Web PKI): {other}"
        )),
        other => Failed::Transient(format!("cannot reach {host}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_is_fetched_and_the_message_names_the_host_alone() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_bytes: 16 * MIB,
            margin_bytes: 0,
            ca_file: None,
            proxy: None,
        };
        let e = attempt(
            &agent(None, None).unwrap(),
            "http://updates.example.cn/b.raucb?token=secret",
            &dir.path().join("part"),
            &limits,
            &CancellationToken::new(),
        )
        .unwrap_err();
        let Failed::Permanent(m) = e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("https://") && m.contains("updates.example.cn"),
            "{m}"
        );
        assert!(!m.contains("secret") && !m.contains("b.raucb"), "{m}");
    }

    #[test]
    fn a_bundle_over_the_limit_is_refused_and_one_within_it_fetched() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        ketang_testkit::pki(&pki, "Bundles");
        let www = dir.path().join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("big.raucb"), vec![7u8; 3 * MIB as usize]).unwrap();
        let server = ketang_testkit::HttpsServer::start(&www, &pki);
        let url = format!("https://127.0.0.1:{}/big.raucb", server.port);
        let part = dir.path().join("part");
        let limits = |max_bytes| Limits {
            max_bytes,
            margin_bytes: 0,
            ca_file: Some(pki.join("ca.pem")),
            proxy: None,
        };
        let agent = agent(Some(&pki.join("ca.pem")), None).unwrap();
        let stop = CancellationToken::new();
        let e = attempt(&agent, &url, &part, &limits(MIB), &stop).unwrap_err();
        assert!(
            matches!(&e, Failed::Permanent(m) if m.contains("larger than 1 MiB")),
            "{e:?}"
        );
        let n = attempt(&agent, &url, &part, &limits(4 * MIB), &stop).unwrap();
        assert_eq!(n, 3 * MIB);
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 3 * MIB);
        // Room is checked before a byte is written: a partition that cannot take it.
        let tight = Limits {
            margin_bytes: u64::MAX / 2,
            ..limits(4 * MIB)
        };
        std::fs::remove_file(&part).unwrap();
        let e = attempt(&agent, &url, &part, &tight, &stop).unwrap_err();
        assert!(
            matches!(&e, Failed::Permanent(m) if m.contains("MiB free")),
            "{e:?}"
        );
    }

    #[test]
    fn a_bundle_comes_through_the_schools_proxy_with_its_login() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        ketang_testkit::pki(&pki, "Bundles");
        let www = dir.path().join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("b.raucb"), vec![5u8; 64 * 1024]).unwrap();
        let server = ketang_testkit::HttpsServer::start(&www, &pki);
        let url = format!("https://127.0.0.1:{}/b.raucb", server.port);
        let proxy = ketang_testkit::Tinyproxy::start(
            dir.path(),
            server.port,
            Some(("kt-0001", "p.ss-w_rd9")),
        );
        let via = |password: &str| crate::config::ProxyUrl {
            host: "127.0.0.1".into(),
            port: proxy.port,
            credentials: Some(crate::config::Credentials {
                username: "kt-0001".into(),
                password: crate::config::Secret::new(password.into()),
                file: dir.path().join("proxy.credentials"),
            }),
        };
        let limits = Limits {
            max_bytes: MIB,
            margin_bytes: 0,
            ca_file: Some(pki.join("ca.pem")),
            proxy: None,
        };
        let part = dir.path().join("part");
        let stop = CancellationToken::new();
        // A wrong login: the proxy refuses, and the message does not show the password.
        let wrong = agent(Some(&pki.join("ca.pem")), Some(&via("wrong-pw"))).unwrap();
        let e = attempt(&wrong, &url, &part, &limits, &stop).unwrap_err();
        assert!(!format!("{e:?}").contains("wrong-pw"), "{e:?}");
        // The right one: the bundle arrives, by the proxy.
        let right = agent(Some(&pki.join("ca.pem")), Some(&via("p.ss-w_rd9"))).unwrap();
        let n = attempt(&right, &url, &part, &limits, &stop).unwrap();
        assert_eq!(n, 64 * 1024);
        let log = proxy.log();
        assert!(
            log.contains(&format!("CONNECT 127.0.0.1:{} ", server.port)),
            "the proxy did not carry the download: {log}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let e = agent(Some(&p), None).unwrap_err();
        assert!(
            e.contains("update.ca_file") && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
