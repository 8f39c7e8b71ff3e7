// Technician pages: provisioning form until the technician password is set, then a login,
// then the device overview (identity, network and MQTT, outbox, hardware, redacted config,
// last log lines). Separate from the kiosk board: nothing on `/` links here.
"use strict";
const L = {
  zh: { title: "技术员页面", logout: "退出", provision_title: "设备初始化：设置技术员密码",
    provision_hint: "此设备尚未设置技术员密码。密码至少10个字符，只能在设备本机上设置（或通过初始化文件）。",
    new_password: "新密码", repeat_password: "再次输入", set_password: "设置密码", mismatch: "两次输入不一致",
    login_title: "技术员登录", password: "密码", login: "登录", wrong: "密码错误",
    device: "设备", network: "网络与MQTT", outbox: "待同步（按数据流）", hardware: "硬件", config: "配置（已隐去密钥）",
    logs: "最近日志", reload: "刷新", selftest_note: "自检：一体机读取电源与信号源；警报器与状态灯亮0.3秒后关闭（警报进行中不测警报器）；其他设备报告其驱动的实时状态。",
    faces: "人脸识别登记", faces_hint: "只有存在监护人同意记录的学生才能登记人脸。模板加密保存在本机，不上传；撤回同意即删除其全部模板。",
    faces_on: "人脸考勤已开启", faces_off: "人脸考勤未开启（inference.enabled）", student_id: "学号", granted_on: "同意日期",
    record_consent: "记录同意", photo: "照片（单人正脸）", enrol: "登记", withdraw: "撤回同意", templates: "个模板",
    source_roster: "名单下发", source_technician: "技术员录入", done: "完成", deleted: "已删除模板",
    selftest: "自检", passed: "通过", failed: "失败", epaper: "门口电子墨水屏（当前画面）", no_epaper: "未配置电子墨水屏",
    connected: "已连接", disconnected: "未连接", insecure: "未加密（mqtt://）", total: "合计", none: "无",
    system: "系统与更新", update_hint: "上传签名的更新包（.raucb）：安装到另一个系统分区后重启试运行；健康检查通过才保留，否则自动回到当前系统。",
    bundle: "更新包", install: "上传并安装", slot: "当前系统分区", image: "系统镜像", data_free: "数据分区剩余", last_update: "最近更新",
    net_wired: "有线", net_wifi: "无线", wifi_configured: "无线网络（初始化文件）",
    no_updates: "此系统不接受更新包（不是课堂系统镜像）", uploading: "上传中", received: "已交给安装程序，稍后自动重启",
    provisioning: "设备初始化文件", provisioning_hint: "粘贴或选择 ketang-provision.toml（学校、教室、设备编号、平台地址、证书、技术员密码哈希）。全部检查通过才写入，然后服务自动重启。",
    provisioning_file: "初始化文件", apply: "应用", provisioned_ok: "已应用，服务正在重启……",
    r_device_id: "设备编号", r_class: "班级", r_version: "版本", r_mode: "运行模式", r_uptime: "已运行（秒）", r_clock: "时钟",
    r_store: "本地数据库", r_https: "HTTPS 证书指纹 (SHA-256)", r_broker: "平台地址 (MQTT)", r_state: "连接状态", r_security: "加密",
    r_published: "已发送 / 已确认", r_connections: "连接次数", disk_full: "磁盘已满", mode_demo: "演示", mode_production: "正式运行",
    st_ok: "正常", st_fault: "故障", st_missing: "未连接", st_degraded: "降级", st_disabled: "未启用",
    s_attendance: "考勤", s_health_check: "晨午检", s_followup: "缺勤跟进", s_lesson: "课堂", s_lesson_report: "课堂报告",
    s_alarm: "报警", s_whiteboard: "一体机", s_telemetry: "设备状态", s_ack: "确认回执", s_update: "系统更新", s_behaviour: "课堂行为",
    s_rejected: "被拒记录", s_dropped: "丢弃统计" },
  en: { title: "Technician", logout: "Log out", provision_title: "Provisioning: set the technician password",
    provision_hint: "This device has no technician password yet. At least 10 characters; set on the board itself (or by the provisioning file).",
    new_password: "New password", repeat_password: "Repeat", set_password: "Set password", mismatch: "The two entries differ",
    login_title: "Technician login", password: "Password", login: "Log in", wrong: "Wrong password",
    device: "Device", network: "Network and MQTT", outbox: "Waiting to sync (per stream)", hardware: "Hardware", config: "Configuration (secrets hidden)",
    logs: "Recent log", reload: "Reload", selftest_note: "Self-test: the flat panel reports power and input; the siren and status LED switch on for 0.3 s (not the siren during an alarm); other devices report their driver's live state.",
    faces: "Face enrolment", faces_hint: "A face can be enrolled only for a student with a guardian-consent record. Templates are encrypted on this board and never uploaded; withdrawing consent deletes them.",
    faces_on: "Face attendance is on", faces_off: "Face attendance is off (inference.enabled)", student_id: "Student id", granted_on: "Consent date",
    record_consent: "Record consent", photo: "Photo (one face)", enrol: "Enrol", withdraw: "Withdraw consent", templates: "templates",
    source_roster: "from the roster", source_technician: "entered by a technician", done: "done", deleted: "templates deleted",
    selftest: "Self-test", passed: "passed", failed: "failed", epaper: "Door e-paper sign (current face)", no_epaper: "No e-paper sign configured",
    connected: "connected", disconnected: "not connected", insecure: "unencrypted (mqtt://)", total: "total", none: "none",
    system: "System and updates", update_hint: "Upload a signed update bundle (.raucb): it is installed into the other slot and the board reboots to try it; it stays only if its health check passes, otherwise the board returns to the current system.",
    bundle: "Bundle", install: "Upload and install", slot: "Booted slot", image: "Image", data_free: "Data partition free", last_update: "Last update step",
    net_wired: "wired", net_wifi: "Wi-Fi", wifi_configured: "Wi-Fi network (provisioning)",
    no_updates: "This system takes no update bundles (not a Ketang image)", uploading: "Uploading", received: "Handed to the installer; the board reboots shortly",
    provisioning: "Provisioning file", provisioning_hint: "Paste or choose ketang-provision.toml (school, classroom, device id, broker, certificates, technician password hash). Nothing is written unless all of it is valid; then the daemon restarts with it.",
    provisioning_file: "Provisioning file", apply: "Apply", provisioned_ok: "Applied; the daemon is restarting…",
    r_device_id: "Device id", r_class: "Class", r_version: "Version", r_mode: "Mode", r_uptime: "Uptime (s)", r_clock: "Clock",
    r_store: "Local database", r_https: "HTTPS certificate (SHA-256)", r_broker: "Broker (MQTT)", r_state: "State", r_security: "Security",
    r_published: "Published / acked", r_connections: "Connections", disk_full: "DISK FULL", mode_demo: "demo", mode_production: "production",
    st_ok: "ok", st_fault: "fault", st_missing: "missing", st_degraded: "degraded", st_disabled: "disabled",
    s_attendance: "attendance", s_health_check: "health_check", s_followup: "followup", s_lesson: "lesson", s_lesson_report: "lesson_report",
    s_alarm: "alarm", s_whiteboard: "whiteboard", s_telemetry: "telemetry", s_ack: "ack", s_update: "update", s_behaviour: "behaviour",
    s_rejected: "rejected", s_dropped: "dropped" },
};
const params = new URLSearchParams(location.search);
let lang = params.get("lang") || localStorage.getItem("ketang.lang") || "zh";
let csrf = null;
const $ = id => document.getElementById(id);
const t = k => (L[lang] || L.zh)[k] ?? k;
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const rows = pairs => pairs.map(([k, v, cls]) => `<tr><th>${esc(k)}</th><td class="${cls || ""}">${esc(v)}</td></tr>`).join("");

