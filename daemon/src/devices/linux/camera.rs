//! The classroom camera over V4L2 (`[inference] camera = "v4l2"`), with `linuxvideo` (pure
//! Rust V4L2, no C bindings to build). One thread: open the device, negotiate a format
//! (RGB24, BGR24, YUYV or MJPEG, in that order of preference), stream, and hand one frame
//! every `sample_every` to the inference thread (which drops stale ones anyway). The other
//! frames are dequeued and returned to the driver unread, so the camera never stalls.
//!
//! A camera that is missing, unplugged or stops delivering is `absent` or `fault` on the
//! status page, naming the device; the thread retries every few seconds, so plugging it back
//! in resumes attendance by face without a restart. Cards keep working throughout.

use std::os::fd::AsFd as _;
use std::path::Path;
use std::time::{Duration, Instant};

use ketang_models::Frame;
use linuxvideo::format::{PixFormat, PixelFormat};
use linuxvideo::{BufType, Device};
use tokio_util::sync::CancellationToken;

use crate::devices::DeviceState;
use crate::devices::Hardware;
use crate::devices::{CAMERA, FrameSink};

/// No frame for this long: the camera is stuck (a unplugged UVC camera usually errors out
/// sooner).
const STALL: Duration = Duration::from_secs(5);
/// Wait between attempts to open a missing or failed camera.
const RETRY: Duration = Duration::from_secs(3);

/// The formats we convert, best first.
const PREFERRED: [PixelFormat; 4] = [
    PixelFormat::RGB3,
    PixelFormat::BGR3,
    PixelFormat::YUYV,
    PixelFormat::MJPG,
];

/// Runs until `stop`: capture from `device` at about `width` × `height`.
pub(crate) fn run(
    device: &Path,
    width: u32,
    height: u32,
    every: Duration,
    inf: &dyn FrameSink,
    hw: &Hardware,
    stop: &CancellationToken,
) {
    crate::devices::supervise(hw, CAMERA, RETRY, stop, || {
        stream(device, width, height, every, inf, hw, stop)
    });
}

