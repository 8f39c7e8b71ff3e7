#!/usr/bin/env bash
# The school's alarm path (issue 19), with real boards in network namespaces on one LAN
# (a bridge): boards A and B (classrooms), D (the duty room), S (the school's broker, made
# by image/school-broker/setup.sh), R (the regional broker) and X (a host that is not a
# board). Each board is `ketangd demo` with --school-link and its own login.
#
#   1. regional broker unreachable: A raises; B and D show it within 2 s; no SMS (the
#      school path has it); cleared on A, gone from B and D within 2 s.
#   2. A cut off from the school LAN (region still up): the region has A's alarm within
#      1 s; B and D show it once the partition heals.
#   3. X publishes a spoofed alarm: refused by the school broker (no login, a guessed
#      password, a board's login on another board's topic); B and D show nothing.
#   4. both paths down: A texts the configured numbers through the modem (a ModemManager
#      stand-in on a private D-Bus) after alarm.sms_after_s.
#
#   hw-tests/school-alarm/run.sh          (root; ./scripts/test runs it)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=hw-tests/school-alarm

skip() { echo "school-alarm: SKIPPED: $*"; exit 0; }
fail() { echo "school-alarm: FAILED: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -n 15 "$f"; done; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
for c in ip nft mosquitto_sub mosquitto_pub mosquitto_passwd dbus-daemon curl; do
  command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || skip "$c is not installed"
done
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)

echo "==> building ketangd and the ModemManager stand-in"
# (KETANG_PREBUILT=1: ./scripts/test's one build of the workspace made them.)
[ "${KETANG_PREBUILT:-0}" = 1 ] || cargo build -q -p ketang-daemon --bin ketangd -p ketang-hw-tests --bin fake-modemmanager
bin=$PWD/target/debug

tag=$$
work=$(mktemp -d)
chmod 755 "$work"
pids=()
hosts=(R S A B D X)
cleanup() {
  # Processes started with `ip netns exec` are grandchildren of the recorded pids: kill
  # everything inside each namespace, then what was started outside.
  for h in "${hosts[@]}" SW; do
    for p in $(ip netns pids "k$h$tag" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for h in "${hosts[@]}" SW; do
    for p in $(ip netns pids "k$h$tag" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "k$h$tag" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
ns() { echo "k$1$tag"; }
in_ns() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }
addr() { case $1 in R) echo 10.201.0.1;; S) echo 10.201.0.2;; A) echo 10.201.0.11;; B) echo 10.201.0.12;; D) echo 10.201.0.13;; X) echo 10.201.0.66;; esac; }

echo "==> one LAN: a bridge and six hosts"
ip netns add "$(ns SW)" 2>/dev/null || skip "this machine forbids network namespaces"
ip -n "$(ns SW)" link add br0 type bridge
ip -n "$(ns SW)" link set br0 up
for h in "${hosts[@]}"; do
  ip netns add "$(ns "$h")"
  ip link add "kv$h$tag" type veth peer name "kp$h$tag"
  ip link set "kv$h$tag" netns "$(ns "$h")"
  ip link set "kp$h$tag" netns "$(ns SW)"
  ip -n "$(ns SW)" link set "kp$h$tag" master br0 up
  ip -n "$(ns "$h")" addr add "$(addr "$h")/24" dev "kv$h$tag"
  ip -n "$(ns "$h")" link set "kv$h$tag" up
  ip -n "$(ns "$h")" link set lo up
done

echo "==> the regional broker on R, with a collector"
printf 'listener 1883 %s\nallow_anonymous true\n' "$(addr R)" > "$work/region.conf"
in_ns R "$MOSQ" -c "$work/region.conf" >"$work/region.log" 2>&1 & pids+=($!)
sleep 0.5
in_ns R mosquitto_sub -v -h "$(addr R)" -q 1 -t 'ketang/+/+/+/up/alarm' >"$work/region-alarms.txt" 2>"$work/collector.log" & pids+=($!)

