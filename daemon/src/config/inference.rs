//! `[inference]`: on-device face attendance (docs/models.md, docs/privacy.md).
//!
//! ```toml
//! [inference]
//! enabled = true                         # default: on when a camera is configured (consent still gates it)
//! models_dir = "/usr/share/ketang/models"
//! face_model = "dlib_resnet_v1"          # or "mobilefacenet_192_b1" (weights without a licence)
//! camera = "v4l2"                        # "v4l2", "frames" or "simulated" (demo)
//! camera_device = "/dev/video0"          # with camera = "v4l2"
//! camera_width = 1280                    # asked of the camera (it picks the nearest size)
//! camera_height = 720
//! frames_dir = "/run/ketang/frames"      # with camera = "frames": the newest image is the frame
//! sample_every_ms = 2000                 # one frame every 2 s at most; stale frames are dropped
//! tile_px = 480                          # detection tiles for small faces (0 = whole frame only)
//! min_face_score = 0.5
//! match_threshold = 0.94                 # cosine; default per face_model (docs/models.md says how)
//! match_margin = 0.01                    # lead over the second most similar student (per face_model)
//! key_file = "keys/face.key"             # template key, relative to data_dir; made 0600 if missing
//! behaviour = true                       # pose rules on sampled people (class-level aggregates)
//! pose_per_frame = 8                     # people whose pose is read per frame (rotating)
//! expressions = false                    # opt-in: the class's share of engaged faces (never per student)
//! microphone = "alsa"                    # "alsa", "wav", "simulated" (demo), or absent: no talk time
//! audio_device = "default"               # with "alsa": the ALSA PCM, e.g. "plughw:1,0"
//! audio_channels = 1                     # 2: channel 0 is the teacher's wireless microphone
//! audio_dir = "/run/ketang/audio"        # with microphone = "wav": finished WAV recordings
//! voice_threshold = 0.78                 # one channel: speech this similar to an enrolled teacher's voiceprint is hers
//! ```
//!
//! With two channels, channel 0 of each recording is the teacher's wireless microphone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use ketang_models::face::{DLIB_RESNET, EMBEDDERS, EmbedderSpec};

use super::ConfigError;
use super::hardware::{DeviceConfig, DeviceDriver, DeviceKind};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInference {
    enabled: Option<bool>,
    face_model: Option<String>,
    models_dir: Option<String>,
    camera: Option<String>,
    camera_device: Option<String>,
    camera_width: Option<i64>,
    camera_height: Option<i64>,
    frames_dir: Option<String>,
    sample_every_ms: Option<i64>,
    tile_px: Option<i64>,
    min_face_score: Option<f64>,
    match_threshold: Option<f64>,
    match_margin: Option<f64>,
    key_file: Option<String>,
    behaviour: Option<bool>,
    pose_per_frame: Option<i64>,
    expressions: Option<bool>,
    microphone: Option<String>,
    audio_dir: Option<String>,
    audio_device: Option<String>,
    audio_channels: Option<i64>,
    voice_threshold: Option<f64>,
}

/// Checked `[inference]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InferenceConfig {
    pub(crate) enabled: bool,
    pub(crate) models_dir: PathBuf,
    /// The face embedding model (`face_model`).
    pub(crate) embedder: EmbedderSpec,
    pub(crate) sample_every: Duration,
    pub(crate) tile_px: u32,
    pub(crate) min_face_score: f32,
    pub(crate) match_threshold: f32,
    pub(crate) match_margin: f32,
    pub(crate) key_file: PathBuf,
    pub(crate) behaviour: bool,
    pub(crate) pose_per_frame: usize,
    /// The class-level share of engaged faces (fer's expressions), opt-in: off unless the
    /// school turns it on (docs/privacy.md, "Emotion recognition").
    pub(crate) expressions: bool,
    /// The camera device (`None` when inference is off).
    pub(crate) camera: Option<DeviceConfig>,
    /// The microphone device (`None`: no talk-time analysis).
    pub(crate) microphone: Option<DeviceConfig>,
    /// One channel: a window of speech at least this similar to an enrolled teacher's
    /// voiceprint is the teacher's (docs/models.md, "Who speaks").
    pub(crate) voice_threshold: f32,
}

