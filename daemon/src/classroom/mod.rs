//! The classroom actor: one task that takes hardware events and staff actions in order,
//! applies the engine's rules and writes the results (with their outbox records) to the store.
//!
//! The actor's state and its event loop live here; each concept is a submodule that adds
//! methods to [`Classroom`] (docs/development.md, "Where new code goes"):
//!
//! | module | what lives there |
//! |---|---|
//! | `actions` | staff actions from the API and the cloud: the command channel, dispatch, audit |
//! | `error` | [`ActionError`]: why an action was refused, mapped to HTTP only in `api.rs` |
//! | `attendance` | card, face and manual check-ins, leave |
//! | `lessons` | start, end, cancel, finalise, report |
//! | `health` | thermometer readings, health checks, symptoms |
//! | `followups` | follow-ups of absent and feverish students |
//! | `alarms` | raising and clearing alarms, alarms kept while the disk was full |
//! | `notices` | notices posted by staff |
//! | `observations` | head count, behaviour and talk time of the lesson |
//! | `faces` | consent, enrolment and the gallery for face attendance |
//! | `devices` | the whiteboard and device self-tests |
//! | `signage` | the door-side e-paper sign |

mod actions;
#[cfg(test)]
mod actor_tests;
mod alarms;
mod attendance;
mod devices;
mod error;
mod faces;
mod followups;
mod health;
mod lessons;
mod notices;
mod observations;
mod reply;
mod signage;
mod voices;

pub(crate) use actions::{Cmd, PendingUnlock, UNLOCK_CLAIM, send};
pub(crate) use error::ActionError;
pub(crate) use faces::decode_image_off;
pub(crate) use reply::{AlarmReply, Reply};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, FixedOffset};
use ketang_sync::{AlarmRecord, OutboxRecord, StoreHandle};
use ketang_web::BoardEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::SchoolConfig;
use crate::devices::{Hardware, HwEvent};
use crate::engine::health::Pairing;
use crate::engine::timetable::{Slot, Timetable};

use self::observations::LessonObs;

/// Event counters since start (shown in status and metrics).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) card_taps: AtomicU64,
    pub(crate) unknown_cards: AtomicU64,
    pub(crate) check_ins: AtomicU64,
    pub(crate) health_checks: AtomicU64,
    pub(crate) alarms: AtomicU64,
    pub(crate) rejected_inputs: AtomicU64,
    pub(crate) clock_jumps: AtomicU64,
}

pub(crate) fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// The last store failure, for the status page.
#[derive(Debug, Default)]
pub(crate) struct StoreHealth {
    pub(crate) disk_full: std::sync::atomic::AtomicBool,
    pub(crate) last_error: Mutex<Option<String>>,
}