echo "==> the school broker on S (image/school-broker/setup.sh), a login per board"
image/school-broker/setup.sh demo-school "$work/school" "$(addr S)" 1883
for b in board-a board-b duty; do
  image/school-broker/add-board.sh "$work/school" "$b" > "$work/$b.toml"
  chmod 600 "$work/$b.toml"
done
in_ns S "$MOSQ" -c "$work/school/mosquitto.conf" >"$work/school.log" 2>&1 & pids+=($!)
sleep 0.5

echo "==> a ModemManager stand-in on a private D-Bus (for board A)"
dbus-daemon --session --address="unix:path=$work/bus" --nofork >"$work/dbus.log" 2>&1 & pids+=($!)
sleep 0.3
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/bus"
"$bin/fake-modemmanager" "$work/sms.jsonl" >"$work/modem.log" 2>&1 & pids+=($!)

start_board() { # HOST DEVICE CLASSROOM NAME [extra args]
  local h=$1 dev=$2 room=$3 name=$4; shift 4
  in_ns "$h" "$bin/ketangd" demo --listen 127.0.0.1:8080 --data-dir "$work/data-$dev" \
    --broker "mqtt://$(addr R):1883" --device-id "$dev" --classroom-id "$room" --class-name "$name" \
    --school-link "mqtt://$(addr S):1883" --school-credentials "$work/$dev.toml" "$@" \
    >/dev/null 2>"$work/$dev.log" & pids+=($!)
}
echo "==> boards: A (七年级(3)班), B (七年级(4)班), D (门卫室, the duty room)"
start_board A board-a g7-c3 "七年级(3)班" --sms-to +8613800000001 --sms-to 13900000002 --sms-after-s 5
start_board B board-b g7-c4 "七年级(4)班"
start_board D duty duty-room "门卫室" --duty-room
for h in A B D; do
  for _ in $(seq 1 100); do in_ns "$h" curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done
done
for h in A B D; do
  for _ in $(seq 1 100); do in_ns "$h" python3 $here/board.py school | grep -q '"connected": true' && break; sleep 0.1; done
  in_ns "$h" python3 $here/board.py school | grep -q '"connected": true' || fail "board on $h never joined the school path"
done
board() { local h=$1; shift; in_ns "$h" python3 $here/board.py "$@"; }
passed=0

echo "==> 1. regional broker unreachable: A raises, B and D show it within 2 s"
ip -n "$(ns R)" link set "kvR$tag" down
t0=$(date +%s.%N)
read -r id1 _ < <(board A raise)
for h in B D; do
  took=$(board "$h" wait-school board-a 1 2 "$t0") || fail "$h: $took"
  python3 -c "import sys; sys.exit(0 if float('$took') <= 2 else 1)" || fail "$h showed A's alarm after $took s, more than 2 s"
  echo "    $h shows A's alarm $took s after the press"
done
sleep 6
[ ! -s "$work/sms.jsonl" ] || fail "an SMS was sent although the school path had the alarm"
board A clear-all
for h in B D; do took=$(board "$h" wait-school board-a 0 2) || fail "$h still shows the cleared alarm: $took"; done
echo "    cleared on A: gone from B and D; no SMS"
ip -n "$(ns R)" link set "kvR$tag" up
for _ in $(seq 1 300); do grep -q "\"alarm_id\":\"$id1\".*\"state\":\"cleared\"\|\"state\":\"cleared\".*\"alarm_id\":\"$id1\"" "$work/region-alarms.txt" 2>/dev/null && break; sleep 0.1; done
grep -q "$id1" "$work/region-alarms.txt" || fail "the region never got alarm 1 after its broker came back"
passed=$((passed + 1))

