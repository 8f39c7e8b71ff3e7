//! Wiring and lifecycle: open the store, start the hardware, the classroom actor and the
//! HTTP server, tell systemd we are ready, and on SIGTERM/SIGINT shut down within 5 s,
//! handling queued input and flushing the store.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::SecondsFormat;
use ketang_sync::{Identity, SchoolSnapshot, StoreHandle};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::Daemon;
use crate::classroom::{Classroom, Counters, StoreHealth, Wiring};
use crate::clock::Clock;
use crate::config::Config;
use crate::devices::DeviceState;
use crate::devices::Hardware;
use crate::engine::timetable::Timetable;

/// The graceful-shutdown budget (systemd's TimeoutStopSec in the unit is larger).
pub(crate) const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

pub(crate) struct RunOptions {
    /// "demo" or "production".
    pub(crate) mode: &'static str,
    pub(crate) clock: Clock,
    /// School data to load into an empty store (the demo's).
    pub(crate) seed: Option<SchoolSnapshot>,
    /// Print the URL to open on stdout once serving (the demo).
    pub(crate) announce: bool,
    /// Hash of the config, reported in the MQTT birth message.
    pub(crate) config_hash: String,
    /// The config file (`ketangd run`); `None` in the demo.
    pub(crate) config_path: Option<std::path::PathBuf>,
}

