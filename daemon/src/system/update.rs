//! System updates (`docs/technician.md`, "Update"). The daemon only **receives** a
//! signed RAUC bundle, uploaded on the technician page or fetched for a `system.update`
//! command, into `<data_dir>/update/`, and hands it to the installer (`ketang-update`, root,
//! started by `ketang-update.path`), which verifies the signature against the keyring in the
//! read-only root and installs it into the other slot. The daemon needs no privilege and
//! installs nothing itself: whatever it is given, RAUC refuses a bundle not signed for us.
//!
//! Spool files (a contract with `image/rootfs/ketang-update` and `ketang-health`):
//! * `bundle.raucb.part` while receiving, then `bundle.raucb`;
//! * `request` (`sha256=` and `source=` lines): its appearance starts the installer;
//! * `state.sent`: the installer step last queued on the `update` stream.
//!
//! The installer's latest step (`state=`, `sha256=`, `source=`, `slot=`, `detail=`, `at=`
//! in Unix seconds, replaced atomically) is read from `update.installer_state`:
//! `/run/ketang-update/state` on an image, where root writes it and the daemon cannot (root
//! never writes into the daemon's spool: `image/rootfs/ketang-lib.sh`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::SecondsFormat;
use futures_util::StreamExt as _;
use ketang_sync::{OutboxRecord, StoreHandle};
use ketang_web::{ApiError, SystemInfo, UpdateStep, Upload};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::UpdateConfig;

const BUNDLE: &str = "bundle.raucb";
const PART: &str = "bundle.raucb.part";
const REQUEST: &str = "request";
const SENT: &str = "state.sent";
/// Room left on the data partition besides a bundle (the store must keep working).
const MARGIN_BYTES: u64 = 32 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// What the image says about itself.
const IMAGE_RELEASE: &str = "/usr/lib/ketang/image-release";

/// Receives update bundles and reports update steps.
#[derive(Clone)]
pub(crate) struct Updater {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: UpdateConfig,
    data_dir: PathBuf,
    store: StoreHandle,
    clock: Clock,
    /// A bundle is being received (one at a time).
    busy: AtomicBool,
    latest: Mutex<Option<UpdateStep>>,
    slot: Option<String>,
    image: Option<String>,
}

