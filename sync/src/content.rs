//! What the school shows on the class board, display only (docs/mqtt.md): class honours
//! and culture (班级荣誉, 班级风采) with an optional small image, the duty roster (值日生)
//! and the day's homework per subject (作业). Each is validated whole before it is stored.

use std::collections::HashSet;

use base64::Engine as _;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Honours shown at once.
pub const MAX_HONOURS: usize = 12;
/// Bytes of one honour's image (PNG or JPEG, after base64 decoding).
pub const MAX_IMAGE_BYTES: usize = 96 * 1024;
/// Pixels of an honour image's longer side (a small file can still decode to a huge bitmap).
pub const MAX_IMAGE_SIDE: u32 = 1600;
/// Homework entries of one day.
pub const MAX_HOMEWORK: usize = 16;
/// Students on duty on one day.
pub const MAX_ON_DUTY: usize = 16;

/// The class's honours, a versioned snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HonoursDoc {
    /// Must be newer than the applied version.
    pub version: u64,
    /// Shown in this order.
    pub items: Vec<Honour>,
}

/// One honour or culture item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Honour {
    /// Unique within the snapshot (names the image's URL).
    pub id: String,
    /// e.g. 流动红旗, 校运会团体第一.
    pub title: String,
    /// A line or two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// When it was awarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// A small PNG or JPEG, base64 (standard alphabet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// The duty roster (值日生), a versioned snapshot by weekday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyDoc {
    /// Must be newer than the applied version.
    pub version: u64,
    /// One entry per weekday with duty.
    pub days: Vec<DutyDay>,
}

/// Who is on duty on a weekday (the weekday whose timetable runs: a make-up Saturday that
/// runs Monday has Monday's duty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyDay {
    /// 1 = Monday .. 7 = Sunday.
    pub weekday: u8,
    /// Student ids (school numbers) of the roster; the board shows their names.
    pub students: Vec<String>,
    /// e.g. 擦黑板、扫地.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// One day's homework, replacing what that day had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeworkDoc {
    /// The school day it was set.
    pub date: NaiveDate,
    /// Per subject.
    pub items: Vec<HomeworkItem>,
}

/// Homework of one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeworkItem {
    /// e.g. 数学.
    pub subject: String,
    /// What to do.
    pub text: String,
    /// When it is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
}

fn text(p: &mut Vec<String>, field: &str, v: Option<&str>, max: usize, required: bool) {
    crate::limits::check_text(p, field, v, max, required, true);
}

/// An image's type and pixel size from its header: PNG (IHDR) or baseline/progressive
/// JPEG (the first SOF marker).
fn image_size(b: &[u8]) -> Result<(&'static str, u32, u32), String> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        if b.len() < 24 || &b[12..16] != b"IHDR" {
            return Err("a PNG without its IHDR header".into());
        }
        let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        return Ok(("image/png", be(16), be(20)));
    }
    if b.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 9 < b.len() {
            if b[i] != 0xFF {
                return Err("a JPEG whose markers do not parse".into());
            }
            let marker = b[i + 1];
            let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
                let h = u32::from(u16::from_be_bytes([b[i + 5], b[i + 6]]));
                let w = u32::from(u16::from_be_bytes([b[i + 7], b[i + 8]]));
                return Ok(("image/jpeg", w, h));
            }
            if len < 2 {
                return Err("a JPEG whose markers do not parse".into());
            }
            i += 2 + len;
        }
        return Err("a JPEG without a frame header".into());
    }
    Err("not a PNG or JPEG".into())
}