/// One session with the device; `Err((state, why))` when it ends.
fn stream(
    device: &Path,
    width: u32,
    height: u32,
    every: Duration,
    inf: &dyn FrameSink,
    hw: &Hardware,
    stop: &CancellationToken,
) -> Result<(), (DeviceState, String)> {
    let name = device.display().to_string();
    let dev = Device::open(device).map_err(|e| {
        (
            DeviceState::Absent,
            format!("cannot open {name} (inference.camera_device): {e}"),
        )
    })?;
    let formats: Vec<PixelFormat> = dev
        .formats(BufType::VIDEO_CAPTURE)
        .filter_map(Result::ok)
        .map(|f| f.pixel_format())
        .collect();
    let Some(format) = PREFERRED.into_iter().find(|p| formats.contains(p)) else {
        return Err((
            DeviceState::Fault,
            format!(
                "{name} offers no format Ketang converts (it has {}; supported: RGB3, BGR3, YUYV, MJPG)",
                formats
                    .iter()
                    .map(|f| format!("{f:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let capture = dev
        .video_capture(PixFormat::new(width, height, format))
        .map_err(|e| {
            (
                DeviceState::Fault,
                format!("{name}: setting the capture format failed: {e}"),
            )
        })?;
    let got = capture.format();
    let (w, h, fmt, stride) = (
        got.width(),
        got.height(),
        got.pixel_format(),
        got.bytes_per_line(),
    );
    let mut s = capture.into_stream().map_err(|e| {
        (
            DeviceState::Fault,
            format!("{name}: starting the stream failed: {e}"),
        )
    })?;
    tracing::info!(device = %name, width = w, height = h, format = ?fmt, "Camera streaming.");
    // Unless inference itself is degraded (a missing model names itself there).
    if !hw.degraded(CAMERA) {
        hw.set_state(
            CAMERA,
            DeviceState::Ok,
            Some(format!(
                "{name}: {w}×{h} {fmt:?}, one frame every {} ms",
                every.as_millis()
            )),
        );
    }
    let mut last_frame = Instant::now();
    let mut last_sent: Option<Instant> = None;
    while !stop.is_cancelled() {
        let mut fds = [nix::poll::PollFd::new(
            s.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)) {
            Ok(0) => {
                if last_frame.elapsed() > STALL {
                    return Err((
                        DeviceState::Fault,
                        format!("{name} delivered no frame for {} s", STALL.as_secs()),
                    ));
                }
                continue;
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err((
                    DeviceState::Absent,
                    format!("{name}: waiting for a frame: {e}"),
                ));
            }
        }
        let due = last_sent.is_none_or(|t| t.elapsed() >= every);
        let frame = s
            .dequeue(|buf| {
                if !due || buf.is_error() {
                    return Ok(None);
                }
                Ok(Some(convert(&buf, w, h, stride, fmt)))
            })
            .map_err(|e| {
                (
                    DeviceState::Absent,
                    format!("{name}: reading a frame failed (unplugged?): {e}"),
                )
            })?;
        last_frame = Instant::now();
        match frame {
            None => {}
            Some(Ok(f)) => {
                last_sent = Some(Instant::now());
                inf.frame(f);
            }
            Some(Err(why)) => {
                last_sent = Some(Instant::now());
                hw.set_state(CAMERA, DeviceState::Fault, Some(format!("{name}: {why}")));
            }
        }
    }
    Ok(())
}

/// One captured buffer as an RGB frame.
fn convert(buf: &[u8], w: u32, h: u32, stride: u32, fmt: PixelFormat) -> Result<Frame, String> {
    let (wu, hu) = (w as usize, h as usize);
    let rgb = match fmt {
        f if f == PixelFormat::MJPG => {
            return Frame::decode(buf).map_err(|e| format!("a broken MJPEG frame: {e}"));
        }
        f if f == PixelFormat::RGB3 || f == PixelFormat::BGR3 => {
            let stride = (stride as usize).max(wu * 3);
            let mut out = Vec::with_capacity(wu * hu * 3);
            for y in 0..hu {
                let row = buf
                    .get(y * stride..y * stride + wu * 3)
                    .ok_or_else(|| short(buf.len(), y))?;
                if f == PixelFormat::RGB3 {
                    out.extend_from_slice(row);
                } else {
                    out.extend(row.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]));
                }
            }
            out
        }
        _ => yuyv_to_rgb(buf, wu, hu, (stride as usize).max(wu * 2))?,
    };
    Frame::from_rgb(w, h, rgb).map_err(|e| e.to_string())
}

fn short(len: usize, row: usize) -> String {
    format!("a short frame ({len} bytes, ends before row {row})")
}

/// YUYV 4:2:2 (BT.601, limited range) to RGB24.
fn yuyv_to_rgb(buf: &[u8], w: usize, h: usize, stride: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(w * h * 3);
    let px = |y: u8, u: u8, v: u8| {
        let c = (f32::from(y) - 16.0) * 1.164;
        let d = f32::from(u) - 128.0;
        let e = f32::from(v) - 128.0;
        let k = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        [
            k(c + 1.596 * e),
            k(c - 0.392 * d - 0.813 * e),
            k(c + 2.017 * d),
        ]
    };
    for y in 0..h {
        let row = buf
            .get(y * stride..y * stride + w * 2)
            .ok_or_else(|| short(buf.len(), y))?;
        for q in row.chunks_exact(4) {
            out.extend_from_slice(&px(q[0], q[1], q[3]));
            out.extend_from_slice(&px(q[2], q[1], q[3]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_greys_and_colours_convert() {
        // Black, white (limited range) and a saturated red pair.
        let buf = [16, 128, 16, 128, 235, 128, 235, 128, 81, 90, 81, 240];
        let rgb = yuyv_to_rgb(&buf, 6, 1, 12).unwrap();
        assert_eq!(&rgb[..6], &[0, 0, 0, 0, 0, 0]);
        assert_eq!(&rgb[6..12], &[255, 255, 255, 255, 255, 255]);
        let (r, g, b) = (rgb[12], rgb[13], rgb[14]);
        assert!(r > 240 && g < 20 && b < 20, "red: {r} {g} {b}");
    }

    #[test]
    fn short_and_padded_buffers() {
        assert!(
            yuyv_to_rgb(&[0; 10], 4, 2, 8)
                .unwrap_err()
                .contains("short frame")
        );
        // BGR rows padded to 100 bytes (32 × 3 = 96 used): the padding is skipped.
        let mut buf = vec![0u8; 100 * 32];
        buf[..3].copy_from_slice(&[1, 2, 3]);
        buf[100..103].copy_from_slice(&[7, 8, 9]);
        buf[96..100].copy_from_slice(&[99, 99, 99, 99]);
        let f = convert(&buf, 32, 32, 100, PixelFormat::BGR3).unwrap();
        assert_eq!(&f.rgb()[..3], &[3, 2, 1]);
        assert_eq!(
            &f.rgb()[32 * 3..32 * 3 + 3],
            &[9, 8, 7],
            "row 1 starts after the padding"
        );
        assert!(!f.rgb().contains(&99));
        assert!(convert(&[0xff, 0xd8, 0, 0], 2, 2, 0, PixelFormat::MJPG).is_err());
    }
}