/// Clears `busy` however a transfer ends.
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The booted slot from a kernel command line (`rauc.slot=A`).
fn slot_of(cmdline: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("rauc.slot="))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `KEY=value` lines (the spool and image-release files).
fn keyed(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The image build in one line, from `image-release`: variant, architecture, board profile
/// (when not the generic UEFI one), build time, commit.
fn image_of(release: &str) -> Option<String> {
    let variant = keyed(release, "KETANG_IMAGE_VARIANT")?;
    let arch = keyed(release, "KETANG_IMAGE_ARCH").unwrap_or_default();
    let board = keyed(release, "KETANG_IMAGE_BOARD").filter(|b| b != "generic");
    let built = keyed(release, "KETANG_IMAGE_BUILT").unwrap_or_default();
    let commit = keyed(release, "KETANG_IMAGE_COMMIT").unwrap_or_default();
    let parts = [variant, arch, board.unwrap_or_default(), built, commit];
    Some(
        parts
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// An installer step from the `state` file; `None` when there is none or it is garbled.
fn installer_step(text: &str) -> Option<UpdateStep> {
    let state = keyed(text, "state")?;
    let at = keyed(text, "at")
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))?;
    Some(UpdateStep {
        state,
        source: keyed(text, "source"),
        sha256: keyed(text, "sha256"),
        slot: keyed(text, "slot"),
        detail: keyed(text, "detail"),
        at,
    })
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Free bytes on the file system holding `p`.
pub(super) fn free_bytes(p: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(p).ok()?;
    Some(s.blocks_available().saturating_mul(s.fragment_size()))
}

impl Updater {
    pub(crate) fn new(
        cfg: UpdateConfig,
        data_dir: &Path,
        store: StoreHandle,
        clock: Clock,
    ) -> Self {
        let slot = std::fs::read_to_string("/proc/cmdline")
            .ok()
            .and_then(|c| slot_of(&c));
        let image = std::fs::read_to_string(IMAGE_RELEASE)
            .ok()
            .and_then(|r| image_of(&r));
        let latest = read_small(&cfg.installer_state)
            .ok()
            .and_then(|t| installer_step(&t));
        Self {
            inner: Arc::new(Inner {
                cfg,
                data_dir: data_dir.to_owned(),
                store,
                clock,
                busy: AtomicBool::new(false),
                latest: Mutex::new(latest),
                slot,
                image,
            }),
        }
    }

    /// The status page's `system` section.
    pub(crate) fn info(&self) -> SystemInfo {
        let i = &self.inner;
        SystemInfo {
            slot: i.slot.clone(),
            image: i.image.clone(),
            updates: i.cfg.enabled,
            update: i
                .latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            data_free_mb: free_bytes(&i.data_dir).map(|b| b / MIB),
            network: ketang_web::NetworkInfo::default(),
        }
    }

    /// Records `step`: the status page, the log and the `update` stream.
    async fn step(&self, state: &str, source: &str, sha256: Option<&str>, detail: Option<String>) {
        let now = self.inner.clock.now_fixed();
        let step = UpdateStep {
            state: state.to_owned(),
            source: Some(source.to_owned()),
            sha256: sha256.map(str::to_owned),
            slot: None,
            detail,
            at: now.to_rfc3339_opts(SecondsFormat::Secs, false),
        };
        self.publish(step).await;
    }

    async fn publish(&self, step: UpdateStep) {
        if step.state == "failed" || step.state == "refused" || step.state == "rolled_back" {
            tracing::error!(state = %step.state, source = ?step.source, detail = ?step.detail, "System update step.");
        } else {
            tracing::info!(state = %step.state, source = ?step.source, slot = ?step.slot, "System update step.");
        }
        let body = ketang_sync::UpdateBody {
            state: step.state.clone(),
            source: step.source.clone(),
            sha256: step.sha256.clone(),
            slot: step.slot.clone(),
            detail: step.detail.clone(),
        };
        let record = OutboxRecord::new(
            &body,
            self.inner.clock.now_fixed(),
            self.inner.clock.synced(),
        );
        // Queued first, then shown: a step on the status page is already on its way to the
        // cloud.
        if let Err(e) = self.inner.store.enqueue(record).await {
            tracing::error!(error = %e, "Queuing an update step failed; the status page still shows it.");
        }
        *self
            .inner
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(step);
    }

    /// Claims the spool for one bundle of at most `length` bytes.
    fn begin(&self, length: Option<u64>) -> Result<Busy<'_>, ApiError> {
        let i = &self.inner;
        if !i.cfg.enabled {
            return Err(ApiError::Unavailable(
                "this system has no update installer (updates apply on a Ketang image; \
                 [update] enabled in the config)"
                    .to_owned(),
            ));
        }
        if i.busy.swap(true, Ordering::SeqCst) {
            return Err(ApiError::Conflict(
                "another update bundle is being received".to_owned(),
            ));
        }
        let busy = Busy(&i.busy);
        if i.cfg.spool.join(REQUEST).exists() {
            return Err(ApiError::Conflict(
                "the installer has not finished with the previous bundle yet".to_owned(),
            ));
        }
        let max = i.cfg.max_bundle_bytes;
        if let Some(n) = length
            && n > max
        {
            return Err(ApiError::TooLarge(format!(
                "the bundle is {} MiB; this board takes at most {} MiB (update.max_bundle_mb)",
                n.div_ceil(MIB),
                max / MIB
            )));
        }
        std::fs::create_dir_all(&i.cfg.spool)
            .map_err(|e| ApiError::Internal(format!("creating {}: {e}", i.cfg.spool.display())))?;
        for f in [PART, BUNDLE] {
            let _ = std::fs::remove_file(i.cfg.spool.join(f));
        }
        if let (Some(n), Some(free)) = (length, free_bytes(&i.cfg.spool))
            && n.saturating_add(MARGIN_BYTES) > free
        {
            return Err(ApiError::InsufficientStorage(format!(
                "the data partition has {} MiB free; the bundle needs {} MiB and {} MiB stay for the store",
                free / MIB,
                n.div_ceil(MIB),
                MARGIN_BYTES / MIB
            )));
        }
        Ok(busy)
    }

    /// Moves the complete bundle into place and starts the installer.
    fn hand_over(&self, sha256: &str, source: &str) -> std::io::Result<()> {
        let spool = &self.inner.cfg.spool;
        std::fs::rename(spool.join(PART), spool.join(BUNDLE))?;
        let tmp = spool.join("request.tmp");
        std::fs::write(&tmp, format!("sha256={sha256}\nsource={source}\n"))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, spool.join(REQUEST))?;
        std::fs::File::open(spool)?.sync_all()
    }

    /// Receives a technician's upload (the body is the bundle).
    pub(crate) async fn receive_upload(
        &self,
        by: &str,
        length: Option<u64>,
        mut body: Upload,
    ) -> Result<serde_json::Value, ApiError> {
        let _busy = self.begin(length)?;
        let spool = self.inner.cfg.spool.clone();
        let max = self.inner.cfg.max_bundle_bytes;
        self.step(
            "receiving",
            "upload",
            None,
            Some(format!("uploaded by {by}")),
        )
        .await;
        let part = spool.join(PART);
        let result: Result<(String, u64), ApiError> = async {
            let file = tokio::fs::File::create(&part)
                .await
                .map_err(|e| ApiError::Internal(format!("creating {}: {e}", part.display())))?;
            let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
            let mut hash = sha2::Sha256::new();
            let mut n: u64 = 0;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::BadRequest(format!("the upload broke off after {} MiB: {e}", n / MIB))
                })?;
                n += chunk.len() as u64;
                if n > max {
                    return Err(ApiError::TooLarge(format!(
                        "the bundle is larger than {} MiB (update.max_bundle_mb)",
                        max / MIB
                    )));
                }
                hash.update(&chunk);
                out.write_all(&chunk)
                    .await
                    .map_err(|e| write_error(&e, n))?;
            }
            out.flush().await.map_err(|e| write_error(&e, n))?;
            out.get_ref()
                .sync_all()
                .await
                .map_err(|e| write_error(&e, n))?;
            if n == 0 {
                return Err(ApiError::BadRequest(
                    "the upload is empty: send the .raucb bundle as the request body".to_owned(),
                ));
            }
            Ok((hex(&hash.finalize()), n))
        }
        .await;
        let (sha256, bytes) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                self.step("failed", "upload", None, Some(e.to_string()))
                    .await;
                return Err(e);
            }
        };
        if let Err(e) = self.hand_over(&sha256, "upload") {
            let _ = std::fs::remove_file(&part);
            let why = format!(
                "handing the bundle to the installer in {}: {e}",
                spool.display()
            );
            self.step("failed", "upload", Some(&sha256), Some(why.clone()))
                .await;
            return Err(ApiError::Internal(why));
        }
        self.step(
            "received",
            "upload",
            Some(&sha256),
            Some(format!(
                "{} MiB, handed to the installer",
                bytes.div_ceil(MIB)
            )),
        )
        .await;
        Ok(serde_json::json!({
            "state": "received",
            "sha256": sha256,
            "bytes": bytes,
            "detail": "handed to the installer: it checks the signature, installs into the other slot and reboots for a trial",
        }))
    }

    /// Starts fetching the bundle a `system.update` command names; the ack says whether it
    /// started, the `update` stream how it went.
    pub(crate) fn start_download(
        &self,
        url: String,
        sha256: String,
        stop: CancellationToken,
    ) -> Result<(), String> {
        // Claim before spawning, so the ack tells the truth about a second command.
        let busy = self.begin(None).map_err(|e| e.to_string())?;
        std::mem::forget(busy);
        let this = self.clone();
        tokio::spawn(async move {
            let _busy = Busy(&this.inner.busy);
            this.download(&url, &sha256, stop).await;
        });
        Ok(())
    }

    async fn download(&self, url: &str, sha256: &str, stop: CancellationToken) {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        self.step(
            "receiving",
            "cloud",
            Some(sha256),
            Some(format!("downloading from {host}")),
        )
        .await;
        let spool = self.inner.cfg.spool.clone();
        let part = spool.join(PART);
        let limits = super::download::Limits {
            max_bytes: self.inner.cfg.max_bundle_bytes,
            margin_bytes: MARGIN_BYTES,
            ca_file: self.inner.cfg.ca_file.clone(),
            proxy: self.inner.cfg.proxy.clone(),
        };
        let result = fetch(url, &part, limits, stop).await;
        let result = match result {
            Ok(()) => {
                let p = part.clone();
                match tokio::task::spawn_blocking(move || file_sha256(&p)).await {
                    Ok(Ok(got)) if got == sha256 => Ok(()),
                    Ok(Ok(got)) => Err(format!(
                        "the download's SHA-256 is {got}, the command said {sha256}: not installed"
                    )),
                    Ok(Err(e)) => Err(format!("reading {}: {e}", part.display())),
                    Err(e) => Err(format!("hashing the download: {e}")),
                }
            }
            Err(e) => Err(e),
        };
        let result = result.and_then(|()| {
            self.hand_over(sha256, "cloud").map_err(|e| {
                format!(
                    "handing the bundle to the installer in {}: {e}",
                    spool.display()
                )
            })
        });
        match result {
            Ok(()) => {
                self.step(
                    "received",
                    "cloud",
                    Some(sha256),
                    Some("handed to the installer".to_owned()),
                )
                .await;
            }
            Err(why) => {
                let _ = std::fs::remove_file(&part);
                self.step("failed", "cloud", Some(sha256), Some(why)).await;
            }
        }
    }

    /// Forwards the installer's steps (the `state` file) to the status page and the
    /// `update` stream, each once, until `stop`.
    pub(crate) async fn watch(self, stop: CancellationToken) {
        let spool = self.inner.cfg.spool.clone();
        let state = self.inner.cfg.installer_state.clone();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            let Ok(text) = read_small(&state) else {
                continue;
            };
            let sent = std::fs::read_to_string(spool.join(SENT)).unwrap_or_default();
            if text == sent {
                continue;
            }
            match installer_step(&text) {
                Some(step) => self.publish(step).await,
                None => tracing::warn!(
                    file = %state.display(),
                    "The installer's state file has no state= and at= lines; ignored."
                ),
            }
            if let Err(e) = std::fs::write(spool.join(SENT), &text) {
                tracing::error!(error = %e, "Remembering the forwarded update step failed; it may be queued again.");
            }
        }
    }
}

