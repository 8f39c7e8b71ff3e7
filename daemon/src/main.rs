//! `ketangd`: the Ketang classroom appliance daemon.
//!
//! * `ketangd run --config FILE`: run on a board.
//! * `ketangd check-config FILE`: validate a config, print every problem or a summary.
//! * `ketangd health [--config FILE]`: is this board's daemon healthy (its `/healthz`)?
//! * `ketangd demo`: the whole daemon with a bundled demo school and simulated hardware.
//!
//! Exit codes: 0 success; 1 runtime failure; 2 invalid config or usage.

/// mimalloc keeps the inference thread's large tensor buffers instead of returning them to
/// the kernel after every frame (see `daemon/Cargo.toml`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod api;
mod app;
mod classroom;
mod clock;
mod config;
mod demo;
mod devices;
mod engine;
mod facekey;
#[cfg(test)]
mod fuzz_tests;
mod inference;
mod logging;
mod startup;
mod system;
mod telemetry;
mod uplink;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::DateTime;
use clap::{Parser, Subcommand};

use crate::app::RunOptions;
use crate::clock::Clock;
use crate::config::{Config, DeviceDriver};

#[derive(Parser)]
#[command(
    name = "ketangd",
    version,
    about = "Ketang (课堂) smart-classroom appliance daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon with a config file.
    Run {
        /// The TOML config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Ask this board's own daemon whether it is healthy (GET /healthz on the configured
    /// http.listen; a wildcard address is asked on loopback): exit 0 when it is, 1 with the
    /// reason when not (the post-update health check and the kiosk use it).
    Health {
        /// The TOML config file.
        #[arg(long, value_name = "FILE", default_value = "/etc/ketang/ketang.toml")]
        config: PathBuf,
        /// Keep asking up to this many seconds.
        #[arg(long, value_name = "S", default_value_t = 0)]
        wait: u64,
        /// Only print the class board's local URL (for the board's own browser).
        #[arg(long)]
        url: bool,
    },
    /// Validate a config file: print every problem (exit 2) or a summary (exit 0).
    CheckConfig {
        /// The TOML config file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Run the whole daemon with a bundled demo school and simulated hardware; no config.
    Demo {
        /// Where to serve the UI and API (port 0 picks a free port, printed at start).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Data directory (default: a new folder under the system temp dir).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// MQTT broker URL (mqtt://HOST:PORT); without it the demo runs offline.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// The demo's clock: an RFC 3339 instant to start from (e.g.
        /// 2026-11-23T07:55:00+08:00), or "now" for the real clock. Default: 07:55 on today's
        /// date if it is a weekday, else next Monday's, so a lesson opens as the demo starts.
        #[arg(long, value_name = "RFC3339|now")]
        clock: Option<String>,
        /// Publish rate limit towards the broker (0 = unlimited).
        #[arg(long, value_name = "N", default_value_t = 100)]
        max_publish_per_s: u32,
        /// How often a `telemetry` record is written, in seconds (0 = never).
        #[arg(long, value_name = "S", default_value_t = 300)]
        telemetry_every_s: u64,
        /// Cap the database at this many bytes, as if the disk were that full (trying what
        /// the board does on a full disk).
        #[arg(long, value_name = "BYTES")]
        data_max_bytes: Option<u64>,
        /// Folder with the face models (default: $KETANG_MODELS, else target/models as
        /// models/obtain.sh makes it, else /usr/share/ketang/models).
        #[arg(long, value_name = "DIR")]
        models: Option<PathBuf>,
        /// Receive update bundles (upload on /tech, `system.update`) into the spool as on a
        /// Ketang image, although no installer takes them here (trying the update flow).
        #[arg(long)]
        accept_updates: bool,
        /// Trust only this CA (PEM) for `system.update` downloads (`update.ca_file`).
        #[arg(long, value_name = "FILE")]
        update_ca: Option<PathBuf>,
        /// Who this demo board is, its school path and alarm SMS (several demo boards of
        /// one school: docs/technician.md, "The school's alarm path").
        #[command(flatten)]
        board: Box<demo::BoardFlags>,
    },
    /// Hash a teacher's PIN (read from stdin, 4-12 digits) for the `pin_hash` of the staff
    /// list in roster snapshots; prints an Argon2id PHC string.
    HashPin,
    /// Hash a technician password (read from stdin, at least 10 characters) for the
    /// provisioning file's `technician_password_hash`.
    HashPassword,
    /// Check a password (read from stdin) against the Argon2 hash in FILE: exit 0 when it
    /// matches, 1 when not. The image's emergency console asks it (docs/technician.md,
    /// "Emergency console"); nothing is printed either way.
    VerifyPassword {
        /// A file holding one Argon2 PHC string (the console's: root's alone).
        #[arg(long, value_name = "FILE")]
        hash_file: PathBuf,
    },
    /// Apply a provisioning file once (first boot): writes the config, TLS files and
    /// credentials, stores the technician password, then removes the file. Exit 2 when the
    /// file is invalid (nothing is applied) or the board is already provisioned.
    Provision {
        /// The provisioning file (boot partition or USB stick).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Where the config and its files go.
        #[arg(long, value_name = "DIR", default_value = "/etc/ketang")]
        etc: PathBuf,
        /// The data directory (the store).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/ketang")]
        data_dir: PathBuf,
        /// Re-provision a board that already has a technician password.
        #[arg(long)]
        force: bool,
    },
    /// Print the board's own identity (kt- and 12 hex digits), made once and kept in the
    /// data directory (`device-id`): what an unprovisioned board shows and what a
    /// provisioning file without device_id gives.
    DeviceId {
        /// The data directory.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/ketang")]
        data_dir: PathBuf,
    },
    /// Factory reset (with ketangd stopped): removes the school's data (the store with its
    /// outbox, audit log, consent records and face templates; the face template key). The
    /// device identity, certificates and technician password stay unless --all.
    FactoryReset {
        /// Where the config and its files are.
        #[arg(long, value_name = "DIR", default_value = "/etc/ketang")]
        etc: PathBuf,
        /// The data directory (the store).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/ketang")]
        data_dir: PathBuf,
        /// Also remove the config, certificates and credentials: unprovisioned afterwards.
        #[arg(long)]
        all: bool,
        /// Confirm: nothing is removed without it.
        #[arg(long)]
        yes: bool,
    },
}

/// A mistake in how ketangd was called or configured: exit code 2 (anything else that
/// fails is 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            // The one error printer: the whole chain, and 2 for usage or config mistakes.
            eprintln!("ketangd: {e:#}");
            if e.chain().any(|c| c.is::<Usage>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Health { config, wait, url } => health(&config, wait, url),
        Command::HashPin => hash_pin(),
        Command::HashPassword => hash_password(),
        Command::VerifyPassword { hash_file } => verify_password(&hash_file),
        Command::Provision {
            file,
            etc,
            data_dir,
            force,
        } => provision(&file, &etc, &data_dir, force),
        Command::DeviceId { data_dir } => device_id(&data_dir),
        Command::FactoryReset {
            etc,
            data_dir,
            all,
            yes,
        } => factory_reset(&etc, &data_dir, all, yes),
        Command::Run { config } => {
            logging::init();
            let cfg = Config::load(&config).map_err(|e| usage(format!("invalid config {e}")))?;
            let opts = RunOptions {
                mode: "production",
                clock: Clock::system(cfg.school.timezone),
                seed: None,
                announce: false,
                config_hash: config_hash(&std::fs::read(&config).unwrap_or_default()),
                config_path: Some(config.clone()),
            };
            block_on(app::run(cfg, opts))
        }
        Command::Demo {
            listen,
            data_dir,
            broker,
            clock,
            max_publish_per_s,
            telemetry_every_s,
            data_max_bytes,
            models,
            accept_updates,
            update_ca,
            board,
        } => {
            logging::init();
            let broker = broker
                .as_deref()
                .map(config::parse_broker)
                .transpose()
                .map_err(|e| usage(format!("--broker: {e}")))?;
            let (class_name, seed) = demo::snapshot()?;
            let data_dir = data_dir.unwrap_or_else(|| {
                let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
                std::env::temp_dir().join(format!("ketang-demo-{stamp}-{}", std::process::id()))
            });
            eprintln!("ketangd demo: data in {}", data_dir.display());
            let mut cfg = demo::config(
                class_name,
                listen,
                data_dir,
                broker,
                demo::models_dir(models),
            );
            cfg.sync.max_publish_per_s = std::num::NonZeroU32::new(max_publish_per_s);
            cfg.data_max_bytes = data_max_bytes.or(cfg.data_max_bytes);
            cfg.sync.telemetry_every =
                (telemetry_every_s > 0).then(|| std::time::Duration::from_secs(telemetry_every_s));
            cfg.update.enabled |= accept_updates;
            if update_ca.is_some() {
                cfg.update.ca_file = update_ca;
            }
            board.apply(&mut cfg).map_err(usage)?;
            let tz = cfg.school.timezone;
            let clock = match clock.as_deref() {
                Some("now") => Clock::system(tz),
                Some(t) => Clock::starting_at(
                    tz,
                    DateTime::parse_from_rfc3339(t).map_err(|e| {
                        usage(format!(
                            "--clock: {t:?} is not an RFC 3339 time or \"now\": {e}"
                        ))
                    })?,
                ),
                None => Clock::starting_at(
                    tz,
                    demo::default_start(chrono::Utc::now().with_timezone(&tz)),
                ),
            };
            let opts = RunOptions {
                mode: "demo",
                clock,
                seed: Some(seed),
                announce: true,
                config_hash: config_hash(b"demo"),
                config_path: None,
            };
            block_on(app::run(cfg, opts))
        }
    }
}