impl InferenceConfig {
    /// Off, with the defaults.
    pub(crate) fn off(data_dir: &Path) -> Self {
        Self {
            enabled: false,
            models_dir: PathBuf::from("/usr/share/ketang/models"),
            embedder: DLIB_RESNET,
            sample_every: Duration::from_secs(2),
            tile_px: 480,
            min_face_score: 0.5,
            match_threshold: DLIB_RESNET.threshold,
            match_margin: DLIB_RESNET.margin,
            key_file: data_dir.join("keys/face.key"),
            behaviour: true,
            pose_per_frame: 8,
            expressions: false,
            camera: None,
            microphone: None,
            voice_threshold: ketang_models::voice::DEFAULT_THRESHOLD,
        }
    }
}

pub(super) fn validate(
    r: RawInference,
    base: &Path,
    data_dir: &Path,
    errs: &mut Vec<ConfigError>,
) -> InferenceConfig {
    let mut c = InferenceConfig::off(data_dir);
    let path = |v: &str, base: &Path| {
        let p = Path::new(v);
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };
    // On when a camera is configured, unless turned off: recognition still only ever
    // matches students whose guardians consented (docs/privacy.md).
    c.enabled = r
        .enabled
        .unwrap_or(r.camera.is_some() || r.frames_dir.is_some());
    if let Some(name) = &r.face_model {
        match EmbedderSpec::named(name) {
            Some(e) => c.embedder = e,
            None => errs.push(ConfigError::new(
                "inference.face_model",
                format!(
                    "{name:?} is not a face model this build knows; expected one of {}",
                    EMBEDDERS
                        .iter()
                        .map(|e| format!("\"{}\"", e.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    c.match_threshold = c.embedder.threshold;
    c.match_margin = c.embedder.margin;
    if let Some(d) = &r.models_dir {
        c.models_dir = path(d, base);
    }
    if let Some(k) = &r.key_file {
        c.key_file = path(k, data_dir);
    }
    match r.sample_every_ms {
        None => {}
        Some(ms) if (200..=600_000).contains(&ms) => {
            c.sample_every = Duration::from_millis(ms.unsigned_abs());
        }
        Some(ms) => errs.push(ConfigError::new(
            "inference.sample_every_ms",
            format!("{ms} is out of range (200-600000)"),
        )),
    }
    match r.tile_px {
        None => {}
        Some(t) if t == 0 || (128..=4096).contains(&t) => c.tile_px = u32::try_from(t).unwrap_or(0),
        Some(t) => errs.push(ConfigError::new(
            "inference.tile_px",
            format!("{t} is out of range (0, or 128-4096)"),
        )),
    }
    let mut unit = |key: &str, v: Option<f64>, lo: f64, hi: f64, slot: &mut f32| match v {
        None => {}
        Some(x) if (lo..=hi).contains(&x) => *slot = x as f32,
        Some(x) => errs.push(ConfigError::new(
            format!("inference.{key}"),
            format!("{x} is out of range ({lo}-{hi})"),
        )),
    };
    unit(
        "min_face_score",
        r.min_face_score,
        0.05,
        0.99,
        &mut c.min_face_score,
    );
    unit(
        "match_threshold",
        r.match_threshold,
        0.1,
        0.99,
        &mut c.match_threshold,
    );
    unit(
        "match_margin",
        r.match_margin,
        0.0,
        0.5,
        &mut c.match_margin,
    );
    unit(
        "voice_threshold",
        r.voice_threshold,
        0.5,
        0.99,
        &mut c.voice_threshold,
    );
    c.behaviour = r.behaviour.unwrap_or(true);
    c.expressions = r.expressions.unwrap_or(false);
    match r.pose_per_frame {
        None => {}
        Some(n) if (1..=64).contains(&n) => c.pose_per_frame = usize::try_from(n).unwrap_or(8),
        Some(n) => errs.push(ConfigError::new(
            "inference.pose_per_frame",
            format!("{n} is out of range (1-64)"),
        )),
    }
    let channels = match r.audio_channels {
        None => 1,
        Some(n @ 1..=2) => u16::try_from(n).unwrap_or(1),
        Some(n) => {
            errs.push(ConfigError::new(
                "inference.audio_channels",
                format!("{n} is not 1 or 2 (with 2, channel 0 is the teacher's microphone)"),
            ));
            1
        }
    };
    let mic = match (r.microphone.as_deref(), &r.audio_dir) {
        (Some("alsa"), _) => {
            let device = r
                .audio_device
                .clone()
                .unwrap_or_else(|| "default".to_owned());
            if device.is_empty()
                || device.starts_with('-')
                || device.chars().any(char::is_whitespace)
            {
                errs.push(ConfigError::new(
                    "inference.audio_device",
                    format!(
                        "{device:?} is not an ALSA PCM name (e.g. \"default\" or \"plughw:1,0\")"
                    ),
                ));
            }
            Some(DeviceDriver::Alsa { device, channels })
        }
        (None, None) => None,
        (None | Some("wav"), Some(d)) => Some(DeviceDriver::Wav { dir: path(d, base) }),
        (Some("wav"), None) => {
            errs.push(ConfigError::new(
                "inference.audio_dir",
                "microphone = \"wav\" needs audio_dir, the folder recordings are written to",
            ));
            None
        }
        (Some("simulated"), _) => Some(DeviceDriver::Simulated),
        (Some(other), _) => {
            errs.push(ConfigError::new(
                "inference.microphone",
                format!(
                    "{other:?} is not a microphone; expected \"alsa\", \"wav\" or \"simulated\""
                ),
            ));
            None
        }
    };
    let mut size = |key: &str, v: Option<i64>, default: u32| match v {
        None => default,
        Some(x) if (64..=7680).contains(&x) => u32::try_from(x).unwrap_or(default),
        Some(x) => {
            errs.push(ConfigError::new(
                format!("inference.{key}"),
                format!("{x} is out of range (64-7680 pixels)"),
            ));
            default
        }
    };
    let (cw, ch) = (
        size("camera_width", r.camera_width, 1280),
        size("camera_height", r.camera_height, 720),
    );
    let driver = match (r.camera.as_deref(), &r.frames_dir) {
        (Some("v4l2"), _) => Some(DeviceDriver::V4l2 {
            device: PathBuf::from(r.camera_device.as_deref().unwrap_or("/dev/video0")),
            width: cw,
            height: ch,
        }),
        (None | Some("frames"), Some(d)) => Some(DeviceDriver::Frames { dir: path(d, base) }),
        (Some("frames"), None) => {
            errs.push(ConfigError::new(
                "inference.frames_dir",
                "camera = \"frames\" needs frames_dir, the folder the frames are written to",
            ));
            None
        }
        (Some("simulated"), _) => Some(DeviceDriver::Simulated),
        (None, None) => {
            if c.enabled {
                errs.push(ConfigError::new(
                    "inference.camera",
                    "missing; \"v4l2\" (with camera_device), \"frames\" (with frames_dir) or \"simulated\"",
                ));
            }
            None
        }
        (Some(other), _) => {
            errs.push(ConfigError::new(
                "inference.camera",
                format!(
                    "{other:?} is not a camera; expected \"v4l2\", \"frames\" or \"simulated\""
                ),
            ));
            None
        }
    };
    if c.enabled {
        let dev = |name: &str, kind, driver| DeviceConfig {
            name: name.to_owned(),
            kind,
            driver,
            debounce: Duration::ZERO,
            long_press: Duration::ZERO,
        };
        c.camera = driver.map(|d| dev("camera", DeviceKind::Camera, d));
        c.microphone = mic.map(|d| dev("microphone", DeviceKind::Microphone, d));
    }
    c
}
