//! Face attendance on the board: one inference thread owns the models (docs/development.md §2).
//!
//! * **Frames** come from the camera (`[inference] camera`): image files in a folder
//!   (`frames`; the newest file is the current frame, and it and every older image are
//!   deleted once read) or, in the demo, the simulator
//!   (`POST /api/v1/sim/frame`). Only the newest frame waits: one arriving while the thread
//!   is busy replaces the one not yet looked at (counted as dropped), so inference never
//!   falls behind and never starves the rest of the daemon.
//! * **Per frame**: faces (BlazeFace full range, tiled), each aligned and embedded,
//!   matched against the gallery of enrolled students; a match is a `FaceMatch` event into
//!   the same channel as card taps, at most once a minute per student. The
//!   persons (NanoDet) plus faces outside them make the head count (`HeadCount`).
//! * **Enrolment** photos go through the same thread (short-range detector first: a portrait
//!   at arm's length), exactly one face, and come back as an embedding for the classroom to
//!   seal and store. Frames, crops and embeddings never leave this module except that one
//!   embedding, sealed at once.
//! * **Recordings** (`[inference] microphone`): finished WAV files in a folder, each heard
//!   once and then deleted, or the simulator (`POST /api/v1/sim/audio`); speech segments go
//!   to the classroom, which turns them into the lesson's talk time.
//! * **Degraded, not down**: missing or corrupt models, a black frame or an unreadable file
//!   show on the camera's status (`absent` / `fault`, naming the file); card and manual
//!   attendance never depend on this thread. Models are looked for again every minute.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ketang_models::Frame;
use ketang_models::face::{FaceDetector, FaceEmbedder, Range};
use ketang_models::gallery::Gallery;
use ketang_models::person::{PersonDetector, head_count};
use ketang_models::pose::{PoseEstimator, upper_body};
use ketang_models::track::{Known, Tracks};
use ketang_models::vad::{self, Vad};
use ketang_models::voice::VoiceEncoder;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{DeviceDriver, InferenceConfig};
use crate::devices::DeviceState;
use crate::devices::{Hardware, HwEvent};

pub(crate) use crate::devices::{CAMERA, MICROPHONE};

/// The voice encoder's file in `inference.models_dir`, and the name stored with voiceprints.
pub(crate) const VOICE_MODEL_FILE: &str = "resemblyzer_voice_encoder.onnx";
pub(crate) const VOICE_MODEL: &str = "resemblyzer_v1";

/// The person detector (head count) runs at least this often while the number of faces
/// stays the same.
const PEOPLE_EVERY: Duration = Duration::from_secs(6);

/// A recognised student is reported again only after this long.
const REPEAT_AFTER: Duration = Duration::from_secs(60);
/// Frames darker than this (mean luma 0–255) are a covered or dead camera.
const BLACK_LUMA: f32 = 8.0;

enum Job {
    Audio {
        channels: Vec<Vec<f32>>,
        ends_at: chrono::DateTime<chrono::Utc>,
    },
    Enrol {
        frame: Frame,
        reply: oneshot::Sender<Result<Vec<f32>, String>>,
    },
    /// The templates of this model, and how many of other models were left out.
    Gallery(Vec<(String, Vec<f32>)>, u64),
    /// The enrolled teachers' voiceprints (at start, after an enrolment or a deletion).
    Voiceprints(Vec<Vec<f32>>),
    /// Listen for a teacher's voice enrolment: the speech of the next recordings.
    VoiceEnrol {
        reply: oneshot::Sender<Result<(Vec<f32>, f32), String>>,
    },
    /// The enrolment's time is up: finish it with what was heard.
    VoiceEnrolEnd,
    /// The teacher stopped the enrolment: nothing is made of what was heard. `true` on
    /// `reply` when one was listening.
    VoiceEnrolCancel { reply: oneshot::Sender<bool> },
}

/// How long a voice enrolment listens at most.
const VOICE_ENROL_WINDOW: Duration = Duration::from_secs(45);
/// A voice enrolment ends early once it has heard this much speech.
const VOICE_ENROL_TARGET_S: f32 = 8.0;

/// The voice enrolment in progress: the speech heard so far, and who waits for it.
struct Enrolling {
    speech: Vec<f32>,
    reply: oneshot::Sender<Result<(Vec<f32>, f32), String>>,
}

