//! The `telemetry` stream: the board's health every `sync.telemetry_every_s` (default
//! 5 minutes), within the stream's budget (docs/mqtt.md "Bounded storage"). Counts, states
//! and sizes only: no names, card UIDs, payloads or broker addresses.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ketang_sync::{
    OutboxRecord, TelemetryBody, TelemetryCounters, TelemetryHardware, TelemetryInference,
    TelemetrySync,
};
use ketang_web::{DeviceApi, StatusReport};

use tokio_util::sync::CancellationToken;

use crate::api::Daemon;

/// Writes one telemetry record every `every` until `stop`.
pub(crate) async fn run(d: Arc<Daemon>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cpu = CpuSample::read();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let report = match d.status().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = ?e, "Telemetry skipped: the status could not be read.");
                continue;
            }
        };
        let now_cpu = CpuSample::read();
        let cpu_share = cpu.zip(now_cpu).and_then(|(a, b)| b.share_since(&a));
        cpu = now_cpu;
        let body = body(&report, &d, cpu_share, &Host::read());
        let record = OutboxRecord::new(&body, d.clock.now().fixed_offset(), d.clock.synced());
        if let Err(e) = d.store.enqueue(record).await {
            tracing::warn!(error = %e, "Telemetry record not stored.");
        }
    }
}

/// What the kernel says about the machine and this process (each `None` where unreadable).
#[derive(Debug, Default)]
struct Host {
    cpu_temp_c: Option<f64>,
    load_1m: Option<f64>,
    rss_bytes: Option<u64>,
}

impl Host {
    fn read() -> Self {
        Self {
            cpu_temp_c: cpu_temp_c(),
            load_1m: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok()),
            rss_bytes: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| vm_rss_bytes(&s)),
        }
    }
}

/// The hottest thermal zone (most boards have one for the SoC; x86 OPS modules several).
fn cpu_temp_c() -> Option<f64> {
    let zones = std::fs::read_dir("/sys/class/thermal").ok()?;
    zones
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| std::fs::read_to_string(e.path().join("temp")).ok())
        .filter_map(|t| t.trim().parse::<f64>().ok())
        .map(|milli| milli / 1000.0)
        .filter(|c| (-40.0..150.0).contains(c))
        .reduce(f64::max)
}

/// `VmRSS:  123456 kB` from /proc/self/status.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Busy and total jiffies of all CPUs (/proc/stat), for the CPU share between two samples.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    busy: u64,
    total: u64,
}

impl CpuSample {
    fn read() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    fn parse(stat: &str) -> Option<Self> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let total: u64 = v.iter().sum();
        // idle + iowait are not busy.
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        Some(Self {
            busy: total.saturating_sub(idle),
            total,
        })
    }

    fn share_since(&self, before: &Self) -> Option<f64> {
        let dt = self.total.checked_sub(before.total)?;
        (dt > 0).then(|| {
            ((self.busy.saturating_sub(before.busy)) as f64 / dt as f64 * 1000.0).round() / 1000.0
        })
    }
}

fn body(s: &StatusReport, d: &Daemon, cpu_share: Option<f64>, host: &Host) -> TelemetryBody {
    let sync = d.sync.as_ref();
    let counter = |f: fn(&ketang_sync::mqtt::SyncStatus) -> u64| sync.map_or(0, |s| f(s));
    let state = if s.sync.connected {
        "connected"
    } else if sync.is_some() {
        "disconnected"
    } else {
        "off"
    };
    TelemetryBody {
        uptime_s: s.uptime_s,
        cpu_temp_c: host.cpu_temp_c,
        cpu_share,
        load_1m: host.load_1m,
        rss_bytes: host.rss_bytes,
        disk_free_bytes: s.system.data_free_mb.map(|mb| mb * 1024 * 1024),
        store_disk_full: s.store.disk_full,
        outbox: s.outbox.pending.clone().into_iter().collect(),
        sync: TelemetrySync {
            state: state.to_owned(),
            published: counter(|x| x.published.load(Ordering::Relaxed)),
            acked: counter(|x| x.acked.load(Ordering::Relaxed)),
            connections: counter(|x| x.connections.load(Ordering::Relaxed)),
            attempts: counter(|x| x.attempts.load(Ordering::Relaxed)),
            rejected: counter(|x| x.rejected.load(Ordering::Relaxed)),
            downlinks: counter(|x| x.downlinks.load(Ordering::Relaxed)),
        },
        clock_synced: s.clock.synced,
        inference: TelemetryInference {
            enabled: d.inference.is_some(),
            camera_frames: s.counters.camera_frames,
        },
        counters: TelemetryCounters {
            card_taps: s.counters.card_taps,
            check_ins: s.counters.check_ins,
            health_checks: s.counters.health_checks,
            alarms: s.counters.alarms,
            rejected_inputs: s.counters.rejected_inputs,
        },
        hardware: s
            .hardware
            .iter()
            .map(|h| TelemetryHardware {
                name: h.name.clone(),
                kind: h.kind.clone(),
                state: h.state.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_and_cpu_figures_parse_from_procfs_text() {
        assert_eq!(
            vm_rss_bytes("Name:\tketangd\nVmRSS:\t   51200 kB\n"),
            Some(51_200 * 1024)
        );
        assert_eq!(vm_rss_bytes("Name:\tketangd\n"), None);
        let a = CpuSample::parse("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n").unwrap();
        let b = CpuSample::parse("cpu  200 0 200 800 100 0 0 0 0 0\n").unwrap();
        assert_eq!(b.share_since(&a), Some(0.667));
        assert_eq!(a.share_since(&a), None);
    }
}
