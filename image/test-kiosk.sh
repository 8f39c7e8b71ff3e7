#!/usr/bin/env bash
# Boots the kiosk variant in QEMU with a virtual GPU and takes the screen from the host
# (QMP screendump), with no check inside the board: the class board must be on the
# board's own screen, drawn by Weston's kiosk shell + Chromium, after a first boot with a
# provisioning file; then presses and holds the alarm button through a virtual tablet
# (absolute pointer, QMP input-send-event) and checks the daemon raised the alarm.
# On demand (TCG renders Chromium slowly; not in ./scripts/test):
#
#   image/build.sh --variant kiosk --debug --no-compress
#   image/test-kiosk.sh [IMAGE] [OUT.png]   default OUT: docs/screens/kiosk-boot-1280x800.png
#
# Passes when /healthz answers and the screen, within 6 minutes, is no longer black or
# the console's text: at least 30 % of it near-white (the board's light background) and
# some dark text on it. The screenshot is written as PNG (no imaging library needed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
IMG=${1:-$ROOT/target/image/ketang-kiosk-amd64.img}
OUT_PNG=${2:-$ROOT/docs/screens/kiosk-boot-1280x800.png}
log() { printf '==> kiosk test [%4d s]: %s\n' "$SECONDS" "$*" >&2; }
fail() { log "FAILED: $*"; [ -f "$WORK/console.log" ] && tail -n 40 "$WORK/console.log" >&2; exit 1; }
[ -s "$IMG" ] || fail "no kiosk image at $IMG (image/build.sh --variant kiosk --debug --no-compress)"
WORK=$(mktemp -d)
QPID=
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cp --sparse=always "$IMG" "$WORK/disk.img"
truncate -s +1G "$WORK/disk.img"
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$WORK/vars.fd"
export MTOOLS_SKIP_CHECK=1
. image/test-lib.sh
provision_disk "$WORK/disk.img" "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log "booting the kiosk image (virtio GPU, 1280x800)"
qemu-system-x86_64 -machine q35 -cpu max -m 3072 -smp 2 -no-reboot \
  -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
  -drive if=pflash,format=raw,file="$WORK/vars.fd" \
  -drive file="$WORK/disk.img",format=raw,if=virtio \
  -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:8080 -device virtio-net-pci,netdev=n0 \
  -vga none -device virtio-gpu-pci,id=gpu,xres=1280,yres=800 -display none \
  -device virtio-tablet-pci,id=touch,display=gpu \
  -serial file:"$WORK/console.log" \
  -qmp unix:"$WORK/qmp.sock",server,nowait &
QPID=$!
t0=$SECONDS
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
  kill -0 "$QPID" 2>/dev/null || fail "QEMU exited"
  [ $((SECONDS - t0)) -lt 400 ] || fail "/healthz did not answer within 400 s"
  sleep 3
done
log "/healthz answers after $((SECONDS - t0)) s; waiting for the board on the screen"
shot() { # PPM of the screen now
  python3 - "$WORK/qmp.sock" "$WORK/screen.ppm" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
def cmd(c):
    f.write(json.dumps(c) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r: return r
json.loads(f.readline())
cmd({"execute": "qmp_capabilities"})
r = cmd({"execute": "screendump", "arguments": {"filename": sys.argv[2]}})
if "error" in r: sys.exit(str(r))
PY
}
to_png() { # PPM → PNG without an imaging library
  python3 - "$1" "$2" <<'PY'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
parts = d.split(b"\n", 3)
w, h = map(int, parts[1].split()); px = parts[3]
raw = b"".join(b"\x00" + px[y * w * 3:(y + 1) * w * 3] for y in range(h))
def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
open(sys.argv[2], "wb").write(png)
PY
}
judge() { # prints "WHITE DARK" shares of the PPM, or exits 1
  python3 - "$WORK/screen.ppm" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
parts = d.split(b"\n", 3)
w, h = map(int, parts[1].split()); px = parts[3]
n = w * h; white = dark = 0
for i in range(0, len(px) - 2, 3 * 7):  # every 7th pixel
    r, g, b = px[i], px[i + 1], px[i + 2]
    if r > 225 and g > 225 and b > 225: white += 1
    elif r < 80 and g < 80 and b < 80: dark += 1
tot = len(range(0, len(px) - 2, 21))
print(f"{white / tot:.3f} {dark / tot:.3f}")
PY
}
ok=0
while [ $((SECONDS - t0)) -lt 760 ]; do
  kill -0 "$QPID" 2>/dev/null || fail "QEMU exited"
  shot || true
  if [ -s "$WORK/screen.ppm" ]; then
    read -r white dark < <(judge)
    log "screen: ${white} near-white, ${dark} dark"
    if python3 -c "import sys; sys.exit(0 if $white >= 0.30 and $dark >= 0.005 else 1)"; then ok=1; break; fi
  fi
  sleep 15
done
[ "$ok" = 1 ] || { cp "$WORK/screen.ppm" /tmp/kiosk-last.ppm 2>/dev/null || true; fail "the board never appeared on the screen (last frame: /tmp/kiosk-last.ppm)"; }
sleep 20  # let the page settle (fonts, the clock)
shot
to_png "$WORK/screen.ppm" "$OUT_PNG"
log "the board is on the kiosk's screen: $OUT_PNG"

# Touch: press and hold the red alarm button (found on the screen) for 2 s through the
# virtual tablet; the daemon must raise the alarm (the board's own screen needs no login).
read -r bx by < <(python3 - "$WORK/screen.ppm" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
parts = d.split(b"\n", 3)
w, h = map(int, parts[1].split()); px = parts[3]
xs = ys = n = 0
for y in range(h // 2, h):
    for x in range(w // 2, w):
        i = 3 * (y * w + x)
        r, g, b = px[i], px[i + 1], px[i + 2]
        if r > 170 and g < 70 and b < 80:
            xs += x; ys += y; n += 1
if n < 200: sys.exit("no red alarm button in the lower right of the screen")
print(round(xs / n * 32767 / (w - 1)), round(ys / n * 32767 / (h - 1)))
PY
)
log "pressing the alarm button at tablet ($bx, $by) for 2 s"
python3 - "$WORK/qmp.sock" "$bx" "$by" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
def cmd(c):
    f.write(json.dumps(c) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r: return r
json.loads(f.readline())
cmd({"execute": "qmp_capabilities"})
x, y = int(sys.argv[2]), int(sys.argv[3])
def ev(events):
    r = cmd({"execute": "input-send-event", "arguments": {"device": "gpu", "events": events}})
    if "error" in r: sys.exit(str(r))
ev([{"type": "abs", "data": {"axis": "x", "value": x}}, {"type": "abs", "data": {"axis": "y", "value": y}}])
time.sleep(0.3)
ev([{"type": "btn", "data": {"down": True, "button": "left"}}])
time.sleep(2.0)
ev([{"type": "btn", "data": {"down": False, "button": "left"}}])
PY
ok=0
for _ in $(seq 30); do
  if curl -sf "http://127.0.0.1:$PORT/api/v1/status" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["alarms"] else 1)'; then ok=1; break; fi
  sleep 2
done
[ "$ok" = 1 ] || fail "holding the alarm button on the screen raised no alarm"
log "the alarm was raised by a press on the kiosk's screen"
sleep 8
shot
to_png "$WORK/screen.ppm" "${OUT_PNG%/*}/kiosk-alarm-1280x800.png"
log "the alarm takeover on the kiosk's screen: ${OUT_PNG%/*}/kiosk-alarm-1280x800.png"
log "passed"
