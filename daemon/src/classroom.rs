//! The classroom actor: one task that takes hardware events in order, applies the engine's
//! rules and writes the results (with their outbox records) to the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, TimeZone};
use ketang_sync::{
    AlarmRecord, AttendanceSource, AttendanceStatus, CardTapOutcome, CheckIn, CheckInOutcome,
    HealthCheckRecord, LessonEnd, LessonRow, OutboxRecord, StoreHandle, Stream, TapRecord,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{DeviceKind, SchoolConfig};
use crate::engine::health::{self, Pairing};
use crate::engine::timetable::{LessonState, Slot, Timetable};
use crate::engine::{finalise, followup};
use crate::hw::{Hardware, HwEvent};

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

pub(crate) fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// The last store failure, for the status page.
#[derive(Debug, Default)]
pub(crate) struct StoreHealth {
    pub(crate) disk_full: std::sync::atomic::AtomicBool,
    pub(crate) last_error: Mutex<Option<String>>,
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

pub(crate) struct Classroom {
    pub(crate) store: StoreHandle,
    pub(crate) school: SchoolConfig,
    pub(crate) clock: Clock,
    pub(crate) hw: Arc<Hardware>,
    pub(crate) timetable: Arc<RwLock<Timetable>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) store_health: Arc<StoreHealth>,
    pub(crate) pairing: Pairing,
    /// When the engine first ran on this board: lessons that ended before are never
    /// finalised (the board knows nothing of them).
    pub(crate) since: DateTime<FixedOffset>,
    /// The last date whose morning follow-ups were handled.
    pub(crate) followups_done: Option<chrono::NaiveDate>,
    /// A staff card tapped on the board: claimable once by the kiosk screen, briefly.
    pub(crate) unlock: Arc<Mutex<Option<crate::teacher::PendingUnlock>>>,
    pub(crate) clock_watch: crate::engine::lesson::ClockWatch,
    /// Live events for the board's screen (nobody listening is fine).
    pub(crate) events: tokio::sync::broadcast::Sender<ketang_web::BoardEvent>,
    /// The flat panel, when one is configured.
    pub(crate) whiteboard: Option<crate::whiteboard::Whiteboard>,
    /// The power state the timetable schedule last applied, and when to retry a failure.
    pub(crate) wb_schedule: (Option<bool>, Option<DateTime<FixedOffset>>),
    /// The door sign, and the class name it shows.
    pub(crate) sign: Option<Arc<crate::epaper::Sign>>,
    pub(crate) class_name: String,
    /// Ticks since start (the sign is recomputed every few).
    pub(crate) ticks: u64,
    /// The last date local history was pruned.
    pub(crate) pruned_on: Option<chrono::NaiveDate>,
    /// Face attendance, when enabled.
    pub(crate) inference: Option<crate::inference::Inference>,
    /// The key sealing face templates.
    pub(crate) face_key: Option<Arc<crate::facekey::FaceKey>>,
    /// What the camera and microphone observed during the current lesson.
    pub(crate) observed: Option<crate::faces::LessonObs>,
    /// Direct publishes that bypass the store (an alarm on a full disk), when syncing.
    pub(crate) urgent: Option<ketang_sync::mqtt::Urgent>,
    /// Who this board is (for the envelope of a direct publish).
    pub(crate) identity: ketang_sync::Identity,
    /// Alarms raised while the disk was full: stored as soon as there is room again.
    pub(crate) unstored_alarms: Vec<(AlarmRecord, OutboxRecord)>,
}

/// Card taps (with card UIDs) are kept this long on the device.
pub(crate) const TAPS_KEPT_DAYS: u64 = 30;
/// Lessons, attendance, health checks, follow-ups, leave, the audit log and whiteboard
/// changes are kept this long (a school year and a bit).
pub(crate) const RECORDS_KEPT_DAYS: u64 = 400;

impl Classroom {
    /// A check-in of `student_id` by a sensor (`source` card or face) in `slot` at `now`:
    /// the status from the timetable, the uplink body (with `extra` fields such as the
    /// reader), and the outbox record, ready for the store.
    pub(crate) fn sensor_check_in(
        &self,
        slot: &Slot,
        now: chrono::DateTime<chrono_tz::Tz>,
        student_id: String,
        source: AttendanceSource,
        extra: serde_json::Value,
        tap: Option<TapRecord>,
    ) -> (CheckIn, AttendanceStatus) {
        let status = slot.check_in_status(now, self.school.late_after);
        let lesson = lesson_row(
            slot,
            self.tt()
                .state(slot, now, self.school.checkin_opens)
                .as_str(),
        );
        let mut body = json!({
            "lesson_id": lesson.id,
            "date": lesson.date,
            "period": lesson.period,
            "subject": lesson.subject,
            "roster_id": lesson.roster_id,
            "student_id": student_id,
            "status": status,
            "source": source,
        });
        if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(x.clone());
        }
        let check_in = CheckIn {
            lesson,
            student_id,
            status,
            source,
            recorded_by: None,
            tap,
            outbox: OutboxRecord {
                stream: Stream::Attendance,
                captured_at: now.fixed_offset(),
                clock_synced: self.clock.synced(),
                body,
            },
        };
        (check_in, status)
    }
}