async function api(path, opts = {}) {
  const headers = { "content-type": "application/json" };
  if (csrf) headers["x-csrf-token"] = csrf;
  const res = await fetch(path, { credentials: "same-origin", ...opts, headers });
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (!res.ok) {
    // The device words each refusal in both languages (error, error_zh).
    const msg = (body && (lang !== "en" && body.error_zh ? body.error_zh : body.error)) || res.statusText;
    const e = new Error(msg); e.code = res.status; throw e;
  }
  return body;
}

function labels() {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = t(el.dataset.i18n); });
  $("lang").textContent = lang === "en" ? "中文" : "EN";
}

function show(id) { ["provision", "login", "dash"].forEach(x => $(x).classList.toggle("hidden", x !== id)); }

async function start() {
  labels();
  try {
    const s = await api("/api/v1/session");
    if (s.role === "technician") { csrf = s.csrf_token; return dash(); }
  } catch (_) { }
  const p = await api("/api/v1/tech/provision");
  show(p.provisioned ? "login" : "provision");
  try { const st = await api("/api/v1/status"); $("provision-id").textContent = st.device.device_id; } catch (_) { }
}

async function dash() {
  show("dash");
  $("logout").classList.remove("hidden");
  const v = await api("/api/v1/tech");
  const s = v.status;
  $("who").textContent = `${s.device.school_id} / ${s.device.classroom_id} / ${s.device.device_id}`;
  const word = (prefix, v) => { const k = prefix + v; const w = t(k); return w === k ? v : w; };
  $("device").innerHTML = rows([[t("r_device_id"), s.device.device_id], [t("r_class"), s.device.class_name], [t("r_version"), s.version],
    [t("r_mode"), word("mode_", s.mode)], [t("r_uptime"), s.uptime_s], [t("r_clock"), `${s.clock.now} (${s.clock.timezone}${s.clock.synced ? ", NTP" : ""})`],
    [t("r_store"), `${s.store.path} · v${s.store.schema_version}${s.store.disk_full ? " · " + t("disk_full") : ""}`],
    [t("r_https"), v.config.http.https_fingerprint_sha256 || t("none")]]);
  $("network").innerHTML = rows([[t("r_broker"), s.sync.broker || t("none")],
    [t("r_state"), s.sync.connected ? t("connected") : t("disconnected") + " · " + s.sync.state, s.sync.connected ? "ok" : "warn"],
    [t("r_security"), s.sync.insecure ? t("insecure") : "TLS", s.sync.insecure ? "bad" : "ok"],
    [t("r_published"), `${s.sync.published} / ${s.sync.acked}`], [t("r_connections"), s.sync.connections],
    ...s.system.network.interfaces.map(i => [`${i.name} (${t("net_" + i.kind)})`,
      `${i.state}${i.signal_dbm == null ? "" : ` · ${i.signal_dbm} dBm`}`, i.state === "up" ? "ok" : ""]),
    [t("wifi_configured"), s.system.network.wifi ? `${s.system.network.wifi.ssid} · ${s.system.network.wifi.security}` : t("none")]]);
  const pend = Object.entries(s.outbox.pending);
  $("outbox").innerHTML = rows(pend.map(([k, n]) => [word("s_", k), n]).concat([[t("total"), s.outbox.total]]));
  $("hardware").innerHTML = s.hardware.map(h => `<tr><th>${esc(h.name)}</th><td>${esc(h.kind)}</td><td>${esc(h.driver)}</td>
    <td class="${h.state === "ok" ? "ok" : "bad"}">${esc(word("st_", h.state))}</td><td>${esc(h.detail || "")}</td>
    <td><button class="small" data-selftest="${esc(h.name)}" data-testid="selftest-${esc(h.name)}">${t("selftest")}</button>
    <span data-testid="selftest-result-${esc(h.name)}"></span></td></tr>`).join("");
  $("config").textContent = JSON.stringify(v.config, null, 2);
  const img = $("epaper");
  img.onerror = () => { img.classList.add("hidden"); $("epaper-note").textContent = t("no_epaper"); };
  img.onload = () => { img.classList.remove("hidden"); $("epaper-note").textContent = ""; };
  img.src = "/api/v1/tech/epaper.png?t=" + Date.now();
  $("logs").textContent = v.logs.join("\n");
  const y = s.system, u = y.update;
  $("system").innerHTML = rows([[t("slot"), y.slot || t("none")], [t("image"), y.image || t("none")],
    [t("data_free"), y.data_free_mb == null ? "?" : `${y.data_free_mb} MiB`],
    [t("last_update"), u ? `${u.state}${u.source ? " · " + u.source : ""}${u.detail ? " · " + u.detail : ""} · ${u.at}` : t("none"),
      u && ["failed", "refused", "rolled_back"].includes(u.state) ? "bad" : ""]]);
  $("update-form").classList.toggle("hidden", !y.updates);
  if (!y.updates) $("update-result").textContent = t("no_updates");
  await faces();
}