/// The classroom actor's state. Built by [`Classroom::new`] from its [`Wiring`]; its fields
/// are private to this module and its concept submodules.
pub(crate) struct Classroom {
    store: StoreHandle,
    school: SchoolConfig,
    clock: Clock,
    hw: Arc<Hardware>,
    timetable: Arc<RwLock<Timetable>>,
    counters: Arc<Counters>,
    store_health: Arc<StoreHealth>,
    pairing: Pairing,
    /// When the engine first ran on this board: lessons that ended before are never
    /// finalised (the board knows nothing of them).
    since: DateTime<FixedOffset>,
    /// The last date the engine finalised lessons on (meta `engine.last_day`; `None` until
    /// read at the first pass): the days between it and today are caught up.
    last_day: Option<Option<chrono::NaiveDate>>,
    /// The last date whose morning, noon and evening follow-ups were handled (by
    /// `followups::Check`).
    followups_done: [Option<chrono::NaiveDate>; 3],
    /// A staff card tapped on the board: claimable once by the kiosk screen, briefly.
    unlock: Arc<Mutex<Option<crate::classroom::PendingUnlock>>>,
    clock_watch: crate::engine::lesson::ClockWatch,
    /// Live events for the board's screen (nobody listening is fine).
    events: tokio::sync::broadcast::Sender<ketang_web::BoardEvent>,
    /// The flat panel, when one is configured.
    whiteboard: Option<crate::devices::whiteboard::Whiteboard>,
    /// The power state the timetable schedule last applied, and when to retry a failure.
    wb_schedule: (Option<bool>, Option<DateTime<FixedOffset>>),
    /// The door sign, and the class name it shows.
    sign: Option<Arc<crate::devices::epaper::Sign>>,
    class_name: String,
    /// Ticks since start (the sign is recomputed every few).
    ticks: u64,
    /// The last date local history was pruned.
    pruned_on: Option<chrono::NaiveDate>,
    /// When (monotonic) the clock last jumped.
    last_clock_jump: Option<std::time::Instant>,
    /// Face attendance, when enabled.
    inference: Option<crate::inference::Inference>,
    /// The key sealing face templates.
    face_key: Option<Arc<crate::facekey::FaceKey>>,
    /// What the camera and microphone observed during the current lesson.
    observed: Option<crate::classroom::LessonObs>,
    /// Direct publishes that bypass the store (an alarm on a full disk), when syncing.
    urgent: Option<ketang_sync::mqtt::Urgent>,
    /// Who this board is (for the envelope of a direct publish).
    identity: ketang_sync::Identity,
    /// Alarms raised while the disk was full: stored as soon as there is room again.
    unstored_alarms: Vec<(AlarmRecord, OutboxRecord)>,
    /// The school's own alarm path and the SMS fallback.
    alarm_path: AlarmPath,
    /// This board's alarms as last announced on the school path.
    announced: Vec<ketang_sync::SchoolAlarm>,
}

/// Where an alarm goes besides the siren and the regional outbox (`docs/domain.md`,
/// "Alarms"): the school path to the other boards and the duty room, and an SMS when
/// neither the region nor the school path has it in time.
#[derive(Clone, Default)]
pub(crate) struct AlarmPath {
    pub(crate) school: Option<ketang_sync::mqtt::SchoolLink>,
    pub(crate) role: Option<ketang_sync::SchoolRole>,
    pub(crate) config: crate::config::AlarmConfig,
    pub(crate) sms: crate::system::sms::SharedSms,
}

/// What the classroom actor is wired to: built by `app.rs` for the daemon, or by a test.
pub(crate) struct Wiring {
    pub(crate) store: StoreHandle,
    pub(crate) school: SchoolConfig,
    pub(crate) clock: Clock,
    pub(crate) hw: Arc<Hardware>,
    pub(crate) timetable: Arc<RwLock<Timetable>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) store_health: Arc<StoreHealth>,
    /// When the engine first ran on this board.
    pub(crate) since: DateTime<FixedOffset>,
    pub(crate) unlock: Arc<Mutex<Option<PendingUnlock>>>,
    pub(crate) events: tokio::sync::broadcast::Sender<ketang_web::BoardEvent>,
    pub(crate) whiteboard: Option<crate::devices::whiteboard::Whiteboard>,
    pub(crate) sign: Option<Arc<crate::devices::epaper::Sign>>,
    pub(crate) class_name: String,
    pub(crate) inference: Option<crate::inference::Inference>,
    pub(crate) face_key: Option<Arc<crate::facekey::FaceKey>>,
    pub(crate) urgent: Option<ketang_sync::mqtt::Urgent>,
    pub(crate) identity: ketang_sync::Identity,
    pub(crate) alarm_path: AlarmPath,
}

impl Classroom {
    /// The actor, with nothing observed or pending yet.
    pub(crate) fn new(w: Wiring) -> Self {
        Self {
            pairing: Pairing::new(w.school.health_pairing, w.school.health_order),
            store: w.store,
            school: w.school,
            clock: w.clock,
            hw: w.hw,
            timetable: w.timetable,
            counters: w.counters,
            store_health: w.store_health,
            since: w.since,
            last_day: None,
            followups_done: [None; 3],
            unlock: w.unlock,
            clock_watch: crate::engine::lesson::ClockWatch::default(),
            events: w.events,
            whiteboard: w.whiteboard,
            wb_schedule: (None, None),
            sign: w.sign,
            class_name: w.class_name,
            ticks: 0,
            pruned_on: None,
            last_clock_jump: None,
            inference: w.inference,
            face_key: w.face_key,
            observed: None,
            urgent: w.urgent,
            identity: w.identity,
            unstored_alarms: Vec::new(),
            alarm_path: w.alarm_path,
            announced: Vec::new(),
        }
    }
}