#[derive(Default)]
struct Queue {
    frame: Option<Frame>,
    jobs: VecDeque<Job>,
    dropped: u64,
    audio_dropped: u64,
    /// A frame goes next if one waits (audio went last).
    frame_turn: bool,
}

/// Audio blocks (or recordings) that may wait for the voice model.
const MAX_AUDIO_JOBS: usize = 8;

/// Hands frames and jobs to the inference thread.
#[derive(Clone)]
pub(crate) struct Inference {
    q: Arc<(Mutex<Queue>, Condvar)>,
    /// Frames offered since start (the status counter `camera_frames`).
    offered: Arc<std::sync::atomic::AtomicU64>,
    simulated: bool,
    simulated_mic: bool,
    model: &'static str,
}

impl std::fmt::Debug for Inference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inference")
    }
}

fn lock(m: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inference {
    /// Starts the inference thread (and the frames-folder watcher) for `cfg`.
    pub(crate) fn start(
        cfg: &InferenceConfig,
        hw: Arc<Hardware>,
        events: mpsc::Sender<HwEvent>,
        stop: CancellationToken,
    ) -> Option<Self> {
        let camera = cfg.camera.as_ref()?;
        let me = Self {
            q: Arc::new((Mutex::new(Queue::default()), Condvar::new())),
            offered: Arc::default(),
            simulated: camera.driver == DeviceDriver::Simulated,
            model: cfg.embedder.name,
            simulated_mic: cfg
                .microphone
                .as_ref()
                .is_some_and(|m| m.driver == DeviceDriver::Simulated),
        };
        if cfg.microphone.is_some() {
            hw.set_state(
                MICROPHONE,
                DeviceState::Starting,
                Some("loading the voice model".into()),
            );
        }
        hw.set_state(
            CAMERA,
            DeviceState::Starting,
            Some("loading the models".into()),
        );
        let worker = Worker {
            cfg: cfg.clone(),
            hw: hw.clone(),
            events,
            q: me.q.clone(),
            stop: stop.clone(),
        };
        if let Err(e) = std::thread::Builder::new()
            .name("ketang-inference".into())
            .spawn(move || worker.run())
        {
            tracing::error!(error = %e, "The inference thread could not start.");
            return None;
        }
        Some(me)
    }

    /// The face model (`inference.face_model`): the name stored with each template.
    pub(crate) const fn model(&self) -> &'static str {
        self.model
    }

    /// Whether frames come from the simulator.
    pub(crate) const fn simulated(&self) -> bool {
        self.simulated
    }

    /// Frames offered since start.
    pub(crate) fn offered(&self) -> u64 {
        self.offered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Offers a frame; it replaces one not yet looked at.
    pub(crate) fn frame(&self, frame: Frame) {
        self.offered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (m, cv) = &*self.q;
        let mut q = lock(m);
        if q.frame.replace(frame).is_some() {
            q.dropped += 1;
        }
        cv.notify_one();
    }

    /// The embedding of the one face in `frame`, for enrolment.
    pub(crate) async fn enrol(&self, frame: Frame) -> Result<Vec<f32>, String> {
        let (tx, rx) = oneshot::channel();
        {
            let (m, cv) = &*self.q;
            lock(m).jobs.push_back(Job::Enrol { frame, reply: tx });
            cv.notify_one();
        }
        rx.await
            .map_err(|_| "the inference thread has stopped".to_owned())?
    }

    /// A recording (16 kHz channels) that ended at `ends_at`, for talk-time analysis. At
    /// most [`MAX_AUDIO_JOBS`] wait: a microphone faster than the voice model loses its
    /// oldest audio (counted), never the daemon's memory.
    pub(crate) fn audio(&self, channels: Vec<Vec<f32>>, ends_at: chrono::DateTime<chrono::Utc>) {
        let (m, cv) = &*self.q;
        let mut q = lock(m);
        let waiting = q
            .jobs
            .iter()
            .filter(|j| matches!(j, Job::Audio { .. }))
            .count();
        if waiting >= MAX_AUDIO_JOBS
            && let Some(i) = q.jobs.iter().position(|j| matches!(j, Job::Audio { .. }))
        {
            q.jobs.remove(i);
            q.audio_dropped += 1;
            if q.audio_dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = q.audio_dropped,
                    "Audio arrives faster than the voice model hears it; the oldest is dropped."
                );
            }
        }
        q.jobs.push_back(Job::Audio { channels, ends_at });
        cv.notify_one();
    }

    /// A teacher's voiceprint from the speech of the next recordings (up to
    /// [`VOICE_ENROL_WINDOW`], or until [`VOICE_ENROL_TARGET_S`] of speech): the print and
    /// the seconds of speech it was made from.
    pub(crate) async fn enrol_voice(&self) -> Result<(Vec<f32>, f32), String> {
        let (tx, mut rx) = oneshot::channel();
        self.push(Job::VoiceEnrol { reply: tx });
        let stopped = |_| "the inference thread has stopped".to_owned();
        if let Ok(r) = tokio::time::timeout(VOICE_ENROL_WINDOW, &mut rx).await {
            return r.map_err(stopped)?;
        }
        self.push(Job::VoiceEnrolEnd);
        rx.await.map_err(stopped)?
    }

    /// Stops the voice enrolment that is listening, if one is: its `enrol_voice` answers
    /// that it was cancelled, and nothing is made of the speech it heard.
    pub(crate) async fn cancel_voice_enrolment(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        self.push(Job::VoiceEnrolCancel { reply: tx });
        rx.await.unwrap_or(false)
    }

    /// Replaces the enrolled teachers' voiceprints.
    pub(crate) fn set_voiceprints(&self, prints: Vec<Vec<f32>>) {
        self.push(Job::Voiceprints(prints));
    }

    fn push(&self, job: Job) {
        let (m, cv) = &*self.q;
        lock(m).jobs.push_back(job);
        cv.notify_one();
    }

    /// Whether recordings come from the simulator.
    pub(crate) const fn simulated_microphone(&self) -> bool {
        self.simulated_mic
    }

    /// Replaces the gallery (at start, after enrolment or a withdrawal); `other_models`
    /// templates were made by another face model and cannot match.
    pub(crate) fn set_gallery(&self, templates: Vec<(String, Vec<f32>)>, other_models: u64) {
        let (m, cv) = &*self.q;
        lock(m)
            .jobs
            .push_back(Job::Gallery(templates, other_models));
        cv.notify_one();
    }
}

