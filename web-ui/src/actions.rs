//! What people do through the board: log in, act (teacher actions, alarms) and look at
//! the classroom's state. The device decides what an action means; this module decides who
//! may ask (roles) and how (sessions, CSRF), see [`crate::auth`].

use serde::Deserialize;

use crate::auth::Role;

/// How someone unlocks teacher mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A teacher's staff id and PIN.
    Pin {
        /// Staff id.
        staff_id: String,
        /// The PIN as typed.
        pin: String,
    },
    /// The staff card tapped on the board's reader within the last few seconds (claimable
    /// once, and only by the board's own kiosk browser, i.e. from the loopback address).
    Card,
    /// The technician password (set at provisioning).
    Technician {
        /// The password as typed.
        password: String,
    },
}

/// A state-changing request (`POST /api/v1/actions`, body `{"action": "...", ...}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Start a lesson before its time (check-in stays open; lateness still counts from the
    /// timetable's start).
    StartLesson {
        /// "YYYY-MM-DD/P".
        lesson_id: String,
    },
    /// End a lesson now (it is finalised at once).
    EndLesson {
        /// "YYYY-MM-DD/P".
        lesson_id: String,
    },
    /// Cancel a lesson that has not ended (nobody is marked absent).
    CancelLesson {
        /// "YYYY-MM-DD/P".
        lesson_id: String,
        /// Why (optional, e.g. "sports day").
        #[serde(default)]
        reason: Option<String>,
    },
    /// Set a student's status in a lesson (wins over card/face/system).
    SetAttendance {
        /// "YYYY-MM-DD/P".
        lesson_id: String,
        /// Student id.
        student_id: String,
        /// present / late / absent / leave / sick.
        status: ketang_contract::AttendanceStatus,
    },
    /// Resolve a same-day follow-up.
    ResolveFollowup {
        /// "YYYY-MM-DD/student".
        followup_id: String,
        /// What the teacher found out, e.g. "fever, at home" (may be empty with `outcome`).
        #[serde(default)]
        resolution: String,
        /// A ready-made reason: sick_leave, personal_leave, arrived, guardian_knows,
        /// unreachable.
        #[serde(default)]
        outcome: Option<String>,
        /// With sick_leave: fever, cough, diarrhoea_vomiting, rash or other.
        #[serde(default)]
        illness: Option<String>,
        /// With a leave outcome: the day the student is expected back (YYYY-MM-DD).
        #[serde(default)]
        return_date: Option<String>,
        /// Whether the guardian was contacted.
        contacted_guardian: bool,
    },
    /// Raise an emergency alarm (anyone) or a drill (teacher).
    RaiseAlarm {
        /// A drill: marked as such everywhere.
        #[serde(default)]
        drill: bool,
    },
    /// Clear an active alarm (teacher or technician).
    ClearAlarm {
        /// The alarm's id.
        alarm_id: String,
    },
    /// Post a local notice on this board.
    PostNotice {
        /// Title.
        title: String,
        /// Text.
        body: String,
        /// Higher shows first (0..=100).
        #[serde(default)]
        priority: i64,
        /// Shown from (RFC 3339; default now).
        #[serde(default)]
        valid_from: Option<String>,
        /// Shown until (RFC 3339; default end of today).
        #[serde(default)]
        valid_until: Option<String>,
    },
    /// Withdraw a local notice.
    WithdrawNotice {
        /// The notice's id.
        notice_id: String,
    },
    /// Enter approved leave for a student, from `from` (default now) until `until`.
    EnterLeave {
        /// Student id.
        student_id: String,
        /// Leave starts (RFC 3339; not before today). Default: now.
        #[serde(default)]
        from: Option<String>,
        /// Leave ends (RFC 3339).
        until: String,
        /// `sick` (病假), `personal` (事假) or `other` (default).
        #[serde(default)]
        kind: Option<String>,
        /// Why (kept on the device).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Switch the whiteboard / flat panel on or to standby, and/or select its input.
    Whiteboard {
        /// On (`true`) or standby.
        #[serde(default)]
        power: Option<bool>,
        /// hdmi1, hdmi2, dp, vga or ops.
        #[serde(default)]
        input: Option<String>,
    },
    /// Run a device's self-test (technician).
    SelfTest {
        /// The device's name (as on the status page).
        device: String,
    },
    /// Record (`granted: true`) or withdraw a guardian's consent to face recognition for a
    /// student (technician; withdrawal deletes the student's face templates).
    FaceConsent {
        /// Student id.
        student_id: String,
        /// Granted or withdrawn.
        granted: bool,
        /// When the guardian signed (RFC 3339); default now.
        #[serde(default)]
        granted_at: Option<String>,
    },
    /// Enrol a student's face from a photo (technician; needs a consent record).
    FaceEnrol {
        /// Student id.
        student_id: String,
        /// The photo, PNG or JPEG, base64: exactly one face, facing the camera.
        image_base64: String,
    },
    /// The teacher enrols her own voice (one room microphone: her voiceprint tells her
    /// speech from the students' in the lesson report). The board listens to the next
    /// recordings for up to 45 s, until 8 s of speech: the answer comes when it is done.
    VoiceEnrol,
    /// Stops a voice enrolment that is listening (a tap by mistake, a noisy room): nothing
    /// is stored and the waiting `voice_enrol` answers 409.
    VoiceEnrolCancel,
    /// The teacher deletes her own voiceprint.
    VoiceDelete,
    /// Record symptoms (and optionally a temperature taken by hand) at a health check.
    RecordSymptoms {
        /// Student id.
        student_id: String,
        /// E.g. ["cough", "fever"].
        symptoms: Vec<String>,
        /// A temperature taken by hand.
        #[serde(default)]
        temp_c: Option<f64>,
    },
}

