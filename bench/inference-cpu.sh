#!/usr/bin/env bash
# The daemon's CPU share while face inference runs: `ketangd demo` (release) with the real
# models, fed the 40-face classroom frame (1920x1080) every 2 s through the simulated
# camera for SECONDS; CPU time of the ketangd process from /proc, against wall time, on a
# 2-core machine. Also prints the camera's own per-frame timing from the status page.
# Twice, in the same run: a still class (the same frame every time: faces that stay put
# are not embedded again, daemon/src/inference.rs) and a restless one (every face 60 px
# elsewhere in every other frame: all of them embedded every frame, as before tracking).
#
#   bench/inference-cpu.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
DIR=${KETANG_MODELS:-target/models}
[ -s "$DIR/face_detection_full_range.onnx" ] || models/obtain.sh "$DIR"
cargo build -q --release -p ketang-daemon --bin ketangd -p ketang-models --example bench
WORK=$(mktemp -d); trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
target/release/examples/bench --classroom-png "$WORK/classroom.png"
target/release/examples/bench --classroom-png "$WORK/moved.png" 60
PORT=18475
target/release/ketangd demo --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --models "$DIR" \
  > "$WORK/out" 2> "$WORK/log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
# Until the models are loaded.
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$PORT/api/v1/status" | grep -q '"waiting for frames"' && break; sleep 0.2
done
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
measure() { # NAME FRAME...: post the frames in turn every 2 s for SECS
  local name=$1; shift
  local t0 s0 t1 s1 end i=0 frames=("$@")
  t0=$(ticks); s0=$(date +%s.%N)
  end=$(( $(date +%s) + SECS ))
  while [ "$(date +%s)" -lt "$end" ]; do
    curl -s -o /dev/null -X POST --data-binary @"${frames[$(( i % ${#frames[@]} ))]}" "http://127.0.0.1:$PORT/api/v1/sim/frame"
    i=$(( i + 1 ))
    sleep 2
  done
  t1=$(ticks); s1=$(date +%s.%N)
  detail=$(curl -s "http://127.0.0.1:$PORT/api/v1/status" | python3 -c 'import json,sys; s=json.load(sys.stdin); print([d["detail"] for d in s["hardware"] if d["kind"]=="camera"][0])')
  python3 - "$name" "$t0" "$t1" "$s0" "$s1" "$HZ" "$detail" <<'PY'
import sys
name = sys.argv[1]
t0, t1, s0, s1, hz = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
cpu = (t1 - t0) / hz
wall = s1 - s0
print(f"{name}: ketangd CPU {cpu:.1f} s over {wall:.1f} s wall: {100 * cpu / wall:.0f} % of one core, {50 * cpu / wall:.0f} % of the machine (2 cores)")
print(f"{name}: camera: {sys.argv[7]}")
PY
}
measure "restless class" "$WORK/classroom.png" "$WORK/moved.png"
measure "still class" "$WORK/classroom.png"