struct Models {
    people: PersonDetector,
    room: FaceDetector,
    near: FaceDetector,
    embedder: FaceEmbedder,
    pose: Option<PoseEstimator>,
    vad: Option<Vad>,
    /// Who speaks with one microphone (teachers' voiceprints); `None` when the file is
    /// missing (all speech is then the teacher's, as before) or with two channels.
    voice: Option<VoiceEncoder>,
    /// fer's expressions, only when the school opted in (`inference.expressions`).
    expression: Option<ketang_models::expression::ExpressionModel>,
}

fn load(cfg: &InferenceConfig) -> Result<Models, String> {
    let p = |f: &str| cfg.models_dir.join(f);
    let e = |e: ketang_models::ModelError| format!("{e} (inference.models_dir)");
    Ok(Models {
        room: FaceDetector::load(
            &p("face_detection_full_range.onnx"),
            Range::Full,
            cfg.min_face_score,
        )
        .map_err(e)?,
        near: FaceDetector::load(
            &p("face_detection_short_range.onnx"),
            Range::Short,
            cfg.min_face_score,
        )
        .map_err(e)?,
        embedder: FaceEmbedder::load(&p(cfg.embedder.file), cfg.embedder).map_err(e)?,
        people: PersonDetector::load(&p("nanodet.onnx"), 0.5).map_err(e)?,
        pose: if cfg.behaviour {
            Some(PoseEstimator::load(&p("movenet-lightning.onnx")).map_err(e)?)
        } else {
            None
        },
        vad: if cfg.microphone.is_some() {
            Some(Vad::load(&p("silero_vad_16k_sequence.onnx")).map_err(e)?)
        } else {
            None
        },
        voice: match &cfg.microphone {
            // (Two ALSA channels: channel 0 is the teacher's own microphone.)
            Some(m) if !matches!(m.driver, DeviceDriver::Alsa { channels: 2.., .. }) => {
                match VoiceEncoder::load(&p(VOICE_MODEL_FILE)) {
                    Ok(v) => Some(v),
                    Err(err) => {
                        tracing::warn!(error = %err, "No voice encoder: with one microphone, all speech counts as the teacher's.");
                        None
                    }
                }
            }
            _ => None,
        },
        expression: if cfg.expressions {
            Some(
                ketang_models::expression::ExpressionModel::load(&p("fer_emotion.onnx"))
                    .map_err(e)?,
            )
        } else {
            None
        },
    })
}

