//! Refusals in Chinese. The daemon words its refusals in English (logs, the cloud's acks,
//! tools); every refusal the board and `/tech` can meet also has its Chinese here, so a
//! teacher on a Chinese board never reads English. Answers carry both: `error` and
//! `error_zh` (docs/api.md, "Errors").
//!
//! A catalogue of sentence templates: `{x}` matches any text up to what follows it, and is
//! put into the Chinese as it was, or translated when it names a field.

/// (English template, Chinese template). The first that matches wins.
const CATALOGUE: &[(&str, &str)] = &[
    // The teacher's session.
    ("not unlocked", "请先解锁教师模式"),
    (
        "{what} needs teacher mode: unlock first",
        "需要教师模式：请先解锁",
    ),
    (
        "the session expired (locked after inactivity); unlock again",
        "长时间未操作已自动锁定，请重新解锁",
    ),
    (
        "the session is unknown (the device may have restarted); unlock again",
        "会话已失效（设备可能重启过），请重新解锁",
    ),
    (
        "A wrong PIN, staff id or password was entered.",
        "PIN码、工号或密码不正确",
    ),
    ("a PIN is 4 to 12 digits", "PIN码为4到12位数字"),
    ("log in as technician", "请以技术员身份登录"),
    ("technicians only", "仅限技术员"),
    ("a {role} may not see this", "当前身份无权查看"),
    (
        "an alarm from another device needs teacher mode; on the board, press the alarm button",
        "请在班牌上按住报警按钮报警",
    ),
    ("a {role} may not {what}", "当前身份无权执行此操作"),
    ("a staff id is 1 to 64 characters", "工号为1到64个字符"),
    (
        "card unlock works only on the board's own screen",
        "刷卡解锁只能在班牌本机上使用",
    ),
    (
        "from another device, log in over {at} ({why})",
        "从其他设备登录请使用 {at}（PIN码、密码和会话不以明文传输；请对照技术员页面上的证书指纹）",
    ),
    (
        "missing or wrong X-CSRF-Token header (use the token the login answered)",
        "请求缺少有效的安全令牌，请刷新页面后重试",
    ),
    (
        "state-changing requests must be Content-Type: application/json",
        "请求格式不对",
    ),
    (
        "send Content-Type: application/json (got {x})",
        "请求格式不对",
    ),
    (
        "this board answers to its IP address or localhost, not to other names",
        "请用班牌的IP地址访问",
    ),
    // The technician's page.
    (
        "the technician password needs at least 10 characters",
        "技术员密码至少10个字符",
    ),
    (
        "the technician password is already set (a factory reset clears it)",
        "技术员密码已设置（恢复出厂设置可清除）",
    ),
    (
        "the technician password is set on the board itself or by the provisioning file",
        "技术员密码只能在班牌本机或通过初始化文件设置",
    ),
    (
        "the provisioning file is not UTF-8 text",
        "初始化文件不是 UTF-8 文本",
    ),
    ("reading the body: {e}", "读取请求内容失败"),
    (
        "another update bundle is being received",
        "正在接收另一个更新包",
    ),
    (
        "the installer has not finished with the previous bundle yet",
        "上一个更新包还在安装中",
    ),
    (
        "the bundle is larger than {n} MiB (update.max_bundle_mb)",
        "更新包超过 {n} MiB",
    ),
    (
        "the bundle is {n} MiB; this board takes at most {m} MiB (update.max_bundle_mb)",
        "更新包 {n} MiB，本机最多接受 {m} MiB",
    ),
    (
        "the data partition filled up after {n} MiB of the bundle",
        "接收 {n} MiB 后数据分区已满",
    ),
    (
        "the data partition has {n} MiB free; the bundle needs {m} MiB and {k} MiB stay for the store",
        "数据分区只剩 {n} MiB：更新包需要 {m} MiB，另需为数据库保留 {k} MiB",
    ),
    // Lessons.
    ("the lesson has ended", "这节课已经下课"),
    (
        "the lesson has not started; start it or cancel it",
        "这节课还没开始：请先开始上课或取消本节",
    ),
    ("the lesson is already in progress", "这节课已经在上课"),
    ("the lesson was cancelled", "这节课已取消"),
    (
        "the lesson is on a later day; enter leave instead",
        "这节课在以后，请改为登记请假",
    ),
    (
        "period {n} is still in progress; end it first",
        "第{n}节还在上课，请先下课",
    ),
    (
        "lessons older than {n} days are corrected in the cloud",
        "{n}天前的课请在平台上更正",
    ),
    // Leave, health, follow-ups.
    (
        "from is before today: leave is entered for today or later",
        "开始日期早于今天：请假只能从今天或以后开始",
    ),
    (
        "until is not in the future, or not after from",
        "结束日期必须在开始日期之后且晚于现在",
    ),
    (
        "leave longer than 30 days is approved in the cloud",
        "超过30天的请假请在平台上审批",
    ),
    (
        "kind {k} is not sick, personal or other",
        "请假类型只能是病假、事假或其他",
    ),
    (
        "give symptoms, a temperature, or both",
        "请选择症状或填写体温",
    ),
    (
        "temp_c {t} is outside 30-45 °C; measure again",
        "体温 {t} 不在 30–45 °C 之间，请重新测量",
    ),
    ("symptom {s} is not one of {list}", "没有这个症状选项"),
    (
        "symptoms[{i}]: {s} is listed twice; give each symptom once",
        "症状重复了，每种只选一次",
    ),
    (
        "give an outcome or a resolution",
        "请选择处理结果或填写说明",
    ),
    (
        "illness goes with the outcome sick_leave",
        "病因只用于“病假”",
    ),
    (
        "return_date goes with a leave outcome (sick_leave, personal_leave)",
        "返校日期只用于病假或事假",
    ),
    (
        "return_date {d} is not within 30 days after the follow-up's day {day}",
        "返校日期须在当天之后30天内",
    ),
    (
        "return_date {d} is not a date (YYYY-MM-DD)",
        "返校日期格式不对（应为 年-月-日）",
    ),
    (
        "follow-up {id} was already resolved (by {by})",
        "这条跟进已由 {by} 处理",
    ),
    // Notices, alarms, devices, faces.
    ("priority is not 0..=100", "重要性须在 0 到 100 之间"),
    (
        "valid_until must be after valid_from and in the future",
        "显示截止时间须晚于开始时间且晚于现在",
    ),
    (
        "an alarm is active: the siren stays on; clear the alarm first",
        "报警进行中，警报器保持开启：请先解除报警",
    ),
    ("give power, input, or both", "请选择电源或信号源"),
    ("input {i} is not one of {list}", "一体机没有这个信号源"),
    (
        "face attendance is off on this board ({why})",
        "本机未开启人脸考勤",
    ),
    ("image_base64 is not base64: {e}", "照片数据无效"),
    (
        "granted_at {t} is not an RFC 3339 time: {e}",
        "同意时间格式不对",
    ),
    ("the device is shutting down", "设备正在关机，请稍后再试"),
    // Not found.
    ("not found: lesson {id}", "找不到这节课"),
    (
        "not found: student {id} on this lesson's roster",
        "这名学生不在本节课名单中",
    ),
    ("not found: student {id}", "找不到这名学生"),
    ("not found: follow-up {id}", "找不到这条跟进"),
    ("not found: active alarm {id}", "没有这个正在进行的报警"),
    (
        "not found: local notice {id} (cloud notices are withdrawn by the cloud)",
        "找不到本机发布的这条通知（平台发布的通知由平台撤回）",
    ),
    ("not found: device {d}", "没有这个设备"),
    ("not found: a whiteboard{rest}", "没有配置一体机"),
    ("not found: {what}", "找不到：{what}"),
    // Fields and their bounds (checked before anything else).
    ("{field} is empty", "{field}不能为空"),
    (
        "{field} is longer than {n} characters",
        "{field}超过 {n} 个字",
    ),
    (
        "{field} is {n} characters long, at most {m}: {x}",
        "{field}太长：{n} 个字，最多 {m} 个字",
    ),
    ("{field} {v} is not one of {list}", "{field}的取值无效"),
    ("{field}: no such local day", "{field}：没有这一天"),
    (
        "{field}: {v} is not an RFC 3339 time {rest}",
        "{field}：时间格式不对",
    ),
    ("invalid JSON body: {e}", "请求格式不对"),
    ("unavailable: {what}", "暂时无法完成：{what}"),
    (
        "internal error (see the device log)",
        "设备内部出错（详见设备日志）",
    ),
];

