//! The same-day follow-up list (因病缺勤追踪): when the morning check window closes, every
//! student of the class roster who was not seen that morning (no morning health check, no
//! check-in to any lesson so far that day) and has no approved leave (from the cloud, or
//! entered or marked as `leave` by the teacher) is to be followed up by the teacher the same
//! day. A student marked `sick` is still followed up: the follow-up records the illness and
//! the contact with the guardian, which is what the health authorities ask for.

use std::collections::HashSet;

use ketang_sync::DayPresence;

/// Why a follow-up was opened (a contract value on the `followup` stream).
pub(crate) const ABSENT_AT_MORNING_CHECK: &str = "absent_at_morning_check";
/// Not seen at the noon check (午检) though the day has lessons: gone home at lunch, say.
pub(crate) const ABSENT_AT_NOON_CHECK: &str = "absent_at_noon_check";
/// A fever at a health check (the reading, or the teacher's re-take or symptoms).
pub(crate) const FEVER_AT_CHECK: &str = "fever_at_check";
/// Not seen at the evening check (晚检) of a boarding school.
pub(crate) const ABSENT_AT_EVENING_CHECK: &str = "absent_at_evening_check";

/// Students not seen that morning: followed up unless on leave.
pub(crate) fn unseen(p: &DayPresence) -> Vec<String> {
    p.class_members
        .iter()
        .filter(|s| {
            !p.checked.contains(*s) && !p.checked_in.contains(*s) && !p.excused.contains(*s)
        })
        .cloned()
        .collect()
}

/// Those of `unseen` without approved leave.
pub(crate) fn to_follow_up(unseen: Vec<String>, on_leave: &HashSet<String>) -> Vec<String> {
    unseen
        .into_iter()
        .filter(|s| !on_leave.contains(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_students_unseen_and_without_leave_are_followed_up() {
        let p = DayPresence {
            class_members: vec![
                "S1".into(),
                "S2".into(),
                "S3".into(),
                "S4".into(),
                "S5".into(),
            ],
            checked: ["S1".to_owned()].into(),
            checked_in: ["S2".to_owned()].into(),
            excused: ["S5".to_owned()].into(),
        };
        let unseen = unseen(&p);
        assert_eq!(unseen, vec!["S3".to_owned(), "S4".to_owned()]);
        assert_eq!(
            to_follow_up(unseen, &["S4".to_owned()].into()),
            vec!["S3".to_owned()]
        );
    }
}