struct Worker {
    cfg: InferenceConfig,
    hw: Arc<Hardware>,
    events: mpsc::Sender<HwEvent>,
    q: Arc<(Mutex<Queue>, Condvar)>,
    stop: CancellationToken,
}

enum Next {
    Job(Job),
    Frame(Frame, u64),
    Idle,
}

impl Worker {
    fn next(&self) -> Next {
        let (m, cv) = &*self.q;
        let mut q = lock(m);
        if q.jobs.is_empty() && q.frame.is_none() {
            q = cv
                .wait_timeout(q, Duration::from_millis(500))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        // Enrolment and gallery changes first (a technician waits for them); then frames
        // and audio take turns, so a busy microphone never starves the camera, nor the
        // reverse.
        if let Some(j) = q
            .jobs
            .iter()
            .position(|j| !matches!(j, Job::Audio { .. }))
            .and_then(|i| q.jobs.remove(i))
        {
            return Next::Job(j);
        }
        if !(q.frame_turn && q.frame.is_some())
            && let Some(j) = q.jobs.pop_front()
        {
            q.frame_turn = true;
            return Next::Job(j);
        }
        q.frame_turn = false;
        match q.frame.take() {
            Some(f) => Next::Frame(f, q.dropped),
            None => Next::Idle,
        }
    }

    fn run(self) {
        let mut models: Option<Models> = None;
        let mut tried: Option<Instant> = None;
        let mut gallery = Gallery::new(self.cfg.match_threshold, self.cfg.match_margin);
        // What the status says of the gallery (a count and the model: never who).
        let model = self.cfg.embedder.name;
        let mut gallery_note = format!("gallery 0 ({model})");
        let mut last_seen: HashMap<String, Instant> = HashMap::new();
        let mut frames = 0u64;
        let mut pose_offset = 0usize;
        let mut voice = VoiceState::default();
        let mut tracks = Tracks::default();
        // The person detector's last answer: (faces in that frame, when, people).
        let mut people_cache: Option<(usize, Instant, Vec<ketang_models::person::Person>)> = None;
        while !self.stop.is_cancelled() {
            if models.is_none() && tried.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                tried = Some(Instant::now());
                match load(&self.cfg) {
                    Ok(m) => {
                        tracing::info!(dir = %self.cfg.models_dir.display(), "Face models loaded.");
                        self.hw.set_state(
                            CAMERA,
                            DeviceState::Ok,
                            Some(format!("waiting for frames · {gallery_note}")),
                        );
                        if m.vad.is_some() {
                            self.hw.set_state(
                                MICROPHONE,
                                DeviceState::Ok,
                                Some("waiting for recordings".into()),
                            );
                        }
                        models = Some(m);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Face attendance degraded: models unavailable; cards keep working.");
                        self.hw.set_degraded(CAMERA, &e.to_string());
                        if self.cfg.microphone.is_some() {
                            self.hw.set_degraded(MICROPHONE, &e.to_string());
                        }
                    }
                }
            }
            match self.next() {
                Next::Idle => {}
                Next::Job(Job::Gallery(t, other_models)) => {
                    // Who was recognised where no longer holds for the new gallery.
                    tracks.clear();
                    gallery = Gallery::new(self.cfg.match_threshold, self.cfg.match_margin);
                    for (id, v) in t {
                        gallery.add(&id, v);
                    }
                    tracing::info!(templates = gallery.len(), "Face gallery loaded.");
                    gallery_note = format!("gallery {} ({model})", gallery.len());
                    if other_models > 0 {
                        tracing::warn!(
                            other_models,
                            model,
                            "Face templates made by another face model cannot match: those students must enrol again."
                        );
                        let _ = write!(
                            gallery_note,
                            " · {other_models} templates of another face model: enrol again, or set inference.face_model to theirs"
                        );
                    }
                    if models.is_some() {
                        self.hw.set_state(
                            CAMERA,
                            DeviceState::Ok,
                            Some(format!("gallery loaded · {gallery_note}")),
                        );
                    }
                }
                Next::Job(Job::Audio { channels, ends_at }) => {
                    let Some(m) = models.as_ref().filter(|m| m.vad.is_some()) else {
                        continue;
                    };
                    if !self.hear(m, &mut voice, &channels, ends_at) {
                        return;
                    }
                }
                Next::Job(Job::Voiceprints(p)) => {
                    tracing::info!(voiceprints = p.len(), "Teachers' voiceprints loaded.");
                    voice.prints = p;
                }
                Next::Job(Job::VoiceEnrol { reply }) => {
                    let why = match models.as_ref() {
                        None => Some(
                            "the models are not loaded (see the microphone on the status page)",
                        ),
                        Some(m) if m.vad.is_none() => {
                            Some("this board has no microphone (inference.microphone)")
                        }
                        Some(m) if m.voice.is_none() => Some(
                            "this board does not tell voices apart: two microphone channels (the teacher's own microphone does), or the voice encoder is missing",
                        ),
                        Some(_) if voice.enrolling.is_some() => {
                            Some("another voice enrolment is listening; try again in a minute")
                        }
                        Some(_) => None,
                    };
                    match why {
                        Some(w) => {
                            let _ = reply.send(Err(w.to_owned()));
                        }
                        None => {
                            self.hw.set_state(
                                MICROPHONE,
                                DeviceState::Ok,
                                Some("listening for a teacher's voice enrolment".into()),
                            );
                            voice.enrolling = Some(Enrolling {
                                speech: Vec::new(),
                                reply,
                            });
                        }
                    }
                }
                Next::Job(Job::VoiceEnrolEnd) => {
                    if let (Some(e), Some(v)) = (
                        voice.enrolling.take(),
                        models.as_ref().and_then(|m| m.voice.as_ref()),
                    ) {
                        finish_enrolment(v, e);
                    }
                }
                Next::Job(Job::VoiceEnrolCancel { reply }) => {
                    let listening = match voice.enrolling.take() {
                        Some(e) => {
                            let heard = e.speech.len() as f32 / vad::RATE as f32;
                            self.hw.set_state(
                                MICROPHONE,
                                DeviceState::Ok,
                                Some(format!(
                                    "voice enrolment cancelled after {heard:.0} s of speech"
                                )),
                            );
                            let _ = e
                                .reply
                                .send(Err("the voice enrolment was cancelled; nothing was stored"
                                    .to_owned()));
                            true
                        }
                        None => false,
                    };
                    let _ = reply.send(listening);
                }
                Next::Job(Job::Enrol { frame, reply }) => {
                    let r = match &models {
                        None => Err(
                            "face models are not loaded (see the camera on the status page)"
                                .to_owned(),
                        ),
                        Some(m) => enrol(m, &frame, self.cfg.tile_px, self.cfg.match_threshold),
                    };
                    let _ = reply.send(r);
                }
                Next::Frame(frame, dropped) => {
                    let Some(m) = &models else { continue };
                    frames += 1;
                    if frame.mean_luma() < BLACK_LUMA {
                        self.hw.set_state(
                            CAMERA,
                            DeviceState::Fault,
                            Some(
                                "the camera sees only black (covered, unplugged or no light?)"
                                    .into(),
                            ),
                        );
                        continue;
                    }
                    let started = Instant::now();
                    let faces = match m.room.detect_tiled(&frame, self.cfg.tile_px) {
                        // Design: the classroom (full-range) detector misses a face that
                        // fills the frame (someone leaning into the camera, a door-side
                        // board); the near detector, the enrolment one, finds it. Tried only
                        // when the room detector found nobody, so a full room costs nothing more.
                        Ok(f) if f.is_empty() => m.near.detect(&frame).unwrap_or_default(),
                        Ok(f) => f,
                        Err(e) => {
                            self.hw
                                .set_state(CAMERA, DeviceState::Fault, Some(e.to_string()));
                            continue;
                        }
                    };
                    let mut recognised = 0usize;
                    // The closest a face that was not recognised came to a template.
                    let mut best_miss: Option<f32> = None;
                    let now = Instant::now();
                    let mut seen = Vec::with_capacity(faces.len());
                    let mut embedded = 0usize;
                    for face in &faces {
                        // A face where one was looked at moments ago is that one (see
                        // ketang_models::track): no new embedding while it stays put.
                        let known = tracks.known(face, now).cloned();
                        let known = match known {
                            Some(k) => k,
                            None => {
                                let Ok(e) = m.embedder.embed(&frame, face) else {
                                    continue; // too small to recognise: counted, not matched
                                };
                                embedded += 1;
                                match gallery.best(&e) {
                                    Some(hit) => Known {
                                        who: Some(hit.student_id),
                                        score: Some(hit.similarity),
                                        at: now,
                                    },
                                    None => Known {
                                        who: None,
                                        score: gallery.nearest(&e),
                                        at: now,
                                    },
                                }
                            }
                        };
                        seen.push((face.clone(), known.clone()));
                        let (Some(student_id), Some(similarity)) = (known.who, known.score) else {
                            if let Some(s) = known.score {
                                best_miss = Some(best_miss.map_or(s, |b: f32| b.max(s)));
                            }
                            continue;
                        };
                        recognised += 1;
                        let fresh = last_seen
                            .get(&student_id)
                            .is_none_or(|t| t.elapsed() >= REPEAT_AFTER);
                        if fresh {
                            last_seen.insert(student_id.clone(), Instant::now());
                            let ev = HwEvent::FaceMatch {
                                student_id,
                                similarity,
                            };
                            if self.events.blocking_send(ev).is_err() {
                                return;
                            }
                        }
                    }
                    tracks.replace(seen);
                    // People in the room: NanoDet's persons plus faces outside them. A
                    // class's people change slowly: the person detector runs again when the
                    // number of faces changed or after PEOPLE_EVERY (every third frame of a
                    // still class at one frame per 2 s).
                    let stale = people_cache
                        .as_ref()
                        .is_none_or(|(n, at, _)| *n != faces.len() || at.elapsed() >= PEOPLE_EVERY);
                    if stale {
                        people_cache = Some((
                            faces.len(),
                            Instant::now(),
                            m.people.detect(&frame).unwrap_or_default(),
                        ));
                    }
                    let people = people_cache.as_ref().map_or(&[][..], |c| &c.2[..]);
                    let centres: Vec<(f32, f32)> = faces.iter().map(|f| f.centre()).collect();
                    let count = head_count(people, &centres);
                    let _ = self.events.blocking_send(HwEvent::HeadCount {
                        people: u32::try_from(count).unwrap_or(u32::MAX),
                    });
                    if let Some(p) = &m.pose {
                        // A rotating sample of people per frame keeps pose cheap; the
                        // aggregates are shares, so a sample measures them.
                        let n = faces.len();
                        let take = self.cfg.pose_per_frame.min(n);
                        let postures: Vec<_> = (0..take)
                            .filter_map(|i| {
                                let f = &faces[(pose_offset + i) % n];
                                let k = p.keypoints(&frame, upper_body(f, &frame)).ok()?;
                                ketang_models::behaviour::posture(&k)
                            })
                            .collect();
                        pose_offset = pose_offset.wrapping_add(take);
                        if !postures.is_empty() {
                            let _ = self.events.blocking_send(HwEvent::Behaviour { postures });
                        }
                    }
                    // Opt-in: how many faces look engaged, neutral or negative in this
                    // frame. Counts only, never linked to who the face is.
                    if let Some(x) = &m.expression {
                        let mut counts = [0u32; 3];
                        for f in faces.iter().take(self.cfg.pose_per_frame) {
                            if let Ok(s) = x.classify(&frame, f) {
                                use ketang_models::expression::Mood;
                                counts[match Mood::of(&s) {
                                    Mood::Engaged => 0,
                                    Mood::Neutral => 1,
                                    Mood::Negative => 2,
                                }] += 1;
                            }
                        }
                        if counts.iter().sum::<u32>() > 0 {
                            let _ = self.events.blocking_send(HwEvent::Expressions { counts });
                        }
                    }
                    // Counts only: never who.
                    self.hw.set_state(
                        CAMERA,
                        DeviceState::Ok,
                        Some(format!(
                            "{} faces · {recognised} recognised{} · {} ms · {embedded} embedded · frames {frames} (dropped {dropped}) · {gallery_note}",
                            faces.len(),
                            best_miss.map_or(String::new(), |b| format!(
                                " · best unmatched {b:.2} (threshold {:.2})",
                                gallery.threshold()
                            )),
                            started.elapsed().as_millis()
                        )),
                    );
                }
            }
        }
    }
}

