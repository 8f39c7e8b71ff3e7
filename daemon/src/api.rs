//! The daemon's side of the HTTP API: implements [`ketang_web::DeviceApi`].

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::SecondsFormat;
use ketang_sync::{OpenReport, StoreHandle};
use ketang_web::*;

use crate::classroom::{ActionError, Counters, StoreHealth};
use crate::clock::Clock;
use crate::config::Config;
use crate::devices::Hardware;
use crate::engine::timetable::{Slot, Timetable};

pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) struct Daemon {
    pub(crate) cfg: Arc<Config>,
    pub(crate) mode: &'static str,
    pub(crate) store: StoreHandle,
    pub(crate) open_report: OpenReport,
    pub(crate) store_health: Arc<StoreHealth>,
    pub(crate) hw: Arc<Hardware>,
    pub(crate) clock: Clock,
    pub(crate) timetable: Arc<RwLock<Timetable>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) sync: Option<Arc<ketang_sync::mqtt::SyncStatus>>,
    pub(crate) boot_id: String,
    pub(crate) started: Instant,
    pub(crate) started_at: String,
    /// Teacher actions go to the classroom actor.
    pub(crate) commands: tokio::sync::mpsc::Sender<crate::classroom::Cmd>,
    /// A staff card tapped on the board (claimable by the kiosk screen).
    pub(crate) unlock: Arc<std::sync::Mutex<Option<crate::classroom::PendingUnlock>>>,
    /// Live events for the board's screen.
    pub(crate) events: tokio::sync::broadcast::Sender<BoardEvent>,
    /// The door sign (its preview).
    pub(crate) sign: Option<Arc<crate::devices::epaper::Sign>>,
    /// Face attendance, when enabled.
    pub(crate) inference: Option<crate::inference::Inference>,
    /// System updates (bundles handed to the installer).
    pub(crate) updater: crate::system::update::Updater,
    /// SHA-256 of the board's HTTPS certificate (`None`: no HTTPS).
    pub(crate) https_fingerprint: Option<String>,
    /// The config file (`ketangd run`), which provisioning on the technician page replaces.
    pub(crate) config_path: Option<std::path::PathBuf>,
    /// Ends the daemon cleanly so that systemd starts it again with a new config.
    pub(crate) restart: Arc<tokio::sync::Notify>,
    /// The school path and the SMS fallback (status only; the classroom uses them).
    pub(crate) alarm_path: crate::classroom::AlarmPath,
}

/// Checks `pin` against an Argon2 PHC hash (constant time in the hash crate). Hashes
/// whose parameters exceed [`ketang_sync::MAX_PIN_HASH_COST`]'s bounds are refused
/// unverified: a cloud-supplied hash must not make one check take gigabytes or minutes.
pub(crate) fn verify_pin(pin: &str, hash: &str) -> bool {
    use argon2::PasswordVerifier as _;
    if let Err(e) = ketang_sync::pin_hash_cost_ok(hash) {
        tracing::error!(problem = %e, "A stored PIN hash is refused; that account cannot unlock by PIN.");
        return false;
    }
    match argon2::PasswordHash::new(hash) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(pin.as_bytes(), &h)
            .is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "A stored PIN hash does not parse; that teacher cannot unlock by PIN.");
            false
        }
    }
}

/// An Argon2id PHC hash of `pin` (for `ketangd hash-pin` and the demo).
pub(crate) fn hash_pin(pin: &str) -> anyhow::Result<String> {
    use argon2::PasswordHasher as _;
    let salt = argon2::password_hash::SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| anyhow::anyhow!("making a salt: {e}"))?;
    Ok(argon2::Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
        .to_string())
}

fn internal(e: ketang_sync::Error) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The one place where the classroom's refusals become HTTP answers.
fn http_error(e: ActionError) -> ApiError {
    match e {
        ActionError::Invalid(m) => ApiError::BadRequest(m),
        ActionError::NotFound(m) => ApiError::NotFound(m),
        ActionError::Conflict(m) => ApiError::Conflict(m),
        ActionError::Unavailable(m) => ApiError::Unavailable(m),
        ActionError::Internal(m) => ApiError::Internal(m),
    }
}

