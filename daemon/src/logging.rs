//! The tracing subscriber: to stderr, journald-friendly.
//!
//! Under systemd (`JOURNAL_STREAM` is set) each line starts with its syslog priority
//! (`<3>` error … `<7>` debug), which journald turns into the entry's priority, and carries
//! no timestamp (journald adds one). Elsewhere lines carry an RFC 3339 timestamp and level.
//! The filter comes from `KETANG_LOG` (e.g. `debug`, `ketangd=debug,rumqttc=warn`), default
//! `info`.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write as _;
use std::sync::{LazyLock, Mutex};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Environment variables ketangd reads; any other `KETANG_*` is warned about (a typo).
pub(crate) const KNOWN_ENV: &[&str] = &["KETANG_LOG", "KETANG_MODELS"];

struct Journald;

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let prio = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(w, "<{prio}>{}: ", event.metadata().target())?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// How many log lines the technician page can show.
pub(crate) const RING_LINES: usize = 500;

/// The last [`RING_LINES`] log lines, for the technician page (the log never holds names,
/// card UIDs or payloads).
static RING: LazyLock<Mutex<VecDeque<String>>> =
    LazyLock::new(|| Mutex::new(VecDeque::with_capacity(RING_LINES)));

/// The last `n` log lines, oldest first.
pub(crate) fn tail(n: usize) -> Vec<String> {
    let r = RING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    r.iter().skip(r.len().saturating_sub(n)).cloned().collect()
}

/// Writes one event to stderr and keeps it in the ring.
struct Tee(Vec<u8>);

impl std::io::Write for Tee {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        let _ = std::io::stderr().write_all(&self.0);
        let line = String::from_utf8_lossy(&self.0).trim_end().to_owned();
        let mut r = RING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if r.len() == RING_LINES {
            r.pop_front();
        }
        r.push_back(line);
    }
}

pub(crate) fn init() {
    let filter = EnvFilter::try_from_env("KETANG_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Tee(Vec::with_capacity(256)));
    if journald {
        builder.event_format(Journald).init();
    } else {
        builder.with_ansi(false).init();
    }
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str()
            && k.starts_with("KETANG_")
            && !KNOWN_ENV.contains(&k)
        {
            tracing::warn!(var = k, known = ?KNOWN_ENV, "Unknown KETANG_ environment variable ignored.");
        }
    }
}