/// What the inference thread knows of voices.
#[derive(Default)]
struct VoiceState {
    /// The enrolled teachers' voiceprints.
    prints: Vec<Vec<f32>>,
    enrolling: Option<Enrolling>,
}

/// Answers an enrolment with the voiceprint of what it heard, or why there is none.
fn finish_enrolment(v: &VoiceEncoder, e: Enrolling) {
    let secs = e.speech.len() as f32 / vad::RATE as f32;
    let r = v
        .voiceprint(&e.speech)
        .map(|p| (p, secs))
        .map_err(|err| err.to_string());
    let _ = e.reply.send(r);
}

impl Worker {
    /// Voice activity in a recording: speech segments to the classroom (or to a voice
    /// enrolment that is listening), health to the microphone's status. `false` when the
    /// daemon is stopping.
    fn hear(
        &self,
        m: &Models,
        voice: &mut VoiceState,
        channels: &[Vec<f32>],
        ends_at: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let Some(v) = m.vad.as_ref() else {
            return true;
        };
        if voice.enrolling.is_some() {
            self.hear_enrolment(v, m.voice.as_ref(), voice, channels);
            return true;
        }
        let problems = vad::check_audio(channels);
        let len = channels.iter().map(Vec::len).max().unwrap_or(0);
        let starts_at = ends_at
            - chrono::TimeDelta::milliseconds(
                i64::try_from(len as u64 * 1000 / u64::from(vad::RATE)).unwrap_or(0),
            );
        let at = |s: f32| starts_at + chrono::TimeDelta::milliseconds((s * 1000.0) as i64);
        // With two channels or more, channel 0 is the teacher's wireless microphone; with
        // one, the enrolled teachers' voiceprints tell her voice (else all speech is hers).
        let by_voice = m
            .voice
            .as_ref()
            .filter(|_| channels.len() == 1 && !voice.prints.is_empty());
        let method = if channels.len() >= 2 {
            "teacher_mic"
        } else if by_voice.is_some() {
            "voiceprint"
        } else {
            "room_mic"
        };
        let mut segments = Vec::new();
        let mut speech = 0.0f32;
        for (i, ch) in channels.iter().enumerate() {
            // Nobody speaks under -60 dBFS: the voice model is spared (a quiet exam hour).
            if problems
                .iter()
                .any(|p| matches!(p, vad::AudioProblem::Silent { channel } if *channel == i))
            {
                continue;
            }
            match v.speech_probs(ch) {
                Ok(p) => {
                    let found = vad::segments(&p);
                    speech += vad::speech_seconds(&found);
                    match by_voice {
                        Some(enc) => {
                            match enc.label(ch, &found, &voice.prints, self.cfg.voice_threshold) {
                                Ok(pieces) => segments.extend(
                                    pieces
                                        .iter()
                                        .map(|l| (at(l.start_s), at(l.end_s), l.teacher)),
                                ),
                                Err(e) => {
                                    self.hw.set_state(
                                        MICROPHONE,
                                        DeviceState::Fault,
                                        Some(e.to_string()),
                                    );
                                    return true;
                                }
                            }
                        }
                        None => segments
                            .extend(found.iter().map(|s| (at(s.start_s), at(s.end_s), i == 0))),
                    }
                }
                Err(e) => {
                    self.hw
                        .set_state(MICROPHONE, DeviceState::Fault, Some(e.to_string()));
                    return true;
                }
            }
        }
        let secs = len as f32 / vad::RATE as f32;
        let prints = voice.prints.len();
        let detail = if problems.is_empty() {
            format!("{secs:.0} s heard · {speech:.0} s speech · {method} · voiceprints {prints}")
        } else {
            let p: Vec<String> = problems.iter().map(ToString::to_string).collect();
            p.join("; ")
        };
        self.hw.set_state(
            MICROPHONE,
            if problems.is_empty() {
                DeviceState::Ok
            } else {
                DeviceState::Fault
            },
            Some(detail),
        );
        self.events
            .blocking_send(HwEvent::Speech { segments, method })
            .is_ok()
    }
}