/// The stored form of a lesson slot.
pub(crate) fn lesson_row(slot: &Slot, state: &str) -> LessonRow {
    LessonRow {
        id: slot.id(),
        date: slot.date,
        period: slot.period.period,
        subject: slot.period.subject.clone(),
        teacher: slot.period.teacher.clone(),
        roster_id: slot.period.roster_id.clone(),
        starts_at: slot.starts_at.fixed_offset(),
        ends_at: slot.ends_at.fixed_offset(),
        state: state.to_owned(),
    }
}

impl Classroom {
    /// Handles events until `stop` is cancelled, then handles what was already queued and
    /// returns: no accepted input is dropped at shutdown.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<HwEvent>,
        mut cmds: mpsc::Receiver<crate::teacher::Cmd>,
        stop: CancellationToken,
    ) {
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

    /// Tells the board's screen; `private` only reaches trusted listeners.
    pub(crate) fn emit(
        &self,
        kind: &'static str,
        data: serde_json::Value,
        private: serde_json::Value,
    ) {
        let _ = self.events.send(ketang_web::BoardEvent {
            kind,
            data,
            private,
        });
    }

    pub(crate) fn changed(&self) {
        self.emit("changed", json!({}), json!({}));
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
                tracing::warn!(
                    seconds = d.num_seconds(),
                    synced = self.clock.synced(),
                    "The clock jumped backwards; lessons already ended or finalised stay so."
                );
            }
            Some(crate::engine::lesson::Jump::Forwards(d)) => {
                bump(&self.counters.clock_jumps);
                tracing::warn!(
                    seconds = d.num_seconds(),
                    synced = self.clock.synced(),
                    "The clock jumped forwards; lessons that ended meanwhile are finalised now."
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

    async fn card_tap(&mut self, reader: String, uid: String) {
        bump(&self.counters.card_taps);
        let now = self.clock.now();
        let at = now.fixed_offset();
        let synced = self.clock.synced();
        let owner = match self.store.card_owner(uid.clone()).await {
            Ok(o) => o,
            Err(e) => return self.store_health.failed("looking up a card", &e),
        };
        let mut tap = TapRecord {
            reader: reader.clone(),
            uid,
            student_id: None,
            lesson_id: None,
            outcome: CardTapOutcome::UnknownCard,
            at,
            clock_synced: synced,
        };
        let Some((student_id, name)) = owner else {
            match self.store.staff_by_card(tap.uid.clone()).await {
                Ok(Some(staff)) => {
                    tap.outcome = CardTapOutcome::Staff;
                    self.emit("staff_card", json!({}), json!({"name": staff.name}));
                    self.offer_unlock(staff);
                    tracing::info!(%reader, "Staff card tapped; teacher mode offered to the board's screen.");
                    return self.store_tap(tap).await;
                }
                Ok(None) => {}
                Err(e) => return self.store_health.failed("looking up a staff card", &e),
            }
            bump(&self.counters.unknown_cards);
            self.emit("tap", json!({"outcome": "unknown_card"}), json!({}));
            tracing::info!(%reader, "Unknown card tapped; kept in the local tap log.");
            return self.store_tap(tap).await;
        };
        tap.student_id = Some(student_id.clone());
        if let Some(p) = self.pairing.on_tap(&student_id, now) {
            self.health_check(p).await;
        }
        let Some(slot) = self.current_slot() else {
            tap.outcome = CardTapOutcome::NoLesson;
            self.emit(
                "tap",
                json!({"outcome": "no_lesson"}),
                json!({"name": name}),
            );
            tracing::debug!(%reader, "Card tapped with no lesson open for check-in.");
            return self.store_tap(tap).await;
        };
        tap.lesson_id = Some(slot.id());
        match self
            .store
            .on_roster(slot.period.roster_id.clone(), student_id.clone())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tap.outcome = CardTapOutcome::NotOnRoster;
                self.emit(
                    "tap",
                    json!({"outcome": "not_on_roster"}),
                    json!({"name": name}),
                );
                tracing::info!(%reader, lesson = %slot.id(), "Card of a student not on this lesson's roster.");
                return self.store_tap(tap).await;
            }
            Err(e) => return self.store_health.failed("checking a roster", &e),
        }
        tap.outcome = CardTapOutcome::CheckedIn;
        let (check_in, status) = self.sensor_check_in(
            &slot,
            now,
            student_id,
            AttendanceSource::Card,
            json!({"reader": reader}),
            Some(tap),
        );
        match self.store.check_in(check_in).await {
            Ok(CheckInOutcome::Recorded { seq }) => {
                self.store_health.ok();
                self.emit(
                    "tap",
                    json!({"outcome": "checked_in", "status": status}),
                    json!({"name": name}),
                );
                bump(&self.counters.check_ins);
                tracing::info!(%reader, lesson = %slot.id(), status = status.as_str(), seq, "Check-in recorded.");
            }
            Ok(CheckInOutcome::AlreadyRecorded { status }) => {
                self.emit(
                    "tap",
                    json!({"outcome": "repeat", "status": status}),
                    json!({"name": name}),
                );
                tracing::debug!(%reader, lesson = %slot.id(), "Repeated tap; the first check-in stands.");
            }
            Err(e) => self.store_health.failed("recording a check-in", &e),
        }
    }

    /// Finalises today's lessons that have ended or were cancelled (and, unless the teacher
    /// acted on them, ended after `since`).
    /// Whether anything was finalised.
    async fn finalise_due(&mut self) -> bool {
        let now = self.clock.now();
        let due: Vec<Slot> = {
            let tt = self.tt();
            tt.slots_on(now.date_naive(), now.timezone())
                .into_iter()
                .filter(|slot| {
                    let c = tt.controls.get(&slot.id());
                    let acted = c.is_some_and(|c| c.cancelled || c.ended_at.is_some());
                    !c.is_some_and(|c| c.finalised)
                        && matches!(
                            tt.state(slot, now, self.school.checkin_opens),
                            LessonState::Ended | LessonState::Cancelled
                        )
                        && (acted || slot.ends_at.fixed_offset() > self.since)
                })
                .collect()
        };
        let any = !due.is_empty();
        for slot in due {
            if let Err(e) = self.finalise(&slot).await {
                self.store_health.failed("finalising a lesson", &e);
                return true;
            }
        }
        any
    }

    /// Once a day, when the morning check window closes: opens the follow-ups.
    /// Whether follow-ups were opened (or tried) now.
    async fn followups_due(&mut self) -> bool {
        let now = self.clock.now();
        let date = now.date_naive();
        if self.followups_done == Some(date) || now.time() < self.school.morning_check.1 {
            return false;
        }
        let tz = now.timezone();
        let local = |t: chrono::NaiveTime| {
            tz.from_local_datetime(&date.and_time(t))
                .earliest()
                .map(|d| d.fixed_offset())
        };
        let (Some(start), Some(end)) = (
            local(self.school.morning_check.0),
            local(self.school.morning_check.1),
        ) else {
            self.followups_done = Some(date);
            return false;
        };
        let school_day = !self
            .timetable
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .slots_on(date, tz)
            .is_empty();
        // Design: not on days without lessons, and not when this board first ran only after
        // the window closed (it saw nobody).
        if !school_day || self.since >= end {
            self.followups_done = Some(date);
            return false;
        }
        match self.open_followups(date, (start, end)).await {
            Ok(n) => {
                tracing::info!(%date, opened = n, "Morning check closed; follow-ups opened for students unseen without leave.");
                self.followups_done = Some(date);
            }
            Err(e) => self.store_health.failed("opening follow-ups", &e),
        }
        true
    }

    async fn open_followups(
        &self,
        date: chrono::NaiveDate,
        window: (DateTime<FixedOffset>, DateTime<FixedOffset>),
    ) -> Result<usize, ketang_sync::Error> {
        let presence = self.store.day_presence(date, window).await?;
        let unseen = followup::unseen(&presence);
        let mut on_leave = HashSet::new();
        for s in &unseen {
            if self.store.on_leave(s.clone(), window.1).await? {
                on_leave.insert(s.clone());
            }
        }
        let list = followup::to_follow_up(unseen, &on_leave);
        self.store
            .open_followups(
                date,
                list,
                followup::ABSENT_AT_MORNING_CHECK.to_owned(),
                self.clock.now_fixed(),
                self.clock.synced(),
            )
            .await
    }

    /// The report of `slot` from its roll (after `marks`) and the day's health checks.
    pub(crate) async fn make_report(
        &self,
        slot: &Slot,
        roll: &[(String, Option<AttendanceStatus>)],
        marks: &[ketang_sync::Mark],
        revision: u32,
    ) -> Result<serde_json::Value, ketang_sync::Error> {
        let health = self
            .store
            .day_health(slot.date, slot.period.roster_id.clone())
            .await?;
        let control = self
            .tt()
            .controls
            .get(&slot.id())
            .cloned()
            .unwrap_or_default();
        let mut report = finalise::report(slot, roll, marks, &health, &control, revision);
        if self.whiteboard.is_some() {
            // The lesson as it ran: from the teacher's early start, to the early end.
            let from = control.started_at.unwrap_or(slot.starts_at.fixed_offset());
            let to = control.ended_at.unwrap_or(slot.ends_at.fixed_offset());
            let changes = self.store.whiteboard_power(from, to).await?;
            report["whiteboard_on_s"] = json!(crate::engine::usage::on_seconds(&changes, from, to));
        }
        if let Some(obs) = self.observed_in(&slot.id()) {
            let from = control.started_at.unwrap_or(slot.starts_at.fixed_offset());
            let to = control.ended_at.unwrap_or(slot.ends_at.fixed_offset());
            obs.fill_report(&mut report, roll, from, to);
        }
        Ok(report)
    }

    /// Ends a lesson for good: unmarked students become absent (or leave), and the report is
    /// made. A cancelled lesson marks nobody.
    pub(crate) async fn finalise(&mut self, slot: &Slot) -> Result<(), ketang_sync::Error> {
        let id = slot.id();
        let cancelled = self.tt().controls.get(&id).is_some_and(|c| c.cancelled);
        if self.store.lesson_finalised(id.clone()).await? {
            self.mark_finalised(&id);
            return Ok(());
        }
        let roll = self
            .store
            .lesson_roll(id.clone(), slot.period.roster_id.clone())
            .await?;
        let mut on_leave = HashSet::new();
        for (student, status) in &roll {
            if status.is_none()
                && self
                    .store
                    .on_leave(student.clone(), slot.starts_at.fixed_offset())
                    .await?
            {
                on_leave.insert(student.clone());
            }
        }
        let marks = if cancelled {
            Vec::new()
        } else {
            finalise::marks(&roll, &on_leave)
        };
        let report = self.make_report(slot, &roll, &marks, 1).await?;
        let absent = marks
            .iter()
            .filter(|m| m.status == AttendanceStatus::Absent)
            .count();
        let state = if cancelled { "cancelled" } else { "ended" };
        // The class's behaviour aggregates also go on their own stream (docs/mqtt.md):
        // class-level only, never a student.
        let behaviour = report.get("behaviour").filter(|b| b.is_object()).map(|b| {
            let mut body = json!({
                "lesson_id": id,
                "date": slot.date.to_string(),
                "period": slot.period.period,
                "roster_id": slot.period.roster_id,
                "scope": "class",
            });
            if let (Some(o), Some(agg)) = (body.as_object_mut(), b.as_object()) {
                o.extend(agg.clone());
            }
            body
        });
        let seq = self
            .store
            .finalise_lesson(LessonEnd {
                lesson: lesson_row(slot, state),
                marks,
                report,
                behaviour,
                at: self.clock.now_fixed(),
                clock_synced: self.clock.synced(),
            })
            .await?;
        self.store_health.ok();
        self.mark_finalised(&id);
        tracing::info!(lesson = %id, state, absent, leave = on_leave.len(), report_seq = ?seq, "Lesson finalised.");
        Ok(())
    }

    fn mark_finalised(&self, id: &str) {
        self.tt_mut()
            .controls
            .entry(id.to_owned())
            .or_default()
            .finalised = true;
    }

    async fn store_tap(&self, tap: TapRecord) {
        match self.store.record_tap(tap).await {
            Ok(()) => self.store_health.ok(),
            Err(e) => self.store_health.failed("logging a card tap", &e),
        }
    }

    async fn temperature(&mut self, sensor: String, celsius: f64) {
        if !health::PLAUSIBLE_C.contains(&celsius) {
            tracing::warn!(%sensor, celsius, "Thermometer reading outside 30-45 °C; treated as a sensor fault, not a fever.");
            self.hw.set_health(
                &sensor,
                false,
                Some(format!(
                    "implausible reading {celsius:.1} °C (expected 30-45 °C): check the sensor"
                )),
            );
            // Counted after the health is set, so status never shows one without the other.
            bump(&self.counters.rejected_inputs);
            return;
        }
        self.hw.set_health(&sensor, true, None);
        let now = self.clock.now();
        if let Some(p) = self.pairing.on_reading(celsius, now) {
            self.health_check(p).await;
        }
    }

    async fn health_check(&mut self, p: health::Paired) {
        let fever = p.temp_c >= self.school.fever_threshold_c;
        let window = health::window_of(
            p.at.time(),
            self.school.morning_check,
            self.school.noon_check,
        );
        let at = p.at.fixed_offset();
        let synced = self.clock.synced();
        let body = json!({
            "student_id": p.student_id,
            "window": window,
            "temp_c": (p.temp_c * 10.0).round() / 10.0,
            "fever": fever,
            "threshold_c": self.school.fever_threshold_c,
        });
        let (student_id, temp_c) = (p.student_id.clone(), p.temp_c);
        let rec = HealthCheckRecord {
            symptoms: Vec::new(),
            student_id: p.student_id,
            window: window.to_owned(),
            temp_c: Some(p.temp_c),
            fever,
            at,
            clock_synced: synced,
        };
        let out = OutboxRecord {
            stream: Stream::HealthCheck,
            captured_at: at,
            clock_synced: synced,
            body,
        };
        match self.store.record_health_check(rec, out, None).await {
            Ok(seq) => {
                self.store_health.ok();
                bump(&self.counters.health_checks);
                let name = self.store.student_name(student_id).await.ok().flatten();
                self.emit(
                    "health",
                    json!({"fever": fever, "window": window}),
                    json!({"name": name, "temp_c": (temp_c * 10.0).round() / 10.0}),
                );
                tracing::info!(window, fever, seq, "Health check recorded.");
            }
            Err(e) => self.store_health.failed("recording a health check", &e),
        }
    }

    /// Raises an alarm (the button, or the UI with `by`): the siren first, then the record
    /// in the highest lane. A second real alarm while one is active raises nothing new; a
    /// real alarm during a drill is raised.
    pub(crate) async fn raise_alarm(
        &mut self,
        source: String,
        drill: bool,
        by: Option<&ketang_web::Actor>,
    ) -> Result<serde_json::Value, ketang_web::ApiError> {
        match self.store.active_alarms().await {
            Ok(active) => {
                if let Some(a) = active.iter().find(|a| a.drill == drill) {
                    tracing::warn!(source = %source, drill, "Alarm raised again; it is already active.");
                    return Ok(
                        json!({"alarm_id": a.id, "state": "already_active", "drill": drill}),
                    );
                }
            }
            // Design: a failing read must not stop an alarm; try to raise it anyway.
            Err(e) => {
                tracing::error!(error = %e, "Reading active alarms failed; raising the alarm anyway.")
            }
        }
        let at = self.clock.now_fixed();
        let synced = self.clock.synced();
        let id = uuid::Uuid::new_v4().to_string();
        // The siren goes first: it must not wait for the disk.
        self.hw.set_output(DeviceKind::Siren, true);
        bump(&self.counters.alarms);
        let alarm = AlarmRecord {
            id: id.clone(),
            source: source.clone(),
            drill,
            raised_at: at,
            clock_synced: synced,
        };
        let mut body =
            json!({ "alarm_id": id, "state": "raised", "source": source, "drill": drill });
        if let Some(a) = by {
            body["raised_by"] = json!(a.id);
        }
        let out = OutboxRecord {
            stream: Stream::Alarm,
            captured_at: at,
            clock_synced: synced,
            body,
        };
        let (alarm_kept, out_direct) = (alarm.clone(), out.clone());
        let mut result = self.store.raise_alarm(alarm.clone(), out.clone()).await;
        if matches!(result, Err(ketang_sync::Error::DiskFull { .. })) {
            // Design: an alarm must not be lost to a full disk. Evict all evictable detail
            // (telemetry, behaviour; reported on the dropped stream) and try once more.
            tracing::error!(
                "Disk full while recording an alarm; evicting telemetry and behaviour detail to make room."
            );
            let (now, synced) = (self.clock.now_fixed(), self.clock.synced());
            if let Err(e) = self.store.make_room(now, synced).await {
                tracing::error!(error = %e, "Making room failed.");
            }
            result = self.store.raise_alarm(alarm, out).await;
        }
        match result {
            Ok(seq) => {
                self.store_health.ok();
                tracing::warn!(source = %source, drill, seq, "Emergency alarm raised.");
                Ok(json!({"alarm_id": id, "state": "raised", "drill": drill}))
            }
            Err(e @ ketang_sync::Error::DiskFull { .. }) => {
                // Design: the region must still hear of it. Publish it directly (seq 0,
                // docs/mqtt.md "Alarms on a full disk") and keep it in memory until it can
                // be stored; the siren is already on.
                self.store_health.failed("recording an alarm", &e);
                let sent = self.urgent.as_ref().is_some_and(|u| {
                    match ketang_sync::unsequenced_envelope(&self.identity, &out_direct) {
                        Ok(env) => u.publish(Stream::Alarm, env),
                        Err(err) => {
                            tracing::error!(error = %err, "The alarm's direct envelope could not be made.");
                            false
                        }
                    }
                });
                tracing::error!(source = %source, drill, sent_direct = sent, "Emergency alarm raised on a full disk: published directly, stored when there is room.");
                self.unstored_alarms.push((alarm_kept, out_direct));
                Ok(
                    json!({"alarm_id": id, "state": "raised", "drill": drill, "stored": false, "sent_direct": sent}),
                )
            }
            Err(e) => {
                self.store_health.failed("recording an alarm", &e);
                Err(ketang_web::ApiError::Internal(format!(
                    "the siren is on but the alarm could not be stored: {e}"
                )))
            }
        }
    }
}

