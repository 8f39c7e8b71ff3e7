//! The board's own identity (`ketangd device-id`): `kt-` and 12 hex digits, made once from
//! the kernel's randomness and kept in the data partition (`DATA/device-id`).
//!
//! Why not the machine id: the image's root is read-only with an empty `/etc/machine-id`,
//! so systemd makes a new one at every boot. The id an unprovisioned board shows (its QR
//! code) and the id a provisioning file without `device_id` gives must be one and the same,
//! at every boot, and survive a factory reset (the school's cloud knows the board by it).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The identity file in the data directory.
pub(crate) const FILE: &str = "device-id";

fn well_formed(id: &str) -> bool {
    id.len() == 15
        && id.starts_with("kt-")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The board's identity: read from `data_dir/device-id`, or made and kept there (written
/// whole and synced, then renamed) when the board has none yet.
///
/// # Errors
/// The file is damaged (what it holds is not `kt-` and 12 hex digits: removing it gives
/// the board a new identity, which the school's cloud must then learn), or it cannot be
/// read or written (named).
pub(crate) fn device_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if !well_formed(id) {
                bail!(
                    "the board's identity file {} is damaged: it holds {} bytes that are not `kt-` and 12 hex digits; remove it to give the board a new identity",
                    path.display(),
                    text.len()
                );
            }
            Ok(id.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(e) => {
            Err(e).with_context(|| format!("reading the board's identity {}", path.display()))
        }
    }
}

fn create(path: &Path) -> anyhow::Result<String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the board's identity: {e}"))?;
    let id = format!(
        "kt-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .with_context(|| format!("writing the board's identity {}", tmp.display()))?;
    f.write_all(format!("{id}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing the board's identity {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("keeping the board's identity in {}", path.display()))?;
    // The rename must survive a power cut too.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_the_same_and_a_damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let id = device_id(dir.path()).unwrap();
        assert!(well_formed(&id), "{id}");
        assert_eq!(device_id(dir.path()).unwrap(), id);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE)).unwrap(),
            format!("{id}\n")
        );
        let other = tempfile::tempdir().unwrap();
        assert_ne!(device_id(other.path()).unwrap(), id, "random per board");

        std::fs::write(dir.path().join(FILE), "kt-XYZ\n").unwrap();
        let e = format!("{:#}", device_id(dir.path()).unwrap_err());
        assert!(e.contains("device-id") && e.contains("damaged"), "{e}");
        assert!(!e.contains("XYZ"), "does not quote the file: {e}");
    }
}