impl Worker {
    /// A recording heard while a voice enrolment listens: its speech (channel 0) goes to
    /// the enrolment, not to the lesson's talk time.
    fn hear_enrolment(
        &self,
        v: &Vad,
        enc: Option<&VoiceEncoder>,
        voice: &mut VoiceState,
        channels: &[Vec<f32>],
    ) {
        let (Some(enc), Some(ch)) = (enc, channels.first()) else {
            return;
        };
        let Some(e) = voice.enrolling.as_mut() else {
            return;
        };
        match v.speech_probs(ch) {
            Ok(p) => {
                for s in vad::segments(&p) {
                    let a = ((s.start_s * vad::RATE as f32) as usize).min(ch.len());
                    let b = ((s.end_s * vad::RATE as f32) as usize).min(ch.len());
                    e.speech.extend_from_slice(&ch[a..b]);
                }
            }
            Err(err) => {
                self.hw
                    .set_state(MICROPHONE, DeviceState::Fault, Some(err.to_string()));
                return;
            }
        }
        let heard = e.speech.len() as f32 / vad::RATE as f32;
        self.hw.set_state(
            MICROPHONE,
            DeviceState::Ok,
            Some(format!("voice enrolment: {heard:.0} s of speech heard")),
        );
        if heard >= VOICE_ENROL_TARGET_S
            && let Some(e) = voice.enrolling.take()
        {
            finish_enrolment(enc, e);
        }
    }
}

