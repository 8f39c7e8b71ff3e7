//! First-boot provisioning (`ketangd provision FILE`): a technician's provisioning file
//! (from the boot partition or a USB stick) becomes the board's config, TLS files,
//! credentials and technician password, once; then the file is removed.
//!
//! The file (TOML, every key checked):
//!
//! ```toml
//! school_id = "hf-0042"
//! classroom_id = "g7-c3"
//! device_id = "kt-0001"              # optional: the board's own (`ketangd device-id`)
//! class_name = "七年级(3)班"          # optional
//! broker_url = "mqtts://mqtt.edu.example.cn:8883"   # optional: offline without
//! ca_pem = "-----BEGIN CERTIFICATE-----…"           # optional
//! client_cert_pem = "…"                              # optional, with client_key_pem
//! client_key_pem = "…"
//! username = "…"                                     # optional, with password
//! password = "…"
//! proxy_url = "http://proxy.school.cn:3128"          # optional: the school's HTTP proxy
//! proxy_username = "…"                               # optional, with proxy_password
//! proxy_password = "…"
//! technician_password_hash = "$argon2id$…"           # required: no default passwords
//! console_password_hash = "$argon2id$…"              # optional: the emergency console
//!                                                    # (root's ketang-firstboot takes it;
//!                                                    # the daemon only checks it)
//! timezone = "Asia/Shanghai"                         # optional
//! http_listen = "0.0.0.0:8080"                       # optional
//! ntp_servers = ["ntp.edu.example.cn"]               # optional: the school's time servers
//! ntp_nts = false                                    # optional: they speak NTS (RFC 8915)
//! [network]                                          # optional: a static address (else DHCP)
//! address = "192.168.10.23/24"
//! gateway = "192.168.10.1"                           # optional
//! dns = ["192.168.10.1"]                             # optional, at most 3
//! [wifi]                                             # optional: Wi-Fi (wired stays first)
//! ssid = "School-Staff"
//! security = "wpa2-personal"    # wpa3-personal, wpa2-wpa3-personal, wpa2-enterprise
//! passphrase = "…"              # personal; enterprise: eap, identity, password or
//!                               # client_cert_pem/client_key_pem, ca_pem, server_domain
//! [hardware]                                         # optional, copied into the config
//! ```
//!
//! Everything is validated first, the generated config by the daemon's own validator;
//! nothing is written unless all of it is valid. Secrets go into files of mode 0600 and are
//! never printed. A board that is already provisioned refuses a second file unless
//! `--force` (a re-provisioning by a technician).

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    school_id: String,
    classroom_id: String,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    class_name: Option<String>,
    #[serde(default)]
    broker_url: Option<String>,
    #[serde(default)]
    ca_pem: Option<String>,
    #[serde(default)]
    client_cert_pem: Option<String>,
    #[serde(default)]
    client_key_pem: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    proxy_url: Option<String>,
    #[serde(default)]
    proxy_username: Option<String>,
    #[serde(default)]
    proxy_password: Option<String>,
    technician_password_hash: String,
    /// The emergency console's password (docs/technician.md, "Emergency console"): root's
    /// `ketang-firstboot` copies it from the file itself to the boot partition; the daemon
    /// checks it and writes it nowhere (a daemon that could set it would own root).
    #[serde(default)]
    console_password_hash: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    http_listen: Option<String>,
    #[serde(default)]
    ntp_servers: Option<Vec<String>>,
    #[serde(default)]
    ntp_nts: Option<bool>,
    #[serde(default)]
    network: Option<StaticNetwork>,
    #[serde(default)]
    wifi: Option<super::wifi::Wifi>,
    #[serde(default)]
    hardware: Option<toml::Table>,
}

/// A static address for school networks without DHCP for the board.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticNetwork {
    address: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    dns: Vec<String>,
}

/// `IP/prefix` with a prefix the address family allows.
fn cidr_ok(s: &str) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    match (ip.parse::<std::net::IpAddr>(), prefix.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(p)) => (1..=32).contains(&p),
        (Ok(std::net::IpAddr::V6(_)), Ok(p)) => (1..=128).contains(&p),
        _ => false,
    }
}

