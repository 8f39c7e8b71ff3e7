//! Topic names (a contract: see `docs/mqtt.md`).

/// Prefix and version of every Ketang topic.
pub const ROOT: &str = "ketang/v1";

/// `ketang/v1/{school}/{device}/up/{stream}`.
pub fn up(school: &str, device: &str, stream: &str) -> String {
    format!("{ROOT}/{school}/{device}/up/{stream}")
}

/// `ketang/v1/{school}/{device}/status` (retained birth / last will).
pub fn status(school: &str, device: &str) -> String {
    format!("{ROOT}/{school}/{device}/status")
}

/// The two downlink filters a device subscribes to: its own and the school-wide one.
pub fn down_filters(school: &str, device: &str) -> [String; 2] {
    [
        format!("{ROOT}/{school}/{device}/down/+"),
        format!("{ROOT}/{school}/all/down/+"),
    ]
}

/// Who a downlink topic addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This device.
    Device,
    /// Every device of the school.
    School,
}

/// Parses a downlink topic of this device; returns the target and the kind.
pub fn parse_down<'t>(topic: &'t str, school: &str, device: &str) -> Option<(Target, &'t str)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix('/')?;
    let rest = rest.strip_prefix(school)?.strip_prefix('/')?;
    let (who, rest) = rest.split_once('/')?;
    let kind = rest.strip_prefix("down/")?;
    if kind.is_empty() || kind.contains('/') {
        return None;
    }
    let target = if who == device {
        Target::Device
    } else if who == "all" {
        Target::School
    } else {
        return None;
    };
    Some((target, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_contract() {
        assert_eq!(
            up("hf-1", "kt-1", "attendance"),
            "ketang/v1/hf-1/kt-1/up/attendance"
        );
        assert_eq!(status("hf-1", "kt-1"), "ketang/v1/hf-1/kt-1/status");
        assert_eq!(down_filters("hf-1", "kt-1")[1], "ketang/v1/hf-1/all/down/+");
    }

    #[test]
    fn downlink_topics_parse_only_for_this_device_or_its_school() {
        assert_eq!(
            parse_down("ketang/v1/hf-1/kt-1/down/roster", "hf-1", "kt-1"),
            Some((Target::Device, "roster"))
        );
        assert_eq!(
            parse_down("ketang/v1/hf-1/all/down/notice", "hf-1", "kt-1"),
            Some((Target::School, "notice"))
        );
        assert_eq!(
            parse_down("ketang/v1/hf-2/kt-1/down/roster", "hf-1", "kt-1"),
            None
        );
        assert_eq!(
            parse_down("ketang/v1/hf-1/kt-2/down/roster", "hf-1", "kt-1"),
            None
        );
        assert_eq!(
            parse_down("ketang/v1/hf-1/kt-1/up/roster", "hf-1", "kt-1"),
            None
        );
        assert_eq!(
            parse_down("ketang/v1/hf-1/kt-1/down/", "hf-1", "kt-1"),
            None
        );
    }
}
