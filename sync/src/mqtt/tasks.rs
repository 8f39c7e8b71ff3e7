//! The worker's helper tasks: applying downlinks (one at a time, in order) and enforcing
//! the outbox budgets every minute.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{OutboxRecord, StoreHandle};

use super::downlink::{DownlinkBody, parse_downlink};
use super::status::CommandHandler;
use super::{MqttSettings, topics};

/// Aborts the task when dropped (the event-loop pump must not outlive its session).
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Validates, applies and acknowledges downlink messages one at a time.
pub(super) async fn downlink_task<H: CommandHandler>(
    store: StoreHandle,
    s: MqttSettings,
    handler: Arc<H>,
    mut rx: mpsc::Receiver<(String, Vec<u8>)>,
) {
    while let Some((topic, payload)) = rx.recv().await {
        let Some((target, kind)) = topics::parse_down(&topic, &s.school_id, &s.device_id) else {
            tracing::warn!(%topic, "Message on an unexpected topic ignored.");
            continue;
        };
        let (now, synced) = handler.now();
        let result = match parse_downlink(kind, &target, &payload, &s.school_id, &s.device_id, now)
        {
            Err(r) => {
                tracing::warn!(
                    kind,
                    problems = r.problems.len(),
                    "Downlink message refused."
                );
                match r.id {
                    Some(id) => store
                        .apply_downlink(id, r.kind, None, r.problems, now, synced)
                        .await
                        .map(|_| ()),
                    None => store
                        .enqueue(OutboxRecord::new(
                            &crate::AckBody {
                                downlink_id: None,
                                kind: r.kind.chars().take(32).collect(),
                                ok: false,
                                problems: crate::limits::bound_problems(&r.problems),
                                duplicate: false,
                            },
                            now,
                            synced,
                        ))
                        .await
                        .map(|_| ()),
                }
            }
            Ok(dl) => match dl.body {
                DownlinkBody::Data(data) => match store
                    .apply_downlink(dl.id, dl.kind.clone(), Some(data), vec![], now, synced)
                    .await
                {
                    Ok(o) => {
                        tracing::info!(kind = %dl.kind, ok = o.ok, duplicate = o.duplicate, "Downlink handled.");
                        if o.ok && !o.duplicate {
                            handler.applied(&dl.kind).await;
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                DownlinkBody::Config(_) => {
                    let p = vec!["remote config changes are not supported by this version; edit the config file on the board".to_owned()];
                    store
                        .apply_downlink(dl.id, dl.kind, None, p, now, synced)
                        .await
                        .map(|_| ())
                }
                DownlinkBody::Command(cmd) => match store.downlink_seen(dl.id.clone()).await {
                    Ok(Some(_)) => store
                        .apply_downlink(dl.id, dl.kind, None, vec![], now, synced)
                        .await
                        .map(|_| ()),
                    Ok(None) => {
                        let name = cmd.name.clone();
                        let problems = handler.command(cmd).await.err().unwrap_or_default();
                        tracing::info!(command = %name, ok = problems.is_empty(), "Downlink command handled.");
                        store
                            .apply_downlink(dl.id, dl.kind, None, problems, now, synced)
                            .await
                            .map(|_| ())
                    }
                    Err(e) => Err(e),
                },
            },
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "Storing a downlink result failed; the cloud gets no ack for it.");
        }
    }
}

/// Enforces the outbox budgets every minute.
pub(super) async fn budget_task<H: CommandHandler>(
    store: StoreHandle,
    s: MqttSettings,
    handler: Arc<H>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let (now, synced) = handler.now();
        match store.enforce_budgets(s.budgets.clone(), now, synced).await {
            Ok(ev) => {
                for e in ev {
                    tracing::warn!(stream = %e.stream, count = e.count, first_seq = e.first_seq, last_seq = e.last_seq, reason = %e.reason, "Outbox over budget: oldest records evicted and reported on the dropped stream.");
                }
            }
            Err(e) => tracing::error!(error = %e, "Enforcing outbox budgets failed."),
        }
    }
}
