//! The door-side e-paper sign: what it shows, redrawn when it changes.

use super::Classroom;

impl Classroom {
    /// What the door sign shows now; redrawn only when it changed.
    pub(super) async fn update_sign(&mut self) {
        let Some(sign) = self.sign.clone() else {
            return;
        };
        let now = self.clock.now();
        let opens = self.school.checkin_opens;
        let (current, next, runs) = {
            let tt = self.tt();
            (
                tt.current(now, opens),
                tt.next(now, opens),
                tt.calendar_on(now.date_naive(), now.timezone())
                    .runs(now.date_naive()),
            )
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
        let duty = match self.store.board_content(now.date_naive(), runs).await {
            Ok(c) => c
                .duty
                .filter(|(_, names)| !names.is_empty())
                // A character the sign's font lacks (outside GB 2312) is drawn as □ rather
                // than leaving the sign on its old face.
                .map(|(_, names)| {
                    let line = format!("值日：{}", names.join(" "));
                    line.chars()
                        .map(|ch| {
                            let mut b = [0u8; 4];
                            if ketang_drivers::sign::check_glyphs(ch.encode_utf8(&mut b)).is_ok() {
                                ch
                            } else {
                                '□'
                            }
                        })
                        .collect::<String>()
                }),
            Err(e) => {
                return self
                    .store_health
                    .failed("reading the duty roster for the sign", &e);
            }
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
            duty: duty.as_deref(),
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