/// Field names as the board calls them.
const FIELDS: &[(&str, &str)] = &[
    ("resolution", "处理说明"),
    ("title", "标题"),
    ("body", "内容"),
    ("reason", "原因"),
    ("student_id", "学生"),
    ("lesson_id", "课"),
    ("followup_id", "跟进"),
    ("from", "开始日期"),
    ("until", "结束日期"),
    ("valid_from", "显示开始时间"),
    ("valid_until", "显示截止时间"),
    ("outcome", "处理结果"),
    ("illness", "病因"),
    ("return_date", "返校日期"),
    ("symptoms", "症状"),
    ("kind", "类型"),
    ("input", "信号源"),
    ("alarm_id", "报警"),
    ("notice_id", "通知"),
    ("device", "设备"),
    ("staff_id", "工号"),
    ("pin", "PIN码"),
    ("password", "密码"),
];

/// Matches `text` against `template`: the slots' values, or `None`.
fn matches<'a>(template: &str, text: &'a str) -> Option<Vec<(String, &'a str)>> {
    let mut slots = Vec::new();
    let mut rest = text;
    let mut t = template;
    let mut pending: Option<String> = None;
    loop {
        let (lit, after) = match t.find('{') {
            Some(i) => (&t[..i], Some(&t[i..])),
            None => (t, None),
        };
        match pending.take() {
            None => rest = rest.strip_prefix(lit)?,
            Some(name) => {
                // The slot runs to the next literal (to the end when nothing follows).
                let at = if lit.is_empty() {
                    if after.is_none() {
                        rest.len()
                    } else {
                        return None;
                    }
                } else if after.is_none() {
                    if !rest.ends_with(lit) {
                        return None;
                    }
                    rest.len() - lit.len()
                } else {
                    rest.find(lit)?
                };
                if at == 0 {
                    return None;
                }
                slots.push((name, &rest[..at]));
                rest = &rest[at + lit.len()..];
            }
        }
        let Some(after) = after else { break };
        let close = after.find('}')?;
        pending = Some(after[1..close].to_owned());
        t = &after[close + 1..];
        if t.is_empty() {
            // A slot at the very end takes the rest.
            if rest.is_empty() {
                return None;
            }
            slots.push((pending.take().unwrap_or_default(), rest));
            rest = "";
            break;
        }
    }
    rest.is_empty().then_some(slots)
}