fn lesson_info(s: &Slot, state: &str, attendance: Option<AttendanceCounts>) -> LessonInfo {
    LessonInfo {
        id: s.id(),
        period: s.period.period,
        subject: s.period.subject.clone(),
        teacher: s.period.teacher.clone(),
        room: s.period.room.clone(),
        state: state.to_owned(),
        starts_at: s.starts_at.to_rfc3339_opts(SecondsFormat::Secs, false),
        ends_at: s.ends_at.to_rfc3339_opts(SecondsFormat::Secs, false),
        attendance,
        change: s.change.as_ref().map(|c| ketang_web::LessonChangeInfo {
            kind: c.kind.as_str().to_owned(),
            was_subject: c
                .was
                .as_ref()
                .filter(|(sub, _)| *sub != s.period.subject)
                .map(|(sub, _)| sub.clone()),
            was_teacher: c
                .was
                .as_ref()
                .filter(|(_, t)| *t != s.period.teacher)
                .map(|(_, t)| t.clone()),
            note: c.note.clone(),
        }),
    }
}

/// Today in the calendar: its name, the version in force, the lessons it cancelled.
fn day_info(
    tt: &crate::engine::timetable::Timetable,
    now: chrono::DateTime<chrono_tz::Tz>,
) -> ketang_web::DayInfo {
    let date = now.date_naive();
    let cal = tt.calendar_on(date, now.timezone());
    let rosters = tt.rosters();
    let weekday = cal.runs(date);
    let mut cancelled: Vec<ketang_web::CancelledLesson> = cal
        .cancelled_on(date, &rosters)
        .filter_map(|c| {
            let p = tt.periods.iter().find(|p| {
                Some(p.weekday) == weekday && p.roster_id == c.roster_id && p.period == c.period
            })?;
            let starts =
                chrono::TimeZone::from_local_datetime(&now.timezone(), &date.and_time(p.starts))
                    .earliest()?;
            Some(ketang_web::CancelledLesson {
                period: p.period,
                subject: p.subject.clone(),
                starts_at: starts.to_rfc3339_opts(SecondsFormat::Secs, false),
                note: c.note.clone(),
            })
        })
        .collect();
    cancelled.sort_by_key(|c| c.period);
    ketang_web::DayInfo {
        name: cal.names.get(&date).cloned(),
        calendar_version: cal.version,
        cancelled,
    }
}

