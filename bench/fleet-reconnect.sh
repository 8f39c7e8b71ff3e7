#!/usr/bin/env bash
# Fleet reconnect simulation (issue 15): N boards (real rumqttc clients, one process) with a
# reconnect policy, one Mosquitto killed (-9) and restarted after an outage. For each fleet
# size and policy: connection attempts per second while the broker is down and after it is
# back, the median / p99 / slowest board back, and the time until every board is back.
# Policies in the same run: Ketang's (0.25-2 s while unreachable), main's before issue 15
# (0.5 s doubling to 60 s, full jitter), and a naive 100 ms retry.
#
#   bench/fleet-reconnect.sh [OUTAGE_S] [SIZES...]     (default: 30 s; 1000 5553 19500)
#
# The largest fleet is 19,500, not 20,000: this machine's hard limit is 20,000 open files
# per process (ulimit -Hn), for the boards' process and for the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTAGE=${1:-30}
shift || true
SIZES=${*:-1000 5553 19500}
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
ulimit -n "$(ulimit -Hn)"
cargo build -q --release -p ketang-sync --example fleet
for n in $SIZES; do
  for policy in ketang old fixed100; do
    # The naive policy at 20k would spend the whole machine on its own retries.
    if [ "$policy" = fixed100 ] && [ "$n" -gt 6000 ]; then continue; fi
    target/release/examples/fleet --mosquitto "$MOSQ" --boards "$n" --outage-s "$OUTAGE" --policy "$policy"
  done
done
