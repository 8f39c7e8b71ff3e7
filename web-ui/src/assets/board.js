// The class board: live status over server-sent events, check-in feedback, teacher mode,
// emergency takeover. No framework, no build step, nothing from the internet.
"use strict";

const I18N = {
  zh: {
    teacher_mode: "教师", offline: "与设备的连接已断开，正在重新连接…", today: "今日课表", notices: "通知",
    raise_alarm: "紧急报警", hold_hint: "按住 1.5 秒", hold_to_raise: "请按住报警按钮 1.5 秒，进度条走满即报警",
    drill: "演练 DRILL", alarm_title: "紧急警报", alarm_in: "报警教室：",
    alarm_step1: "保持冷静，听从老师指挥", alarm_step2: "按疏散路线有序离开教室", alarm_step3: "到达集合点后清点人数",
    clear_alarm: "解除警报（需教师解锁）", unlock_title: "教师解锁", unlock_card_hint: "选择您的名字并输入PIN码，或在读卡器上刷教师卡。",
    cancel: "取消", tab_roll: "点名", tab_report: "课堂报告", tab_followups: "缺勤跟进", tab_notice: "发布通知",
    lock: "锁定", start_lesson: "开始上课", end_lesson: "下课", cancel_lesson: "取消本节", drill_start: "报警演练",
    notice_title: "标题", notice_body: "内容", post: "发布",
    period: n => `第${n}节`, no_lesson: "当前没有课", next: "下一节", none_today: "今天没有课",
    ch_swap: "调课", ch_substitute: "代课", ch_event: "考试/活动", ch_extra: "加课", ch_cancel: "停课", was: "原",
    day_named: n => `今天：${n}，没有课`, makeup_named: n => `今天：${n}`,
    duty: "值日生", homework: "作业", honours: "班级荣誉", due: (m, d) => `${m}月${d}日交`,
    open: "签到中", in_progress: "上课中", ended: "已下课", upcoming: "未开始", cancelled: "已取消",
    present: "已到", late: "迟到", absent: "缺勤", leave: "请假", sick: "病假", unmarked: "未到",
    checked_in: "已签到", by_face: "人脸识别", repeat: "已签到过", unknown_card: "未登记的卡", not_on_roster: "不在本节课名单中",
    no_lesson_tap: "现在不是签到时间", fever: "体温偏高，请到老师处复测", normal_temp: "体温正常",
    synced: "已同步", unsynced: n => `待同步 ${n}`, not_connected: "离线",
    unlocked_as: n => `${n}（教师模式）`, lock_in: s => `${s}秒后自动锁定`,
    need_unlock: "需要教师解锁", conflict: "当前不能执行：", bad_input: "输入有误：", not_found: "未找到：",
    failed: "操作失败，请重试", wrong_pin: "PIN码错误", too_many: s => `错误次数过多，请${s}秒后再试`,
    done: "已完成", confirm_cancel: "确定取消本节课吗？", confirm_cancel_body: "取消后本节课不记考勤，已签到的记录保留。",
    back: "返回", end_anyway: "仍然下课", more_notices: n => `另有 ${n} 条通知`,
    wbs_on: "开", wbs_off: "关", wbs_ops: "内置电脑", wbs_hdmi1: "HDMI 1", wbs_hdmi2: "HDMI 2", wbs_dp: "DP", wbs_vga: "VGA", hw_fault: "故障", hw_absent: "未连接",
    confirm_end: n => `还有 ${n} 名学生未签到`, confirm_end_body: n => `现在下课，这 ${n} 名学生将记为缺勤。请先确认他们是否请假或迟到。`, report_none: "本节课结束后才有报告",
    roster: "应到", checked: "已检", fever_n: "发热", unchecked: "未检", health: "晨午检", morning: "晨检", noon: "午检", evening: "晚检",
    resolution: "情况说明", contacted: "已联系家长", resolve: "处理", resolved: "已处理",
    no_followups: "今天没有需要跟进的学生", revision: n => `第${n}版`, drill_on: "演练进行中",
    wb_on: "开一体机", wb_off: "关一体机", wb_ops: "内置电脑", whiteboard: "一体机", wb_none: "未配置一体机",
    health_ambiguous: "无法确定是谁的体温，未记录：请一位一位地测温、刷卡",
    fr_absent_at_morning_check: "晨检未到", fr_absent_at_noon_check: "午检未到", fr_absent_at_evening_check: "晚检未到", fr_fever_at_check: "发热",
    fo_sick_leave: "病假", fo_personal_leave: "事假", fo_arrived: "已到校", fo_guardian_knows: "家长已知", fo_unreachable: "联系不上",
    fu_illness: "病因", il_fever: "发热", il_cough: "咳嗽", il_diarrhoea_vomiting: "腹泻/呕吐", il_rash: "皮疹", il_other: "其他",
    fu_back: "返校", back_in: n => ["", "明天", "后天", "三天后"][n], resolution_optional: "补充说明（可不填）",
    notice_phrases: "常用", notice_priority: "重要性", notice_until: "显示到", notice_mine: "本班牌发布的通知", notice_none: "还没有本班牌发布的通知",
    prio_normal: "普通", prio_high: "重要", d_three: "三天", withdraw: "撤回",
    np_supplies_t: "带齐学习用品", np_supplies_b: "请同学们明天带齐各科课本和作业。", np_cleaning_t: "值日安排", np_cleaning_b: "今天的值日生放学后留下打扫教室卫生。",
    np_pe_indoor_t: "体育课改在室内", np_pe_indoor_b: "因天气原因，今天的体育课改在教室上。", np_sign_t: "回执请签字", np_sign_b: "请把家长签字的回执明天交给班主任。",
    np_parents_t: "家长会通知", np_parents_b: "本周五下午召开家长会，请通知家长准时参加。",
    symptoms_more: "症状/复测…", symptoms_title: n => `症状与复测：${n}`, symptoms_label: "症状", retake_label: "复测体温",
    not_retaken: "未复测", colder: "降低0.1度", warmer: "升高0.1度", record: "记录", fever_names: "发热学生",
    sy_fever: "发热", sy_cough: "咳嗽", sy_sore_throat: "咽痛", sy_headache: "头痛", sy_vomiting: "呕吐", sy_diarrhea: "腹泻", sy_rash: "皮疹", sy_fatigue: "乏力", sy_other: "其他",
    leave_more: "请假…", leave_title: n => `请假：${n}`, leave_kind: "类型", leave_from: "开始", leave_to: "结束", leave_reason: "原因",
    lk_sick: "病假", lk_personal: "事假", lk_other: "其他", d_today: "今天", d_tomorrow: "明天", d_friday: "本周五", d_week: "一周",
    r_fever: "发烧", r_doctor: "看病", r_family: "家中有事", r_event: "比赛活动", r_other: "其他原因",
    leave_yes: "确定请假", leave_sum: (k, a, b) => `${k}：${a} 至 ${b}（含）`, leave_done: "已登记请假",
    ai: "课堂分析", ai_note: "全班统计，不针对个人", people_seen: "看到人数", in_room: "在班人数", people_differ: "不一致，请核对名单",
    hand_raises: "举手", times: n => `${n} 次`, heads_up: "抬头率", standing_max: "同时站立最多", heads_down_chart: "低头比例（每5分钟）",
    minute: n => `${n}分`, st_chart: "S-T 曲线（每30秒采样）", st_rtch: "Rt-Ch 图", st_type: "课型",
    t_lecture: "讲授型", t_practice: "练习型", t_dialogue: "对话型", t_mixed: "混合型",
    st_room_mic: "单个教室麦克风：学生发言也计为教师（T）。在下方录入您的声纹即可区分学生发言", st_teacher_mic: "教师无线麦克风单独一路",
    st_voiceprint: "单个教室麦克风，按教师声纹区分教师与学生发言", student_turns: n => `学生发言 <b>${n}</b> 次`,
    voice_title: "我的声纹（区分教师与学生发言）", voice_none: "尚未录入。录入后，课堂报告可区分您和学生的发言；声纹只保存在本机，可随时删除。",
    voice_have: (d, s) => `已录入（${d}，${s} 秒语音）。只保存在本机，不上传。`, voice_enrol: "录入我的声纹", voice_again: "重新录入", voice_delete: "删除我的声纹",
    voice_listening: "正在聆听，请用平常讲课的声音朗读：",
    voice_text: "同学们好，今天我们学习新的一课。请大家打开课本，先自己读一遍课文，把不认识的字圈出来。读完以后，和同桌说一说这篇课文主要讲了什么。",
    voice_done: "声纹已录入", voice_deleted: "声纹已删除", voice_confirm: "删除您在本机的声纹？",
    voice_cancel: "取消录入", voice_cancelled: "已取消录入，未保存任何内容",
    talk: "发言时长", teacher_talk: "教师", min_s: s => `${Math.floor(s / 60)}分${Math.round(s % 60)}秒`,
    week: "本周趋势", w_date: "日期", w_lessons: "课数", w_attendance: "出勤率", w_hands: "举手", w_heads_up: "抬头率", w_rt: "Rt",
    ai_none: "本节课没有摄像头或麦克风数据",
    expr: "表情（学校开启的可选功能，全班合计）", expr_engaged: "投入", expr_neutral: "平静", expr_negative: "消极", expr_faces: n => `共 ${n} 张脸次`,
  },
  en: {
    teacher_mode: "Teacher", offline: "Connection to the device lost; reconnecting…", today: "Today", notices: "Notices",
    raise_alarm: "Emergency", hold_hint: "hold 1.5 s", hold_to_raise: "Hold the alarm button for 1.5 s, until the bar is full",
    drill: "DRILL", alarm_title: "EMERGENCY", alarm_in: "Alarm in: ",
    alarm_step1: "Stay calm and follow your teacher", alarm_step2: "Leave the room by the evacuation route", alarm_step3: "Count everyone at the assembly point",
    clear_alarm: "Clear the alarm (teacher unlock)", unlock_title: "Teacher unlock", unlock_card_hint: "Choose your name and enter your PIN, or tap your staff card on the reader.",
    cancel: "Cancel", tab_roll: "Roll", tab_report: "Lesson report", tab_followups: "Follow-ups", tab_notice: "Post a notice",
    lock: "Lock", start_lesson: "Start lesson", end_lesson: "End lesson", cancel_lesson: "Cancel lesson", drill_start: "Alarm drill",
    notice_title: "Title", notice_body: "Text", post: "Post",
    period: n => `Period ${n}`, no_lesson: "No lesson now", next: "Next", none_today: "No lessons today",
    ch_swap: "Swapped", ch_substitute: "Substitute", ch_event: "Exam/event", ch_extra: "Extra", ch_cancel: "Cancelled", was: "was",
    day_named: n => `Today: ${n}, no lessons`, makeup_named: n => `Today: ${n}`,
    duty: "On duty", homework: "Homework", honours: "Class honours", due: (m, d) => `due ${m}/${d}`,
    open: "Check-in open", in_progress: "In progress", ended: "Ended", upcoming: "Upcoming", cancelled: "Cancelled",
    present: "Present", late: "Late", absent: "Absent", leave: "Leave", sick: "Sick", unmarked: "Not in",
    checked_in: "Checked in", by_face: "by face", repeat: "Already checked in", unknown_card: "Unknown card", not_on_roster: "Not on this lesson's roster",
    no_lesson_tap: "No lesson open for check-in", fever: "Temperature high: see your teacher", normal_temp: "Temperature normal",
    synced: "Synced", unsynced: n => `${n} waiting`, not_connected: "Offline",
    unlocked_as: n => `${n} (teacher mode)`, lock_in: s => `locks in ${s} s`,
    need_unlock: "Teacher unlock needed", conflict: "Not possible now: ", bad_input: "Check the input: ", not_found: "Not found: ",
    failed: "That failed; try again", wrong_pin: "Wrong PIN", too_many: s => `Too many attempts; try again in ${s} s`,
    done: "Done", confirm_cancel: "Cancel this lesson?", confirm_cancel_body: "A cancelled lesson keeps no attendance; check-ins already made are kept.",
    back: "Back", end_anyway: "End anyway", more_notices: n => `${n} more notices`,
    wbs_on: "on", wbs_off: "off", wbs_ops: "built-in PC", wbs_hdmi1: "HDMI 1", wbs_hdmi2: "HDMI 2", wbs_dp: "DP", wbs_vga: "VGA", hw_fault: "fault", hw_absent: "not connected",
    confirm_end: n => `${n} students have not checked in`, confirm_end_body: n => `If the lesson ends now, these ${n} students are marked absent. Check first whether they are on leave or late.`, report_none: "The report exists once the lesson has ended",
    roster: "Roster", checked: "Checked", fever_n: "Fever", unchecked: "Not checked", health: "Health checks", morning: "Morning", noon: "Noon", evening: "Evening",
    resolution: "What happened", contacted: "Guardian contacted", resolve: "Resolve", resolved: "Resolved",
    no_followups: "Nobody to follow up today", revision: n => `revision ${n}`, drill_on: "Drill in progress",
    wb_on: "Panel on", wb_off: "Panel off", wb_ops: "Built-in PC", whiteboard: "Panel", wb_none: "No panel configured",
    health_ambiguous: "Whose temperature it was is unclear, so it was not recorded: one student at a time, please",
    fr_absent_at_morning_check: "not at the morning check", fr_absent_at_noon_check: "not at the noon check", fr_absent_at_evening_check: "not at the evening check", fr_fever_at_check: "fever",
    fo_sick_leave: "Sick leave", fo_personal_leave: "Personal leave", fo_arrived: "Arrived", fo_guardian_knows: "Guardian knows", fo_unreachable: "Unreachable",
    fu_illness: "Illness", il_fever: "Fever", il_cough: "Cough", il_diarrhoea_vomiting: "Diarrhoea/vomiting", il_rash: "Rash", il_other: "Other",
    fu_back: "Back", back_in: n => ["", "tomorrow", "in 2 days", "in 3 days"][n], resolution_optional: "Notes (optional)",
    notice_phrases: "Ready-made", notice_priority: "Priority", notice_until: "Shown until", notice_mine: "Notices posted on this board", notice_none: "No notices posted on this board yet",
    prio_normal: "Normal", prio_high: "Important", d_three: "3 days", withdraw: "Withdraw",
    np_supplies_t: "Bring your books", np_supplies_b: "Bring every subject's books and homework tomorrow.", np_cleaning_t: "Cleaning duty", np_cleaning_b: "Today's duty students stay after school to clean the classroom.",
    np_pe_indoor_t: "PE indoors", np_pe_indoor_b: "Because of the weather, today's PE lesson is in the classroom.", np_sign_t: "Signed slips", np_sign_b: "Hand the slip signed by your parents to the class teacher tomorrow.",
    np_parents_t: "Parents' meeting", np_parents_b: "The parents' meeting is on Friday afternoon; please tell your parents.",
    symptoms_more: "Symptoms…", symptoms_title: n => `Symptoms and re-take: ${n}`, symptoms_label: "Symptoms", retake_label: "Re-taken",
    not_retaken: "not re-taken", colder: "0.1 degree less", warmer: "0.1 degree more", record: "Record", fever_names: "With a fever",
    sy_fever: "fever", sy_cough: "cough", sy_sore_throat: "sore throat", sy_headache: "headache", sy_vomiting: "vomiting", sy_diarrhea: "diarrhoea", sy_rash: "rash", sy_fatigue: "fatigue", sy_other: "other",
    leave_more: "Leave…", leave_title: n => `Leave: ${n}`, leave_kind: "Kind", leave_from: "From", leave_to: "Until", leave_reason: "Reason",
    lk_sick: "Sick", lk_personal: "Personal", lk_other: "Other", d_today: "Today", d_tomorrow: "Tomorrow", d_friday: "This Friday", d_week: "A week",
    r_fever: "Fever", r_doctor: "Doctor", r_family: "Family matter", r_event: "Competition", r_other: "Other",
    leave_yes: "Enter leave", leave_sum: (k, a, b) => `${k}: ${a} to ${b} (inclusive)`, leave_done: "Leave entered",
    ai: "Classroom analysis", ai_note: "class-level figures, never a student", people_seen: "People seen", in_room: "Marked in the room", people_differ: "they differ: check the roll",
    hand_raises: "Hands raised", times: n => `${n}`, heads_up: "Heads-up rate", standing_max: "Most standing at once", heads_down_chart: "Heads down (per 5 minutes)",
    minute: n => `${n} min`, st_chart: "S-T curve (a sample every 30 s)", st_rtch: "Rt-Ch diagram", st_type: "Lesson type",
    t_lecture: "lecture", t_practice: "practice", t_dialogue: "dialogue", t_mixed: "mixed",
    st_room_mic: "one room microphone: students' speech also counts as the teacher's (T). Enrol your voice below to tell students apart", st_teacher_mic: "the teacher's wireless microphone on its own channel",
    st_voiceprint: "one room microphone; teacher and students told apart by the teacher's voiceprint", student_turns: n => `Students spoke <b>${n}</b> times`,
    voice_title: "My voiceprint (tells your speech from the students')", voice_none: "Not enrolled. With it, lesson reports tell your speech from the students'; it stays on this board and you can delete it any time.",
    voice_have: (d, s) => `Enrolled (${d}, ${s} s of speech). Kept on this board only, never uploaded.`, voice_enrol: "Enrol my voice", voice_again: "Enrol again", voice_delete: "Delete my voiceprint",
    voice_listening: "Listening: read this aloud in your usual teaching voice:",
    voice_text: "Good morning, everyone. Today we start a new lesson. Please open your books and read the text once by yourselves, circling the words you do not know. Then tell your partner what the text is about.",
    voice_done: "Voiceprint enrolled", voice_deleted: "Voiceprint deleted", voice_confirm: "Delete your voiceprint on this board?",
    voice_cancel: "Cancel", voice_cancelled: "Enrolment cancelled; nothing was stored",
    talk: "Speech", teacher_talk: "teacher", min_s: s => `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`,
    week: "This week", w_date: "Date", w_lessons: "Lessons", w_attendance: "Attendance", w_hands: "Hands", w_heads_up: "Heads up", w_rt: "Rt",
    ai_none: "No camera or microphone data for this lesson",
    expr: "Expressions (an option the school turned on; the whole class)", expr_engaged: "engaged", expr_neutral: "neutral", expr_negative: "negative", expr_faces: n => `${n} face readings`,
  },
};

