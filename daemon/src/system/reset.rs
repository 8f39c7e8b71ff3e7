//! Factory reset (`ketangd factory-reset`): the school's data leaves the board; its identity
//! stays unless `--all`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::provision::{TECH_PASSWORD, open_store};

/// What a factory reset removed.
#[derive(Debug)]
pub(crate) struct Reset {
    pub(crate) removed: Vec<PathBuf>,
    pub(crate) kept_identity: bool,
}

/// Whether another process (a running `ketangd`) has the store in `data_dir` open: a
/// reset must not pull the store from under it. Looks at every process's open files, so a
/// daemon serving another data directory does not count.
fn daemon_running(data_dir: &Path) -> bool {
    let Ok(db) = data_dir.join(ketang_sync::DB_FILE).canonicalize() else {
        return false;
    };
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").is_ok_and(|rd| {
        rd.filter_map(Result::ok).any(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !pid.chars().all(|c| c.is_ascii_digit()) || pid == me {
                return false;
            }
            std::fs::read_dir(e.path().join("fd")).is_ok_and(|fds| {
                fds.filter_map(Result::ok)
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == db))
            })
        })
    })
}

/// Factory reset (`ketangd factory-reset`): removes the school's data from the data
/// directory: the store (students, attendance, reports, the outbox, the audit log, consent
/// records and face templates) and the face template key. The device's identity and
/// certificates (the config in `etc` and its files) and the technician password stay,
/// unless `all`: then the config goes too and the board is unprovisioned at the next boot.
///
/// # Errors
/// `ketangd` is running, or a file could not be removed (named).
pub(crate) async fn factory_reset(etc: &Path, data_dir: &Path, all: bool) -> anyhow::Result<Reset> {
    if daemon_running(data_dir) {
        anyhow::bail!("ketangd is running: stop it first (systemctl stop ketangd), then reset");
    }
    // The technician password survives a reset that keeps the identity.
    let keep_hash = if all || !data_dir.join(ketang_sync::DB_FILE).exists() {
        None
    } else {
        let store = open_store(data_dir, "reset", "reset").await?;
        let h = store
            .meta_get(TECH_PASSWORD.into())
            .await
            .context("reading the store")?;
        store.shutdown().await.context("closing the store")?;
        h
    };
    let mut removed = Vec::new();
    let mut rm = |p: PathBuf| -> anyhow::Result<()> {
        match std::fs::remove_file(&p) {
            Ok(()) => {
                removed.push(p);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
        }
    };
    if let Ok(rd) = std::fs::read_dir(data_dir) {
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(ketang_sync::DB_FILE) {
                rm(e.path())?;
            }
        }
    }
    rm(data_dir.join("keys/face.key"))?;
    if all {
        if let Ok(rd) = std::fs::read_dir(etc) {
            for e in rd.filter_map(Result::ok) {
                if e.path().is_file() {
                    rm(e.path())?;
                }
            }
        }
    } else if let Some(h) = keep_hash {
        let store = open_store(data_dir, "reset", "reset").await?;
        store
            .meta_set(TECH_PASSWORD.into(), h)
            .await
            .context("keeping the technician password")?;
        store.shutdown().await.context("closing the store")?;
    }
    Ok(Reset {
        removed,
        kept_identity: !all,
    })
}

/// The request `system.factory_reset` leaves in the data directory for the next start.
pub(crate) const REQUEST: &str = "factory-reset-request";

/// Leaves a factory-reset request in `data_dir` (written whole, then renamed).
///
/// # Errors
/// The file cannot be written (named).
pub(crate) fn request(data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join(REQUEST);
    let tmp = data_dir.join(format!("{REQUEST}.tmp"));
    std::fs::write(&tmp, b"requested by the cloud (system.factory_reset)\n")
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))
}

/// At start, before the store opens: carries out a requested factory reset (the school's
/// data goes, the identity and the technician password stay) and removes the request.
///
/// # Errors
/// The reset failed (named); the request stays, so the next start tries again.
pub(crate) async fn pending(data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join(REQUEST);
    if !path.exists() {
        return Ok(());
    }
    // `etc` is only used with `all`, which a remote reset never is.
    let done = factory_reset(Path::new("/nonexistent"), data_dir, false)
        .await
        .context("the factory reset the cloud asked for")?;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    tracing::warn!(
        removed = done.removed.len(),
        "Factory reset done, as the cloud asked (system.factory_reset)."
    );
    Ok(())
}
