//! The classroom microphone over ALSA (`[inference] microphone = "alsa"`): the daemon runs
//! and supervises `arecord` (alsa-utils, Debian's own ALSA recorder; no C library to link
//! into the daemon), reading 16 kHz 16-bit PCM from its stdout in 10 s blocks for talk-time
//! analysis. Audio is never written to disk and never leaves the device.
//!
//! A device that is missing or unplugged (arecord exits) is `absent` on the status page with
//! arecord's own words and the device name; the recorder is started again every few seconds.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::devices::DeviceState;
use crate::devices::Hardware;
use crate::devices::{AudioSink, MICROPHONE};

/// Samples per second (what the voice model wants).
const RATE: usize = 16_000;
/// Seconds per block handed to the voice model.
const BLOCK_S: usize = 10;
/// Wait between attempts to start a failed recorder.
const RETRY: Duration = Duration::from_secs(3);

/// Runs until `stop`: records `channels` channels from the ALSA PCM `device`.
pub(crate) fn run(
    device: &str,
    channels: u16,
    inf: &dyn AudioSink,
    hw: &Hardware,
    stop: &CancellationToken,
) {
    crate::devices::supervise(hw, MICROPHONE, RETRY, stop, || {
        Err(record(device, channels, inf, hw, stop))
    });
}

/// One recorder run; why it ended.
fn record(
    device: &str,
    channels: u16,
    inf: &dyn AudioSink,
    hw: &Hardware,
    stop: &CancellationToken,
) -> (DeviceState, String) {
    let spawned = Command::new("arecord")
        .args([
            "-q", "-D", device, "-f", "S16_LE", "-r", "16000", "-t", "raw", "-c",
        ])
        .arg(channels.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (
                DeviceState::Absent,
                "arecord is not installed (Debian package alsa-utils)".to_owned(),
            );
        }
        Err(e) => {
            return (
                DeviceState::Fault,
                format!("starting arecord for {device}: {e}"),
            );
        }
    };
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return (
            DeviceState::Fault,
            "arecord's output could not be read".to_owned(),
        );
    };
    // arecord's complaints, for the status page when it ends.
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let ch = usize::from(channels.max(1));
    let block = RATE * BLOCK_S * 2 * ch;
    let mut buf = vec![0u8; block];
    let mut filled = 0;
    let mut first = true;
    let ended = loop {
        if stop.is_cancelled() {
            let _ = child.kill();
            break None;
        }
        match out.read(&mut buf[filled..]) {
            Ok(0) => break Some(filled),
            Ok(n) => {
                filled += n;
                if std::mem::take(&mut first) && !hw.degraded(MICROPHONE) {
                    hw.set_state(
                        MICROPHONE,
                        DeviceState::Ok,
                        Some(format!("recording from {device} ({ch} channel(s), 16 kHz)")),
                    );
                }
                if filled == block {
                    inf.audio(split(&buf, ch), chrono::Utc::now());
                    filled = 0;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "Reading from arecord failed.");
                let _ = child.kill();
                break Some(filled);
            }
        }
    };
    let status = child.wait();
    let said = errors.join().unwrap_or_default();
    let Some(rest) = ended else {
        return (DeviceState::Ok, "stopped".to_owned());
    };
    // A last partial block of a second or more is still heard.
    if rest >= RATE * 2 * ch {
        let rest = rest - rest % (2 * ch);
        inf.audio(split(&buf[..rest], ch), chrono::Utc::now());
    }
    let said = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_owned();
    (
        DeviceState::Absent,
        format!(
            "arecord -D {device} ended ({}): {said}",
            status.map_or_else(|e| e.to_string(), |s| s.to_string())
        ),
    )
}

/// Interleaved S16LE into one `f32` vector per channel (−1…1).
fn split(bytes: &[u8], ch: usize) -> Vec<Vec<f32>> {
    let frames = bytes.len() / (2 * ch);
    let mut out = vec![Vec::with_capacity(frames); ch];
    for (i, s) in bytes.chunks_exact(2).take(frames * ch).enumerate() {
        out[i % ch].push(f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_samples_split_into_channels() {
        let b: Vec<u8> = [0i16, 16384, -32768, 32767, 1, 2]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let c = split(&b, 2);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0], vec![0.0, -1.0, 1.0 / 32768.0]);
        assert_eq!(c[1][0], 0.5);
        assert_eq!(split(&b, 1)[0].len(), 6);
        // A torn last frame is dropped.
        assert_eq!(split(&b[..5], 2)[0].len(), 1);
    }
}
