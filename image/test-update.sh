#!/usr/bin/env bash
# A/B update proof in QEMU (TCG, OVMF, systemd-boot), from the host:
#   0. the first boot applies a provisioning file with a static address and the school's
#      time server (the forwarded port reaches only that address), as image/test-boot.sh
#      checks; the status then shows the identity, a grown data partition and the slot;
#   1. slot A installs a bundle whose daemon cannot start (from a USB stick), reboots into B
#      for its trial; B's health check fails; B is marked bad and the board is back on A;
#   2. a technician uploads a good bundle on the technician page (POST /api/v1/tech/update,
#      logged in); slot A installs it, reboots into B; B passes its health check and is
#      marked good; it is the default from then on: after a power cut the board boots B
#      again, and its ordinary boots arm and count nothing.
#   Each step shows in the status (`system.update`), as the cloud gets it on `up/update`.
#   (./scripts/test runs this test only: it covers image/test-boot.sh's checks as well.)
#
#   image/test-update.sh            (needs image/build.sh first; makes the two bundles)
#   ARCH=arm64 image/test-update.sh the same on the arm64 image (docs/arm64.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ARCH=${ARCH:-amd64}
IMG=$ROOT/target/image/ketang-headless-$ARCH.img
log() { printf '==> update test [%4d s]: %s\n' "$SECONDS" "$*" >&2; }
WORK=$(mktemp -d)
QPID=
fail() { log "FAILED: $*"; [ -f "$WORK/console.log" ] && tail -n 40 "$WORK/console.log" >&2; exit 1; }
cleanup() { [ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
[ -s "$IMG" ] || image/build.sh --arch "$ARCH" --debug --no-compress
log "bundles (a broken one and a good one)"
BAD=$(image/bundle.sh --arch "$ARCH" --broken --out "$WORK/bad.raucb")
GOOD=$(image/bundle.sh --arch "$ARCH" --out "$WORK/good.raucb")
stick() { # stick NAME BUNDLE: a FAT stick labelled KETANG-UPD with update.raucb
  local size=$(( $(stat -c %s "$2") / 1048576 + 64 ))
  truncate -s "${size}M" "$WORK/$1.img"
  mkfs.vfat -F 32 -n KETANG-UPD "$WORK/$1.img" >/dev/null
  MTOOLS_SKIP_CHECK=1 mcopy -i "$WORK/$1.img" "$2" ::/update.raucb
}
stick bad "$BAD"
cp --sparse=always "$IMG" "$WORK/disk.img"
# Room for an uploaded bundle: the data partition grows into a larger disk at first boot.
truncate -s +2G "$WORK/disk.img"
. image/test-lib.sh
PROVISION_EXTRA=$STATIC_PROVISION
provision_disk "$WORK/disk.img" "$WORK"
qemu_machine
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
n=0
boot() { # boot [STICK]: one power-on; QEMU exits when the guest reboots (-no-reboot)
  n=$((n + 1))
  local extra=()
  [ -n "${1:-}" ] && extra=(-drive "file=$WORK/$1.img,format=raw,if=virtio,readonly=on")
  : > "$WORK/console.log"
  "${QEMU[@]}" \
    -drive file="$WORK/disk.img",format=raw,if=virtio "${extra[@]}" \
    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-10.0.2.77:8080 -device virtio-net-pci,netdev=n0 \
    > "$WORK/console.log" 2>&1 &
  QPID=$!
}
wait_line() { # wait_line PATTERN SECONDS
  local t0=$SECONDS
  until grep -aq "$1" "$WORK/console.log"; do
    grep -aq 'ketang-update: rauc refused\|ketang-update: cannot mount' "$WORK/console.log" && fail "boot $n: the update was refused"
    [ $((SECONDS - t0)) -lt "$2" ] || fail "boot $n: no \"$1\" within $2 s"
    kill -0 "$QPID" 2>/dev/null || { grep -aq "$1" "$WORK/console.log" && return 0; fail "boot $n: QEMU ended without \"$1\""; }
    sleep 2
  done
}
wait_exit() { # the guest rebooted (QEMU exits with -no-reboot)
  local t0=$SECONDS
  while kill -0 "$QPID" 2>/dev/null; do
    [ $((SECONDS - t0)) -lt "$1" ] || fail "boot $n: no reboot within $1 s"
    sleep 2
  done
  QPID=
}
power_cut() { kill -9 "$QPID"; wait "$QPID" 2>/dev/null || true; QPID=; }
healthy() {
  local t0=$SECONDS
  until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt $((420 * SLOW)) ] || fail "boot $n: /healthz did not answer within $((420 * SLOW)) s"
    sleep 2
  done
}
status() { curl -sf "http://127.0.0.1:$PORT/api/v1/status"; }
update_is() { # update_is STATE: the status shows that update step (within 60 s)
  local t0=$SECONDS
  until [ "$(status | json_field "['system']['update']['state']" 2>/dev/null)" = "$1" ]; do
    [ $((SECONDS - t0)) -lt 60 ] || fail "boot $n: the status does not show the update step $1 (it shows: $(status | json_field "['system']['update']" 2>&1))"
    sleep 2
  done
}
slot_is() { grep -aq "rauc.slot=$1" "$WORK/console.log" || fail "boot $n: not booted from slot $1"; }

log "boot $((n + 1)): slot A installs the broken bundle from the stick"
boot bad
wait_line 'ketang-update: installed' $((600 * SLOW))
wait_exit $((120 * SLOW))
check_first_boot "$WORK/console.log" "$WORK/disk.img"
log "boot 1 applied the provisioning file (static address, time server; wired only) and removed it"
log "boot $((n + 1)): the trial of slot B fails its health check"
boot
wait_line 'rauc.slot=B' $((120 * SLOW))
wait_line 'ketang-health: slot B failed its health check' $((400 * SLOW))
wait_exit $((120 * SLOW))
log "boot $((n + 1)): back on slot A"
boot
healthy; slot_is A
check_provisioned A 900
grep -aq 'ketang-firstboot: provisioned' "$WORK/console.log" && fail "provisioning ran again"
log "provisioned: hf-0042 / kt-qemu-0001 at the static address 10.0.2.77, data partition grown, technician password set"
# The emergency console runs on the serial port, off without its provisioned password
# (image/test-boot.sh logs in through it).
wait_line 'kt-qemu-0001: the emergency console is off on this board' $((120 * SLOW))
grep -aq 'ketang-health: slot A' "$WORK/console.log" && fail "slot A was checked as if on trial"
update_is rolled_back
log "the status shows the rollback: $(status | json_field "['system']['update']['detail']")"
log "technician uploads the good bundle on /tech ($(( $(stat -c %s "$GOOD") / 1048576 )) MiB)"
# The host reaches the guest from outside its loopback (QEMU's user network): credentials go
# over the board's HTTPS, as from a laptop on the school network (-k: the board's own
# certificate; a technician checks its fingerprint on the board).
# (QEMU runs with -cpu max, image/test-lib.sh: the emulated default CPU has no AES
# instructions, and the upload's TLS would crawl at a quarter of a megabyte per second.)
CSRF=$(curl -skf -c "$WORK/cookies" -H 'Content-Type: application/json' \
  -d "{\"password\": \"$TECH_PASSWORD\"}" "https://127.0.0.1:$PORT/api/v1/session" | json_field "['csrf_token']") \
  || fail "the technician could not log in"
code=$(curl -sk -o "$WORK/upload.json" -w '%{http_code}' -b "$WORK/cookies" -H "X-CSRF-Token: $CSRF" \
  -H 'Content-Type: application/octet-stream' --data-binary @"$GOOD" "https://127.0.0.1:$PORT/api/v1/tech/update")
[ "$code" = 202 ] || fail "the upload was answered $code: $(cat "$WORK/upload.json")"
[ "$(json_field "['sha256']" < "$WORK/upload.json")" = "$(sha256sum "$GOOD" | cut -d' ' -f1)" ] \
  || fail "the board received a different bundle: $(cat "$WORK/upload.json")"
wait_line 'ketang-update: installed' $((600 * SLOW))
wait_exit $((120 * SLOW))
log "boot $((n + 1)): the trial of slot B passes"
boot
wait_line 'ketang-health: slot B is healthy: marked good' $((400 * SLOW))
healthy; slot_is B
update_is marked_good
[ "$(status | json_field "['system']['slot']")" = B ] || fail "the status does not say slot B"
power_cut
log "boot $((n + 1)): after a power cut, slot B is the default"
boot
healthy; slot_is B
grep -aq 'ketang-health: slot B is on trial' "$WORK/console.log" && fail "an ordinary boot was treated as a trial"
[ "$(status | json_field "['device']['device_id']")" = kt-qemu-0001 ] || fail "the identity did not survive the power cut"
power_cut
log "passed"