impl Action {
    /// The action's name (the `action` field).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::StartLesson { .. } => "start_lesson",
            Self::EndLesson { .. } => "end_lesson",
            Self::CancelLesson { .. } => "cancel_lesson",
            Self::SetAttendance { .. } => "set_attendance",
            Self::ResolveFollowup { .. } => "resolve_followup",
            Self::RaiseAlarm { .. } => "raise_alarm",
            Self::ClearAlarm { .. } => "clear_alarm",
            Self::PostNotice { .. } => "post_notice",
            Self::WithdrawNotice { .. } => "withdraw_notice",
            Self::EnterLeave { .. } => "enter_leave",
            Self::RecordSymptoms { .. } => "record_symptoms",
            Self::Whiteboard { .. } => "whiteboard",
            Self::SelfTest { .. } => "self_test",
            Self::FaceConsent { .. } => "face_consent",
            Self::FaceEnrol { .. } => "face_enrol",
            Self::VoiceEnrol => "voice_enrol",
            Self::VoiceEnrolCancel => "voice_enrol_cancel",
            Self::VoiceDelete => "voice_delete",
        }
    }

    /// Whether `role` may do this. Anyone at the board may raise a real alarm; drills and
    /// clearing need a teacher or technician; the rest is the teacher's.
    #[must_use]
    pub const fn allowed(&self, role: Role) -> bool {
        match self {
            Self::RaiseAlarm { drill: false } => true,
            Self::RaiseAlarm { drill: true }
            | Self::ClearAlarm { .. }
            | Self::Whiteboard { .. } => {
                matches!(role, Role::Teacher | Role::Technician)
            }
            Self::SelfTest { .. } | Self::FaceConsent { .. } | Self::FaceEnrol { .. } => {
                matches!(role, Role::Technician)
            }
            _ => matches!(role, Role::Teacher),
        }
    }
}

/// Longest id (lesson, student, follow-up, alarm, notice, device) an action may carry.
pub(crate) const MAX_ID_CHARS: usize = 64;
/// Longest short free text (a reason, a resolution, a notice title).
pub(crate) const MAX_TEXT_CHARS: usize = 500;
/// Longest notice body.
pub(crate) const MAX_NOTICE_CHARS: usize = 5000;
/// Most symptoms in one `record_symptoms` (there are nine kinds).
pub(crate) const MAX_SYMPTOMS: usize = 9;
/// Longest enrolment photo, base64 (about 6 MiB of image).
pub(crate) const MAX_PHOTO_BASE64: usize = 8 * 1024 * 1024;