const params = new URLSearchParams(location.search);
const S = {
  lang: params.get("lang") || localStorage.getItem("ketang.lang") || "zh",
  status: null, session: null, clockOffset: 0, tz: "Asia/Shanghai",
  lastTouch: Date.now(), pinFor: null, pin: "", tab: "roll", pendingClear: null,
};
const $ = id => document.getElementById(id);
const t = (k, ...a) => { const v = (I18N[S.lang] || I18N.zh)[k]; return typeof v === "function" ? v(...a) : (v ?? k); };
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

// --- HTTP ---------------------------------------------------------------------------
class ApiError extends Error { constructor(code, msg, body) { super(msg); this.code = code; this.body = body; } }

async function api(path, opts = {}) {
  const headers = { "content-type": "application/json" };
  if (S.session) headers["x-csrf-token"] = S.session.csrf_token;
  let res;
  try {
    res = await fetch(path, { credentials: "same-origin", ...opts, headers });
  } catch (e) {
    throw new ApiError(0, t("offline"));
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!res.ok) {
    if (res.status === 401 && S.session) { endSession(); }
    throw new ApiError(res.status, (body && body.error) || res.statusText, body);
  }
  return body;
}

function explain(e) {
  // The device words each refusal in both languages (error, error_zh).
  const zh = S.lang !== "en" && e.body && e.body.error_zh;
  if (zh && e.code !== 0) return e.code === 409 ? t("conflict") + zh : zh;
  switch (e.code) {
    case 0: return t("offline");
    case 401: return t("need_unlock");
    case 403: return t("need_unlock") + " (" + e.message + ")";
    case 404: return t("not_found") + e.message;
    case 409: return t("conflict") + e.message;
    case 400: return t("bad_input") + e.message;
    case 429: return t("too_many", (e.body && e.body.retry_after_s) || 60);
    default: return t("failed");
  }
}