pub(crate) async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let started = Instant::now();
    let started_at = opts.clock.now().to_rfc3339_opts(SecondsFormat::Secs, false);
    let boot_id = uuid::Uuid::new_v4().to_string();

    let identity = Identity {
        school_id: cfg.device.school_id.clone(),
        device_id: cfg.device.device_id.clone(),
        classroom_id: cfg.device.classroom_id.clone(),
    };
    let board_identity = identity.clone();
    // A factory reset the cloud asked for (system.factory_reset) runs before the store opens.
    crate::system::reset::pending(&cfg.data_dir).await?;
    let data_dir = cfg.data_dir.clone();
    let cap = cfg.data_max_bytes;
    let (store, open_report) =
        tokio::task::spawn_blocking(move || StoreHandle::open_capped(&data_dir, identity, cap))
            .await
            .context("the store thread could not start")?
            .with_context(|| {
                format!("opening the store in {} (data_dir)", cfg.data_dir.display())
            })?;
    tracing::info!(
        path = %open_report.path.display(),
        from = open_report.from_version,
        to = open_report.to_version,
        sqlite = %open_report.sqlite_version,
        "Store open."
    );

    if let Some(seed) = opts.seed {
        let (students, _, _) = store.school_counts().await.context("reading the store")?;
        if students == 0 {
            store
                .replace_school(seed)
                .await
                .context("loading the demo school")?;
            tracing::info!("Demo school loaded.");
        }
    }
    let periods = store.timetable().await.context("reading the timetable")?;
    let timetable = Arc::new(RwLock::new(Timetable {
        periods,
        calendar: crate::engine::calendar::Calendars::with_history(
            cfg.school.calendar.clone(),
            &store
                .calendars()
                .await
                .context("reading the school calendar")?,
        ),
        controls: store
            .lesson_controls(opts.clock.now().date_naive() - chrono::Days::new(7))
            .await
            .context("reading lessons")?
            .into_iter()
            .collect(),
    }));

    // When the engine first ran here: lessons that ended before are not finalised.
    let first = opts.clock.now_fixed().to_rfc3339();
    let since = store
        .meta_once("engine.since".into(), first)
        .await
        .context("reading the store")?;
    let since = chrono::DateTime::parse_from_rfc3339(&since)
        .with_context(|| format!("meta engine.since {since:?} is not a time"))?;

    let (tx, rx) = mpsc::channel(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let unlock = Arc::new(std::sync::Mutex::new(None));
    let (events, _) = tokio::sync::broadcast::channel(256);
    let hw = Arc::new(Hardware::new(&cfg.hardware, tx.clone()));
    let counters = Arc::new(Counters::default());
    let store_health = Arc::new(StoreHealth::default());
    let stop = CancellationToken::new();
    // Every configured device, started from the config in one place.
    let crate::startup::Started {
        whiteboard,
        sign,
        inference,
    } = crate::startup::start(&cfg, &hw, &tx, &stop);
    let face_key = if inference.is_some() {
        match crate::facekey::FaceKey::open_or_create(&cfg.inference.key_file) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "Face templates cannot be opened or stored; face attendance is off.");
                hw.set_state(
                    "camera",
                    DeviceState::Fault,
                    Some(format!("{e:#} (inference.key_file)")),
                );
                None
            }
        }
    } else {
        None
    };
    drop(tx);

    let alarm_path = school_path(&cfg, &events, &stop);
    let restart = Arc::new(tokio::sync::Notify::new());
    let (urgent, urgent_rx) = ketang_sync::mqtt::Urgent::channel();
    let classroom = Classroom::new(Wiring {
        store: store.clone(),
        school: cfg.school.clone(),
        clock: opts.clock.clone(),
        hw: hw.clone(),
        timetable: timetable.clone(),
        counters: counters.clone(),
        store_health: store_health.clone(),
        since,
        unlock: unlock.clone(),
        events: events.clone(),
        whiteboard,
        sign: sign.clone(),
        class_name: cfg.device.class_name.clone(),
        inference: inference.clone(),
        face_key,
        urgent: cfg.sync.broker.is_some().then(|| urgent.clone()),
        identity: board_identity,
        alarm_path: alarm_path.clone(),
    });
    let classroom_task = tokio::spawn(classroom.run(rx, cmd_rx, stop.clone()));
    let updater = crate::system::update::Updater::new(
        cfg.update.clone(),
        &cfg.data_dir,
        store.clone(),
        opts.clock.clone(),
    );
    tokio::spawn(updater.clone().watch(stop.clone()));

    let (sync_task, sync_status, hooks) =
        match crate::uplink::settings(&cfg, &boot_id, &opts.config_hash) {
            None => {
                tracing::info!(
                    "No broker configured: running offline; records wait in the outbox."
                );
                (None, None, None)
            }
            Some(settings) => {
                let hooks = Arc::new(crate::uplink::SyncHooks {
                    clock: opts.clock.clone(),
                    store: store.clone(),
                    timetable: timetable.clone(),
                    commands: cmd_tx.clone(),
                    updater: updater.clone(),
                    stop: stop.clone(),
                    device_id: cfg.device.device_id.clone(),
                    data_dir: cfg.data_dir.clone(),
                    restart: restart.clone(),
                    daemon: std::sync::OnceLock::new(),
                    ca_file: cfg.update.ca_file.clone(),
                    proxy: cfg.sync.proxy.clone(),
                });
                let (worker, status) = ketang_sync::mqtt::SyncWorker::new(
                    store.clone(),
                    settings,
                    hooks.clone(),
                    stop.clone(),
                );
                let worker = worker.with_urgent(urgent_rx);
                (Some(tokio::spawn(worker.run())), Some(status), Some(hooks))
            }
        };

    // HTTPS for the other devices on the LAN (docs/privacy.md, "Cleartext"). Without it
    // the board still serves its own screen; logins from other devices are refused.
    let https =
        crate::system::https::open_or_create(&cfg.data_dir.join("keys"), &cfg.device.device_id)
            .and_then(|id| {
                let tls = ketang_web::server::tls_config(id.cert_der, id.key_der)
                    .map_err(anyhow::Error::msg)?;
                Ok((tls, id.fingerprint))
            });
    let (tls, https_fingerprint) = match https {
        Ok((tls, fp)) => {
            tracing::info!(fingerprint = %fp, "HTTPS ready for other devices on the LAN.");
            (Some(tls), Some(fp))
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "No HTTPS: other devices cannot log in (only the board's own screen can).");
            (None, None)
        }
    };
    let daemon = Arc::new(Daemon {
        cfg: cfg.clone(),
        mode: opts.mode,
        store: store.clone(),
        open_report,
        store_health,
        hw,
        clock: opts.clock.clone(),
        timetable,
        counters,
        sync: sync_status,
        boot_id,
        started,
        started_at,
        commands: cmd_tx,
        unlock,
        events,
        sign,
        inference,
        updater,
        https_fingerprint,
        config_path: opts.config_path.clone(),
        restart: restart.clone(),
        alarm_path,
    });
    if let Some(h) = &hooks {
        let _ = h.daemon.set(Arc::downgrade(&daemon));
    }

    if !opts.clock.is_simulated() {
        tokio::spawn(crate::clock::watch_chrony(stop.clone()));
    }
    if let Some(every) = cfg.sync.telemetry_every {
        tokio::spawn(crate::telemetry::run(daemon.clone(), every, stop.clone()));
    }

    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (http.listen / --listen); is another process using it?",
                cfg.http.listen
            )
        })?;
    let local = listener
        .local_addr()
        .context("reading the bound HTTP address")?;
    let mut server = tokio::spawn(ketang_web::serve(
        listener,
        daemon.clone(),
        tls,
        stop.clone().cancelled_owned(),
    ));
    tracing::info!(addr = %local, mode = opts.mode, "HTTP API listening.");
    publish_board_url(local);
    if opts.announce {
        announce(local, &opts.clock);
    }
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("serving"),
    ]);
    let watchdog =
        sd_notify::watchdog_enabled().map(|every| tokio::spawn(watchdog(store.clone(), every)));

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let server_result = tokio::select! {
        _ = term.recv() => { tracing::info!("SIGTERM received; shutting down."); None }
        _ = int.recv() => { tracing::info!("SIGINT received; shutting down."); None }
        r = &mut server => Some(r),
        () = restart.notified() => {
            tracing::warn!("Restarting to run with the new provisioning (systemd starts the daemon again).");
            None
        }
    };
    notify(&[sd_notify::NotifyState::Stopping]);
    stop.cancel();
    if let Some(w) = watchdog {
        w.abort();
    }

    let shutdown = async {
        let served = match server_result {
            Some(r) => r,
            None => server.await,
        };
        let _ = classroom_task.await;
        if let Some(t) = sync_task {
            let _ = t.await;
        }
        drop(daemon);
        let flushed = store.shutdown().await;
        (served, flushed)
    };
    match tokio::time::timeout(SHUTDOWN_BUDGET, shutdown).await {
        Ok((served, flushed)) => {
            flushed.context("flushing the store at shutdown")?;
            served
                .context("the HTTP server task failed")?
                .context("the HTTP server failed")?;
            tracing::info!("Shut down cleanly.");
            Ok(())
        }
        Err(_) => anyhow::bail!(
            "shutdown took longer than {} s; exiting anyway (committed data is safe on disk)",
            SHUTDOWN_BUDGET.as_secs()
        ),
    }
}

