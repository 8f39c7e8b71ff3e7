//! Simulated devices for level-1 tests.
//!
//! [`Panel`] is a flat panel on the far end of a pseudo-terminal that implements the three
//! dialects of `ketang_drivers::panel` from its own reading of the vendors' protocols (not
//! from the driver's tables), with faults: slow, silent, garbage, refusing, ignoring sets,
//! echoing.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::PtyLink;

/// Which dialect the simulated panel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimDialect {
    /// `*pow=on#`.
    Benq,
    /// `set powerstate=on`.
    Smart,
    /// `ka 01 01`, with this set ID.
    Lg(u8),
}

/// How the simulated panel misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers correctly.
    None,
    /// Answers after this long.
    Slow(Duration),
    /// Never answers.
    Silent,
    /// Answers line noise.
    Garbage,
    /// Refuses every request.
    Refuse,
    /// Acknowledges sets but does not apply them.
    IgnoreSets,
    /// Echoes each request before answering (as some panels do).
    Echo,
}

/// The simulated panel's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanelState {
    /// On.
    pub power: bool,
    /// Input, as the dialect names it.
    pub input: &'static str,
    /// 0–100.
    pub volume: u8,
    /// Muted.
    pub mute: bool,
    /// Keys locked.
    pub lock: bool,
    /// Requests seen.
    pub requests: u32,
}

/// A running simulated panel.
#[derive(Debug)]
pub struct Panel {
    /// Its state (shared with the thread).
    pub state: Arc<Mutex<PanelState>>,
    _thread: JoinHandle<()>,
}

const BENQ_INPUTS: [&str; 5] = ["hdmi", "hdmi2", "dp", "rgb", "ops"];
const SMART_INPUTS: [&str; 5] = ["hdmi1", "hdmi2", "dp1", "vga1", "ops1"];
const LG_INPUTS: [(u8, &str); 5] = [
    (0x90, "hdmi1"),
    (0x91, "hdmi2"),
    (0xC0, "dp"),
    (0x60, "vga"),
    (0x98, "ops"),
];