async function act(body) {
  touch();
  return api("/api/v1/actions", { method: "POST", body: JSON.stringify(body) });
}

// --- Status and the board ------------------------------------------------------------
let refreshTimer = null;
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, 60);
}

async function refresh() {
  try {
    S.status = await api("/api/v1/status");
    S.clockOffset = Date.parse(S.status.clock.now) - Date.now();
    S.tz = S.status.clock.timezone;
    $("offline").classList.add("hidden");
    render();
    if (S.session && !$("panel").classList.contains("hidden")) refreshPanel();
  } catch (e) {
    $("offline").classList.remove("hidden");
  }
}

function hm(iso) { return new Date(iso).toLocaleTimeString("zh-CN", { timeZone: S.tz, hour: "2-digit", minute: "2-digit", hour12: false }); }

function tickClock() {
  const now = new Date(Date.now() + S.clockOffset);
  const loc = S.lang === "en" ? "en-GB" : "zh-CN";
  $("date").textContent = now.toLocaleDateString(loc, { timeZone: S.tz, year: "numeric", month: "long", day: "numeric", weekday: "long" });
  $("time").textContent = now.toLocaleTimeString("zh-CN", { timeZone: S.tz, hour12: false });
  if (S.session) {
    const left = Math.max(0, Math.round((S.session.idle_timeout_s * 1000 - (Date.now() - S.lastTouch)) / 1000) - 10);
    $("panel-lock-in").textContent = t("lock_in", left);
    if (left <= 0) lock();
  }
}

function render() {
  const s = S.status;
  if (!s) return;
  // A duty-room board shows the whole school (/duty).
  if (s.school && s.school.duty_room) { location.replace("/duty"); return; }
  document.documentElement.lang = S.lang === "en" ? "en" : "zh-CN";
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = t(el.dataset.i18n); });
  $("lang").textContent = S.lang === "en" ? "中文" : "EN";
  $("class-name").textContent = s.device.class_name;
  const pending = s.outbox.total;
  const sync = $("sync");
  sync.className = "sync" + (s.sync.connected ? " ok" : "");
  sync.textContent = s.sync.connected ? (pending ? t("unsynced", pending) : t("synced")) : t("not_connected") + (pending ? " · " + t("unsynced", pending) : "");
  renderLesson(s);
  renderTimetable(s);
  renderNotices(s);
  renderAlarm(s);
  renderSleep(s);
  tickClock();
}

function renderLesson(s) {
  const el = $("lesson");
  const L = s.lesson;
  const next = s.next_lesson ? `<div class="next">${t("next")}：${esc(s.next_lesson.subject)} · ${t("period", s.next_lesson.period)} · ${hm(s.next_lesson.starts_at)}</div>` : "";
  if (!L) {
    const idle = s.today.length ? t("no_lesson") : (s.day && s.day.name ? t("day_named", s.day.name) : t("none_today"));
    el.innerHTML = `<div class="idle" data-testid="no-lesson">${esc(idle)}</div>${next}${classContent(s)}`;
    return;
  }
  const a = L.attendance || { roster: 0, present: 0, late: 0, absent: 0, leave: 0, sick: 0, unmarked: 0 };
  const inRoom = a.present + a.late;
  const pct = n => a.roster ? (100 * n / a.roster).toFixed(1) : 0;
  el.innerHTML = `
    <div class="subject" data-testid="subject">${esc(L.subject)}<span class="badge ${L.state}" data-testid="lesson-state">${t(L.state)}</span></div>
    <div class="meta">${t("period", L.period)} · ${esc(L.teacher)}${changeNote(L)} · ${hm(L.starts_at)}–${hm(L.ends_at)}${L.room ? " · " + esc(L.room) : ""}</div>
    <div class="counts" data-testid="counts">
      <div class="count present"><b data-testid="count-in">${inRoom}</b>${t("present")} / ${a.roster}</div>
      <div class="count late"><b data-testid="count-late">${a.late}</b>${t("late")}</div>
      <div class="count leave"><b>${a.leave + a.sick}</b>${t("leave")}/${t("sick")}</div>
      <div class="count absent"><b data-testid="count-out">${a.absent + a.unmarked}</b>${t("unmarked")}</div>
    </div>
    <div class="bar"><span style="width:${pct(a.present)}%;background:var(--green)"></span><span style="width:${pct(a.late)}%;background:var(--amber)"></span><span style="width:${pct(a.leave + a.sick)}%;background:var(--blue)"></span></div>
    ${next}${classContent(s)}`;
}

// What the school shows on the board: today's duty, homework still due, class honours.
function classContent(s) {
  const c = s.content;
  if (!c) return "";
  const parts = [];
  if (c.duty) parts.push(`<div class="cc duty" data-testid="duty"><h3>${t("duty")}</h3><p>${c.duty.task ? `<span class="muted">${esc(c.duty.task)}</span> · ` : ""}${c.duty.names.map(esc).join("　")}</p></div>`);
  if (c.homework.length) parts.push(`<div class="cc homework" data-testid="homework"><h3>${t("homework")}</h3><ul>${c.homework.map(h => {
    const due = h.due ? `<span class="muted due">${t("due", +h.due.slice(5, 7), +h.due.slice(8, 10))}</span>` : "";
    return `<li><b>${esc(h.subject)}</b> ${esc(h.text)} ${due}</li>`;
  }).join("")}</ul></div>`);
  if (c.honours.length) parts.push(`<div class="cc honours" data-testid="honours"><h3>${t("honours")}</h3><ul>${c.honours.map(h =>
    `<li data-testid="honour-${esc(h.id)}">${h.image ? `<img src="${esc(h.image)}" alt="${esc(h.title)}">` : ""}<div><b>${esc(h.title)}</b>${h.text ? `<br><span class="muted">${esc(h.text)}</span>` : ""}</div></li>`).join("")}</ul></div>`);
  return parts.length ? `<div class="class-content">${parts.join("")}</div>` : "";
}

// A dated change (calendar downlink): its tag, and who or what the weekly timetable had.
function changeTag(c) {
  return c ? `<span class="change ${esc(c.kind)}" data-testid="change-${esc(c.kind)}">${t("ch_" + c.kind)}</span>` : "";
}
function changeNote(l) {
  const c = l.change;
  if (!c) return "";
  const was = [c.was_subject, c.was_teacher].filter(Boolean).map(esc).join(" ");
  return `${changeTag(c)}${was ? `<span class="was">（${t("was")} ${was}）</span>` : ""}${c.note ? `<span class="was">${esc(c.note)}</span>` : ""}`;
}

function renderTimetable(s) {
  const cur = s.lesson && s.lesson.id;
  const day = s.day || { cancelled: [] };
  const rows = s.today.map(l => ({ at: l.starts_at, html: `
    <li class="${l.id === cur ? "now" : l.state}" data-lesson="${esc(l.id)}">
      <span class="t">${hm(l.starts_at)}–${hm(l.ends_at)}</span><span>${esc(l.subject)}</span><span class="muted">${esc(l.teacher)}</span>${changeTag(l.change)}
    </li>` })).concat(day.cancelled.map(c => ({ at: c.starts_at, html: `
    <li class="dropped" data-testid="cancelled-${c.period}">
      <span class="t">${hm(c.starts_at)}</span><span class="struck">${esc(c.subject)}</span>${changeTag({ kind: "cancel" })}${c.note ? `<span class="muted">${esc(c.note)}</span>` : ""}
    </li>` })));
  rows.sort((a, b) => a.at < b.at ? -1 : a.at > b.at ? 1 : 0);
  const named = day.name && s.today.length ? `<li class="muted" data-testid="day-name">${esc(t("makeup_named", day.name))}</li>` : "";
  $("timetable").innerHTML = named + rows.map(r => r.html).join("") || `<li class="muted">${esc(day.name ? t("day_named", day.name) : t("none_today"))}</li>`;
}

