//! Capture from folders instead of devices: a capture process drops image files
//! (`[inference] camera = "frames"`) or WAV recordings (`microphone = "wav"`) into a folder;
//! these threads hand them to inference and delete them.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ketang_models::{Frame, vad};
use tokio_util::sync::CancellationToken;

use super::{AudioSink, CAMERA, DeviceState, FrameSink, Hardware, MICROPHONE};

/// How long an image that does not decode must have been unchanged before it counts as
/// broken rather than still being written.
const SETTLED: Duration = Duration::from_secs(2);

/// Watches `dir`: the newest image file (by modification time), when it changed, is the
/// next frame.
pub(crate) fn watch_folder(
    dir: &Path,
    every: Duration,
    inf: &dyn FrameSink,
    hw: &Hardware,
    stop: &CancellationToken,
) {
    let mut last: Option<(PathBuf, SystemTime)> = None;
    while !stop.is_cancelled() {
        std::thread::sleep(every);
        let newest = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter(|e| {
                    e.path()
                        .extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| {
                            matches!(x.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                        })
                })
                .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
                .max_by_key(|(_, t)| *t),
            Err(e) => {
                hw.set_state(
                    CAMERA,
                    DeviceState::Absent,
                    Some(format!(
                        "cannot read {} (inference.frames_dir): {e}",
                        dir.display()
                    )),
                );
                continue;
            }
        };
        let Some((path, t)) = newest else { continue };
        if last.as_ref().is_some_and(|(p, lt)| *p == path && *lt == t) {
            continue;
        }
        last = Some((path.clone(), t));
        match Frame::open(&path) {
            Ok(f) => inf.frame(f),
            // A file still being written reads short: it is read again next round (and not
            // deleted) until it has been still for SETTLED; only then is it broken.
            Err(_) if SystemTime::now().duration_since(t).unwrap_or_default() < SETTLED => {
                last = None;
                continue;
            }
            Err(e) => hw.set_state(CAMERA, DeviceState::Fault, Some(e.to_string())),
        }
        // Frames show students: none is kept once the newest was read (older ones were
        // never going to be looked at).
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.filter_map(Result::ok) {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m <= t);
                let image = e
                    .path()
                    .extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| {
                        matches!(x.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                    });
                if old && image {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// Watches `dir` for finished WAV recordings (unchanged for 2 s): each is heard once.
pub(crate) fn watch_recordings(
    dir: &Path,
    inf: &dyn AudioSink,
    hw: &Hardware,
    stop: &CancellationToken,
) {
    let mut done: std::collections::HashSet<(PathBuf, SystemTime)> =
        std::collections::HashSet::new();
    while !stop.is_cancelled() {
        std::thread::sleep(Duration::from_secs(1));
        let entries = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                hw.set_state(
                    MICROPHONE,
                    DeviceState::Absent,
                    Some(format!(
                        "cannot read {} (inference.audio_dir): {e}",
                        dir.display()
                    )),
                );
                continue;
            }
        };
        let mut ready: Vec<(PathBuf, SystemTime)> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.path()
                    .extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("wav"))
            })
            .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
            .filter(|(_, t)| t.elapsed().is_ok_and(|a| a >= Duration::from_secs(2)))
            .filter(|k| !done.contains(k))
            .collect();
        ready.sort_by_key(|(_, t)| *t);
        for (path, t) in ready {
            done.insert((path.clone(), t));
            match vad::read_wav(&path) {
                Ok(ch) => inf.audio(ch, chrono::DateTime::<chrono::Utc>::from(t)),
                Err(e) => hw.set_state(MICROPHONE, DeviceState::Fault, Some(e.to_string())),
            }
            // Recordings of the classroom are not kept once heard (docs/privacy.md).
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "A heard recording could not be deleted.");
            }
        }
    }
}
