//! `/metrics`: the status report rendered as Prometheus/OpenMetrics text.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::StatusReport;

type Labels = Vec<(&'static str, String)>;

/// Renders `s` as OpenMetrics text.
pub(crate) fn render(s: &StatusReport) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::with_prefix("ketang");

    let info = Family::<Labels, Gauge>::default();
    info.get_or_create(&vec![
        ("version", s.version.clone()),
        ("mode", s.mode.clone()),
        ("device_id", s.device.device_id.clone()),
    ])
    .set(1);
    reg.register("build_info", "Build and identity of this daemon", info);

    let uptime = Gauge::<i64>::default();
    uptime.set(i64::try_from(s.uptime_s).unwrap_or(i64::MAX));
    reg.register("uptime_seconds", "Seconds since the daemon started", uptime);

    let pending = Family::<Labels, Gauge>::default();
    for (stream, n) in &s.outbox.pending {
        pending
            .get_or_create(&vec![("stream", stream.clone())])
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    reg.register(
        "outbox_pending",
        "Outbox rows waiting to be synced, per stream",
        pending,
    );

    let connected = Gauge::<i64>::default();
    connected.set(i64::from(s.sync.connected));
    reg.register(
        "sync_connected",
        "1 when connected to the MQTT broker",
        connected,
    );

    for (name, help, value) in [
        (
            "sync_published",
            "Outbox records published (including re-sends)",
            s.sync.published,
        ),
        (
            "sync_acked",
            "Outbox records acknowledged by the broker",
            s.sync.acked,
        ),
        (
            "sync_connections",
            "Connections made to the broker",
            s.sync.connections,
        ),
    ] {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        reg.register(name, help, c);
    }

    let hw = Family::<Labels, Gauge>::default();
    for d in &s.hardware {
        hw.get_or_create(&vec![
            ("device", d.name.clone()),
            ("kind", d.kind.clone()),
            ("driver", d.driver.clone()),
        ])
        .set(i64::from(d.state == "ok"));
    }
    reg.register("hardware_ok", "1 when a configured device works", hw);

    let alarms = Gauge::<i64>::default();
    alarms.set(i64::try_from(s.alarms.len()).unwrap_or(i64::MAX));
    reg.register("alarms_active", "Alarms raised and not cleared", alarms);

    let disk_full = Gauge::<i64>::default();
    disk_full.set(i64::from(s.store.disk_full));
    reg.register(
        "store_disk_full",
        "1 when the last store write failed for a full disk",
        disk_full,
    );

    let synced = Gauge::<i64>::default();
    synced.set(i64::from(s.clock.synced));
    reg.register(
        "clock_synced",
        "1 when the clock is NTP-synchronised",
        synced,
    );

    for (name, help, value) in [
        ("card_taps", "Card taps seen", s.counters.card_taps),
        (
            "unknown_cards",
            "Taps of cards that no student owns",
            s.counters.unknown_cards,
        ),
        ("check_ins", "Check-ins recorded", s.counters.check_ins),
        (
            "health_checks",
            "Health checks recorded",
            s.counters.health_checks,
        ),
        ("alarms_raised", "Alarms raised", s.counters.alarms),
        (
            "rejected_inputs",
            "Hardware inputs rejected as malformed",
            s.counters.rejected_inputs,
        ),
        (
            "clock_jumps",
            "Clock jumps seen between engine ticks",
            s.counters.clock_jumps,
        ),
        (
            "camera_frames",
            "Frames the camera handed to inference",
            s.counters.camera_frames,
        ),
    ] {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        reg.register(name, help, c);
    }

    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}
