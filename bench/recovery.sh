#!/usr/bin/env bash
# Whole recovery after an outage (issue 15): a backlog of N records, the broker down for
# S seconds, then up: time until every record is acknowledged, Ketang's sync worker (SQLite
# outbox, shipped reconnect policy, no publish rate limit) against a raw rumqttc client that
# retries every 100 ms and publishes the same payloads from memory, alternating, R rounds.
#
#   bench/recovery.sh [RECORDS] [OUTAGE_S] [ROUNDS]     (default 20000 30 3)
set -euo pipefail
cd "$(dirname "$0")/.."
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
cargo build -q --release -p ketang-sync --example recovery
target/release/examples/recovery --mosquitto "$MOSQ" --records "${1:-20000}" --outage-s "${2:-30}" --rounds "${3:-3}"