/// The school's own alarm path (`[school_link]`) and the SMS fallback (`[alarm]`). A
/// school path that cannot start (its TLS files) is logged and left out: the board's own
/// alarm and the region still work.
fn school_path(
    cfg: &Config,
    events: &tokio::sync::broadcast::Sender<ketang_web::BoardEvent>,
    stop: &CancellationToken,
) -> crate::classroom::AlarmPath {
    let mut path = crate::classroom::AlarmPath {
        config: cfg.alarm.clone(),
        ..Default::default()
    };
    let Some(l) = &cfg.school_link else {
        return path;
    };
    let settings = ketang_sync::mqtt::SchoolLinkSettings {
        host: l.broker.host.clone(),
        port: l.broker.port,
        tls: l.broker.tls.then(|| ketang_sync::mqtt::TlsSettings {
            ca_file: l.ca_file.clone(),
            client_auth: l.client_cert.clone().zip(l.client_key.clone()),
        }),
        credentials: l
            .credentials
            .as_ref()
            .map(|c| (c.username.clone(), c.password.expose().to_owned())),
        school_id: cfg.device.school_id.clone(),
        device_id: cfg.device.device_id.clone(),
        keep_alive: l.keep_alive,
    };
    let events = events.clone();
    let on_change = move || {
        let _ = events.send(ketang_web::BoardEvent::Changed);
    };
    match ketang_sync::mqtt::SchoolLink::start(settings, on_change, stop.clone()) {
        Ok(link) => {
            tracing::info!(broker = %l.broker.redacted(), duty_room = l.duty_room, "School path starting.");
            path.school = Some(link);
            path.role = Some(if l.duty_room {
                ketang_sync::SchoolRole::DutyRoom
            } else {
                ketang_sync::SchoolRole::Classroom
            });
        }
        Err(e) => {
            tracing::error!(error = %e, "The school path cannot start; alarms reach the region only.")
        }
    }
    path
}

#[allow(
    clippy::print_stdout,
    reason = "the demo tells the person who started it where to look"
)]
fn announce(local: std::net::SocketAddr, clock: &Clock) {
    println!(
        "Ketang demo is running. Open http://{local}/ (class board), http://{local}/status (status page), http://{local}/api/v1/status (JSON)."
    );
    println!(
        "Simulate a card tap: curl -H 'Content-Type: application/json' -d '{{\"reader\":\"door\",\"uid\":\"040A9E95\"}}' http://{local}/api/v1/sim/card"
    );
    if clock.is_simulated() {
        println!(
            "Clock: simulated, from {} (pass --clock now for the real clock).",
            clock.now().format("%Y-%m-%d %H:%M %Z")
        );
    }
    println!("Stop with Ctrl-C.");
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "Could not notify systemd.");
    }
}

/// Pets the systemd watchdog at half its period, but only while the store answers: a
/// wedged store thread gets the daemon restarted.
async fn watchdog(store: StoreHandle, every: Duration) {
    let mut tick = tokio::time::interval(every / 2);
    loop {
        tick.tick().await;
        match tokio::time::timeout(every / 4, store.ping()).await {
            Ok(Ok(())) => notify(&[sd_notify::NotifyState::Watchdog]),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Store check failed; not petting the watchdog.")
            }
            Err(_) => tracing::error!("Store did not answer; not petting the watchdog."),
        }
    }
}

/// Under systemd (`RuntimeDirectory=ketang`: `$RUNTIME_DIRECTORY`), writes the class
/// board's local URL to `board-url` there, readable by all: the kiosk's browser opens
/// what the daemon really listens on, not an assumed `127.0.0.1:8080`.
fn publish_board_url(local: std::net::SocketAddr) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let Some(dir) = std::env::var_os("RUNTIME_DIRECTORY") else {
        return;
    };
    let Some(dir) = std::env::split_paths(&dir).next() else {
        return;
    };
    let path = dir.join("board-url");
    let tmp = dir.join("board-url.tmp");
    let url = crate::system::health::local_url(local);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| {
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
            f.write_all(url.as_bytes())
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!(error = %e, path = %path.display(), "The board's URL could not be written for the kiosk.");
    }
}
