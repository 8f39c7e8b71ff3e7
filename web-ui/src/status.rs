//! The status document served at `/api/v1/status`. Field names are a contract (`docs/api.md`).

use std::collections::BTreeMap;

use serde::Serialize;

/// Everything `/api/v1/status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Who this device is.
    pub device: DeviceInfo,
    /// Daemon version.
    pub version: String,
    /// "demo" or "production".
    pub mode: String,
    /// Random id of this daemon start.
    pub boot_id: String,
    /// When the daemon started (RFC 3339).
    pub started_at: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// The board's clock.
    pub clock: ClockInfo,
    /// The local database.
    pub store: StoreInfo,
    /// What waits to be synced.
    pub outbox: OutboxInfo,
    /// The link to the regional cloud.
    pub sync: SyncInfo,
    /// One entry per configured device.
    pub hardware: Vec<HardwareStatus>,
    /// The lesson now (open for check-in or in progress), if any.
    pub lesson: Option<LessonInfo>,
    /// The next lesson today, if any.
    pub next_lesson: Option<LessonInfo>,
    /// Today's lessons in time order, with their states (the board's timetable).
    pub today: Vec<LessonInfo>,
    /// Today in the school calendar: its name, the calendar's version, cancelled lessons.
    pub day: DayInfo,
    /// What the school shows on the board: honours, today's duty, homework.
    pub content: ContentInfo,
    /// Whether the board's own screen is awake (school hours) or asleep.
    pub screen: ScreenInfo,
    /// The school's fever threshold (`school.fever_threshold_c`), for the board's colours.
    pub fever_threshold_c: f64,
    /// Alarms not yet cleared.
    pub alarms: Vec<AlarmInfo>,
    /// Notices valid now.
    pub notices: Vec<NoticeInfo>,
    /// The school's own alarm path; `None` when the board has none.
    pub school: Option<SchoolInfo>,
    /// The SMS fallback of alarms; `None` when no numbers are configured.
    pub alarm_sms: Option<AlarmSmsInfo>,
    /// Event counters since start.
    pub counters: Counters,
    /// The installed system: booted slot, image, updates.
    pub system: SystemInfo,
}

/// The school path (`docs/technician.md`, "The school's alarm path").
#[derive(Debug, Clone, Serialize)]
pub struct SchoolInfo {
    /// Connected to the school broker.
    pub connected: bool,
    /// What the link is doing ("connected", "offline: …").
    pub state: String,
    /// This board is the duty room's.
    pub duty_room: bool,
    /// Messages refused (wrong school or board, malformed, too long).
    pub refused: u64,
    /// Every other board heard from, with its alarms now.
    pub boards: Vec<SchoolBoard>,
}

/// Another board of the school, as the school path last heard of it.
#[derive(Debug, Clone, Serialize)]
pub struct SchoolBoard {
    /// Its device id.
    pub device_id: String,
    /// Its classroom.
    pub classroom_id: String,
    /// Its class or room name.
    pub class_name: String,
    /// The duty room's board.
    pub duty_room: bool,
    /// Its alarms not yet cleared.
    pub alarms: Vec<SchoolAlarmInfo>,
}

/// An alarm on another board.
#[derive(Debug, Clone, Serialize)]
pub struct SchoolAlarmInfo {
    /// The alarm.
    pub alarm_id: String,
    /// A drill.
    pub drill: bool,
    /// When (RFC 3339).
    pub raised_at: String,
}

/// The SMS fallback of alarms.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmSmsInfo {
    /// How many numbers are configured (the numbers are not shown).
    pub numbers: usize,
    /// Seconds after a press without any acknowledgement before texting.
    pub after_s: u64,
    /// Messages sent since start.
    pub sent: u64,
    /// The last attempt, if any: when and what came of it.
    pub last: Option<String>,
}

/// The installed system (an appliance image with A/B slots), for technicians.
#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    /// The booted root slot ("A" or "B"); `None` outside a Ketang image.
    pub slot: Option<String>,
    /// The image build: variant, build time and commit; `None` outside a Ketang image.
    pub image: Option<String>,
    /// Whether this board takes update bundles (upload on `/tech`, `system.update`).
    pub updates: bool,
    /// The latest update step, if there was one.
    pub update: Option<UpdateStep>,
    /// Free space on the data partition, in MiB.
    pub data_free_mb: Option<u64>,
    /// The network interfaces and the configured Wi-Fi.
    pub network: NetworkInfo,
}