/// `network.conf` (`address=`, `gateway=`, `dns=` lines), for the image's `ketang-firstboot`
/// to turn into systemd-networkd's static configuration (docs/technician.md, "Network").
fn network_conf(f: &File) -> Option<String> {
    let n = f.network.as_ref()?;
    let mut s = format!("address={}\n", n.address);
    if let Some(g) = &n.gateway {
        let _ = writeln!(s, "gateway={g}");
    }
    for d in &n.dns {
        let _ = writeln!(s, "dns={d}");
    }
    Some(s)
}

/// At most this many time servers.
const MAX_NTP_SERVERS: usize = 8;

/// A host name or an IP address chrony can be given: letters, digits, `.`, `-`, `:`.
fn ntp_host_ok(h: &str) -> bool {
    (1..=253).contains(&h.len())
        && !h.starts_with('-')
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

/// `time.sources` (chrony's source directives, one per server), for the image's
/// `ketang-firstboot` to hand to chrony (docs/technician.md, "Time").
fn time_sources(f: &File) -> Option<String> {
    let servers = f.ntp_servers.as_ref().filter(|s| !s.is_empty())?;
    let nts = if f.ntp_nts == Some(true) { " nts" } else { "" };
    Some(
        servers
            .iter()
            .map(|s| format!("server {s} iburst{nts}\n"))
            .collect(),
    )
}

/// What was applied (no secrets).
#[derive(Debug)]
pub(crate) struct Applied {
    pub(crate) config: PathBuf,
    pub(crate) device_id: String,
    pub(crate) school_id: String,
    pub(crate) classroom_id: String,
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // Created 0600, and an existing file restricted, before a byte of the secret is in it.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {} to 0600", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Applies the provisioning file `src`: writes `etc/ketang.toml` (data in `data_dir`) and
/// its files under `etc`, stores the technician password hash, then removes `src`.
///
/// # Errors
/// Every problem of the file (all listed), a board already provisioned (without `force`),
/// or a write that failed (named).
pub(crate) async fn apply(
    src: &Path,
    etc: &Path,
    data_dir: &Path,
    force: bool,
) -> anyhow::Result<Applied> {
    let text = std::fs::read_to_string(src)
        .with_context(|| format!("reading the provisioning file {}", src.display()))?;
    let applied = apply_text(
        &text,
        &src.display().to_string(),
        etc,
        data_dir,
        force,
        None,
    )
    .await?;
    std::fs::remove_file(src).with_context(|| {
        format!(
            "removing the provisioning file {} after applying it (remove it by hand: it holds secrets)",
            src.display()
        )
    })?;
    Ok(applied)
}

/// A provisioning file's `text` parsed and checked (every problem named), nothing applied.
///
/// # Errors
/// Not TOML of the documented keys, or values that do not fit together.
pub(crate) fn checked(text: &str, origin: &str) -> anyhow::Result<File> {
    let f: File = toml::from_str(text)
        .with_context(|| format!("{origin} is not a valid provisioning file"))?;
    let mut problems = Vec::new();
    if !(f.technician_password_hash.starts_with("$argon2id$")
        || f.technician_password_hash.starts_with("$argon2i$"))
        || argon2::PasswordHash::new(&f.technician_password_hash).is_err()
    {
        problems.push(
            "technician_password_hash: not an Argon2 PHC string (make one with `ketangd hash-password`)".to_owned(),
        );
    }
    if let Some(h) = &f.console_password_hash {
        // Exactly what ketang-firstboot's pattern takes, so a valid file is never half applied.
        let shape_ok = h.starts_with("$argon2id$")
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"$=,+/.-".contains(&b));
        if !shape_ok || argon2::PasswordHash::new(h).is_err() {
            problems.push(
                "console_password_hash: not an Argon2id PHC string (make one with `ketangd hash-password`)".to_owned(),
            );
        }
        if h == &f.technician_password_hash {
            problems.push(
                "console_password_hash: the same as the technician password; the root console needs a secret of its own".to_owned(),
            );
        }
    }
    if f.client_cert_pem.is_some() != f.client_key_pem.is_some() {
        problems.push("client_cert_pem and client_key_pem come together".to_owned());
    }
    if f.username.is_some() != f.password.is_some() {
        problems.push("username and password come together".to_owned());
    }
    if f.proxy_username.is_some() != f.proxy_password.is_some() {
        problems.push("proxy_username and proxy_password come together".to_owned());
    }
    if f.proxy_username.is_some() && f.proxy_url.is_none() {
        problems.push("proxy_username goes with proxy_url".to_owned());
    }
    if let Some(Err(m)) = f.proxy_url.as_deref().map(crate::config::parse_proxy) {
        problems.push(format!("proxy_url: {m}"));
    }
    if let Some(servers) = &f.ntp_servers {
        if servers.len() > MAX_NTP_SERVERS {
            problems.push(format!(
                "ntp_servers: {} servers; at most {MAX_NTP_SERVERS}",
                servers.len()
            ));
        }
        for (i, s) in servers.iter().enumerate() {
            if !ntp_host_ok(s) {
                problems.push(format!(
                    "ntp_servers[{i}]: not a host name or an IP address (letters, digits, . - :)"
                ));
            }
        }
    }
    if let Some(n) = &f.network {
        if !cidr_ok(&n.address) {
            problems.push(
                "network.address: not an address with its prefix (e.g. 192.168.10.23/24)"
                    .to_owned(),
            );
        }
        if n.gateway
            .as_ref()
            .is_some_and(|g| g.parse::<std::net::IpAddr>().is_err())
        {
            problems.push("network.gateway: not an IP address".to_owned());
        }
        if n.dns.len() > 3 {
            problems.push(format!("network.dns: {} servers; at most 3", n.dns.len()));
        }
        for (i, d) in n.dns.iter().enumerate() {
            if d.parse::<std::net::IpAddr>().is_err() {
                problems.push(format!("network.dns[{i}]: not an IP address"));
            }
        }
    }
    if let Some(w) = &f.wifi {
        w.problems(&mut problems);
    }
    if f.ntp_nts.is_some() && f.ntp_servers.as_ref().is_none_or(Vec::is_empty) {
        problems.push("ntp_nts goes with ntp_servers".to_owned());
    }
    for (k, v) in [
        ("ca_pem", &f.ca_pem),
        ("client_cert_pem", &f.client_cert_pem),
        ("client_key_pem", &f.client_key_pem),
    ] {
        if v.as_deref().is_some_and(|p| !p.contains("-----BEGIN ")) {
            problems.push(format!("{k}: not PEM text (-----BEGIN …)"));
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "{origin} has problems; nothing was applied:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(f)
}

/// Applies a provisioning file's `text` (from `origin`, for messages and the config's
/// header). With `live`, the technician password goes into that open store (the running
/// daemon's: the technician page) instead of opening the store.
///
/// # Errors
/// As [`apply`].
pub(crate) async fn apply_text(
    text: &str,
    origin: &str,
    etc: &Path,
    data_dir: &Path,
    force: bool,
    live: Option<&ketang_sync::StoreHandle>,
) -> anyhow::Result<Applied> {
    let src = Path::new(origin);
    let f = checked(text, origin)?;
    let device_id = match &f.device_id {
        Some(d) => d.clone(),
        None => super::identity::device_id(data_dir)?,
    };
    // Design: nothing live is touched until everything checked out. Files are staged in
    // `etc/.provision`, the config is validated against the staged files, the password is
    // stored, and only then are the files moved into place and the config written.
    if !force && live.is_none() && provisioned(data_dir, &f.school_id, &device_id).await? {
        anyhow::bail!(
            "this board is already provisioned (a technician password exists); nothing was applied; use --force to re-provision"
        );
    }
    let staging = etc.join(".provision");
    let result = stage_and_apply(&f, src, &device_id, etc, &staging, data_dir, live).await;
    let _ = std::fs::remove_dir_all(&staging);
    let config_path = result.with_context(|| format!("{origin}: not applied"))?;
    Ok(Applied {
        config: config_path,
        device_id,
        school_id: f.school_id,
        classroom_id: f.classroom_id,
    })
}

/// The config text, with the TLS and credentials files under `files`.
fn config_text(f: &File, src: &Path, device_id: &str, data_dir: &Path, files: &Path) -> String {
    let tls = files.join("tls");
    let mut cfg = String::new();
    let _ = writeln!(
        cfg,
        "# Written by `ketangd provision` from {}.",
        src.display()
    );
    let _ = writeln!(
        cfg,
        "data_dir = {}",
        toml_str(&data_dir.display().to_string())
    );
    let _ = writeln!(cfg, "\n[device]");
    let _ = writeln!(cfg, "school_id = {}", toml_str(&f.school_id));
    let _ = writeln!(cfg, "classroom_id = {}", toml_str(&f.classroom_id));
    let _ = writeln!(cfg, "device_id = {}", toml_str(device_id));
    if let Some(n) = &f.class_name {
        let _ = writeln!(cfg, "class_name = {}", toml_str(n));
    }
    if let Some(l) = &f.http_listen {
        let _ = writeln!(cfg, "\n[http]\nlisten = {}", toml_str(l));
    }
    let _ = writeln!(cfg, "\n[sync]");
    if let Some(b) = &f.broker_url {
        let _ = writeln!(cfg, "broker_url = {}", toml_str(b));
    }
    let path_of = |name: &str| toml_str(&tls.join(name).display().to_string());
    if f.ca_pem.is_some() {
        let _ = writeln!(cfg, "ca_file = {}", path_of("ca.pem"));
    }
    if f.client_cert_pem.is_some() {
        let _ = writeln!(cfg, "client_cert = {}", path_of("client.pem"));
        let _ = writeln!(cfg, "client_key = {}", path_of("client.key"));
    }
    if f.username.is_some() {
        let creds = files.join("mqtt.credentials").display().to_string();
        let _ = writeln!(cfg, "credentials_file = {}", toml_str(&creds));
    }
    if let Some(p) = &f.proxy_url {
        let _ = writeln!(cfg, "proxy_url = {}", toml_str(p));
    }
    if f.proxy_username.is_some() {
        let creds = files.join("proxy.credentials").display().to_string();
        let _ = writeln!(cfg, "proxy_credentials_file = {}", toml_str(&creds));
    }
    if let Some(tz) = &f.timezone {
        let _ = writeln!(cfg, "\n[school]\ntimezone = {}", toml_str(tz));
    }
    if let Some(hw) = &f.hardware {
        let mut t = toml::Table::new();
        t.insert("hardware".into(), toml::Value::Table(hw.clone()));
        let _ = write!(cfg, "\n{t}");
    }
    cfg
}

/// The files the file asks for, relative to the config's directory: (path, text, secret).
fn files_of(f: &File) -> Vec<(&'static str, &str, bool)> {
    let mut v = Vec::new();
    if let Some(p) = &f.ca_pem {
        v.push(("tls/ca.pem", p.as_str(), false));
    }
    if let (Some(c), Some(k)) = (&f.client_cert_pem, &f.client_key_pem) {
        v.push(("tls/client.pem", c.as_str(), false));
        v.push(("tls/client.key", k.as_str(), true));
    }
    v
}

async fn stage_and_apply(
    f: &File,
    src: &Path,
    device_id: &str,
    etc: &Path,
    staging: &Path,
    data_dir: &Path,
    live: Option<&ketang_sync::StoreHandle>,
) -> anyhow::Result<PathBuf> {
    let mut files: Vec<(&'static str, String, bool)> = files_of(f)
        .into_iter()
        .map(|(p, t, s)| (p, t.to_owned(), s))
        .collect();
    if let Some(t) = time_sources(f) {
        files.push(("time.sources", t, false));
    }
    if let Some(n) = network_conf(f) {
        files.push(("network.conf", n, false));
    }
    if let Some(w) = &f.wifi {
        let (conf, certs) = w.render();
        files.push(("wifi.conf", conf, true));
        files.extend(certs);
    }
    if let (Some(u), Some(p)) = (&f.username, &f.password) {
        files.push((
            "mqtt.credentials",
            format!("username = {}\npassword = {}\n", toml_str(u), toml_str(p)),
            true,
        ));
    }
    if let (Some(u), Some(p)) = (&f.proxy_username, &f.proxy_password) {
        files.push((
            "proxy.credentials",
            format!("username = {}\npassword = {}\n", toml_str(u), toml_str(p)),
            true,
        ));
    }
    let _ = std::fs::remove_dir_all(staging);
    for sub in ["tls", "wifi"] {
        std::fs::create_dir_all(staging.join(sub))
            .with_context(|| format!("creating {}", staging.join(sub).display()))?;
    }
    for (rel, text, secret) in &files {
        let path = staging.join(rel);
        if *secret {
            write_private(&path, text)?;
        } else {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let config_path = etc.join("ketang.toml");
    let staged = config_text(f, src, device_id, data_dir, staging);
    if let Err(e) = crate::config::Config::parse(&staged, &config_path) {
        anyhow::bail!("the config it makes is not valid:\n{e}");
    }
    match live {
        Some(store) => store
            .meta_set(TECH_PASSWORD.into(), f.technician_password_hash.clone())
            .await
            .context("storing the technician password")?,
        None => store_password(f, device_id, data_dir).await?,
    }
    for sub in ["tls", "wifi"] {
        std::fs::create_dir_all(etc.join(sub))
            .with_context(|| format!("creating {}", etc.join(sub).display()))?;
    }
    for (rel, _, _) in &files {
        std::fs::rename(staging.join(rel), etc.join(rel))
            .with_context(|| format!("moving {} into place", etc.join(rel).display()))?;
    }
    // A re-provisioning without time servers, a static address or Wi-Fi goes back to the
    // image's own servers, DHCP and wired only; certificates of a former network go too.
    let wanted_certs: Vec<&str> = files.iter().map(|(rel, _, _)| *rel).collect();
    for (name, wanted) in [
        ("time.sources", time_sources(f).is_some()),
        ("network.conf", network_conf(f).is_some()),
        ("wifi.conf", f.wifi.is_some()),
        ("proxy.credentials", f.proxy_username.is_some()),
        ("wifi/ca.pem", wanted_certs.contains(&"wifi/ca.pem")),
        ("wifi/client.pem", wanted_certs.contains(&"wifi/client.pem")),
        ("wifi/client.key", wanted_certs.contains(&"wifi/client.key")),
    ] {
        if wanted {
            continue;
        }
        match std::fs::remove_file(etc.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing the old {name}"));
            }
            _ => {}
        }
    }
    let cfg = config_text(f, src, device_id, data_dir, etc);
    std::fs::write(&config_path, cfg)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(config_path)
}

pub(super) async fn open_store(
    data_dir: &Path,
    school_id: &str,
    device_id: &str,
) -> anyhow::Result<ketang_sync::StoreHandle> {
    // Provisioning only reads and writes meta: it queues no outbox records.
    let identity = ketang_sync::Identity {
        school_id: school_id.to_owned(),
        device_id: device_id.to_owned(),
        classroom_id: String::new(),
    };
    let dd = data_dir.to_owned();
    let (store, _) =
        tokio::task::spawn_blocking(move || ketang_sync::StoreHandle::open(&dd, identity))
            .await
            .context("the store thread could not start")?
            .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    Ok(store)
}

/// Where the technician password's Argon2 hash lives (store meta).
pub(crate) const TECH_PASSWORD: &str = "technician.password_hash";

/// Whether the store already holds a technician password.
async fn provisioned(data_dir: &Path, school_id: &str, device_id: &str) -> anyhow::Result<bool> {
    let store = open_store(data_dir, school_id, device_id).await?;
    let found = store
        .meta_get(TECH_PASSWORD.into())
        .await
        .context("reading the store")?;
    store.shutdown().await.context("closing the store")?;
    Ok(found.is_some())
}

/// Stores the technician password hash.
async fn store_password(f: &File, device_id: &str, data_dir: &Path) -> anyhow::Result<()> {
    let store = open_store(data_dir, &f.school_id, device_id).await?;
    store
        .meta_set(TECH_PASSWORD.into(), f.technician_password_hash.clone())
        .await
        .context("storing the technician password")?;
    store.shutdown().await.context("closing the store")
}