impl Classroom {
    /// Stores the alarms raised while the disk was full, as soon as there is room (each
    /// tick; the outbox draining to the broker frees pages).
    async fn store_unstored_alarms(&mut self) {
        while let Some((alarm, out)) = self.unstored_alarms.first().cloned() {
            match self.store.raise_alarm(alarm, out).await {
                Ok(seq) => {
                    self.unstored_alarms.remove(0);
                    self.store_health.ok();
                    tracing::warn!(seq, "An alarm raised on a full disk is stored now.");
                    self.changed();
                }
                Err(_) => return,
            }
        }
    }

    /// Once a day: local history past its retention goes (docs/privacy.md).
    async fn prune_due(&mut self) {
        let today = self.clock.now().date_naive();
        if self.pruned_on == Some(today) {
            return;
        }
        let taps = today - chrono::Days::new(TAPS_KEPT_DAYS);
        let records = today - chrono::Days::new(RECORDS_KEPT_DAYS);
        match self.store.prune_history(taps, records).await {
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

impl Classroom {
    /// What the door sign shows now; redrawn only when it changed.
    async fn update_sign(&mut self) {
        let Some(sign) = self.sign.clone() else {
            return;
        };
        let now = self.clock.now();
        let opens = self.school.checkin_opens;
        let (current, next) = {
            let tt = self.tt();
            (tt.current(now, opens), tt.next(now, opens))
        };
        const WEEKDAYS: [&str; 7] = ["一", "二", "三", "四", "五", "六", "日"];
        use chrono::Datelike as _;
        let date = format!(
            "{}月{}日 星期{}",
            now.month(),
            now.day(),
            WEEKDAYS[now.weekday().num_days_from_monday() as usize]
        );
        let hm = |t: chrono::DateTime<chrono_tz::Tz>| t.format("%H:%M").to_string();
        let lesson_line = current.as_ref().map(|s| {
            format!(
                "第{}节 {} {}-{}",
                s.period.period,
                s.period.teacher,
                hm(s.starts_at),
                hm(s.ends_at)
            )
        });
        let attendance = match &current {
            Some(s) => match self
                .store
                .lesson_summary(s.id(), s.period.roster_id.clone())
                .await
            {
                Ok(sum) => Some((sum.present + sum.late, sum.roster)),
                Err(e) => {
                    return self
                        .store_health
                        .failed("reading attendance for the sign", &e);
                }
            },
            None => None,
        };
        let next_line = next
            .as_ref()
            .map(|s| format!("下一节：{} {}", s.period.subject, hm(s.starts_at)));
        let notice = match self.store.active_notices(now.fixed_offset()).await {
            Ok(n) => n.into_iter().find(|n| !n.emergency).map(|n| n.title),
            Err(e) => return self.store_health.failed("reading notices for the sign", &e),
        };
        let content = ketang_drivers::sign::SignContent {
            class_name: &self.class_name,
            date: &date,
            lesson: current
                .as_ref()
                .zip(lesson_line.as_deref())
                .map(|(s, l)| (s.period.subject.as_str(), l)),
            attendance,
            next: next_line.as_deref(),
            notice: notice.as_deref(),
        };
        match sign.update(&content, &self.hw) {
            Ok(true) => tracing::debug!("Door sign redrawn."),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "The door sign could not be drawn; it keeps its last face.")
            }
        }
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
