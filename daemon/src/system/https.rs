//! The board's HTTPS identity (docs/privacy.md, "Cleartext"): a self-signed ECDSA P-256
//! certificate made on the board at its first start (`<data_dir>/keys/https.pem`, its key
//! `https.key`, 0600), never leaving it. Browsers on the LAN cannot know it from a public
//! CA, so its SHA-256 fingerprint is shown on the technician page: whoever first opens
//! `https://BOARD:8080/` on a device checks it there (or on the board's own screen) once.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use sha2::Digest as _;

/// The certificate and key, and the fingerprint people check.
#[derive(Debug, Clone)]
pub(crate) struct HttpsIdentity {
    pub(crate) cert_der: Vec<u8>,
    pub(crate) key_der: Vec<u8>,
    /// SHA-256 of the certificate, as colon-separated upper-case hex (what browsers show).
    pub(crate) fingerprint: String,
}

/// The SHA-256 fingerprint of a DER certificate, as browsers show it.
pub(crate) fn fingerprint(cert_der: &[u8]) -> String {
    sha2::Sha256::digest(cert_der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn paths(keys: &Path) -> (PathBuf, PathBuf) {
    (keys.join("https.pem"), keys.join("https.key"))
}

/// Loads the identity in `keys`, or makes one for `device_id` when there is none.
///
/// # Errors
/// The files cannot be read, written or parsed, or the key is readable by others.
pub(crate) fn open_or_create(keys: &Path, device_id: &str) -> anyhow::Result<HttpsIdentity> {
    let (cert_path, key_path) = paths(keys);
    if !key_path.exists() {
        create(keys, device_id)?;
    }
    let mode = std::fs::metadata(&key_path)
        .with_context(|| format!("HTTPS key {}", key_path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "HTTPS key {} is readable by others (mode {:o}); chmod 600 it",
            key_path.display(),
            mode & 0o777
        );
    }
    let cert = CertificateDer::from_pem_file(&cert_path)
        .with_context(|| format!("reading the HTTPS certificate {}", cert_path.display()))?;
    let key = PrivatePkcs8KeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading the HTTPS key {}", key_path.display()))?;
    Ok(HttpsIdentity {
        fingerprint: fingerprint(&cert),
        cert_der: cert.to_vec(),
        key_der: key.secret_pkcs8_der().to_vec(),
    })
}

fn create(keys: &Path, device_id: &str) -> anyhow::Result<()> {
    let (cert_path, key_path) = paths(keys);
    std::fs::create_dir_all(keys).with_context(|| format!("creating {}", keys.display()))?;
    let names = vec![device_id.to_owned(), "localhost".to_owned()];
    let mut params = rcgen::CertificateParams::new(names).context("the certificate's names")?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Ketang board {device_id}"),
    );
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::IpAddr::from([
            127, 0, 0, 1,
        ])));
    let key = rcgen::KeyPair::generate().context("making the HTTPS key")?;
    let cert = params
        .self_signed(&key)
        .context("making the HTTPS certificate")?;
    // The key first (0600 before a byte of it is written), then the certificate: a crash
    // between the two leaves no certificate without its key.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)
        .with_context(|| format!("writing {}", key_path.display()))?;
    f.write_all(key.serialize_pem().as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", key_path.display()))?;
    std::fs::write(&cert_path, cert.pem())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::info!(path = %cert_path.display(), "HTTPS certificate made for this board.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_made_once_kept_private_and_its_fingerprint_is_the_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let a = open_or_create(&keys, "kt-0001").unwrap();
        let b = open_or_create(&keys, "kt-0001").unwrap();
        assert_eq!(a.fingerprint, b.fingerprint, "made once, then loaded");
        assert_eq!(a.fingerprint, fingerprint(&a.cert_der));
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        let mode = std::fs::metadata(keys.join("https.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The server takes it.
        ketang_web::server::tls_config(a.cert_der, a.key_der).unwrap();
        std::fs::set_permissions(
            keys.join("https.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let e = open_or_create(&keys, "kt-0001").unwrap_err().to_string();
        assert!(e.contains("readable by others"), "{e}");
    }
}