const NOTICES_SHOWN = 4;
function renderNotices(s) {
  // At most NOTICES_SHOWN (highest priority first, as the status lists them); the rest are counted.
  const list = s.notices.filter(n => !n.emergency);
  const more = list.length - NOTICES_SHOWN;
  $("notices").innerHTML = list.slice(0, NOTICES_SHOWN).map(n => `<li><b>${esc(n.title)}</b>${esc(n.body)}</li>`).join("")
    + (more > 0 ? `<li class="more" data-testid="notices-more">${esc(t("more_notices", more))}</li>` : "");
  const em = s.notices.find(n => n.emergency);
  $("broadcast").classList.toggle("hidden", !em);
  if (em) { $("broadcast-title").textContent = em.title; $("broadcast-body").textContent = em.body; }
}

// Alarms of the other boards of the school, from the school path (docs/domain.md, "Alarms").
function schoolAlarms(s) {
  const boards = s.school ? s.school.boards : [];
  return boards.flatMap(b => b.alarms.map(a => ({ drill: a.drill, raised_at: a.raised_at, where: b.class_name || b.classroom_id })));
}

function renderAlarm(s) {
  const own = s.alarms.length > 0;
  const remote = schoolAlarms(s);
  const list = own ? s.alarms.concat(remote) : remote;
  const on = list.length > 0;
  const allDrill = on && list.every(a => a.drill);
  $("alarm").classList.toggle("hidden", !on);
  $("alarm").classList.toggle("drill", allDrill);
  $("alarm-drill").classList.toggle("hidden", !allDrill);
  // Another classroom's alarm names the classroom; it is cleared on the board that raised it.
  $("alarm-where").classList.toggle("hidden", remote.length === 0);
  $("alarm-where").textContent = t("alarm_in") + [...new Set(remote.map(a => a.where))].join("、");
  $("alarm-clear").classList.toggle("hidden", !own);
  if (on) $("alarm-time").textContent = hm(list[0].raised_at);
}

// --- Live events ----------------------------------------------------------------------
let toastTimer = null;
function toast(cls, big, small, ms) {
  const el = $("toast");
  el.className = "toast " + cls;
  el.innerHTML = (big ? `<div class="name" data-testid="toast-name">${esc(big)}</div>` : "") + `<div data-testid="toast-text">${esc(small)}</div>`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.classList.add("fade"); toastTimer = setTimeout(() => el.classList.add("hidden"), 400); }, ms || 2500);
}

// A fever reading stays on screen: the check-in that follows it (same tap) is added to the
// red toast, never painted over it in green.
const FEVER_MS = 4000;

function onTap(d) {
  const o = d.outcome;
  if ((o === "checked_in" || o === "repeat") && Date.now() < (S.feverUntil || 0)) {
    toast("fever", S.feverName || d.name, t("fever") + " · " + (o === "repeat" ? t("repeat") : t("checked_in")), FEVER_MS);
    return;
  }
  if (o === "checked_in" || o === "repeat") {
    toast(d.status === "late" ? "late" : "", d.name, (o === "repeat" ? t("repeat") : t("checked_in")) + (d.status === "late" ? " · " + t("late") : "")
      + (d.source === "face" ? " · " + t("by_face") : ""));
  } else if (o === "unknown_card") {
    toast("warn", "", t("unknown_card"));
  } else if (o === "not_on_roster") {
    toast("warn", d.name, t("not_on_roster"));
  } else if (o === "no_lesson") {
    toast("warn", d.name, t("no_lesson_tap"));
  }
}

function onHealth(d) {
  // Discreet for the student: no number on screen; the teacher sees the flag in teacher mode.
  toast(d.fever ? "fever" : "", d.name, d.fever ? t("fever") : t("normal_temp"), d.fever ? FEVER_MS : 0);
  S.feverUntil = d.fever ? Date.now() + FEVER_MS : 0;
  S.feverName = d.name;
}

function connect() {
  const es = new EventSource("/api/v1/events");
  es.addEventListener("hello", () => { $("offline").classList.add("hidden"); refresh(); });
  es.addEventListener("changed", scheduleRefresh);
  es.addEventListener("tap", e => { onTap(JSON.parse(e.data)); scheduleRefresh(); });
  es.addEventListener("health", e => onHealth(JSON.parse(e.data)));
  es.addEventListener("health_ambiguous", () => toast("warn", "", t("health_ambiguous"), FEVER_MS));
  es.addEventListener("staff_card", () => claimCard());
  es.onerror = () => { $("offline").classList.remove("hidden"); };
}

// --- Teacher mode -----------------------------------------------------------------------
function touch() { S.lastTouch = S.wokeAt = Date.now(); }

// Outside school hours the screen sleeps (black; status.screen): a touch wakes it for a
// minute, teacher mode keeps it awake, and an alarm or a broadcast always shows.
const WAKE_MS = 60000;
function renderSleep(s) {
  const takeover = ["alarm", "broadcast"].some(id => !$(id).classList.contains("hidden"));
  const asleep = !!(s && s.screen && !s.screen.awake) && !S.session && !takeover
    && Date.now() - (S.wokeAt || 0) > WAKE_MS;
  $("sleep").classList.toggle("hidden", !asleep);
}

async function openUnlock() {
  $("unlock").classList.remove("hidden");
  $("pinpad").classList.add("hidden");
  $("unlock-error").textContent = "";
  $("staff").innerHTML = "";
  S.pin = ""; S.pinFor = null;
  try {
    const r = await api("/api/v1/staff");
    const todays = new Set((S.status ? S.status.today : []).map(l => l.teacher));
    const staff = r.staff.slice().sort((a, b) => (todays.has(b.name) - todays.has(a.name)));
    $("staff").innerHTML = staff.map(p => `<button data-staff="${esc(p.id)}" data-name="${esc(p.name)}" data-testid="staff-${esc(p.id)}">${esc(p.name)}</button>`).join("");
  } catch (e) { $("unlock-error").textContent = explain(e); }
}

function pickStaff(id, name) {
  S.pinFor = id; S.pin = "";
  $("pin-who").textContent = name;
  $("pinpad").classList.remove("hidden");
  drawPin();
}

function drawPin() { $("pin-dots").textContent = "●".repeat(S.pin.length) || " "; }

async function pinKey(k) {
  if (k === "⌫") S.pin = S.pin.slice(0, -1);
  else if (k === "✓") return submitPin();
  else if (S.pin.length < 12) S.pin += k;
  drawPin();
}

async function submitPin() {
  try {
    const s = await api("/api/v1/session", { method: "POST", body: JSON.stringify({ staff_id: S.pinFor, pin: S.pin }) });
    startSession(s);
  } catch (e) {
    S.pin = ""; drawPin();
    $("unlock-error").textContent = e.code === 401 ? t("wrong_pin") : explain(e);
  }
}

async function claimCard() {
  if (S.session) return;
  try {
    const s = await api("/api/v1/session", { method: "POST", body: JSON.stringify({ card: true }) });
    startSession(s);
  } catch (_) { /* not for this screen, or expired */ }
}

function startSession(s) {
  // The countdown is written at once: appearing a second later, it pushed the tabs aside
  // under a teacher's finger.
  S.session = s; touch(); tickClock();
  $("unlock").classList.add("hidden");
  $("panel-who").textContent = t("unlocked_as", s.name);
  $("panel").classList.remove("hidden");
  if (S.pendingClear) { const id = S.pendingClear; S.pendingClear = null; clearAlarm(id); }
  showTab(S.tab);
}

function endSession() {
  S.session = null;
  S.rollId = null;
  $("panel").classList.add("hidden");
  $("status-pick").classList.add("hidden");
}

async function lock() {
  const had = S.session;
  if (!had) return;
  try { await api("/api/v1/session", { method: "DELETE" }); } catch (_) { }
  endSession();
}

function msg(text, bad) { const m = $("panel-msg"); m.textContent = text; m.className = "msg" + (bad ? " bad" : ""); }