async function faces() {
  const f = await api("/api/v1/tech/faces");
  $("faces-state").textContent = `${f.enabled ? t("faces_on") : t("faces_off")} · ${f.model}`;
  $("faces").innerHTML = f.consents.map(c => `<tr><th>${esc(c.student_id)}</th><td>${esc(c.granted_at)}</td>
    <td>${esc(t("source_" + c.source))}${c.recorded_by ? " · " + esc(c.recorded_by) : ""}</td><td>${c.templates} ${esc(t("templates"))}</td>
    <td><button class="small" data-withdraw="${esc(c.student_id)}" data-testid="withdraw-${esc(c.student_id)}">${t("withdraw")}</button></td></tr>`).join("")
    || `<tr><td class="muted">${t("none")}</td></tr>`;
}

async function faceAction(body) {
  const out = $("faces-result");
  out.className = ""; out.textContent = "…";
  try {
    const r = await api("/api/v1/actions", { method: "POST", body: JSON.stringify(body) });
    out.className = "ok";
    out.textContent = r.templates_deleted !== undefined ? `${t("done")} · ${t("deleted")}: ${r.templates_deleted}` : t("done");
  } catch (err) { out.className = "bad"; out.textContent = err.message; }
  await faces();
}

$("provision").onsubmit = async e => {
  e.preventDefault();
  if ($("p1").value !== $("p2").value) { $("provision-error").textContent = t("mismatch"); return; }
  try {
    await api("/api/v1/tech/provision", { method: "POST", body: JSON.stringify({ password: $("p1").value }) });
    show("login");
  } catch (err) { $("provision-error").textContent = err.message; }
};
$("login").onsubmit = async e => {
  e.preventDefault();
  try {
    const s = await api("/api/v1/session", { method: "POST", body: JSON.stringify({ password: $("pw").value }) });
    csrf = s.csrf_token;
    await dash();
  } catch (err) { $("login-error").textContent = err.code === 401 ? t("wrong") : err.message; }
};
$("logout").onclick = async () => { try { await api("/api/v1/session", { method: "DELETE" }); } catch (_) { } location.reload(); };
$("reload").onclick = dash;
document.addEventListener("click", async e => {
  const b = e.target.closest("button[data-selftest]");
  if (!b) return;
  const out = document.querySelector(`[data-testid="selftest-result-${b.dataset.selftest}"]`);
  out.textContent = "…";
  try {
    const r = await api("/api/v1/actions", { method: "POST", body: JSON.stringify({ action: "self_test", device: b.dataset.selftest }) });
    out.className = r.ok ? "ok" : "bad";
    out.textContent = `${r.ok ? t("passed") : t("failed")} · ${r.detail} · ${r.ms} ms`;
  } catch (err) { out.className = "bad"; out.textContent = err.message; }
});
$("consent-form").onsubmit = e => {
  e.preventDefault();
  const d = $("consent-date").value;
  faceAction({ action: "face_consent", student_id: $("consent-student").value.trim(), granted: true,
    ...(d ? { granted_at: `${d}T00:00:00+08:00` } : {}) });
};
$("enrol-form").onsubmit = e => {
  e.preventDefault();
  const file = $("enrol-photo").files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => faceAction({ action: "face_enrol", student_id: $("enrol-student").value.trim(),
    image_base64: String(reader.result).split(",")[1] || "" });
  reader.readAsDataURL(file);
};
document.addEventListener("click", e => {
  const b = e.target.closest("button[data-withdraw]");
  if (b) faceAction({ action: "face_consent", student_id: b.dataset.withdraw, granted: false });
});
$("provisioning-file").onchange = e => {
  const f = e.target.files[0];
  if (f) f.text().then(x => { $("provisioning-text").value = x; });
};
$("provisioning-form").onsubmit = async e => {
  e.preventDefault();
  const out = $("provisioning-result");
  try {
    const res = await fetch("/api/v1/tech/provisioning", { method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/toml", "x-csrf-token": csrf }, body: $("provisioning-text").value });
    const b = await res.json();
    if (!res.ok) throw new Error(b.error || res.statusText);
    $("provisioning-text").value = "";
    out.className = "ok"; out.textContent = `${t("provisioned_ok")} ${b.school_id} / ${b.classroom_id} / ${b.device_id}`;
    setTimeout(() => location.reload(), 6000);
  } catch (err) { out.className = "bad"; out.textContent = err.message; }
};
// The bundle is the request body, streamed (hundreds of MiB): XHR for upload progress.
$("update-form").onsubmit = e => {
  e.preventDefault();
  const file = $("update-file").files[0];
  if (!file) return;
  const bar = $("update-progress"), out = $("update-result");
  bar.classList.remove("hidden"); bar.value = 0; out.className = ""; out.textContent = t("uploading") + " …";
  const x = new XMLHttpRequest();
  x.open("POST", "/api/v1/tech/update");
  x.setRequestHeader("content-type", "application/octet-stream");
  x.setRequestHeader("x-csrf-token", csrf);
  x.upload.onprogress = p => { if (p.lengthComputable) bar.value = Math.round(100 * p.loaded / p.total); };
  x.onload = () => {
    let b = null; try { b = JSON.parse(x.responseText); } catch (_) { }
    if (x.status === 202) { out.className = "ok"; out.textContent = `${t("received")} · SHA-256 ${b.sha256.slice(0, 16)}…`; }
    else { out.className = "bad"; out.textContent = (b && b.error) || x.statusText; }
    dash();
  };
  x.onerror = () => { out.className = "bad"; out.textContent = "network error"; };
  x.send(file);
};
$("lang").onclick = () => { lang = lang === "en" ? "zh" : "en"; localStorage.setItem("ketang.lang", lang); labels(); };
start();