echo "==> 2. A cut off from the school LAN: the region has it within 1 s; B and D once healed"
in_ns A nft -f - <<NFT
table inet partition {
  chain out { type filter hook output priority 0; ip daddr { $(addr S), $(addr B), $(addr D) } drop; }
  chain in { type filter hook input priority 0; ip saddr { $(addr S), $(addr B), $(addr D) } drop; }
}
NFT
t0=$(date +%s%N)
read -r id2 _ < <(board A raise)
until grep -q "$id2" "$work/region-alarms.txt"; do
  [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 5000 ] || fail "the region did not get alarm 2"
  sleep 0.02
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "    the region has it after $ms ms"
[ "$ms" -le 1000 ] || fail "the region got alarm 2 after $ms ms, more than 1 s"
sleep 2
board B wait-school board-a 1 0.5 >/dev/null && fail "B shows A's alarm through a partition (impossible: is the partition real?)"
in_ns A nft delete table inet partition
for h in B D; do
  took=$(board "$h" wait-school board-a 1 30) || fail "$h after the partition healed: $took"
  echo "    $h shows it $took s after the partition healed"
done
board A clear-all
for h in B D; do board "$h" wait-school board-a 0 5 >/dev/null || fail "$h still shows alarm 2"; done
passed=$((passed + 1))

echo "==> 3. a spoofed alarm from X (not a board of the school)"
spoof='{"v":1,"school_id":"demo-school","device_id":"intruder","classroom_id":"g1-c1","class_name":"假报警","role":"classroom","alarms":[{"alarm_id":"fake","drill":false,"source":"ui","raised_at":"2026-12-07T08:00:00+08:00"}],"at":"2026-12-07T08:00:00+08:00"}'
if in_ns X mosquitto_pub -h "$(addr S)" -q 1 -r -t ketang/v1/demo-school/intruder/school/alarm -m "$spoof" 2>"$work/spoof1.err"; then
  fail "the school broker took a message from a host without a login"
fi
if in_ns X mosquitto_pub -h "$(addr S)" -u board-b -P guessed-password -q 1 -r -t ketang/v1/demo-school/board-b/school/alarm -m "$spoof" 2>"$work/spoof2.err"; then
  fail "the school broker took a guessed password"
fi
echo "    refused: $(head -c 200 "$work/spoof1.err" | tr '\n' ' ')"
# A board's real login used on another board's topic (a stolen board): the ACL drops it.
pw=$(sed -n 's/^password = "\(.*\)"$/\1/p' "$work/board-b.toml")
in_ns X mosquitto_pub -h "$(addr S)" -u board-b -P "$pw" -q 1 -r -t ketang/v1/demo-school/board-a/school/alarm \
  -m "${spoof//intruder/board-a}" 2>/dev/null || true
sleep 1
for h in B D; do
  board "$h" wait-school board-a 0 0.1 >/dev/null || fail "$h shows a spoofed alarm on board A's topic"
  board "$h" school | grep -q '假报警' && fail "$h shows the spoofed alarm"
done
echo "    B and D show nothing"
passed=$((passed + 1))

echo "==> 4. both paths down: A texts the numbers after alarm.sms_after_s (5 s)"
ip -n "$(ns R)" link set "kvR$tag" down
ip -n "$(ns S)" link set "kvS$tag" down
: > "$work/sms.jsonl"
board A raise >/dev/null
for _ in $(seq 1 150); do [ "$(wc -l < "$work/sms.jsonl")" -ge 2 ] && break; sleep 0.1; done
[ "$(wc -l < "$work/sms.jsonl")" -eq 2 ] || fail "expected 2 SMS, got $(wc -l < "$work/sms.jsonl")"
python3 - "$work/sms.jsonl" <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert sorted(m["number"] for m in msgs) == ["+8613800000001", "13900000002"], msgs
for m in msgs:
    assert "七年级(3)班" in m["text"] and "g7-c3" in m["text"] and "demo-school" in m["text"], m["text"]
print("    SMS:", msgs[0]["text"])
PY
passed=$((passed + 1))

echo "school-alarm: $passed passed, 0 failed"