/// The decoded image of an honour and its MIME type, checked.
///
/// # Errors
/// Not base64, too large, not a PNG or JPEG, or too many pixels.
pub fn honour_image(b64: &str) -> Result<(&'static str, Vec<u8>), String> {
    if b64.len() > MAX_IMAGE_BYTES * 4 / 3 + 4 {
        return Err(format!(
            "{} base64 characters: over the {} KiB image limit",
            b64.len(),
            MAX_IMAGE_BYTES / 1024
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(format!(
            "{} bytes: over the {} KiB image limit",
            bytes.len(),
            MAX_IMAGE_BYTES / 1024
        ));
    }
    let (mime, w, h) = image_size(&bytes)?;
    if w == 0 || h == 0 || w.max(h) > MAX_IMAGE_SIDE {
        return Err(format!("{w}×{h} pixels: sides must be 1–{MAX_IMAGE_SIDE}"));
    }
    Ok((mime, bytes))
}

/// Every problem of an honours snapshot; empty when it may be applied.
#[must_use]
pub fn check_honours(d: &HonoursDoc) -> Vec<String> {
    let mut p = Vec::new();
    if d.version == 0 {
        p.push("version must be at least 1".into());
    }
    if d.items.len() > MAX_HONOURS {
        p.push(format!("{} items (at most {MAX_HONOURS})", d.items.len()));
        return p;
    }
    let mut ids = HashSet::new();
    for (i, h) in d.items.iter().enumerate() {
        let f = format!("items[{i}]");
        text(&mut p, &format!("{f}.id"), Some(&h.id), 64, true);
        if !h
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            p.push(format!("{f}.id: only A-Z a-z 0-9 - _ ."));
        } else if !ids.insert(h.id.as_str()) {
            p.push(format!(
                "{f}.id {} is listed twice",
                crate::limits::excerpt(&h.id)
            ));
        }
        text(&mut p, &format!("{f}.title"), Some(&h.title), 40, true);
        text(&mut p, &format!("{f}.text"), h.text.as_deref(), 200, false);
        if let Some(img) = &h.image
            && let Err(e) = honour_image(img)
        {
            p.push(format!("{f}.image: {e}"));
        }
    }
    p
}

/// Every problem of a duty roster; `known` says whether a student id is on the roster.
#[must_use]
pub fn check_duty(d: &DutyDoc, known: impl Fn(&str) -> bool) -> Vec<String> {
    let mut p = Vec::new();
    if d.version == 0 {
        p.push("version must be at least 1".into());
    }
    if d.days.len() > 7 {
        p.push(format!("{} days (at most 7)", d.days.len()));
        return p;
    }
    let mut days = HashSet::new();
    for (i, day) in d.days.iter().enumerate() {
        let f = format!("days[{i}]");
        if !(1..=7).contains(&day.weekday) {
            p.push(format!("{f}.weekday: {} is not 1-7", day.weekday));
        } else if !days.insert(day.weekday) {
            p.push(format!("{f}.weekday {} is listed twice", day.weekday));
        }
        if day.students.is_empty() || day.students.len() > MAX_ON_DUTY {
            p.push(format!(
                "{f}.students: {} (1 to {MAX_ON_DUTY})",
                day.students.len()
            ));
        }
        for (j, s) in day.students.iter().enumerate() {
            if !known(s) {
                p.push(format!(
                    "{f}.students[{j}]: {} is not a student of this board's roster",
                    crate::limits::excerpt(s)
                ));
            }
        }
        text(&mut p, &format!("{f}.task"), day.task.as_deref(), 40, false);
    }
    p
}

/// Every problem of a day's homework.
#[must_use]
pub fn check_homework(d: &HomeworkDoc) -> Vec<String> {
    let mut p = Vec::new();
    if d.items.len() > MAX_HOMEWORK {
        p.push(format!("{} items (at most {MAX_HOMEWORK})", d.items.len()));
        return p;
    }
    for (i, h) in d.items.iter().enumerate() {
        let f = format!("items[{i}]");
        text(&mut p, &format!("{f}.subject"), Some(&h.subject), 20, true);
        text(&mut p, &format!("{f}.text"), Some(&h.text), 300, true);
        if let Some(due) = h.due
            && due < d.date
        {
            p.push(format!(
                "{f}.due {due} is before the day it was set ({})",
                d.date
            ));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        b.extend(w.to_be_bytes());
        b.extend(h.to_be_bytes());
        b.extend([8, 2, 0, 0, 0]);
        b
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn images_are_checked_by_type_size_and_pixels() {
        assert_eq!(honour_image(&b64(&png(320, 200))).unwrap().0, "image/png");
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 0, 120, 0, 160, 3, 0, 0,
        ];
        assert_eq!(honour_image(&b64(&jpeg)).unwrap().0, "image/jpeg");
        assert!(
            honour_image(&b64(&png(20_000, 20_000)))
                .unwrap_err()
                .contains("sides")
        );
        assert!(
            honour_image(&b64(b"GIF89a..."))
                .unwrap_err()
                .contains("not a PNG or JPEG")
        );
        assert!(honour_image("%%%").unwrap_err().contains("not base64"));
        let big = b64(&vec![0u8; MAX_IMAGE_BYTES + 1]);
        assert!(honour_image(&big).unwrap_err().contains("image limit"));
    }

    #[test]
    fn each_kind_names_its_problems() {
        let h = HonoursDoc {
            version: 1,
            items: vec![
                Honour {
                    id: "a".into(),
                    title: "流动红旗".into(),
                    text: None,
                    date: None,
                    image: Some(b64(&png(10, 10))),
                },
                Honour {
                    id: "a".into(),
                    title: String::new(),
                    text: None,
                    date: None,
                    image: Some("x".into()),
                },
            ],
        };
        let p = check_honours(&h);
        assert!(
            p.iter().any(|x| x == "items[1].id \"a\" is listed twice"),
            "{p:?}"
        );
        assert!(p.iter().any(|x| x == "items[1].title is empty"), "{p:?}");
        assert!(
            p.iter()
                .any(|x| x.starts_with("items[1].image: not base64")),
            "{p:?}"
        );
        let d = DutyDoc {
            version: 2,
            days: vec![
                DutyDay {
                    weekday: 1,
                    students: vec!["S1".into()],
                    task: Some("扫地".into()),
                },
                DutyDay {
                    weekday: 1,
                    students: vec!["S9".into()],
                    task: None,
                },
            ],
        };
        let p = check_duty(&d, |s| s == "S1");
        assert_eq!(
            p,
            vec![
                "days[1].weekday 1 is listed twice".to_owned(),
                "days[1].students[0]: \"S9\" is not a student of this board's roster".to_owned()
            ]
        );
        let w = HomeworkDoc {
            date: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            items: vec![HomeworkItem {
                subject: "数学".into(),
                text: "练习册第12页".into(),
                due: NaiveDate::from_ymd_opt(2026, 11, 22),
            }],
        };
        assert_eq!(
            check_homework(&w),
            vec!["items[0].due 2026-11-22 is before the day it was set (2026-11-23)".to_owned()]
        );
    }
}