/// The board's network interfaces and the Wi-Fi network it was provisioned with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkInfo {
    /// Wired and Wi-Fi interfaces (not loopback, bridges or tunnels), by name.
    pub interfaces: Vec<NetInterface>,
    /// The Wi-Fi network from the provisioning file, if any (never its key).
    pub wifi: Option<WifiInfo>,
}

/// One network interface.
#[derive(Debug, Clone, Serialize)]
pub struct NetInterface {
    /// Its name, e.g. `enp1s0`, `wlan0`.
    pub name: String,
    /// "wired" or "wifi".
    pub kind: String,
    /// The kernel's operational state: "up", "down", "dormant" (Wi-Fi not associated), ...
    pub state: String,
    /// A Wi-Fi link's signal level in dBm.
    pub signal_dbm: Option<i32>,
}

/// The configured Wi-Fi network.
#[derive(Debug, Clone, Serialize)]
pub struct WifiInfo {
    /// Its name.
    pub ssid: String,
    /// "wpa2-personal", "wpa3-personal", "wpa2-wpa3-personal" or "wpa2-enterprise".
    pub security: String,
}

/// One step of a system update (also the `update` uplink stream, `docs/mqtt.md`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UpdateStep {
    /// receiving, received, failed, installing, installed, refused, marked_good, rolled_back.
    pub state: String,
    /// "upload", "cloud" or "usb".
    pub source: Option<String>,
    /// SHA-256 of the bundle, when known.
    pub sha256: Option<String>,
    /// The slot it concerns, when known.
    pub slot: Option<String>,
    /// Why, for failures; what happened otherwise.
    pub detail: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// Device identity.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    /// School id.
    pub school_id: String,
    /// Classroom id.
    pub classroom_id: String,
    /// Device id.
    pub device_id: String,
    /// Class name shown on the board.
    pub class_name: String,
}

/// Clock state.
#[derive(Debug, Clone, Serialize)]
pub struct ClockInfo {
    /// Local time now (RFC 3339).
    pub now: String,
    /// IANA time zone.
    pub timezone: String,
    /// Whether the clock is NTP-synchronised.
    pub synced: bool,
    /// A demo/test clock set with `--clock`.
    pub simulated: bool,
    /// Where the time comes from and its state, e.g. "chrony: time.cloudflare.com
    /// (stratum 3), off by 0.2 ms", "chrony: not synchronised", "simulated (--clock)".
    pub source: String,
}

/// Store state.
#[derive(Debug, Clone, Serialize)]
pub struct StoreInfo {
    /// Database file.
    pub path: String,
    /// Schema version.
    pub schema_version: usize,
    /// Where a corrupt database was moved at start, if it was.
    pub quarantined: Option<String>,
    /// The last write failed because the disk is full.
    pub disk_full: bool,
    /// The last store error, if any.
    pub last_error: Option<String>,
}

/// Outbox state.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxInfo {
    /// Rows waiting, per stream.
    pub pending: BTreeMap<String, u64>,
    /// All rows waiting.
    pub total: u64,
}

/// Sync state.
#[derive(Debug, Clone, Serialize)]
pub struct SyncInfo {
    /// Connected to the broker now.
    pub connected: bool,
    /// Broker URL with any credentials removed; `None` when offline by configuration.
    pub broker: Option<String>,
    /// A word for people: "offline", "connecting", "connected", ...
    pub state: String,
    /// The broker link is plain `mqtt://`: unencrypted.
    pub insecure: bool,
    /// Outbox records published since start (including re-sends).
    pub published: u64,
    /// Outbox records the broker acknowledged since start.
    pub acked: u64,
    /// Connections made to the broker since start.
    pub connections: u64,
}

/// One device's health.
#[derive(Debug, Clone, Serialize)]
pub struct HardwareStatus {
    /// Name from the config, e.g. "door".
    pub name: String,
    /// Kind, e.g. "card_reader".
    pub kind: String,
    /// Driver, e.g. "simulated", "mfrc522".
    pub driver: String,
    /// "ok", "fault" or "absent".
    pub state: String,
    /// Why, when not ok.
    pub detail: Option<String>,
}

/// A lesson.
#[derive(Debug, Clone, Serialize)]
pub struct LessonInfo {
    /// "YYYY-MM-DD/P".
    pub id: String,
    /// Period number.
    pub period: u8,
    /// Subject.
    pub subject: String,
    /// Teacher.
    pub teacher: String,
    /// Room.
    pub room: Option<String>,
    /// upcoming / open / in_progress / ended / cancelled.
    pub state: String,
    /// Start (RFC 3339).
    pub starts_at: String,
    /// End (RFC 3339).
    pub ends_at: String,
    /// Attendance counts (for the current lesson).
    pub attendance: Option<AttendanceCounts>,
    /// What the school calendar changed about this lesson today, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<LessonChangeInfo>,
}