impl DeviceApi for Daemon {
    async fn status(&self) -> Result<StatusReport, ApiError> {
        let now = self.clock.now();
        let opens = self.cfg.school.checkin_opens;
        let (current, next, today, day, runs, window, no_timetable) = {
            let tt = self
                .timetable
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let current = tt.current(now, opens);
            let state = current.as_ref().map(|s| tt.state(s, now, opens));
            let today: Vec<LessonInfo> = tt
                .slots_on(now.date_naive(), now.timezone())
                .iter()
                .map(|s| lesson_info(s, tt.state(s, now, opens).as_str(), None))
                .collect();
            (
                current.zip(state),
                tt.next(now, opens),
                today,
                day_info(&tt, now),
                tt.calendar_on(now.date_naive(), now.timezone())
                    .runs(now.date_naive()),
                {
                    let sc = &self.cfg.school;
                    let checks: Vec<_> = [
                        Some(sc.morning_check),
                        Some(sc.noon_check),
                        sc.evening_check,
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    crate::engine::screen::window(
                        &tt.slots_on(now.date_naive(), now.timezone()),
                        opens,
                        &checks,
                        now.timezone(),
                    )
                },
                tt.periods.is_empty(),
            )
        };
        let content = self
            .store
            .board_content(now.date_naive(), runs)
            .await
            .map_err(internal)?;
        let content = ketang_web::ContentInfo {
            honours: content
                .honours
                .into_iter()
                .zip(content.honour_images)
                .map(|(h, img)| ketang_web::HonourInfo {
                    image: img.then(|| format!("/api/v1/honours/{}/image", h.id)),
                    id: h.id,
                    title: h.title,
                    text: h.text,
                    date: h.date.map(|d| d.to_string()),
                })
                .collect(),
            duty: content
                .duty
                .filter(|(_, names)| !names.is_empty())
                .map(|(task, names)| ketang_web::DutyInfo { task, names }),
            homework: content
                .homework
                .map(|h| h.items)
                .unwrap_or_default()
                .into_iter()
                .map(|i| ketang_web::HomeworkInfo {
                    subject: i.subject,
                    text: i.text,
                    due: i.due.map(|d| d.to_string()),
                })
                .collect(),
        };
        // One store job: the status is a consistent snapshot.
        let snap = self
            .store
            .status_snapshot(
                current
                    .as_ref()
                    .map(|(s, _)| (s.id(), s.period.roster_id.clone())),
                now.fixed_offset(),
            )
            .await
            .map_err(internal)?;
        let pending = snap.pending;
        let lesson = current
            .zip(snap.lesson)
            .map(|((s, state), counts)| lesson_info(&s, state.as_str(), Some(counts)));
        let next_lesson = next.map(|s| lesson_info(&s, "upcoming", None));
        let snap_alarms_empty = snap.alarms.is_empty();
        let alarms = snap
            .alarms
            .into_iter()
            .map(|a| AlarmInfo {
                id: a.id,
                source: a.source,
                drill: a.drill,
                raised_at: a.raised_at.to_rfc3339_opts(SecondsFormat::Secs, false),
            })
            .collect();
        let notices = snap
            .notices
            .into_iter()
            .map(|n| NoticeInfo {
                // Design: the board names its own notices `local-…` (classroom/notices.rs).
                local: n.id.starts_with("local-"),
                id: n.id,
                title: n.title,
                body: n.body,
                emergency: n.emergency,
            })
            .collect();
        let d = &self.cfg.device;
        let broker = self
            .cfg
            .sync
            .broker
            .as_ref()
            .map(crate::config::BrokerUrl::redacted);
        Ok(StatusReport {
            device: DeviceInfo {
                school_id: d.school_id.clone(),
                classroom_id: d.classroom_id.clone(),
                device_id: d.device_id.clone(),
                class_name: d.class_name.clone(),
            },
            version: VERSION.to_owned(),
            mode: self.mode.to_owned(),
            boot_id: self.boot_id.clone(),
            started_at: self.started_at.clone(),
            uptime_s: self.started.elapsed().as_secs(),
            clock: ClockInfo {
                now: now.to_rfc3339_opts(SecondsFormat::Secs, false),
                timezone: self.clock.timezone().name().to_owned(),
                synced: self.clock.synced(),
                simulated: self.clock.is_simulated(),
                source: self.clock.source(),
            },
            store: StoreInfo {
                path: self.open_report.path.display().to_string(),
                schema_version: self.open_report.to_version,
                quarantined: self
                    .open_report
                    .quarantined
                    .as_ref()
                    .map(|(p, _)| p.display().to_string()),
                disk_full: self.store_health.disk_full.load(Ordering::Relaxed),
                last_error: self
                    .store_health
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone(),
            },
            outbox: OutboxInfo {
                total: pending.values().sum(),
                pending,
            },
            sync: SyncInfo {
                connected: self.sync.as_ref().is_some_and(|s| s.connected()),
                state: self.sync.as_ref().map_or_else(
                    || "offline: no broker configured; records wait in the outbox".to_owned(),
                    |s| s.state(),
                ),
                insecure: self.cfg.sync.broker.as_ref().is_some_and(|b| !b.tls),
                published: self
                    .sync
                    .as_ref()
                    .map_or(0, |s| s.published.load(Ordering::Relaxed)),
                acked: self
                    .sync
                    .as_ref()
                    .map_or(0, |s| s.acked.load(Ordering::Relaxed)),
                connections: self
                    .sync
                    .as_ref()
                    .map_or(0, |s| s.connections.load(Ordering::Relaxed)),
                broker,
            },
            hardware: self.hw.statuses(),
            lesson,
            next_lesson,
            today,
            day,
            content,
            fever_threshold_c: self.cfg.school.fever_threshold_c,
            screen: ketang_web::ScreenInfo {
                // A board without a timetable yet (just provisioned) has no school day
                // to sleep outside of: it stays awake for whoever sets it up.
                awake: !self.cfg.school.screen_sleep
                    || !snap_alarms_empty
                    || no_timetable
                    || crate::engine::screen::awake(now, window),
                awake_from: window.map(|(a, _)| a.to_rfc3339_opts(SecondsFormat::Secs, false)),
                awake_until: window.map(|(_, b)| b.to_rfc3339_opts(SecondsFormat::Secs, false)),
            },
            alarms,
            notices,
            school: self.alarm_path.school.as_ref().map(|link| {
                let (connected, state, refused) = link.status();
                ketang_web::SchoolInfo {
                    connected,
                    state,
                    duty_room: self.alarm_path.role == Some(ketang_sync::SchoolRole::DutyRoom),
                    refused,
                    boards: link
                        .boards()
                        .into_iter()
                        .map(|b| ketang_web::SchoolBoard {
                            device_id: b.device_id,
                            classroom_id: b.classroom_id,
                            class_name: b.class_name,
                            duty_room: b.role == ketang_sync::SchoolRole::DutyRoom,
                            alarms: b
                                .alarms
                                .into_iter()
                                .map(|a| ketang_web::SchoolAlarmInfo {
                                    alarm_id: a.alarm_id,
                                    drill: a.drill,
                                    raised_at: a.raised_at,
                                })
                                .collect(),
                        })
                        .collect(),
                }
            }),
            alarm_sms: (!self.alarm_path.config.sms_numbers.is_empty()).then(|| {
                let s = self
                    .alarm_path
                    .sms
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                ketang_web::AlarmSmsInfo {
                    numbers: self.alarm_path.config.sms_numbers.len(),
                    after_s: self.alarm_path.config.sms_after.as_secs(),
                    sent: s.sent,
                    last: s.last.clone(),
                }
            }),
            counters: ketang_web::Counters {
                camera_frames: self.inference.as_ref().map_or(0, |i| i.offered()),
                ..self.counters.snapshot()
            },
            system: {
                let mut s = self.updater.info();
                let wifi_conf = self
                    .config_path
                    .as_deref()
                    .and_then(std::path::Path::parent)
                    .map(|d| d.join("wifi.conf"));
                s.network = crate::system::netinfo::read(
                    std::path::Path::new("/sys/class/net"),
                    std::path::Path::new("/proc/net/wireless"),
                    wifi_conf.as_deref(),
                );
                s
            },
        })
    }

    async fn health(&self) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(2), self.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("store: {e}")),
            Err(_) => Err("store: no answer within 2 s".to_owned()),
        }
    }

    fn version(&self) -> String {
        VERSION.to_owned()
    }

    fn simulated(&self) -> bool {
        self.hw.simulated()
    }

    async fn sim_card(&self, reader: String, uid: String) -> Result<(), SimError> {
        self.hw.sim_card(&reader, &uid)
    }

    async fn sim_temperature(&self, celsius: f64) -> Result<(), SimError> {
        self.hw.sim_temperature(celsius)
    }

    async fn sim_button(&self, button: String) -> Result<(), SimError> {
        self.hw.sim_button(&button)
    }

    async fn sim_frame(&self, image: Vec<u8>) -> Result<(), SimError> {
        let Some(inf) = self.inference.as_ref().filter(|i| i.simulated()) else {
            return Err(SimError::BadInput(
                "no simulated camera (inference is off, or the camera is real)".to_owned(),
            ));
        };
        let frame = crate::classroom::decode_image_off(image)
            .await
            .map_err(SimError::BadInput)?;
        inf.frame(frame);
        Ok(())
    }

    async fn sim_audio(&self, wav: Vec<u8>) -> Result<(), SimError> {
        let Some(inf) = self.inference.as_ref().filter(|i| i.simulated_microphone()) else {
            return Err(SimError::BadInput(
                "no simulated microphone (inference is off, or the microphone is real)".to_owned(),
            ));
        };
        let channels =
            ketang_models::vad::decode_wav(&wav).map_err(|e| SimError::BadInput(e.to_string()))?;
        inf.audio(channels, self.clock.now().with_timezone(&chrono::Utc));
        Ok(())
    }

    async fn sim_clock(&self, at: String) -> Result<(), SimError> {
        let t = chrono::DateTime::parse_from_rfc3339(&at)
            .map_err(|e| SimError::BadInput(format!("at: {at:?} is not an RFC 3339 time: {e}")))?;
        if self.clock.set(t) {
            tracing::info!(at = %t, "Simulated clock set.");
            Ok(())
        } else {
            Err(SimError::BadInput(
                "the clock is the system clock (start the demo without --clock now)".to_owned(),
            ))
        }
    }

    async fn login(&self, credential: Credential) -> Result<Option<Actor>, ApiError> {
        match credential {
            Credential::Card => {
                let mut u = self
                    .unlock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok(u.take()
                    .filter(|p| p.at.elapsed() < crate::classroom::UNLOCK_CLAIM)
                    .map(|p| p.actor))
            }
            Credential::Technician { password } => {
                let Some(hash) = self
                    .store
                    .meta_get(crate::system::provision::TECH_PASSWORD.into())
                    .await
                    .map_err(internal)?
                else {
                    return Ok(None);
                };
                let ok = tokio::task::spawn_blocking(move || verify_pin(&password, &hash))
                    .await
                    .map_err(|e| ApiError::Internal(format!("checking a password: {e}")))?;
                Ok(ok.then(|| Actor {
                    id: "technician".to_owned(),
                    name: "技术员 technician".to_owned(),
                    role: Role::Technician,
                }))
            }
            Credential::Pin { staff_id, pin } => {
                let Some(staff) = self.store.staff_login(staff_id).await.map_err(internal)? else {
                    return Ok(None);
                };
                let Some(hash) = staff.pin_hash else {
                    return Ok(None);
                };
                let ok = tokio::task::spawn_blocking(move || verify_pin(&pin, &hash))
                    .await
                    .map_err(|e| ApiError::Internal(format!("checking a PIN: {e}")))?;
                Ok(ok.then_some(Actor {
                    id: staff.id,
                    name: staff.name,
                    role: Role::Teacher,
                }))
            }
        }
    }

    async fn provisioned(&self) -> Result<bool, ApiError> {
        Ok(self
            .store
            .meta_get(crate::system::provision::TECH_PASSWORD.into())
            .await
            .map_err(internal)?
            .is_some())
    }

    async fn provision(&self, password: String) -> Result<(), ApiError> {
        let hash = tokio::task::spawn_blocking(move || hash_pin(&password))
            .await
            .map_err(|e| ApiError::Internal(format!("hashing: {e}")))?
            .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
        let stored = self
            .store
            .meta_once(crate::system::provision::TECH_PASSWORD.into(), hash.clone())
            .await
            .map_err(internal)?;
        if stored != hash {
            return Err(ApiError::Conflict(
                "the technician password is already set (a factory reset clears it)".to_owned(),
            ));
        }
        Ok(())
    }

    async fn honour_image(&self, id: String) -> Result<(&'static str, Vec<u8>), ApiError> {
        self.store
            .honour_image(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::NotFound("no honour with that id has an image".to_owned()))
    }

    fn epaper_png(&self) -> Option<Vec<u8>> {
        self.sign.as_ref().and_then(|s| s.png())
    }

    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<BoardEvent>> {
        Some(self.events.subscribe())
    }

    async fn act(&self, actor: Actor, action: Action) -> Result<serde_json::Value, ApiError> {
        let reply = crate::classroom::send(&self.commands, actor, action)
            .await
            .map_err(http_error)?;
        serde_json::to_value(reply).map_err(|e| ApiError::Internal(format!("an answer: {e}")))
    }

    async fn apply_provisioning(
        &self,
        actor: Actor,
        text: String,
    ) -> Result<serde_json::Value, ApiError> {
        let Some(config) = self.config_path.clone() else {
            return Err(ApiError::Unavailable(
                "the demo has no config file: provisioning applies to a board (`ketangd run`)"
                    .to_owned(),
            ));
        };
        let etc = config.parent().map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        );
        if config.file_name().and_then(|n| n.to_str()) != Some("ketang.toml") {
            return Err(ApiError::Unavailable(format!(
                "provisioning writes ketang.toml beside it; this daemon runs with {}",
                config.display()
            )));
        }
        let applied = crate::system::provision::apply_text(
            &text,
            "the provisioning entered on the technician page",
            &etc,
            &self.cfg.data_dir,
            true,
            Some(&self.store),
        )
        .await
        .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
        let audit = ketang_sync::Audit {
            actor: actor.id.clone(),
            role: actor.role.as_str().to_owned(),
            action: "device.provision".to_owned(),
            target: applied.device_id.clone(),
            detail: serde_json::json!({"school_id": applied.school_id, "classroom_id": applied.classroom_id}),
            at: self.clock.now_fixed(),
            clock_synced: self.clock.synced(),
        };
        if let Err(e) = self.store.audit(audit).await {
            tracing::error!(error = %e, "Auditing a provisioning failed.");
        }
        tracing::warn!(device_id = %applied.device_id, "Provisioned from the technician page; restarting.");
        let restart = self.restart.clone();
        tokio::spawn(async move {
            // Let the answer reach the technician first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            restart.notify_one();
        });
        Ok(serde_json::json!({
            "applied": true,
            "school_id": applied.school_id,
            "classroom_id": applied.classroom_id,
            "device_id": applied.device_id,
            "config": applied.config.display().to_string(),
            "restarting": true,
        }))
    }

    async fn receive_update(
        &self,
        actor: Actor,
        length: Option<u64>,
        body: Upload,
    ) -> Result<serde_json::Value, ApiError> {
        let out = self.updater.receive_upload(&actor.id, length, body).await?;
        let audit = ketang_sync::Audit {
            actor: actor.id.clone(),
            role: actor.role.as_str().to_owned(),
            action: "system.update_upload".to_owned(),
            target: out["sha256"].as_str().unwrap_or_default().to_owned(),
            detail: serde_json::json!({"bytes": out["bytes"]}),
            at: self.clock.now_fixed(),
            clock_synced: self.clock.synced(),
        };
        if let Err(e) = self.store.audit(audit).await {
            tracing::error!(error = %e, "Auditing an update upload failed.");
        }
        Ok(out)
    }

    async fn view(&self, actor: Actor, view: View) -> Result<serde_json::Value, ApiError> {
        match view {
            View::Voice => {
                let mine = self
                    .store
                    .voiceprint_info(actor.id)
                    .await
                    .map_err(internal)?;
                Ok(serde_json::json!({
                    "available": self.voice_available(),
                    "voiceprint": mine,
                }))
            }
            View::Staff => {
                let staff = self.store.staff_list().await.map_err(internal)?;
                Ok(serde_json::json!({
                    "staff": staff.into_iter().map(|(id, name)| serde_json::json!({"id": id, "name": name})).collect::<Vec<_>>()
                }))
            }
            View::Lesson { lesson_id } => self.lesson_view(lesson_id.as_deref()).await,
            View::Report { lesson_id } => self.report_view(lesson_id).await,
            View::Followups => {
                let today = self.clock.now().date_naive();
                let list = self.store.followups(today).await.map_err(internal)?;
                Ok(serde_json::json!({"date": today, "followups": list}))
            }
            View::Technician => self.tech_view().await,
            View::Diagnostics => self.diagnostics().await,
            View::Faces => {
                let rows = self
                    .store
                    .face_consents()
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                Ok(serde_json::json!({
                    "enabled": self.inference.is_some(),
                    "model": self.inference.as_ref().map(crate::inference::Inference::model),
                    "consents": rows,
                }))
            }
            View::Audit => {
                let rows = self.store.audit_tail(200).await.map_err(internal)?;
                Ok(serde_json::json!({"audit": rows}))
            }
        }
    }
}

