//! Validation of `[sync]`: the broker URL, TLS files and the credentials file, every
//! problem with its field path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::*;
use super::resolve;
use super::*;

/// Parses an `mqtt://` / `mqtts://` URL. Credentials in the URL are refused: they belong in
/// the 0600 credentials file.
pub(crate) fn parse_broker(s: &str) -> Result<BrokerUrl, String> {
    let u = url::Url::parse(s)
        .map_err(|e| format!("{e}; expected mqtt://HOST:PORT or mqtts://HOST:PORT"))?;
    let tls = match u.scheme() {
        "mqtt" => false,
        "mqtts" => true,
        other => return Err(format!("scheme {other:?} is not mqtt or mqtts")),
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "credentials in the URL are not allowed; put them in sync.credentials_file".into(),
        );
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the URL has no host")?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = u.port().unwrap_or(if tls { 8883 } else { 1883 });
    if port == 0 {
        return Err("port 0 is not a broker port".into());
    }
    if !(u.path().is_empty() || u.path() == "/") || u.query().is_some() {
        return Err("the URL must be only scheme://host:port".into());
    }
    Ok(BrokerUrl { tls, host, port })
}

/// Parses the proxy's `http://HOST:PORT` (a CONNECT proxy; credentials belong in the 0600
/// `sync.proxy_credentials_file`, never in the URL).
pub(crate) fn parse_proxy(s: &str) -> Result<(String, u16), String> {
    let u = url::Url::parse(s).map_err(|e| format!("{e}; expected http://HOST:PORT"))?;
    if u.scheme() != "http" {
        return Err(format!(
            "scheme {:?} is not http (the proxy is asked with HTTP CONNECT; TLS to the broker runs inside)",
            u.scheme()
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "credentials in the URL are not allowed; put them in sync.proxy_credentials_file"
                .into(),
        );
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = u
        .port()
        .ok_or("the URL has no port (e.g. http://proxy.school.cn:3128)")?;
    if !(u.path().is_empty() || u.path() == "/") || u.query().is_some() {
        return Err("the URL must be only http://host:port".into());
    }
    Ok((host, port))
}

pub(super) fn readable(
    path_name: &str,
    base: &Path,
    v: Option<String>,
    errs: &mut Vec<ConfigError>,
) -> Option<PathBuf> {
    let p = resolve(base, &v?);
    if let Err(e) = std::fs::File::open(&p) {
        errs.push(ConfigError::new(
            path_name,
            format!("cannot read {}: {e}", p.display()),
        ));
    }
    Some(p)
}

pub(super) fn sync(s: RawSync, base: &Path, errs: &mut Vec<ConfigError>) -> SyncConfig {
    let broker = s.broker_url.as_deref().and_then(|u| match parse_broker(u) {
        Ok(b) => Some(b),
        Err(m) => {
            // The URL is not echoed: it could hold credentials.
            errs.push(ConfigError::new("sync.broker_url", m));
            None
        }
    });
    let ca_file = readable("sync.ca_file", base, s.ca_file, errs);
    let client_cert = readable("sync.client_cert", base, s.client_cert, errs);
    let client_key = readable("sync.client_key", base, s.client_key, errs);
    if client_cert.is_some() != client_key.is_some() {
        errs.push(ConfigError::new(
            if client_cert.is_some() {
                "sync.client_key"
            } else {
                "sync.client_cert"
            },
            "mutual TLS needs both client_cert and client_key",
        ));
    }
    if let Some(b) = &broker {
        if !b.tls && (ca_file.is_some() || client_cert.is_some()) {
            errs.push(ConfigError::new(
                "sync.broker_url",
                "TLS files are set but the URL is mqtt://; use mqtts://",
            ));
        }
    } else if ca_file.is_some() || client_cert.is_some() || s.credentials_file.is_some() {
        errs.push(ConfigError::new(
            "sync.broker_url",
            "missing, but TLS files or credentials are set; give the broker URL",
        ));
    }
    let credentials = s
        .credentials_file
        .and_then(|f| credentials("sync.credentials_file", &resolve(base, &f), errs));
    let proxy_credentials = s
        .proxy_credentials_file
        .and_then(|f| self::credentials("sync.proxy_credentials_file", &resolve(base, &f), errs));
    let proxy = match s.proxy_url.as_deref().map(parse_proxy) {
        None => {
            if proxy_credentials.is_some() {
                errs.push(ConfigError::new(
                    "sync.proxy_credentials_file",
                    "set, but there is no sync.proxy_url",
                ));
            }
            None
        }
        // The URL is not echoed (as the broker's).
        Some(Err(m)) => {
            errs.push(ConfigError::new("sync.proxy_url", m));
            None
        }
        Some(Ok((host, port))) => Some(ProxyUrl {
            host,
            port,
            credentials: proxy_credentials,
        }),
    };
    let keep_alive = match s.keep_alive_s {
        None => Duration::from_secs(30),
        Some(n) if (5..=1200).contains(&n) => Duration::from_secs(n.unsigned_abs()),
        Some(n) => {
            errs.push(ConfigError::new(
                "sync.keep_alive_s",
                format!("{n} is out of range (5-1200 seconds)"),
            ));
            Duration::from_secs(30)
        }
    };
    let max_publish_per_s = match s.max_publish_per_s {
        None => std::num::NonZeroU32::new(100),
        Some(0) => None,
        Some(n) if (1..=100_000).contains(&n) => {
            std::num::NonZeroU32::new(u32::try_from(n).unwrap_or(100))
        }
        Some(n) => {
            errs.push(ConfigError::new(
                "sync.max_publish_per_s",
                format!("{n} is out of range (0 = unlimited, or 1-100000)"),
            ));
            std::num::NonZeroU32::new(100)
        }
    };
    let telemetry_every = match s.telemetry_every_s {
        None => Some(Duration::from_secs(300)),
        Some(0) => None,
        Some(n) if (10..=86_400).contains(&n) => Some(Duration::from_secs(n.unsigned_abs())),
        Some(n) => {
            errs.push(ConfigError::new(
                "sync.telemetry_every_s",
                format!("{n} is out of range (0 = never, or 10-86400 seconds)"),
            ));
            Some(Duration::from_secs(300))
        }
    };
    SyncConfig {
        broker,
        ca_file,
        client_cert,
        client_key,
        credentials,
        proxy,
        keep_alive,
        max_publish_per_s,
        telemetry_every,
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    username: String,
    password: String,
}

/// Reads a credentials file: TOML with `username` and `password`, mode 0600 or stricter.
pub(super) fn credentials(
    field: &str,
    path: &Path,
    errs: &mut Vec<ConfigError>,
) -> Option<Credentials> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            errs.push(ConfigError::new(
                field,
                format!("cannot read {}: {e}", path.display()),
            ));
            return None;
        }
    };
    if meta.permissions().mode() & 0o077 != 0 {
        errs.push(ConfigError::new(
            field,
            format!(
                "{} is readable by group or others; run chmod 600 on it",
                path.display()
            ),
        ));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            errs.push(ConfigError::new(
                field,
                format!("cannot read {}: {e}", path.display()),
            ));
            return None;
        }
    };
    match toml::from_str::<CredentialsFile>(&text) {
        Ok(c) if !c.username.is_empty() && !c.password.is_empty() => Some(Credentials {
            username: c.username,
            password: Secret::new(c.password),
            file: path.to_owned(),
        }),
        Ok(_) => {
            errs.push(ConfigError::new(
                field,
                format!(
                    "{}: username and password must not be empty",
                    path.display()
                ),
            ));
            None
        }
        // The parser's message is not repeated: it may quote the password.
        Err(_) => {
            errs.push(ConfigError::new(
                field,
                format!("{} is not valid: expected TOML with exactly `username = \"...\"` and `password = \"...\"`", path.display()),
            ));
            None
        }
    }
}