fn current_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[allow(clippy::print_stdout, reason = "the technician reads what was removed")]
fn factory_reset(etc: &Path, data_dir: &Path, all: bool, yes: bool) -> anyhow::Result<ExitCode> {
    if !yes {
        return Err(usage(format!(
            "factory-reset: this removes the school's data in {}{}; add --yes to do it",
            data_dir.display(),
            if all {
                format!(" and the config in {}", etc.display())
            } else {
                String::new()
            }
        )));
    }
    let r = current_thread_runtime()?
        .block_on(system::reset::factory_reset(etc, data_dir, all))
        .map_err(|e| usage(format!("factory-reset: {e:#}")))?;
    for p in &r.removed {
        println!("removed {}", p.display());
    }
    println!(
        "factory reset done; {}",
        if r.kept_identity {
            "identity, certificates and technician password kept"
        } else {
            "the board is unprovisioned"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// One line of stdin, for the hash commands.
fn read_stdin_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| usage(format!("reading the {what} from stdin: {e}")))?;
    Ok(line)
}

#[allow(clippy::print_stdout, reason = "the id is the command's output")]
fn device_id(data_dir: &Path) -> anyhow::Result<ExitCode> {
    println!("{}", system::identity::device_id(data_dir)?);
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout, reason = "the hash is the command's output")]
fn hash_pin() -> anyhow::Result<ExitCode> {
    let pin = read_stdin_line("PIN")?;
    let pin = pin.trim();
    if !(4..=12).contains(&pin.len()) || !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(usage("a PIN is 4 to 12 digits"));
    }
    println!("{}", api::hash_pin(pin)?);
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout, reason = "the hash is the command's output")]
fn hash_password() -> anyhow::Result<ExitCode> {
    let pw = read_stdin_line("password")?;
    let pw = pw.trim_end_matches(['\r', '\n']);
    if pw.chars().count() < 10 {
        return Err(usage("a technician password has at least 10 characters"));
    }
    println!("{}", api::hash_pin(pw)?);
    Ok(ExitCode::SUCCESS)
}