function showTab(name) {
  S.tab = name;
  document.querySelectorAll(".tabs button").forEach(b => b.classList.toggle("on", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach(s => s.classList.toggle("hidden", s.id !== "tab-" + name));
  msg("");
  refreshPanel();
}

async function refreshPanel() {
  try {
    if (S.tab === "roll") await loadRoll();
    else if (S.tab === "report") await loadReports();
    else if (S.tab === "followups") await loadFollowups();
    else if (S.tab === "notice") renderNoticeForm();
  } catch (e) { msg(explain(e), true); }
}

// Today's lessons above the roll: the teacher picks one (S.rollId) to see or correct it;
// by default the lesson now (or next). After 下课 the roll stays on the ended lesson.
function renderRollLessons(L) {
  const today = S.status ? S.status.today : [];
  $("roll-lessons").innerHTML = today.map(l =>
    `<button class="${esc(l.state)}${L && l.id === L.id ? " on" : ""}" data-roll-lesson="${esc(l.id)}" data-testid="roll-lesson-${l.period}" aria-pressed="${L && l.id === L.id}">${t("period", l.period)} ${esc(l.subject)}</button>`).join("");
}

async function loadRoll() {
  const r = await api("/api/v1/lesson" + (S.rollId ? "?id=" + encodeURIComponent(S.rollId) : ""));
  S.roll = r;
  const L = r.lesson;
  renderRollLessons(L);
  $("roll-title").textContent = L ? `${L.subject} · ${t("period", L.period)} · ${t(L.state)}` : t("no_lesson");
  const hl = r.health || {};
  $("roll").innerHTML = r.roll.map(e => {
    const h = hl[e.student_id];
    const flag = h && h.fever ? `<em class="fever-flag" data-testid="fever-${esc(e.student_id)}">${t("fever_n")}</em>` : "";
    const sym = h && h.symptoms.length ? `<small class="sym">${h.symptoms.map(s => t("sy_" + s)).join("、")}</small>` : "";
    return `
    <button class="tile ${e.status || ""}${h && h.fever ? " has-fever" : ""}" data-student="${esc(e.student_id)}" data-testid="tile-${esc(e.student_id)}">
      <span>${esc(e.name)}${flag}</span><small>${e.status ? t(e.status) : t("unmarked")}${e.source === "manual" ? " ✎" : ""}</small>${sym}
    </button>`;
  }).join("");
  document.querySelectorAll("[data-lesson-action]").forEach(b => { b.disabled = !L; });
  const wb = S.status && S.status.hardware.find(h => h.kind === "whiteboard");
  $("wb-controls").classList.toggle("hidden", !wb);
  // Each word on its own unbreakable span: a narrow board wraps between them, never inside.
  if (wb) {
    const words = (wb.state === "ok" ? [] : [t("hw_" + wb.state)]).concat(wbWords(wb.detail).split(" · "));
    const parts = words.map((w, i) => `<span class="nb">${i === 0 ? esc(t("whiteboard")) + "：" : ""}${esc(w)}</span>`);
    $("wb-state").innerHTML = parts.join(" · ");
  }
}

// The flat panel's state in the board's language ("on · ops" → "开 · 内置电脑").
function wbWords(detail) {
  return String(detail || "").split(" · ").map(w => t("wbs_" + w) === "wbs_" + w ? w : t("wbs_" + w)).join(" · ");
}

async function whiteboard(body) {
  try {
    await act({ action: "whiteboard", ...body });
    msg(t("done"));
    await refresh();
    await loadRoll();
  } catch (e) { msg(explain(e), true); }
}

function pickStatus(tile) {
  touch();
  const pop = $("status-pick");
  pop.innerHTML = ["present", "late", "absent", "leave", "sick"].map(s => `<button data-set="${s}" data-testid="set-${s}">${t(s)}</button>`).join("")
    + `<button data-leave-open="1" data-testid="set-leave-range">${t("leave_more")}</button>`
    + `<button data-symptoms-open="1" data-testid="set-symptoms">${t("symptoms_more")}</button>`;
  pop.dataset.student = tile.dataset.student;
  const r = tile.getBoundingClientRect();
  pop.style.left = Math.max(8, Math.min(r.left, innerWidth - 780)) + "px";
  pop.style.top = Math.min(r.bottom + 8, innerHeight - 100) + "px";
  pop.classList.remove("hidden");
}

async function setStatus(student, status) {
  $("status-pick").classList.add("hidden");
  const L = S.roll && S.roll.lesson;
  if (!L) return;
  try {
    await act({ action: "set_attendance", lesson_id: L.id, student_id: student, status });
    msg(t("done"));
    await loadRoll();
  } catch (e) { msg(explain(e), true); }
}

// Leave over a range of days, by touch: kind, first day, last day, a ready-made reason.
// Dates are the school's local days (the board's clock); the server takes YYYY-MM-DD.
const dayOf = (offset) => {
  const d = new Date(Date.now() + S.clockOffset + offset * 86400000);
  return d.toLocaleDateString("sv-SE", { timeZone: S.tz }); // YYYY-MM-DD
};
function leaveDays() {
  // Offsets from today: today, tomorrow, this Friday (or today on a weekend), a week.
  const wd = new Date(Date.parse(dayOf(0) + "T12:00:00Z")).getUTCDay(); // 0 Sunday
  const friday = wd >= 1 && wd <= 5 ? 5 - wd : 0;
  return { today: 0, tomorrow: 1, friday, week: 6 };
}
function openLeave(student) {
  $("status-pick").classList.add("hidden");
  const e = S.roll && S.roll.roll.find(r => r.student_id === student);
  const L = {
    student, name: e ? e.name : student, kind: "sick", from: 0, to: 0, reason: "r_fever",
  };
  S.leave = L;
  $("leave-title").textContent = t("leave_title", L.name);
  $("leave-kind-label").textContent = t("leave_kind");
  $("leave-from-label").textContent = t("leave_from");
  $("leave-to-label").textContent = t("leave_to");
  $("leave-reason-label").textContent = t("leave_reason");
  $("leave-yes").textContent = t("leave_yes");
  $("leave-no").textContent = t("back");
  renderLeave();
  $("leave").classList.remove("hidden");
  $("leave-no").focus();
}
function renderLeave() {
  const L = S.leave, days = leaveDays();
  const chip = (group, value, label, on) => `<button class="chip" data-leave="${group}" data-value="${value}" aria-pressed="${on}" data-testid="leave-${group}-${value}">${label}</button>`;
  $("leave-kind").innerHTML = ["sick", "personal", "other"].map(k => chip("kind", k, t("lk_" + k), L.kind === k)).join("");
  $("leave-from").innerHTML = [["today", 0], ["tomorrow", 1]].map(([k, o]) => chip("from", o, t("d_" + k), L.from === o)).join("");
  $("leave-to").innerHTML = Object.entries(days).filter(([, o]) => o >= L.from)
    .filter(([k, o], i, a) => a.findIndex(([, o2]) => o2 === o) === i) // one chip per day
    .map(([k, o]) => chip("to", o, t("d_" + k), L.to === o)).join("");
  $("leave-reason").innerHTML = ["r_fever", "r_doctor", "r_family", "r_event", "r_other"].map(r => chip("reason", r, t(r), L.reason === r)).join("");
  $("leave-summary").textContent = t("leave_sum", t("lk_" + L.kind), dayOf(L.from), dayOf(L.to));
}
function leaveChip(b) {
  const L = S.leave;
  const g = b.dataset.leave, v = b.dataset.value;
  if (g === "kind") L.kind = v;
  else if (g === "from") { L.from = Number(v); if (L.to < L.from) L.to = L.from; }
  else if (g === "to") L.to = Number(v);
  else if (g === "reason") L.reason = v;
  renderLeave();
}
async function submitLeave() {
  const L = S.leave;
  try {
    await act({ action: "enter_leave", student_id: L.student, from: dayOf(L.from), until: dayOf(L.to), kind: L.kind, reason: t(L.reason) });
    // Leave from today: this roll's lesson shows it at once (ended lessons too can be corrected).
    const lesson = S.roll && S.roll.lesson;
    const entry = S.roll && S.roll.roll.find(r => r.student_id === L.student);
    if (L.from === 0 && lesson && lesson.id.startsWith(dayOf(0)) && entry && !entry.status) {
      await act({ action: "set_attendance", lesson_id: lesson.id, student_id: L.student, status: L.kind === "sick" ? "sick" : "leave" });
    }
    $("leave").classList.add("hidden");
    msg(t("leave_done"));
    await loadRoll();
  } catch (e) { msg(explain(e), true); }
}

// Symptoms and a re-taken temperature for a named student (晨午检), by touch.
const SYMPTOMS = ["fever", "cough", "sore_throat", "headache", "vomiting", "diarrhea", "rash", "fatigue", "other"];
function openSymptoms(student) {
  $("status-pick").classList.add("hidden");
  const e = S.roll && S.roll.roll.find(r => r.student_id === student);
  S.sym = { student, name: e ? e.name : student, picked: [], temp: null };
  $("sym-title").textContent = t("symptoms_title", S.sym.name);
  $("sym-list-label").textContent = t("symptoms_label");
  $("sym-temp-label").textContent = t("retake_label");
  $("sym-yes").textContent = t("record");
  $("sym-no").textContent = t("back");
  renderSymptoms();
  $("symptoms").classList.remove("hidden");
  $("sym-no").focus();
}
function renderSymptoms() {
  const st = S.sym;
  $("sym-list").innerHTML = SYMPTOMS.map(s => `<button class="chip" data-sym="s" data-v="${s}" aria-pressed="${st.picked.includes(s)}" data-testid="sym-${s}">${t("sy_" + s)}</button>`).join("");
  const temp = st.temp == null ? t("not_retaken") : `${st.temp.toFixed(1)} °C`;
  $("sym-temp").innerHTML = `<button class="chip" data-sym="t" data-v="-0.1" aria-label="${t("colder")}" data-testid="sym-temp-down">−</button>
    <output data-testid="sym-temp" class="${st.temp != null && st.temp >= ((S.status && S.status.fever_threshold_c) || 37.3) ? "hot" : ""}">${temp}</output>
    <button class="chip" data-sym="t" data-v="0.1" aria-label="${t("warmer")}" data-testid="sym-temp-up">+</button>
    ${[36.5, 37.3, 38.0, 38.5].map(v => `<button class="chip" data-sym="t=" data-v="${v}" data-testid="sym-temp-${v}">${v.toFixed(1)}</button>`).join("")}`;
}
function symChip(b) {
  const st = S.sym, v = b.dataset.v;
  if (b.dataset.sym === "s") st.picked = st.picked.includes(v) ? st.picked.filter(x => x !== v) : [...st.picked, v];
  else if (b.dataset.sym === "t") st.temp = Math.round(((st.temp == null ? 36.5 : st.temp) + Number(v)) * 10) / 10;
  else st.temp = Number(v);
  if (st.temp != null) st.temp = Math.min(45, Math.max(30, st.temp));
  renderSymptoms();
}
async function submitSymptoms() {
  const st = S.sym;
  const body = { action: "record_symptoms", student_id: st.student, symptoms: st.picked };
  if (st.temp != null) body.temp_c = st.temp;
  try {
    await act(body);
    $("symptoms").classList.add("hidden");
    msg(t("done"));
    await loadRoll();
  } catch (e) { msg(explain(e), true); }
}

// The board's own confirmation dialog, in the board's language: resolves true or false.
function ask(title, body, yes) {
  return new Promise(resolve => {
    $("confirm-title").textContent = title;
    $("confirm-body").textContent = body;
    $("confirm-yes").textContent = yes;
    $("confirm-no").textContent = t("back");
    $("confirm").classList.remove("hidden");
    const done = v => {
      $("confirm").classList.add("hidden");
      $("confirm-yes").onclick = $("confirm-no").onclick = null;
      touch();
      resolve(v);
    };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
    $("confirm-no").focus();
  });
}

async function lessonAction(action) {
  const L = S.roll && S.roll.lesson;
  if (!L) return;
  if (action === "cancel_lesson" && !(await ask(t("confirm_cancel"), t("confirm_cancel_body"), t("cancel_lesson")))) return;
  // Ending with students still unmarked marks them absent: say how many, and ask.
  const unmarked = action === "end_lesson" ? S.roll.roll.filter(e => !e.status).length : 0;
  if (unmarked > 0 && !(await ask(t("confirm_end", unmarked), t("confirm_end_body", unmarked), t("end_anyway")))) return;
  try {
    await act({ action, lesson_id: L.id });
    msg(t("done"));
    // The roll stays on this lesson (an ended lesson can still be corrected).
    S.rollId = L.id;
    await refresh();
    await loadRoll();
  } catch (e) { msg(explain(e), true); }
}

// The teacher's own voiceprint (one room microphone): shown under the reports.
async function loadVoice() {
  if (S.voiceListening) return;
  let v;
  try { v = await api("/api/v1/voice"); } catch (_) { $("voice").classList.add("hidden"); return; }
  $("voice").classList.toggle("hidden", !v.available);
  const p = v.voiceprint;
  $("voice-state").textContent = p ? t("voice_have", fmtDate(p.created_at), Math.round(p.speech_s)) : t("voice_none");
  $("voice-enrol").textContent = t(p ? "voice_again" : "voice_enrol");
  $("voice-delete").classList.toggle("hidden", !p);
}

function fmtDate(iso) {
  return new Date(iso).toLocaleDateString(S.lang === "en" ? "en-GB" : "zh-CN", { timeZone: S.tz });
}

async function enrolVoice() {
  S.voiceListening = true;
  S.voiceCancelled = false;
  msg("");
  $("voice-read").innerHTML = `${esc(t("voice_listening"))}<br><b>${esc(t("voice_text"))}</b>`;
  $("voice-read").classList.remove("hidden");
  $("voice-cancel").classList.remove("hidden");
  $("voice-enrol").disabled = $("voice-delete").disabled = true;
  try {
    const r = await act({ action: "voice_enrol" });
    msg(`${t("voice_done")}（${r.speech_s} s）`);
  } catch (e) {
    if (S.voiceCancelled) msg(t("voice_cancelled")); else msg(explain(e), true);
  }
  S.voiceListening = false;
  touch();
  $("voice-read").classList.add("hidden");
  $("voice-cancel").classList.add("hidden");
  $("voice-enrol").disabled = $("voice-delete").disabled = false;
  loadVoice();
}

// Stops the listening (a tap by mistake, a noisy room); the enrolment's own answer ends it.
async function cancelVoice() {
  S.voiceCancelled = true;
  try { await act({ action: "voice_enrol_cancel" }); } catch (e) { S.voiceCancelled = false; msg(explain(e), true); }
}

async function deleteVoice() {
  if (!(await ask(t("voice_confirm"), "", t("voice_delete")))) return;
  try { await act({ action: "voice_delete" }); msg(t("voice_deleted")); } catch (e) { msg(explain(e), true); }
  loadVoice();
}

async function loadReports() {
  const done = (S.status ? S.status.today : []).filter(l => l.state === "ended" || l.state === "cancelled");
  $("report-lessons").innerHTML = done.map(l => `<button data-report="${esc(l.id)}" data-testid="report-${esc(l.id)}">${t("period", l.period)} ${esc(l.subject)}</button>`).join("") || `<span class="muted">${t("report_none")}</span>`;
  if (done.length && !S.reportId) S.reportId = done[done.length - 1].id;
  if (S.reportId) await showReport(S.reportId);
  await loadVoice();
}

async function showReport(id) {
  S.reportId = id;
  const [date, period] = id.split("/");
  let r;
  try { r = await api(`/api/v1/reports/${date}/${period}`); } catch (e) { $("report").textContent = e.code === 404 ? t("report_none") : explain(e); return; }
  const a = r.attendance;
  const max = Math.max(1, a.roster);
  const bar = (k, color, n) => `<div><span style="width:5em">${t(k)}</span><i style="width:${(600 * n / max).toFixed(0)}px;background:${color}"></i><b data-testid="report-${k}">${n}</b></div>`;
  // Names for the report's ids (teacher mode): that lesson's roll.
  let names = {};
  try { (await api("/api/v1/lesson?id=" + encodeURIComponent(id))).roll.forEach(e => { names[e.student_id] = e.name; }); } catch (_) { names = {}; }
  const health = Object.entries(r.health || {}).map(([w, h]) =>
    `<div>${t(w)}：${t("checked")} ${h.checked} · ${t("fever_n")} <b class="${h.fever ? "error" : ""}">${h.fever}</b> · ${t("unchecked")} ${h.unchecked_ids.length}</div>`
    + (h.fever_ids.length ? `<div data-testid="report-fever-names-${w}">${t("fever_names")}：${h.fever_ids.map(s => esc(names[s] || s)
        + ((h.symptoms[s] || []).length ? `（${h.symptoms[s].map(x => t("sy_" + x)).join("、")}）` : "")).join("，")}</div>` : "")).join("");
  $("report").innerHTML = `
    <h2>${esc(r.subject)} · ${t("period", r.period)} · ${esc(r.teacher)} ${r.cancelled ? "· " + t("cancelled") : ""} <span class="muted">${t("revision", r.revision)}</span></h2>
    <div class="report-bars">
      ${bar("present", "var(--green)", a.present)}${bar("late", "var(--amber)", a.late)}${bar("absent", "var(--red)", a.absent)}
      ${bar("leave", "var(--blue)", a.leave)}${bar("sick", "#8250df", a.sick)}
    </div>
    <h2>${t("health")}</h2>${health || "—"}
    ${aiBlock(r)}`;
}

// The classroom-analysis block of a report: class-level figures and charts (SVG, no
// library), each chart with a text alternative.
const pct = x => x == null ? "—" : `${Math.round(x * 100)}%`;
function aiBlock(r) {
  const tl = r.timeline, week = r.week || [];
  const parts = [];
  if (r.head_count) {
    const h = r.head_count;
    parts.push(`<div class="ai-fig" data-testid="ai-headcount">${t("people_seen")} <b>${h.people_max}</b> · ${t("in_room")} <b>${h.present}</b>${h.mismatch ? ` <span class="warn">${t("people_differ")}</span>` : ""}</div>`);
  }
  if (r.behaviour) {
    const b = r.behaviour;
    parts.push(`<div class="ai-fig" data-testid="ai-behaviour">${t("hand_raises")} <b>${t("times", b.hand_raise_events)}</b> · ${t("heads_up")} <b>${pct(b.heads_up_rate)}</b> · ${t("standing_max")} <b>${b.standing_max}</b></div>`);
  }
  const charts = [];
  if (tl && tl.frames.some(f => f > 0)) charts.push(headsDownChart(tl));
  if (r.talk_time) {
    const [line, st] = stBlock(r.talk_time, tl);
    parts.push(line);
    charts.push(st);
  }
  if (charts.length) parts.push(`<div class="ai-charts">${charts.join("")}</div>`);
  if (tl && tl.expressions) {
    // Opt-in, class totals only: shares of all face readings of the lesson.
    const x = tl.expressions, n = x.engaged + x.neutral + x.negative;
    const share = k => `${t("expr_" + k)} <b>${pct(n ? x[k] / n : null)}</b>`;
    parts.push(`<div class="ai-fig" data-testid="ai-expressions">${t("expr")}：${share("engaged")} · ${share("neutral")} · ${share("negative")} <span class="muted">${t("expr_faces", n)}</span></div>`);
  }
  if (week.length) parts.push(weekTable(week));
  return `<section class="ai" aria-labelledby="ai-title" data-testid="ai-block">
    <h2 id="ai-title">${t("ai")} <span class="muted">${t("ai_note")}</span></h2>
    ${parts.join("") || `<p class="muted">${t("ai_none")}</p>`}</section>`;
}

function headsDownChart(tl) {
  // One bar per bucket, its share written above it; a bucket without frames is left empty.
  const W = 520, H = 200, n = tl.heads_down.length, bw = W / Math.max(1, n);
  const bars = tl.heads_down.map((v, i) => v == null ? "" :
    `<rect x="${(i * bw + 3).toFixed(1)}" y="${(H - Math.max(2, v * H)).toFixed(1)}" width="${(bw - 6).toFixed(1)}" height="${Math.max(2, v * H).toFixed(1)}" fill="var(--amber)"></rect>
     <text x="${(i * bw + bw / 2).toFixed(1)}" y="${(H - Math.max(2, v * H) - 6).toFixed(1)}" class="tick" text-anchor="middle">${pct(v)}</text>`).join("");
  const ticks = tl.heads_down.map((_, i) => i % 2 ? "" : `<text x="${(i * bw + 2).toFixed(1)}" y="${H + 20}" class="tick">${t("minute", i * tl.bucket_min)}</text>`).join("");
  const alt = tl.heads_down.map((v, i) => `${t("minute", i * tl.bucket_min)} ${pct(v)}`).join("，");
  return `<figure data-testid="ai-heads-down"><figcaption>${t("heads_down_chart")}</figcaption>
    <svg viewBox="-34 -10 ${W + 40} ${H + 34}" width="${W + 40}" height="${H + 34}" role="img" aria-label="${esc(t("heads_down_chart") + "：" + alt)}">
      <line x1="0" y1="${H}" x2="${W}" y2="${H}" stroke="currentColor"></line><line x1="0" y1="0" x2="0" y2="${H}" stroke="currentColor"></line>
      <text x="-32" y="6" class="tick">100%</text><text x="-18" y="${H}" class="tick">0</text>${bars}${ticks}</svg></figure>`;
}

function stBlock(tt, tl) {
  const type = t("t_" + tt.lesson_type);
  const head = `<div class="ai-fig" data-testid="ai-talk">${t("talk")} <b>${t("min_s", tt.speech_s)}</b>（${t("teacher_talk")} ${t("min_s", tt.teacher_s)}）
    · Rt <b>${tt.rt.toFixed(2)}</b> · Ch <b>${tt.ch.toFixed(2)}</b> · ${t("st_type")} <b data-testid="ai-st-type">${type}</b></div>
    ${tt.student_turns != null ? `<div class="ai-fig" data-testid="ai-student-turns">${t("student_turns", tt.student_turns)}</div>` : ""}
    <p class="muted" data-testid="ai-talk-method">${t({ teacher_mic: "st_teacher_mic", voiceprint: "st_voiceprint" }[tt.method] || "st_room_mic")}</p>`;
  const st = tl && tl.st ? tl.st : "";
  let curve = "";
  if (st.length) {
    // S-T curve: T moves right, S moves up (both axes: samples).
    const n = st.length, S0 = 220, k = S0 / n;
    let x = 0, y = 0;
    const pts = ["0," + S0];
    for (const c of st) { if (c === "T") x++; else y++; pts.push(`${(x * k).toFixed(1)},${(S0 - y * k).toFixed(1)}`); }
    curve = `<figure data-testid="ai-st-curve"><figcaption>${t("st_chart")}</figcaption>
      <svg viewBox="-30 -10 ${S0 + 50} ${S0 + 40}" width="${S0 + 50}" height="${S0 + 40}" role="img" aria-label="${esc(`${t("st_chart")}：T ${x}，S ${y}`)}">
        <line x1="0" y1="${S0}" x2="${S0}" y2="${S0}" stroke="currentColor"></line><line x1="0" y1="0" x2="0" y2="${S0}" stroke="currentColor"></line>
        <line x1="0" y1="${S0}" x2="${S0}" y2="0" stroke="var(--line)" stroke-dasharray="4 4"></line>
        <polyline points="${pts.join(" ")}" fill="none" stroke="var(--blue)" stroke-width="3"></polyline>
        <text x="${S0 - 10}" y="${S0 + 24}" class="tick">T</text><text x="-24" y="12" class="tick">S</text></svg></figure>`;
  }
  // Rt-Ch diagram: Rt across, Ch up, the lesson types' regions (Rt 0.3 and 0.7, Ch 0.4).
  const D = 220, px = tt.rt * D, py = D - Math.min(1, tt.ch) * D;
  const rtch = `<figure data-testid="ai-rtch"><figcaption>${t("st_rtch")}</figcaption>
    <svg viewBox="-30 -10 ${D + 50} ${D + 40}" width="${D + 50}" height="${D + 40}" role="img" aria-label="${esc(`${t("st_rtch")}：Rt ${tt.rt.toFixed(2)}，Ch ${tt.ch.toFixed(2)}，${type}`)}">
      <rect x="0" y="0" width="${D}" height="${D}" fill="none" stroke="currentColor"></rect>
      <line x1="${0.3 * D}" y1="0" x2="${0.3 * D}" y2="${D}" stroke="var(--line)"></line><line x1="${0.7 * D}" y1="0" x2="${0.7 * D}" y2="${D}" stroke="var(--line)"></line>
      <line x1="${0.3 * D}" y1="${0.6 * D}" x2="${0.7 * D}" y2="${0.6 * D}" stroke="var(--line)"></line>
      <text x="4" y="${D - 6}" class="tick">${t("t_practice")}</text><text x="${0.72 * D}" y="${D - 6}" class="tick">${t("t_lecture")}</text>
      <text x="${0.32 * D}" y="16" class="tick">${t("t_dialogue")}</text><text x="${0.32 * D}" y="${D - 6}" class="tick">${t("t_mixed")}</text>
      <circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="8" fill="var(--blue)"></circle>
      <text x="${D / 2 - 10}" y="${D + 24}" class="tick">Rt</text><text x="-26" y="${D / 2}" class="tick">Ch</text></svg></figure>`;
  return [head, curve + rtch];
}

function weekTable(week) {
  const max = Math.max(1, ...week.map(d => d.hand_raises || 0));
  const rows = week.map(d => `<tr><td>${esc(d.date.slice(5))}</td><td>${d.lessons}</td><td>${pct(d.attendance_rate)}</td>
    <td>${d.hand_raises == null ? "—" : `<i class="wbar" style="width:${(80 * d.hand_raises / max).toFixed(0)}px"></i> ${d.hand_raises}`}</td>
    <td>${pct(d.heads_up_rate)}</td><td>${d.rt == null ? "—" : d.rt.toFixed(2)}</td></tr>`).join("");
  return `<table class="week" data-testid="ai-week"><caption>${t("week")}</caption>
    <thead><tr><th scope="col">${t("w_date")}</th><th scope="col">${t("w_lessons")}</th><th scope="col">${t("w_attendance")}</th><th scope="col">${t("w_hands")}</th><th scope="col">${t("w_heads_up")}</th><th scope="col">${t("w_rt")}</th></tr></thead>
    <tbody>${rows}</tbody></table>`;
}

// Follow-ups by touch: a ready-made reason, for 病假 the illness and the return day, whether
// the guardian was reached; typing is optional.
const FU_OUTCOMES = ["sick_leave", "personal_leave", "arrived", "guardian_knows", "unreachable"];
const FU_ILLNESS = ["fever", "cough", "diarrhoea_vomiting", "rash", "other"];
S.fu = {};
function fuChips(f) {
  const st = S.fu[f.id] || (S.fu[f.id] = { outcome: null, illness: null, back: null, contacted: false });
  const sid = esc(f.student_id);
  const chip = (k, v, label, on) => `<button class="chip" data-fu-set="${esc(f.id)}" data-k="${k}" data-v="${v}" aria-pressed="${on}" data-testid="fu-${k}-${v}-${sid}">${label}</button>`;
  const leave = st.outcome === "sick_leave" || st.outcome === "personal_leave";
  return `<div class="chips">${FU_OUTCOMES.map(o => chip("outcome", o, t("fo_" + o), st.outcome === o)).join("")}</div>
    ${st.outcome === "sick_leave" ? `<div class="chips" role="group" aria-label="${t("fu_illness")}"><span class="leave-label">${t("fu_illness")}</span>${FU_ILLNESS.map(i => chip("illness", i, t("il_" + i), st.illness === i)).join("")}</div>` : ""}
    ${leave ? `<div class="chips" role="group" aria-label="${t("fu_back")}"><span class="leave-label">${t("fu_back")}</span>${[1, 2, 3].map(d => chip("back", d, t("back_in", d), st.back === d)).join("")}</div>` : ""}
    <div class="chips">${chip("contacted", "yes", t("contacted"), st.contacted)}</div>`;
}
async function loadFollowups() {
  const r = await api("/api/v1/followups");
  S.fuList = r.followups;
  renderFollowups();
}
function renderFollowups() {
  $("followups").innerHTML = (S.fuList || []).map(f => f.state === "open" ? `
    <div class="fu" data-fu="${esc(f.id)}">
      <b>${esc(f.name)}<small class="fu-reason ${f.reason === "fever_at_check" ? "fever" : ""}" data-testid="fu-reason-${esc(f.student_id)}">${t("fr_" + f.reason)}</small></b>
      <div class="fu-body">${fuChips(f)}
        <input aria-label="${t("resolution")}" placeholder="${t("resolution_optional")}" data-testid="fu-text-${esc(f.student_id)}">
      </div>
      <button class="primary" data-resolve="${esc(f.id)}" data-testid="fu-resolve-${esc(f.student_id)}">${t("resolve")}</button>
    </div>` : `
    <div class="fu resolved"><b>${esc(f.name)}</b><span>${esc(f.resolution)}</span><span>${f.contacted_guardian ? t("contacted") : ""}</span><span>${t("resolved")}</span></div>`
  ).join("") || `<p class="muted">${t("no_followups")}</p>`;
}
function fuSet(b) {
  const st = S.fu[b.dataset.fuSet], k = b.dataset.k, v = b.dataset.v;
  if (k === "outcome") { st.outcome = st.outcome === v ? null : v; if (v !== "sick_leave") st.illness = null; st.back = null; }
  else if (k === "illness") st.illness = st.illness === v ? null : v;
  else if (k === "back") st.back = st.back === Number(v) ? null : Number(v);
  else if (k === "contacted") st.contacted = !st.contacted;
  // Keep what was typed across the re-render.
  const typed = {};
  document.querySelectorAll("#followups .fu[data-fu] input").forEach(i => { typed[i.closest(".fu").dataset.fu] = i.value; });
  renderFollowups();
  document.querySelectorAll("#followups .fu[data-fu] input").forEach(i => { i.value = typed[i.closest(".fu").dataset.fu] || ""; });
}

async function resolveFollowup(btn) {
  const id = btn.dataset.resolve;
  const row = btn.closest(".fu");
  const text = row.querySelector("input").value;
  const st = S.fu[id] || {};
  const body = { action: "resolve_followup", followup_id: id, resolution: text, contacted_guardian: !!st.contacted };
  if (st.outcome) body.outcome = st.outcome;
  if (st.illness) body.illness = st.illness;
  if (st.back) body.return_date = addDays(id.split("/")[0], st.back);
  try {
    await act(body);
    msg(t("done"));
    delete S.fu[id];
    await loadFollowups();
  } catch (e) { msg(explain(e), true); }
}
function addDays(ymd, n) {
  const d = new Date(Date.parse(ymd + "T12:00:00Z") + n * 86400000);
  return d.toISOString().slice(0, 10);
}

// Notices by touch: ready-made phrases fill title and text (the kiosk has no keyboard),
// priority and how long it shows are chips; the board's own notices can be withdrawn.
const PHRASES = ["np_supplies", "np_cleaning", "np_pe_indoor", "np_sign", "np_parents"];
S.notice = { prio: 0, until: 0 };
function renderNoticeForm() {
  const N = S.notice;
  const chip = (k, v, label, on, id) => `<button class="chip" data-notice="${k}" data-v="${v}" aria-pressed="${on}" data-testid="notice-${k}-${id ?? v}">${label}</button>`;
  $("notice-phrases").innerHTML = PHRASES.map(p => chip("phrase", p, t(p + "_t"), false)).join("");
  $("notice-prio").innerHTML = [[0, "prio_normal"], [80, "prio_high"]].map(([v, k]) => chip("prio", v, t(k), N.prio === v)).join("");
  $("notice-until").innerHTML = [[0, "d_today"], [2, "d_three"], [6, "d_week"]].map(([v, k]) => chip("until", v, t(k), N.until === v)).join("");
  const mine = ((S.status && S.status.notices) || []).filter(n => n.local);
  $("notice-mine").innerHTML = mine.map(n => `<div class="fu"><b>${esc(n.title)}</b><span>${esc(n.body)}</span>
    <button data-withdraw="${esc(n.id)}" data-testid="notice-withdraw-${esc(n.title)}">${t("withdraw")}</button></div>`).join("") || `<p class="hint">${t("notice_none")}</p>`;
}
function noticeChip(b) {
  const k = b.dataset.notice, v = b.dataset.v;
  if (k === "phrase") { $("notice-title").value = t(v + "_t"); $("notice-body").value = t(v + "_b"); }
  else if (k === "prio") S.notice.prio = Number(v);
  else if (k === "until") S.notice.until = Number(v);
  renderNoticeForm();
}
async function postNotice() {
  try {
    await act({ action: "post_notice", title: $("notice-title").value, body: $("notice-body").value,
      priority: S.notice.prio, valid_until: dayOf(S.notice.until) });
    $("notice-title").value = ""; $("notice-body").value = "";
    S.notice = { prio: 0, until: 0 };
    msg(t("done"));
    await refresh();
    renderNoticeForm();
  } catch (e) { msg(explain(e), true); }
}
async function withdrawNotice(id) {
  try {
    await act({ action: "withdraw_notice", notice_id: id });
    msg(t("done"));
    await refresh();
    renderNoticeForm();
  } catch (e) { msg(explain(e), true); }
}

// --- Alarms ---------------------------------------------------------------------------
async function raiseAlarm(drill) {
  try { await act({ action: "raise_alarm", drill }); } catch (e) { msg(explain(e), true); }
  refresh();
}

// The alarm button is pressed and held (HOLD_MS, a bar fills as it is held): raising is
// deliberate but fast, and one stray tap never sends the police. Touch, mouse and keyboard
// (Enter or Space held) alike; letting go early says how.
const HOLD_MS = 1500;
let hold = null;
function holdStart(e) {
  e.preventDefault();
  if (hold) return;
  const b = $("sos");
  b.style.setProperty("--hold-ms", HOLD_MS + "ms");
  b.classList.add("holding");
  hold = setTimeout(() => { holdEnd(true); raiseAlarm(false); }, HOLD_MS);
}
function holdEnd(done) {
  if (!hold) return;
  clearTimeout(hold);
  hold = null;
  $("sos").classList.remove("holding");
  if (!done) toast("warn", "", t("hold_to_raise"));
}

async function clearAlarm(id) {
  if (!S.session) { S.pendingClear = id; openUnlock(); return; }
  try { await act({ action: "clear_alarm", alarm_id: id }); } catch (e) { toast("warn", "", explain(e)); }
  refresh();
}

// --- Wiring -----------------------------------------------------------------------------
function keypad() {
  $("keys").innerHTML = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "✓"].map(k => `<button data-key="${k}" data-testid="key-${k === "✓" ? "ok" : k === "⌫" ? "back" : k}">${k}</button>`).join("");
}

document.addEventListener("click", e => {
  touch();
  const b = e.target.closest("button");
  if (!b) return;
  if (b.dataset.staff) pickStaff(b.dataset.staff, b.dataset.name);
  else if (b.dataset.key) pinKey(b.dataset.key);
  else if (b.dataset.tab) showTab(b.dataset.tab);
  else if (b.dataset.student) pickStatus(b);
  else if (b.dataset.set) setStatus($("status-pick").dataset.student, b.dataset.set);
  else if (b.dataset.leaveOpen) openLeave($("status-pick").dataset.student);
  else if (b.dataset.symptomsOpen) openSymptoms($("status-pick").dataset.student);
  else if (b.dataset.sym) symChip(b);
  else if (b.dataset.leave) leaveChip(b);
  else if (b.dataset.lessonAction) lessonAction(b.dataset.lessonAction);
  else if (b.dataset.rollLesson) { S.rollId = b.dataset.rollLesson; msg(""); loadRoll().catch(e => msg(explain(e), true)); }
  else if (b.dataset.report) showReport(b.dataset.report);
  else if (b.dataset.resolve) resolveFollowup(b);
  else if (b.dataset.fuSet) fuSet(b);
  else if (b.dataset.notice) noticeChip(b);
  else if (b.dataset.withdraw) withdrawNotice(b.dataset.withdraw);
  else if (b.dataset.wbPower) whiteboard({ power: b.dataset.wbPower === "true" });
  else if (b.dataset.wbInput) whiteboard({ input: b.dataset.wbInput });
});
document.addEventListener("keydown", touch);
$("teacher").onclick = () => S.session ? $("panel").classList.remove("hidden") : openUnlock();
$("unlock-cancel").onclick = () => { $("unlock").classList.add("hidden"); S.pendingClear = null; };
$("lock").onclick = lock;
$("lang").onclick = () => { S.lang = S.lang === "en" ? "zh" : "en"; localStorage.setItem("ketang.lang", S.lang); render(); if (S.session) refreshPanel(); };
$("sos").addEventListener("pointerdown", holdStart);
for (const ev of ["pointerup", "pointerleave", "pointercancel"]) $("sos").addEventListener(ev, () => holdEnd(false));
$("sos").addEventListener("keydown", e => { if ((e.key === "Enter" || e.key === " ") && !e.repeat) holdStart(e); });
$("sos").addEventListener("keyup", e => { if (e.key === "Enter" || e.key === " ") holdEnd(false); });
$("sos").addEventListener("contextmenu", e => e.preventDefault());
$("drill").onclick = () => raiseAlarm(true);
$("alarm-clear").onclick = () => { const a = S.status && S.status.alarms[0]; if (a) clearAlarm(a.id); };
$("notice-post").onclick = postNotice;
$("voice-enrol").onclick = enrolVoice;
$("voice-cancel").onclick = cancelVoice;
$("voice-delete").onclick = deleteVoice;
$("leave-yes").onclick = submitLeave;
$("sym-yes").onclick = submitSymptoms;
$("sym-no").onclick = () => $("symptoms").classList.add("hidden");
$("leave-no").onclick = () => $("leave").classList.add("hidden");

keypad();
KBD.init();
// The board's own kiosk (?kiosk=1, image/rootfs/ketang-kiosk-browser): a touch screen shows
// no mouse pointer.
if (params.get("kiosk") === "1") document.body.classList.add("kiosk");
render();
refresh();
connect();
setInterval(tickClock, 1000);
setInterval(() => renderSleep(S.status), 1000);
// A touch on the sleeping screen only wakes it (it does not also press what is under it).
$("sleep").addEventListener("pointerdown", e => { e.preventDefault(); e.stopPropagation(); touch(); renderSleep(S.status); });
// A session may exist from before a reload.
api("/api/v1/session").then(s => { S.session = s; $("panel-who").textContent = t("unlocked_as", s.name); }).catch(() => { });
