//! Whiteboard usage: how long the panel was on during a lesson.

use chrono::{DateTime, FixedOffset};

/// Seconds the panel was on between `from` and `to`, given its power changes in time order
/// (the first may lie before `from`: it gives the state at `from`; before any change the
/// panel counts as off).
pub(crate) fn on_seconds(
    changes: &[(DateTime<FixedOffset>, bool)],
    from: DateTime<FixedOffset>,
    to: DateTime<FixedOffset>,
) -> i64 {
    if to <= from {
        return 0;
    }
    let mut on_since: Option<DateTime<FixedOffset>> = None;
    let mut total = 0;
    for &(at, on) in changes {
        let at = at.clamp(from, to);
        match (on_since, on) {
            (None, true) => on_since = Some(at),
            (Some(since), false) => {
                total += (at - since).num_seconds();
                on_since = None;
            }
            _ => {}
        }
    }
    if let Some(since) = on_since {
        total += (to - since).num_seconds();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(hm: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(&format!("2026-11-23T{hm}:00+08:00")).unwrap()
    }

    #[test]
    fn usage_counts_only_the_lesson_and_only_while_on() {
        let (a, b) = (t("08:00"), t("08:45"));
        // On since before the lesson, off at 08:30.
        assert_eq!(
            on_seconds(&[(t("07:50"), true), (t("08:30"), false)], a, b),
            30 * 60
        );
        // Off, on at 08:10 until after the end.
        assert_eq!(
            on_seconds(&[(t("07:00"), false), (t("08:10"), true)], a, b),
            35 * 60
        );
        // Repeated "on" does not restart the count; never on is zero.
        assert_eq!(
            on_seconds(
                &[(t("08:00"), true), (t("08:20"), true), (t("08:40"), false)],
                a,
                b
            ),
            40 * 60
        );
        assert_eq!(on_seconds(&[], a, b), 0);
        assert_eq!(on_seconds(&[(t("09:00"), true)], a, b), 0);
    }
}