/// A template from an enrolment photo, refused unless the classroom camera's path would
/// recognise the same photo: found by the camera path's detectors (classroom, then near)
/// and its embedding there at least `threshold` similar to the template. Otherwise the
/// student would be enrolled and never recognised, and nobody would know why.
fn enrol(m: &Models, frame: &Frame, tile_px: u32, threshold: f32) -> Result<Vec<f32>, String> {
    let mut faces = m.near.detect(frame).map_err(|e| e.to_string())?;
    if faces.is_empty() {
        faces = m.room.detect(frame).map_err(|e| e.to_string())?;
    }
    let template = match faces.as_slice() {
        [] => {
            return Err("no face found in the photo: one face, facing the camera, well lit".into());
        }
        [f] => m.embedder.embed(frame, f).map_err(|e| e.to_string())?,
        many => {
            return Err(format!(
                "{} faces in the photo; enrol from a photo of the student alone",
                many.len()
            ));
        }
    };
    let mut seen = m
        .room
        .detect_tiled(frame, tile_px)
        .map_err(|e| e.to_string())?;
    if seen.is_empty() {
        seen = m.near.detect(frame).map_err(|e| e.to_string())?;
    }
    let best = seen
        .iter()
        .filter_map(|f| m.embedder.embed(frame, f).ok())
        .map(|e| ketang_models::gallery::cosine(&e, &template))
        .max_by(f32::total_cmp);
    camera_would_match(best, threshold).map(|()| template)
}