/// Card taps (with card UIDs) are kept this long on the device.
pub(crate) const TAPS_KEPT_DAYS: u64 = 30;

/// Lessons, attendance, health checks, follow-ups, leave, the audit log and whiteboard
/// changes are kept this long (a school year and a bit).
pub(crate) const RECORDS_KEPT_DAYS: u64 = 400;

/// No history is pruned for this long (of the board's running time) after a clock jump.
pub(crate) const PRUNE_HOLD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl Classroom {
    /// Handles events until `stop` is cancelled, then handles what was already queued and
    /// returns: no accepted input is dropped at shutdown.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<HwEvent>,
        mut cmds: mpsc::Receiver<crate::classroom::Cmd>,
        stop: CancellationToken,
    ) {
        // Face attendance works from the first frame after a start (a power cut, a reboot,
        // an update): the gallery is loaded from the stored templates now, not only after
        // the next enrolment.
        self.reload_gallery().await;
        // Likewise the teachers' voiceprints (who speaks, with one room microphone).
        self.reload_voiceprints().await;
        // The other boards and the duty room learn this board's alarms (none, usually).
        self.announce_loaded().await;
        // The clock tick: lesson ends. Its first tick is at once, so lessons that ended while
        // the board was off (since it first ran) are finalised right after a reboot.
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.watch_clock();
                    if self.finalise_due().await | self.followups_due().await {
                        self.changed();
                    }
                    self.whiteboard_schedule().await;
                    self.ticks += 1;
                    self.store_unstored_alarms().await;
                    self.prune_due().await;
                    if self.ticks % 5 == 1 {
                        self.update_sign().await;
                    }
                }
                ev = rx.recv() => match ev {
                    Some(ev) => self.handle(ev).await,
                    None => break,
                },
                Some(cmd) = cmds.recv() => self.command(cmd).await,
                () = stop.cancelled() => {
                    rx.close();
                    cmds.close();
                    while let Some(ev) = rx.recv().await {
                        self.handle(ev).await;
                    }
                    while let Some(cmd) = cmds.recv().await {
                        self.command(cmd).await;
                    }
                    break;
                }
            }
        }
        tracing::debug!("Classroom event loop finished.");
    }

    /// Tells the board's screen (the web layer decides who may see names).
    pub(crate) fn emit(&self, event: BoardEvent) {
        let _ = self.events.send(event);
    }

    pub(crate) fn changed(&self) {
        self.emit(BoardEvent::Changed);
    }

    pub(crate) async fn handle(&mut self, ev: HwEvent) {
        self.handle_event(ev).await;
        self.changed();
    }

    async fn handle_event(&mut self, ev: HwEvent) {
        match ev {
            HwEvent::CardTap { reader, uid } => self.card_tap(reader, uid.to_string()).await,
            HwEvent::FaceMatch {
                student_id,
                similarity,
            } => self.face_match(student_id, similarity).await,
            HwEvent::HeadCount { people } => self.head_count_seen(people),
            HwEvent::Behaviour { postures } => self.behaviour_seen(&postures),
            HwEvent::Expressions { counts } => self.expressions_seen(counts),
            HwEvent::Speech { segments, method } => self.speech_heard(segments, method),
            HwEvent::Temperature { sensor, celsius } => self.temperature(sensor, celsius).await,
            HwEvent::Button { name } => {
                // Errors are logged and shown in status by raise_alarm.
                let _ = self.raise_alarm(name, false, None).await;
            }
        }
    }

    /// Flags clock jumps (logged, counted). Lessons resolve deterministically either way
    /// (see `engine::lesson`): finalised ones never reopen.
    fn watch_clock(&mut self) {
        match self.clock_watch.observe(self.clock.now()) {
            Some(crate::engine::lesson::Jump::Backwards(d)) => {
                bump(&self.counters.clock_jumps);
                self.last_clock_jump = Some(std::time::Instant::now());
                tracing::warn!(
                    seconds = d.num_seconds(),
                    synced = self.clock.synced(),
                    "The clock jumped backwards; lessons already ended or finalised stay so; no history is pruned for 24 h."
                );
            }
            Some(crate::engine::lesson::Jump::Forwards(d)) => {
                bump(&self.counters.clock_jumps);
                self.last_clock_jump = Some(std::time::Instant::now());
                tracing::warn!(
                    seconds = d.num_seconds(),
                    synced = self.clock.synced(),
                    "The clock jumped forwards; lessons that ended meanwhile are finalised now; no history is pruned for 24 h."
                );
            }
            None => {}
        }
    }

    pub(crate) fn tt(&self) -> std::sync::RwLockReadGuard<'_, Timetable> {
        self.timetable
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn tt_mut(&self) -> std::sync::RwLockWriteGuard<'_, Timetable> {
        self.timetable
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn current_slot(&self) -> Option<Slot> {
        let now = self.clock.now();
        self.timetable
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .current(now, self.school.checkin_opens)
    }

    /// Once a day: local history past its retention goes (docs/privacy.md). Not within
    /// [`PRUNE_HOLD`] of a clock jump: a clock set wrong must not erase history (the store
    /// also counts ages from its newest record, and moves its cut-offs a week at a time).
    async fn prune_due(&mut self) {
        let today = self.clock.now().date_naive();
        if self.pruned_on == Some(today) {
            return;
        }
        if let Some(at) = self.last_clock_jump
            && at.elapsed() < PRUNE_HOLD
        {
            return;
        }
        let keep = ketang_sync::Retention {
            taps_days: TAPS_KEPT_DAYS,
            records_days: RECORDS_KEPT_DAYS,
        };
        match self.store.prune_history(today, keep).await {
            Ok(n) => {
                let total: usize = n.iter().map(|(_, k)| k).sum();
                if total > 0 {
                    tracing::info!(
                        rows = total,
                        ?n,
                        "Local history past its retention deleted."
                    );
                }
                self.pruned_on = Some(today);
            }
            Err(e) => self.store_health.failed("pruning local history", &e),
        }
    }
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ketang_web::Counters {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ketang_web::Counters {
            card_taps: g(&self.card_taps),
            unknown_cards: g(&self.unknown_cards),
            check_ins: g(&self.check_ins),
            health_checks: g(&self.health_checks),
            alarms: g(&self.alarms),
            rejected_inputs: g(&self.rejected_inputs),
            clock_jumps: g(&self.clock_jumps),
            camera_frames: 0,
        }
    }
}

impl StoreHealth {
    pub(crate) fn failed(&self, what: &str, e: &ketang_sync::Error) {
        let full = matches!(e, ketang_sync::Error::DiskFull { .. });
        self.disk_full.store(full, Ordering::Relaxed);
        tracing::error!(error = %e, what, "Storing an event failed; it was not recorded.");
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(format!("{what}: {e}"));
    }

    pub(crate) fn ok(&self) {
        self.disk_full.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_full_failure_is_flagged_until_a_write_succeeds_again() {
        let h = StoreHealth::default();
        h.failed(
            "recording a check-in",
            &ketang_sync::Error::DiskFull {
                context: "appending to the outbox",
            },
        );
        assert!(h.disk_full.load(Ordering::Relaxed));
        assert!(
            h.last_error
                .lock()
                .unwrap()
                .as_deref()
                .unwrap()
                .contains("disk full")
        );
        h.ok();
        assert!(!h.disk_full.load(Ordering::Relaxed));
    }
}