fn verify_password(hash_file: &Path) -> anyhow::Result<ExitCode> {
    let hash = std::fs::read_to_string(hash_file).map_err(|e| {
        usage(format!(
            "reading the hash file {}: {e}",
            hash_file.display()
        ))
    })?;
    let hash = hash.trim();
    if argon2::PasswordHash::new(hash).is_err() {
        return Err(usage(format!(
            "{}: not an Argon2 PHC string",
            hash_file.display()
        )));
    }
    let pw = read_stdin_line("password")?;
    let pw = pw.trim_end_matches(['\r', '\n']);
    Ok(if api::verify_pin(pw, hash) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[allow(clippy::print_stdout, reason = "the technician reads what was applied")]
fn provision(file: &Path, etc: &Path, data_dir: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let a = current_thread_runtime()?
        .block_on(system::provision::apply(file, etc, data_dir, force))
        .map_err(|e| usage(format!("{e:#}")))?;
    println!(
        "provisioned: school {} classroom {} device {}; config {}",
        a.school_id,
        a.classroom_id,
        a.device_id,
        a.config.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// First 16 hex digits of the SHA-256 of the config file: lets the cloud see which
/// config a board runs without seeing the config.
fn config_hash(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(bytes);
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn block_on(
    fut: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(fut).inspect_err(|e| {
        tracing::error!(error = format!("{e:#}"), "Daemon failed.");
    })?;
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout, reason = "--url prints the URL for the kiosk")]
fn health(config: &Path, wait: u64, url: bool) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config).map_err(|e| usage(e.to_string()))?;
    if url {
        println!("{}", system::health::local_url(cfg.http.listen));
        return Ok(ExitCode::SUCCESS);
    }
    system::health::check(cfg.http.listen, std::time::Duration::from_secs(wait))?;
    Ok(ExitCode::SUCCESS)
}

#[allow(
    clippy::print_stdout,
    reason = "check-config prints its summary for the technician"
)]
fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(file).map_err(|e| usage(e.to_string()))?;
    let d = &cfg.device;
    println!("{}: ok", file.display());
    println!(
        "  device      school={} classroom={} device={} class={:?}",
        d.school_id, d.classroom_id, d.device_id, d.class_name
    );
    println!("  data_dir    {}", cfg.data_dir.display());
    println!("  http        {}", cfg.http.listen);
    let s = &cfg.sync;
    match &s.broker {
        None => println!("  sync        offline (no broker_url)"),
        Some(b) => {
            let auth = match (&s.client_cert, &s.credentials) {
                (Some(_), Some(_)) => "client certificate + username/password",
                (Some(_), None) => "client certificate (mutual TLS)",
                (None, Some(_)) => "username/password (from the credentials file; not shown)",
                (None, None) => "anonymous",
            };
            println!(
                "  sync        {} keep-alive {} s, auth: {auth}",
                b.redacted(),
                s.keep_alive.as_secs()
            );
            if !b.tls {
                println!("  WARNING     mqtt:// is unencrypted; use mqtts:// outside a lab");
            }
        }
    }
    match &cfg.school_link {
        None => println!("  school path none (alarms reach the region and this room only)"),
        Some(l) => {
            println!(
                "  school path {} as {}{}",
                l.broker.redacted(),
                if l.duty_room {
                    "the duty room"
                } else {
                    "a classroom"
                },
                if l.broker.tls {
                    ""
                } else {
                    " (mqtt://: unencrypted on the LAN)"
                }
            );
        }
    }
    if !cfg.alarm.sms_numbers.is_empty() {
        println!(
            "  alarm SMS   {} numbers after {} s without an acknowledgement{}",
            cfg.alarm.sms_numbers.len(),
            cfg.alarm.sms_after.as_secs(),
            if cfg.alarm.sms_on_drill {
                ", drills too"
            } else {
                ""
            }
        );
    }
    for dev in &cfg.hardware.devices {
        let how = match &dev.driver {
            DeviceDriver::Simulated => "simulated".to_owned(),
            DeviceDriver::Mfrc522 { spi, .. } => format!("mfrc522 on {}", spi.display()),
            DeviceDriver::Evdev { device, format } => {
                format!("evdev {} (card numbers: {format:?})", device.display())
            }
            DeviceDriver::Mlx90614 { i2c, address } => {
                format!("mlx90614 on {} at {address:#04x}", i2c.display())
            }
            DeviceDriver::Gpio(l) => format!(
                "gpio {} line {}{}",
                l.chip.display(),
                l.line,
                if l.active_low { " (active low)" } else { "" }
            ),
            DeviceDriver::Serial {
                port,
                dialect,
                baud,
                ..
            } => format!("serial {} {dialect:?} {baud} baud", port.display()),
            DeviceDriver::Frames { dir } => format!("frames from {}", dir.display()),
            DeviceDriver::V4l2 {
                device,
                width,
                height,
            } => format!("v4l2 {} at about {width}×{height}", device.display()),
            DeviceDriver::Wav { dir } => format!("recordings from {}", dir.display()),
            DeviceDriver::Alsa { device, channels } => {
                format!("alsa {device} ({channels} channel(s)) via arecord")
            }
            DeviceDriver::Waveshare { spi, model, .. } => {
                format!("waveshare {model:?} on {}", spi.display())
            }
        };
        println!(
            "  hardware    {:<12} {:<12} {how}",
            dev.name,
            dev.kind.as_str()
        );
    }
    if cfg.hardware.devices.is_empty() {
        println!("  hardware    none configured");
    }
    let sc = &cfg.school;
    println!(
        "  school      tz={} check-in opens {} min before, late after {} min, fever >= {} °C",
        sc.timezone.name(),
        sc.checkin_opens.as_secs() / 60,
        sc.late_after.as_secs() / 60,
        sc.fever_threshold_c
    );
    Ok(ExitCode::SUCCESS)
}