/// The enrolment rule: the photo as the classroom camera sees it must match its own
/// template (`best`: the highest similarity found on the camera path, `None`: no face).
fn camera_would_match(best: Option<f32>, threshold: f32) -> Result<(), String> {
    match best {
        None => Err("the classroom camera's detector finds no face in this photo: take it facing the camera, the face larger and well lit".into()),
        Some(s) if s < threshold => Err(format!(
            "seen as the classroom camera sees it, this photo matches itself only at {s:.2} (threshold {threshold:.2}): it would not be recognised; take another photo, facing the camera, well lit"
        )),
        Some(_) => Ok(()),
    }
}

impl crate::devices::FrameSink for Inference {
    fn frame(&self, frame: Frame) {
        Inference::frame(self, frame);
    }
}

impl crate::devices::AudioSink for Inference {
    fn audio(&self, channels: Vec<Vec<f32>>, ends_at: chrono::DateTime<chrono::Utc>) {
        Inference::audio(self, channels, ends_at);
    }
}

#[cfg(test)]
mod tests {
    use super::camera_would_match;

    #[test]
    fn an_enrolment_photo_the_camera_would_not_recognise_is_refused_with_the_score() {
        assert!(camera_would_match(Some(0.97), 0.45).is_ok());
        let e = camera_would_match(Some(0.38), 0.45).unwrap_err();
        assert!(e.contains("0.38") && e.contains("threshold 0.45"), "{e}");
        let e = camera_would_match(None, 0.45).unwrap_err();
        assert!(e.contains("finds no face"), "{e}");
    }
}