impl Panel {
    /// Starts a panel on `link` (the device end of a pty).
    #[must_use]
    pub fn start(mut link: PtyLink, dialect: SimDialect, fault: Fault) -> Self {
        let state = Arc::new(Mutex::new(PanelState {
            power: false,
            input: match dialect {
                SimDialect::Benq => "hdmi",
                SimDialect::Smart => "hdmi1",
                SimDialect::Lg(_) => "hdmi1",
            },
            volume: 30,
            mute: false,
            lock: false,
            requests: 0,
        }));
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let mut line = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                let Ok(n) = link.read_some(&mut buf) else {
                    return;
                };
                if n == 0 {
                    return;
                }
                for &b in &buf[..n] {
                    if b != b'\r' {
                        line.push(b);
                        continue;
                    }
                    let req = String::from_utf8_lossy(&line).trim().to_owned();
                    line.clear();
                    if req.is_empty() {
                        continue;
                    }
                    let answer = {
                        let mut s = shared
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        s.requests += 1;
                        answer(dialect, fault, &mut s, &req)
                    };
                    match fault {
                        Fault::Silent => continue,
                        Fault::Slow(d) => std::thread::sleep(d),
                        Fault::Echo => {
                            let _ = link.write_all_now(req.as_bytes());
                            let _ = link.write_all_now(b"\r\n");
                        }
                        _ => {}
                    }
                    if link.write_all_now(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            }
        });
        Self {
            state,
            _thread: thread,
        }
    }

    /// A copy of the state.
    #[must_use]
    pub fn state(&self) -> PanelState {
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn on(v: &str) -> Option<bool> {
    match v {
        "on" | "ON" => Some(true),
        "off" | "OFF" | "standby" => Some(false),
        _ => None,
    }
}

fn onoff(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn answer(dialect: SimDialect, fault: Fault, s: &mut PanelState, req: &str) -> String {
    if fault == Fault::Garbage {
        return "\u{7}~~!!?\r\n\u{1b}[0m@@@\r\n".to_owned();
    }
    let apply = fault != Fault::IgnoreSets;
    match dialect {
        SimDialect::Benq => {
            let refused = "*Block item#\r\n".to_owned();
            if fault == Fault::Refuse {
                return refused;
            }
            let Some(body) = req.strip_prefix('*').and_then(|r| r.strip_suffix('#')) else {
                return "*Illegal format#\r\n".to_owned();
            };
            let Some((k, v)) = body.split_once('=') else {
                return "*Illegal format#\r\n".to_owned();
            };
            let q = v == "?";
            let value = match k {
                "pow" => {
                    if !q {
                        let Some(b) = on(v) else { return refused };
                        if apply {
                            s.power = b;
                        }
                    }
                    onoff(s.power).to_uppercase()
                }
                "sour" => {
                    if !q {
                        let Some(i) = BENQ_INPUTS.iter().find(|i| **i == v) else {
                            return refused;
                        };
                        if apply {
                            s.input = i;
                        }
                    }
                    s.input.to_uppercase()
                }
                "vol" => {
                    if !q {
                        let Ok(n) = v.parse::<u8>() else {
                            return refused;
                        };
                        if apply {
                            s.volume = n.min(100);
                        }
                    }
                    s.volume.to_string()
                }
                "mute" => {
                    if !q {
                        let Some(b) = on(v) else { return refused };
                        if apply {
                            s.mute = b;
                        }
                    }
                    onoff(s.mute).to_uppercase()
                }
                "keylock" => {
                    if !q {
                        let Some(b) = on(v) else { return refused };
                        if apply {
                            s.lock = b;
                        }
                    }
                    onoff(s.lock).to_uppercase()
                }
                _ => return refused,
            };
            format!("\r\n*{}={value}#\r\n", k.to_uppercase())
        }
        SimDialect::Smart => {
            let prompt = "\r\n>";
            if fault == Fault::Refuse {
                return format!("invalid cmd{prompt}");
            }
            let (set, rest) = if let Some(r) = req.strip_prefix("set ") {
                (true, r)
            } else if let Some(r) = req.strip_prefix("get ") {
                (false, r)
            } else {
                return format!("invalid cmd{prompt}");
            };
            let (k, v) = if set {
                match rest.split_once('=') {
                    Some(kv) => kv,
                    None => return format!("invalid param{prompt}"),
                }
            } else {
                (rest, "")
            };
            let value = match k {
                "powerstate" => {
                    if set {
                        let Some(b) = on(v) else {
                            return format!("invalid param{prompt}");
                        };
                        if apply {
                            s.power = b;
                        }
                    }
                    (if s.power { "on" } else { "standby" }).to_owned()
                }
                "input" => {
                    if set {
                        let Some(i) = SMART_INPUTS.iter().find(|i| **i == v) else {
                            return format!("invalid param{prompt}");
                        };
                        if apply {
                            s.input = i;
                        }
                    }
                    s.input.to_owned()
                }
                "volume" => {
                    if set {
                        let Ok(n) = v.parse::<u8>() else {
                            return format!("invalid param{prompt}");
                        };
                        if apply {
                            s.volume = n.min(100);
                        }
                    }
                    s.volume.to_string()
                }
                "mute" | "keylock" => {
                    let field = if k == "mute" {
                        &mut s.mute
                    } else {
                        &mut s.lock
                    };
                    if set {
                        let Some(b) = on(v) else {
                            return format!("invalid param{prompt}");
                        };
                        if apply {
                            *field = b;
                        }
                    }
                    onoff(*field).to_owned()
                }
                _ => return format!("invalid cmd{prompt}"),
            };
            format!("{k}={value}{prompt}")
        }
        SimDialect::Lg(id) => {
            let parts: Vec<&str> = req.split(' ').collect();
            let [cmd, set_id, data] = parts[..] else {
                return String::new();
            };
            let Ok(to) = u8::from_str_radix(set_id, 16) else {
                return String::new();
            };
            if to != 0 && to != id {
                // Addressed to another panel on the bus: stay quiet.
                return String::new();
            }
            let c2 = cmd.chars().nth(1).unwrap_or('?');
            let ng = |d: &str| format!("{c2} {id:02x} NG{d}x");
            if fault == Fault::Refuse {
                return ng("00");
            }
            let Ok(d) = u8::from_str_radix(data, 16) else {
                return ng("00");
            };
            let q = d == 0xFF;
            let value: u8 = match cmd {
                "ka" => {
                    if !q && apply {
                        s.power = d == 1;
                    }
                    u8::from(s.power)
                }
                "xb" => {
                    if !q {
                        let Some((_, name)) = LG_INPUTS.iter().find(|(c, _)| *c == d) else {
                            return ng(data);
                        };
                        if apply {
                            s.input = name;
                        }
                    }
                    LG_INPUTS
                        .iter()
                        .find(|(_, n)| *n == s.input)
                        .map_or(0, |(c, _)| *c)
                }
                "kf" => {
                    if !q && apply {
                        s.volume = d.min(100);
                    }
                    s.volume
                }
                "ke" => {
                    if !q && apply {
                        s.mute = d == 0;
                    }
                    u8::from(!s.mute)
                }
                "km" => {
                    if !q && apply {
                        s.lock = d == 1;
                    }
                    u8::from(s.lock)
                }
                _ => return ng(data),
            };
            format!("{c2} {id:02x} OK{value:02x}x")
        }
    }
}
