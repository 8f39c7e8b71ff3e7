#!/usr/bin/env bash
# Partition test (issue 4): a board and its broker in two network namespaces joined by a
# veth pair. On the board's side: 20 % packet loss (nftables), 200 ms delay each way (our
# delay_proxy.py; tc netem is not available here), and the link down for a minute in the
# middle of the drain. Every record must arrive, once in effect: duplicates carry their
# original id and seq.
#
#   sync/tests/partition/run.sh [RECORDS]        (root; ./scripts/test runs it)
#
# Where namespaces cannot be made (not root, no iproute2/nft), it prints why and skips.
set -euo pipefail
cd "$(dirname "$0")/../../.."
N=${1:-600}
OUTAGE_S=${OUTAGE_S:-60}
here=sync/tests/partition

skip() { echo "partition: SKIPPED: $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v nft >/dev/null || skip "nftables (nft) is not installed"
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQ" ] || skip "mosquitto is not installed"

A=ktA$$ B=ktB$$ VA=kta$$ VB=ktb$$
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$A" 2>/dev/null || skip "this machine forbids network namespaces"
ip netns add "$B"
ip link add "$VA" type veth peer name "$VB"
ip link set "$VA" netns "$A"
ip link set "$VB" netns "$B"
ip -n "$A" addr add 10.200.0.1/24 dev "$VA"
ip -n "$B" addr add 10.200.0.2/24 dev "$VB"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set "$VA" up
ip -n "$B" link set "$VB" up

echo "==> building the board's drain tool"
# (KETANG_PREBUILT=1: ./scripts/test's one build of the workspace made it.)
[ "${KETANG_PREBUILT:-0}" = 1 ] || cargo build -q -p ketang-sync --example drain
drain=target/debug/examples/drain

echo "==> broker and collector in $A (10.200.0.1)"
chmod 755 "$work"
printf 'listener 1883 10.200.0.1\nallow_anonymous true\nmax_queued_messages 0\n' > "$work/m.conf"
ip netns exec "$A" "$MOSQ" -c "$work/m.conf" >"$work/broker.log" 2>&1 & pids+=($!)
sleep 0.5
ip netns exec "$A" mosquitto_sub -v -h 10.200.0.1 -p 1883 -q 1 -c -i partition-collector \
  -t 'ketang/+/+/+/up/#' >"$work/collected.txt" 2>"$work/sub.log" & pids+=($!)

echo "==> 20 % loss and 200 ms delay on the board's side ($B)"
ip netns exec "$B" nft -f - <<NFT
table inet chaos {
  chain out { type filter hook output priority 0; ip daddr 10.200.0.1 numgen random mod 100 < 20 drop; }
  chain in { type filter hook input priority 0; ip saddr 10.200.0.1 numgen random mod 100 < 20 drop; }
}
NFT
ip netns exec "$B" python3 "$here/delay_proxy.py" 127.0.0.1:1884 10.200.0.1:1883 0.2 >"$work/proxy.log" 2>&1 & pids+=($!)
sleep 0.5

echo "==> board drains $N records"
ip netns exec "$B" "$drain" --data "$work/board" --fill "$N" --broker 127.0.0.1:1884 --rate 100 --timeout 600 \
  >"$work/drain.log" 2>&1 & drain_pid=$!
pids+=($drain_pid)

count() { grep -c '"stream":"attendance"' "$work/collected.txt" 2>/dev/null || true; }
t0=$SECONDS
until [ "$(count)" -ge $((N / 4)) ]; do
  [ $((SECONDS - t0)) -lt 180 ] || { cat "$work/drain.log"; echo "partition: 0 passed, 1 failed (no progress before the outage)"; exit 1; }
  kill -0 "$drain_pid" 2>/dev/null || break
  sleep 0.5
done
echo "==> link down for ${OUTAGE_S} s after $(count) records"
ip -n "$B" link set "$VB" down
sleep "$OUTAGE_S"
echo "==> link up"
ip -n "$B" link set "$VB" up
ok=0
wait "$drain_pid" || ok=$?
cat "$work/drain.log"
sleep 2
python3 - "$work/collected.txt" "$N" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
seen = {}
dups = 0
for line in open(path, encoding="utf-8"):
    topic, _, payload = line.partition(" ")
    if "/up/attendance" not in topic:
        continue
    env = json.loads(payload)
    if env["seq"] in seen:
        dups += 1
        assert seen[env["seq"]] == env["id"], f"seq {env['seq']} arrived with two ids"
    seen[env["seq"]] = env["id"]
missing = [s for s in range(1, n + 1) if s not in seen]
print(f"partition: {len(seen)} of {n} records arrived, {dups} duplicates (same id and seq), {len(missing)} missing")
if missing:
    print(f"partition: missing seqs, first ones: {missing[:20]}")
    sys.exit(1)
PY
[ "$ok" -eq 0 ] || { echo "partition: 0 passed, 1 failed (the board did not drain)"; exit 1; }
# Loss and a dead link are not refusals: no record may be moved aside as refused.
grep -q ' rejected 0$' "$work/drain.log" || { echo "partition: 0 passed, 1 failed (records were moved aside as refused)"; exit 1; }
echo "partition: 1 passed, 0 failed"
