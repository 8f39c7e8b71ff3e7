//! `[update]`: signed system updates (docs/technician.md, "Update").
//!
//! ```toml
//! [update]
//! enabled = true        # default: true on a Ketang image (/etc/rauc/system.conf exists)
//! max_bundle_mb = 2048  # a larger upload or download is refused
//! ca_file = "update-ca.pem"   # optional: trust only this CA for system.update downloads
//!                             # (default: the public Web PKI, Mozilla's roots built in)
//! ```
//!
//! The daemon only receives a bundle (an upload on the technician page or a `system.update`
//! command) into `<data_dir>/update/`; the installer (`ketang-update`, root, RAUC) checks its
//! signature and installs it into the other slot.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpdate {
    enabled: Option<bool>,
    max_bundle_mb: Option<i64>,
    ca_file: Option<String>,
}

/// Checked `[update]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpdateConfig {
    /// Whether bundles are received at all (an installer is there to take them).
    pub(crate) enabled: bool,
    pub(crate) max_bundle_bytes: u64,
    /// Where bundles are handed to the installer.
    pub(crate) spool: PathBuf,
    /// The installer's latest step: `/run/ketang-update/state` on a Ketang image, written
    /// by root where the daemon cannot write; elsewhere (the demo trying the update flow)
    /// `state` in the spool.
    pub(crate) installer_state: PathBuf,
    /// Trust only this CA for downloads (else the public Web PKI).
    pub(crate) ca_file: Option<PathBuf>,
    /// The school's HTTP proxy (`sync.proxy_url`), for downloads and uploads.
    pub(crate) proxy: Option<super::ProxyUrl>,
}

/// The file whose presence says this system has the RAUC installer.
const RAUC_SYSTEM_CONF: &str = "/etc/rauc/system.conf";

/// Where the installer (`ketang-update`, `ketang-health`, root) publishes its latest step.
const INSTALLER_STATE: &str = "/run/ketang-update/state";

impl UpdateConfig {
    /// The defaults: enabled where the installer is.
    pub(crate) fn detect(data_dir: &Path) -> Self {
        validate(RawUpdate::default(), data_dir, data_dir, &mut Vec::new())
    }
}

pub(super) fn validate(
    r: RawUpdate,
    base: &Path,
    data_dir: &Path,
    errs: &mut Vec<ConfigError>,
) -> UpdateConfig {
    let ca_file = r.ca_file.map(|v| {
        let p = super::resolve(base, &v);
        match std::fs::read_to_string(&p) {
            Ok(t) if t.contains("-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => errs.push(ConfigError::new(
                "update.ca_file",
                format!("{} holds no PEM certificate", p.display()),
            )),
            Err(e) => errs.push(ConfigError::new(
                "update.ca_file",
                format!("cannot read {}: {e}", p.display()),
            )),
        }
        p
    });
    let mut max_bundle_bytes = 2048 * 1024 * 1024;
    match r.max_bundle_mb {
        None => {}
        Some(mb) if (16..=65_536).contains(&mb) => {
            max_bundle_bytes = mb.unsigned_abs() * 1024 * 1024
        }
        Some(mb) => errs.push(ConfigError::new(
            "update.max_bundle_mb",
            format!("{mb} is out of range (16-65536)"),
        )),
    }
    let on_image = Path::new(RAUC_SYSTEM_CONF).exists();
    let spool = data_dir.join("update");
    UpdateConfig {
        enabled: r.enabled.unwrap_or(on_image),
        max_bundle_bytes,
        installer_state: if on_image {
            PathBuf::from(INSTALLER_STATE)
        } else {
            spool.join("state")
        },
        spool,
        ca_file,
        proxy: None,
    }
}