/// `s` cut to `max` characters, with "…" when it was cut.
#[must_use]
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

fn limit(field: &str, value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n > max {
        return Err(format!(
            "{field} is {n} characters long, at most {max}: {:?}…",
            value.chars().take(20).collect::<String>()
        ));
    }
    Ok(())
}

impl Action {
    /// Checks every string and list against its bound, so no action can make an outbox
    /// record, an audit row or a screen too large. `Err` names the field.
    ///
    /// # Errors
    /// The first field over its bound.
    pub fn check_limits(&self) -> Result<(), String> {
        match self {
            Self::StartLesson { lesson_id } | Self::EndLesson { lesson_id } => {
                limit("lesson_id", lesson_id, MAX_ID_CHARS)
            }
            Self::CancelLesson { lesson_id, reason } => {
                limit("lesson_id", lesson_id, MAX_ID_CHARS)?;
                limit("reason", reason.as_deref().unwrap_or(""), MAX_TEXT_CHARS)
            }
            Self::SetAttendance {
                lesson_id,
                student_id,
                ..
            } => {
                limit("lesson_id", lesson_id, MAX_ID_CHARS)?;
                limit("student_id", student_id, MAX_ID_CHARS)
            }
            Self::ResolveFollowup {
                followup_id,
                resolution,
                outcome,
                illness,
                return_date,
                ..
            } => {
                limit("followup_id", followup_id, MAX_ID_CHARS * 2)?;
                limit("outcome", outcome.as_deref().unwrap_or(""), MAX_ID_CHARS)?;
                limit("illness", illness.as_deref().unwrap_or(""), MAX_ID_CHARS)?;
                limit(
                    "return_date",
                    return_date.as_deref().unwrap_or(""),
                    MAX_ID_CHARS,
                )?;
                limit("resolution", resolution, MAX_TEXT_CHARS)
            }
            Self::RaiseAlarm { .. }
            | Self::VoiceEnrol
            | Self::VoiceEnrolCancel
            | Self::VoiceDelete => Ok(()),
            Self::ClearAlarm { alarm_id } => limit("alarm_id", alarm_id, MAX_ID_CHARS),
            Self::PostNotice {
                title,
                body,
                valid_from,
                valid_until,
                ..
            } => {
                limit("title", title, MAX_TEXT_CHARS)?;
                limit("body", body, MAX_NOTICE_CHARS)?;
                limit(
                    "valid_from",
                    valid_from.as_deref().unwrap_or(""),
                    MAX_ID_CHARS,
                )?;
                limit(
                    "valid_until",
                    valid_until.as_deref().unwrap_or(""),
                    MAX_ID_CHARS,
                )
            }
            Self::WithdrawNotice { notice_id } => limit("notice_id", notice_id, MAX_ID_CHARS),
            Self::EnterLeave {
                student_id,
                from,
                until,
                kind,
                reason,
            } => {
                limit("student_id", student_id, MAX_ID_CHARS)?;
                limit("from", from.as_deref().unwrap_or(""), MAX_ID_CHARS)?;
                limit("until", until, MAX_ID_CHARS)?;
                limit("kind", kind.as_deref().unwrap_or(""), MAX_ID_CHARS)?;
                limit("reason", reason.as_deref().unwrap_or(""), MAX_TEXT_CHARS)
            }
            Self::Whiteboard { input, .. } => {
                limit("input", input.as_deref().unwrap_or(""), MAX_ID_CHARS)
            }
            Self::SelfTest { device } => limit("device", device, MAX_ID_CHARS),
            Self::FaceConsent {
                student_id,
                granted_at,
                ..
            } => {
                limit("student_id", student_id, MAX_ID_CHARS)?;
                limit(
                    "granted_at",
                    granted_at.as_deref().unwrap_or(""),
                    MAX_ID_CHARS,
                )
            }
            Self::FaceEnrol {
                student_id,
                image_base64,
            } => {
                limit("student_id", student_id, MAX_ID_CHARS)?;
                if image_base64.len() > MAX_PHOTO_BASE64 {
                    return Err(format!(
                        "image_base64 is {} bytes long, at most {MAX_PHOTO_BASE64}",
                        image_base64.len()
                    ));
                }
                Ok(())
            }
            Self::RecordSymptoms {
                student_id,
                symptoms,
                ..
            } => {
                limit("student_id", student_id, MAX_ID_CHARS)?;
                if symptoms.len() > MAX_SYMPTOMS {
                    return Err(format!(
                        "symptoms has {} entries, at most {MAX_SYMPTOMS} (each kind once)",
                        symptoms.len()
                    ));
                }
                for s in symptoms {
                    limit("symptoms[]", s, MAX_ID_CHARS)?;
                }
                Ok(())
            }
        }
    }
}