fn write_error(e: &std::io::Error, n: u64) -> ApiError {
    if e.raw_os_error() == Some(nix::libc::ENOSPC) {
        ApiError::InsufficientStorage(format!(
            "the data partition filled up after {} MiB of the bundle",
            n / MIB
        ))
    } else {
        ApiError::Internal(format!("writing the bundle after {} MiB: {e}", n / MIB))
    }
}

/// Reads a file the installer wrote, at most 64 KiB (a step is a few lines).
fn read_small(p: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(p)?
        .take(64 * 1024)
        .read_to_string(&mut text)?;
    Ok(text)
}

fn file_sha256(p: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// Downloads `url` into `part` (`download.rs`), resuming after a broken connection (school
/// networks drop for minutes); gives up after about half an hour of failures.
async fn fetch(
    url: &str,
    part: &Path,
    limits: super::download::Limits,
    stop: CancellationToken,
) -> Result<(), String> {
    use super::download::{Failed, agent, attempt};
    let agent = agent(limits.ca_file.as_deref(), limits.proxy.as_ref())?;
    let mut delay = Duration::from_secs(5);
    let mut last = String::new();
    for n in 1..=10 {
        let (agent, url, part, limits, stop2) = (
            agent.clone(),
            url.to_owned(),
            part.to_owned(),
            limits.clone(),
            stop.clone(),
        );
        let r = tokio::task::spawn_blocking(move || attempt(&agent, &url, &part, &limits, &stop2))
            .await
            .map_err(|e| format!("the download task failed: {e}"))?;
        match r {
            Ok(_) => return Ok(()),
            Err(Failed::Permanent(why)) => return Err(why),
            Err(Failed::Transient(why)) => last = why,
        }
        tracing::warn!(attempt = n, error = %last, "Update download interrupted; resuming later.");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => return Err("the daemon stopped during the download".to_owned()),
        }
        delay = (delay * 2).min(Duration::from_secs(300));
    }
    Err(format!("the download failed 10 times; last: {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_comes_from_the_kernel_command_line() {
        assert_eq!(
            slot_of("root=PARTLABEL=rootB ro rauc.slot=B console=ttyS0"),
            Some("B".to_owned())
        );
        assert_eq!(slot_of("root=/dev/sda1 ro"), None);
        assert_eq!(slot_of("rauc.slot="), None);
    }

    #[test]
    fn the_image_release_reads_as_one_line() {
        let r = "KETANG_IMAGE_VARIANT=headless\nKETANG_IMAGE_PROFILE=release\nKETANG_IMAGE_BUILT=2026-12-01T10:00:00Z\nKETANG_IMAGE_COMMIT=abc1234\n";
        assert_eq!(
            image_of(r).as_deref(),
            Some("headless 2026-12-01T10:00:00Z abc1234")
        );
        assert_eq!(image_of("nothing"), None);
        let arm = "KETANG_IMAGE_VARIANT=kiosk\nKETANG_IMAGE_ARCH=arm64\nKETANG_IMAGE_BOARD=rock-pi-4b\nKETANG_IMAGE_BUILT=2026-12-06T10:00:00Z\nKETANG_IMAGE_COMMIT=abc1234\n";
        assert_eq!(
            image_of(arm).as_deref(),
            Some("kiosk arm64 rock-pi-4b 2026-12-06T10:00:00Z abc1234")
        );
        let generic = arm.replace("rock-pi-4b", "generic");
        assert_eq!(
            image_of(&generic).as_deref(),
            Some("kiosk arm64 2026-12-06T10:00:00Z abc1234")
        );
    }

    #[test]
    fn installer_steps_parse_and_garbage_does_not() {
        let s = installer_step(
            "state=installed\nsha256=ab\nsource=upload\nslot=B\ndetail=rebooting into B\nat=1764583200\n",
        )
        .unwrap();
        assert_eq!(s.state, "installed");
        assert_eq!(s.slot.as_deref(), Some("B"));
        assert_eq!(s.detail.as_deref(), Some("rebooting into B"));
        assert_eq!(s.at, "2025-12-01T10:00:00Z");
        assert_eq!(installer_step("state=installed\n"), None, "no time");
        assert_eq!(installer_step("\u{0}\u{1}garbage"), None);
        assert_eq!(installer_step("state=\nat=1\n"), None, "empty state");
    }
}