impl Daemon {
    /// Whether this board can take a voiceprint: inference on, one microphone channel.
    fn voice_available(&self) -> bool {
        self.inference.is_some()
            && self.cfg.inference.microphone.as_ref().is_some_and(|m| {
                !matches!(
                    m.driver,
                    crate::config::DeviceDriver::Alsa { channels: 2.., .. }
                )
            })
    }

    /// A lesson's stored report, with what only the board shows (docs/api.md): how the
    /// lesson went over its course (`timeline`) and the class's week up to its day (`week`).
    async fn report_view(&self, lesson_id: String) -> Result<serde_json::Value, ApiError> {
        let mut report = self
            .store
            .lesson_report(lesson_id.clone())
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "report of lesson {lesson_id:?} (reports exist once a lesson has ended)"
                ))
            })?;
        let timeline = self
            .store
            .lesson_timeline(lesson_id)
            .await
            .map_err(internal)?;
        let week = match report["date"]
            .as_str()
            .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
        {
            Some(day) => crate::engine::trend::week(
                &self
                    .store
                    .reports_between(day - chrono::Days::new(6), day)
                    .await
                    .map_err(internal)?,
            ),
            None => Vec::new(),
        };
        if let Some(o) = report.as_object_mut() {
            o.insert(
                "timeline".into(),
                serde_json::to_value(timeline).map_err(|e| ApiError::Internal(e.to_string()))?,
            );
            o.insert(
                "week".into(),
                serde_json::to_value(week).map_err(|e| ApiError::Internal(e.to_string()))?,
            );
        }
        Ok(report)
    }

    /// The technician's overview. Secrets are never included: the credentials file, keys
    /// and PIN hashes are named, not shown.
    async fn tech_view(&self) -> Result<serde_json::Value, ApiError> {
        let status = self.status().await?;
        let c = &self.cfg;
        let s = &c.sync;
        let shown = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let config = serde_json::json!({
            "device": {"school_id": c.device.school_id, "classroom_id": c.device.classroom_id,
                       "device_id": c.device.device_id, "class_name": c.device.class_name},
            "data_dir": c.data_dir.display().to_string(),
            "data_max_bytes": c.data_max_bytes,
            "http": {"listen": c.http.listen.to_string(),
                     "https_fingerprint_sha256": self.https_fingerprint},
            "sync": {
                "broker_url": s.broker.as_ref().map(crate::config::BrokerUrl::redacted),
                "ca_file": shown(&s.ca_file), "client_cert": shown(&s.client_cert),
                "client_key": s.client_key.as_ref().map(|_| "(set, not shown)"),
                "credentials": s.credentials.as_ref().map(|_| "(set, not shown)"),
                "keep_alive_s": s.keep_alive.as_secs(),
                "max_publish_per_s": s.max_publish_per_s.map(std::num::NonZeroU32::get),
            },
            "school": {
                "timezone": c.school.timezone.name(),
                "checkin_opens_min": c.school.checkin_opens.as_secs() / 60,
                "late_after_min": c.school.late_after.as_secs() / 60,
                "fever_threshold_c": c.school.fever_threshold_c,
                "health_pairing_s": c.school.health_pairing.as_secs(),
            },
            "hardware": c.hardware.devices.iter().map(|d| serde_json::json!({
                "name": d.name, "kind": d.kind.as_str(), "driver": d.driver.name(),
            })).collect::<Vec<_>>(),
        });
        Ok(serde_json::json!({
            "status": status,
            "config": config,
            "logs": crate::logging::tail(200),
        }))
    }

    /// The diagnostics bundle (download on `/tech`, or `system.diagnostics` to the cloud):
    /// the technician's overview (status, redacted config, the last log lines) plus the
    /// versions, the system and every device's state. No student data: the status holds
    /// counts, the log never names a student, the config holds no secrets.
    pub(crate) async fn diagnostics(&self) -> Result<serde_json::Value, ApiError> {
        let mut v = self.tech_view().await?;
        let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
        v["kind"] = serde_json::json!("ketang-diagnostics");
        v["generated_at"] = serde_json::json!(self.clock.now_fixed().to_rfc3339());
        v["version"] = serde_json::json!(VERSION);
        v["system"] = serde_json::json!({
            "kernel": read("/proc/sys/kernel/osrelease"),
            "image_release": read("/usr/lib/ketang/image-release"),
            "uptime_s": read("/proc/uptime").and_then(|u| u.split_whitespace().next().map(str::to_owned)),
            "loadavg": read("/proc/loadavg"),
        });
        v["devices"] = serde_json::json!(self.hw.statuses());
        Ok(v)
    }

    /// The current (or else next, else last) lesson of today with its roll.
    async fn lesson_view(&self, lesson_id: Option<&str>) -> Result<serde_json::Value, ApiError> {
        let now = self.clock.now();
        let opens = self.cfg.school.checkin_opens;
        let (slot, state) = {
            let tt = self
                .timetable
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let slot = match lesson_id {
                // One of today's lessons, chosen on the board (an ended one to correct).
                Some(id) => Some(
                    tt.slots_on(now.date_naive(), now.timezone())
                        .into_iter()
                        .find(|s| s.id() == id)
                        .ok_or_else(|| {
                            ApiError::NotFound(format!(
                                "lesson {id:?} is not one of today's lessons"
                            ))
                        })?,
                ),
                None => tt
                    .current(now, opens)
                    .or_else(|| tt.next(now, opens))
                    .or_else(|| {
                        tt.slots_on(now.date_naive(), now.timezone())
                            .into_iter()
                            .next_back()
                    }),
            };
            let state = slot.as_ref().map(|s| tt.state(s, now, opens));
            (slot, state)
        };
        let (Some(slot), Some(state)) = (slot, state) else {
            return Ok(serde_json::json!({"lesson": null, "roll": []}));
        };
        let roll = self
            .store
            .lesson_roll_named(slot.id(), slot.period.roster_id.clone())
            .await
            .map_err(internal)?;
        // The day's health checks of the roster, by student: the roll flags a fever and
        // lists symptoms (teacher mode only, like the names).
        let mut health = serde_json::Map::new();
        for h in self
            .store
            .day_health(slot.date, slot.period.roster_id.clone())
            .await
            .map_err(internal)?
        {
            let e = health.entry(h.student_id.clone()).or_insert_with(
                || serde_json::json!({"fever": false, "symptoms": [], "temp_c": null}),
            );
            if h.fever {
                e["fever"] = true.into();
            }
            if let Some(t) = h.temp_c {
                e["temp_c"] = t.into();
            }
            if let Some(list) = e["symptoms"].as_array_mut() {
                for s in h.symptoms {
                    if !list
                        .iter()
                        .any(|x| x == &serde_json::Value::from(s.as_str()))
                    {
                        list.push(s.into());
                    }
                }
            }
        }
        Ok(serde_json::json!({
            "lesson": lesson_info(&slot, state.as_str(), None),
            "roster_id": slot.period.roster_id,
            "roll": roll,
            "health": health,
        }))
    }
}