/// A dated change to a lesson (the `calendar` downlink's `changes`).
#[derive(Debug, Clone, Serialize)]
pub struct LessonChangeInfo {
    /// swap (调课), substitute (代课), event (exam or event), extra (加课) or cancel (停课).
    pub kind: String,
    /// The weekly timetable's subject, when the change replaced it.
    pub was_subject: Option<String>,
    /// The weekly timetable's teacher, when the change replaced them.
    pub was_teacher: Option<String>,
    /// The school's note, e.g. 与第5节对调.
    pub note: Option<String>,
}

/// The board's own screen: awake through the school day, asleep outside it
/// (`school.screen_sleep`; docs/ui.md, "The screen at night").
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScreenInfo {
    /// Awake now (always while an alarm is active, or when sleeping is turned off).
    pub awake: bool,
    /// Today's awake window (RFC 3339), if today has lessons.
    pub awake_from: Option<String>,
    /// The end of today's awake window.
    pub awake_until: Option<String>,
}

/// What the school shows on the board (`honours`, `duty`, `homework` downlinks).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContentInfo {
    /// Class honours and culture, in the school's order.
    pub honours: Vec<HonourInfo>,
    /// Who is on duty today (none on days without lessons).
    pub duty: Option<DutyInfo>,
    /// Homework still due, per subject.
    pub homework: Vec<HomeworkInfo>,
}

/// One honour.
#[derive(Debug, Clone, Serialize)]
pub struct HonourInfo {
    /// Its id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Text.
    pub text: Option<String>,
    /// Date awarded (YYYY-MM-DD).
    pub date: Option<String>,
    /// The image's path on this board (`/api/v1/honours/{id}/image`), if it has one.
    pub image: Option<String>,
}

/// Today's duty.
#[derive(Debug, Clone, Serialize)]
pub struct DutyInfo {
    /// The task, e.g. 擦黑板、扫地.
    pub task: Option<String>,
    /// Names of the students on duty.
    pub names: Vec<String>,
}

/// Homework of one subject.
#[derive(Debug, Clone, Serialize)]
pub struct HomeworkInfo {
    /// Subject.
    pub subject: String,
    /// What to do.
    pub text: String,
    /// Due date (YYYY-MM-DD).
    pub due: Option<String>,
}

/// Today in the school calendar.
#[derive(Debug, Clone, Serialize)]
pub struct DayInfo {
    /// The holiday's, day off's or make-up day's name (国庆节, 运动会, 国庆调休).
    pub name: Option<String>,
    /// The calendar version in force today (0: the config's calendar).
    pub calendar_version: u64,
    /// Lessons the calendar cancelled today (停课), in period order.
    pub cancelled: Vec<CancelledLesson>,
}

/// A lesson of the weekly timetable that the calendar cancelled for today.
#[derive(Debug, Clone, Serialize)]
pub struct CancelledLesson {
    /// Period number.
    pub period: u8,
    /// The weekly timetable's subject.
    pub subject: String,
    /// The weekly timetable's start (RFC 3339).
    pub starts_at: String,
    /// The school's note.
    pub note: Option<String>,
}

pub use ketang_contract::AttendanceCounts;

/// An active alarm.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmInfo {
    /// Alarm id.
    pub id: String,
    /// What raised it.
    pub source: String,
    /// A drill.
    pub drill: bool,
    /// When (RFC 3339).
    pub raised_at: String,
}

/// A notice.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeInfo {
    /// Notice id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Emergency broadcast.
    pub emergency: bool,
    /// Posted on this board by a teacher (a teacher may withdraw it); otherwise from the cloud.
    pub local: bool,
}

/// Event counters since start.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counters {
    /// Card taps seen.
    pub card_taps: u64,
    /// Taps of cards no student owns.
    pub unknown_cards: u64,
    /// Check-ins recorded.
    pub check_ins: u64,
    /// Health checks recorded.
    pub health_checks: u64,
    /// Alarms raised.
    pub alarms: u64,
    /// Hardware input that was rejected as malformed.
    pub rejected_inputs: u64,
    /// Clock jumps seen (backwards > 2 s or forwards > 5 min between ticks).
    pub clock_jumps: u64,
    /// Frames the camera handed to inference (sampled: one per `sample_every_ms`).
    pub camera_frames: u64,
}