fn field_zh(name: &str) -> String {
    FIELDS
        .iter()
        .find(|(en, _)| *en == name)
        .map_or_else(|| name.to_owned(), |(_, zh)| (*zh).to_owned())
}

/// The Chinese for an English refusal, if the catalogue knows it.
#[must_use]
pub fn refusal_zh(en: &str) -> Option<String> {
    for (tpl, zh) in CATALOGUE {
        if let Some(slots) = matches(tpl, en) {
            let mut out = (*zh).to_owned();
            for (name, value) in slots {
                let v = if name == "field" {
                    field_zh(value)
                } else {
                    value.trim_matches('"').to_owned()
                };
                out = out.replace(&format!("{{{name}}}"), &v);
            }
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal a teacher or technician can meet on the board, as the daemon words it.
    const SEEN: &[&str] = &[
        "resolution is empty",
        "title is longer than 200 characters",
        "body is 1200 characters long, at most 1000: \"aaaaaaaaaaaaaaaaaaaa\"…",
        "not found: lesson \"2026-11-23/9\" (ids are YYYY-MM-DD/P for a period in the timetable)",
        "not found: student \"S9\" on this lesson's roster",
        "not found: student \"S9\"",
        "not found: follow-up \"f1\"",
        "not found: active alarm \"a1\"",
        "not found: local notice \"n1\" (cloud notices are withdrawn by the cloud)",
        "not found: a whiteboard (none is configured: hardware.whiteboard)",
        "follow-up \"f1\" was already resolved (by 王丽华)",
        "the lesson has ended",
        "the lesson has not started; start it or cancel it",
        "period 2 is still in progress; end it first",
        "lessons older than 7 days are corrected in the cloud",
        "from is before today: leave is entered for today or later",
        "until is not in the future, or not after from",
        "kind \"x\" is not sick, personal or other",
        "temp_c 52 is outside 30-45 °C; measure again",
        "symptom \"itch\" is not one of cough, fever",
        "symptoms[1]: \"cough\" is listed twice; give each symptom once",
        "return_date 2027-03-01 is not within 30 days after the follow-up's day 2026-11-23",
        "return_date x is not a date (YYYY-MM-DD)",
        "valid_until must be after valid_from and in the future",
        "until: no such local day",
        "valid_until: \"x\" is not an RFC 3339 time (e.g. 2026-11-23T17:00:00+08:00): premature end",
        "outcome \"x\" is not one of arrived, sick_leave",
        "the session expired (locked after inactivity); unlock again",
        "attendance needs teacher mode: unlock first",
        "invalid JSON body: missing field `student_id` at line 1 column 30",
        "input \"hdmi9\" is not one of hdmi1, hdmi2, dp, vga, ops",
        "an alarm is active: the siren stays on; clear the alarm first",
        "the technician password needs at least 10 characters",
        "the data partition has 100 MiB free; the bundle needs 300 MiB and 64 MiB stay for the store",
        "a teacher may not see this",
    ];

    #[test]
    fn every_refusal_the_board_meets_has_its_chinese() {
        for en in SEEN {
            let zh = refusal_zh(en).unwrap_or_else(|| panic!("no Chinese for {en:?}"));
            assert!(
                !zh.chars().any(|c| c.is_ascii_alphabetic())
                    || ["PIN", "°C", "MiB"].iter().any(|u| zh.contains(u)),
                "{en:?} → {zh:?} still has English"
            );
        }
    }

    #[test]
    fn slots_are_filled_and_fields_named_in_chinese() {
        assert_eq!(
            refusal_zh("resolution is empty").unwrap(),
            "处理说明不能为空"
        );
        assert_eq!(
            refusal_zh("period 2 is still in progress; end it first").unwrap(),
            "第2节还在上课，请先下课"
        );
        assert_eq!(
            refusal_zh("follow-up \"f1\" was already resolved (by 王丽华)").unwrap(),
            "这条跟进已由 王丽华 处理"
        );
        assert_eq!(refusal_zh("something new"), None);
        assert_eq!(refusal_zh(""), None);
    }
}