/// What can be looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// Teachers who can unlock teacher mode (id, name): the login picker (anyone).
    Staff,
    /// A lesson of today with its roll (names, statuses): teacher. `None`: the lesson now
    /// (or the next, or today's last).
    Lesson {
        /// "YYYY-MM-DD/P" of one of today's lessons.
        lesson_id: Option<String>,
    },
    /// A lesson's report: teacher.
    Report {
        /// "YYYY-MM-DD/P".
        lesson_id: String,
    },
    /// Today's follow-up list: teacher.
    Followups,
    /// The last audit rows: teacher or technician.
    Audit,
    /// The technician's overview: identity, network and MQTT, outbox, hardware, redacted
    /// config, the last log lines: technician.
    Technician,
    /// Face enrolment: consent records and template counts per student (no images, no
    /// templates): technician.
    Faces,
    /// The diagnostics bundle (`docs/technician.md`, "Diagnose"): the overview plus
    /// versions, the system and the devices' states; never student data: technician.
    Diagnostics,
    /// The signed-in teacher's own voiceprint: whether the board can take one, and when
    /// hers was made (never the print): teacher.
    Voice,
}

impl View {
    /// Whether `role` may look.
    #[must_use]
    pub const fn allowed(&self, role: Role) -> bool {
        match self {
            Self::Staff => true,
            Self::Audit => matches!(role, Role::Teacher | Role::Technician),
            Self::Technician | Self::Faces | Self::Diagnostics => {
                matches!(role, Role::Technician)
            }
            _ => matches!(role, Role::Teacher),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_by_tag_and_refuse_unknown_fields() {
        let a: Action = serde_json::from_str(
            r#"{"action":"set_attendance","lesson_id":"2026-11-23/1","student_id":"s1","status":"sick"}"#,
        )
        .unwrap();
        assert_eq!(a.name(), "set_attendance");
        // The status is the domain's enum: anything else is refused while parsing, naming
        // what is accepted.
        let e = serde_json::from_str::<Action>(
            r#"{"action":"set_attendance","lesson_id":"l","student_id":"s1","status":"tardy"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tardy") && e.contains("present"), "{e}");
        assert!(
            serde_json::from_str::<Action>(r#"{"action":"raise_alarm","drill":true,"x":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Action>(r#"{"action":"format_disk"}"#).is_err());
    }

    #[test]
    fn only_a_real_alarm_is_open_to_the_kiosk() {
        assert!(Action::RaiseAlarm { drill: false }.allowed(Role::Kiosk));
        assert!(!Action::RaiseAlarm { drill: true }.allowed(Role::Kiosk));
        assert!(Action::RaiseAlarm { drill: true }.allowed(Role::Technician));
        let clear = Action::ClearAlarm {
            alarm_id: "a".into(),
        };
        assert!(!clear.allowed(Role::Kiosk));
        assert!(clear.allowed(Role::Technician));
        let set = Action::EndLesson {
            lesson_id: "x".into(),
        };
        assert!(set.allowed(Role::Teacher));
        assert!(!set.allowed(Role::Technician));
        assert!(!set.allowed(Role::Kiosk));
        assert!(View::Staff.allowed(Role::Kiosk));
        assert!(!View::Lesson { lesson_id: None }.allowed(Role::Kiosk));
    }
}
