#!/usr/bin/env bash
# Boots the appliance image in QEMU (TCG, UEFI with OVMF and systemd-boot) and checks it
# from the host through a forwarded port:
#   1. a provisioning file on the boot partition is applied at first boot: /healthz answers,
#      the status shows the provisioned identity, the technician password is set;
#      the data partition grew into the rest of a larger disk, the status names slot A;
#   2. the power is cut (QEMU killed, no shutdown): the file is gone from the boot partition
#      and a second boot comes up with the same identity, without provisioning again.
#
#   image/test-boot.sh [IMAGE]      default: target/image/ketang-headless-$ARCH.img, built
#                                   by image/build.sh --debug --no-compress when missing
#   ARCH=arm64 image/test-boot.sh   the arm64 image in qemu-system-aarch64 (docs/arm64.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ARCH=${ARCH:-amd64}
IMG=${1:-$ROOT/target/image/ketang-headless-$ARCH.img}
log() { printf '==> boot test [%4d s]: %s\n' "$SECONDS" "$*" >&2; }
fail() { log "FAILED: $*"; [ -f "$WORK/console.log" ] && tail -n 60 "$WORK/console.log" >&2; exit 1; }
[ -s "$IMG" ] || image/build.sh --arch "$ARCH" --debug --no-compress

WORK=$(mktemp -d)
QPID=
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cp --sparse=always "$IMG" "$WORK/disk.img"
export MTOOLS_SKIP_CHECK=1
ESP="$WORK/disk.img@@1M"

# A disk larger than the image, as on a board: the data partition grows into the rest.
truncate -s +1G "$WORK/disk.img"
. image/test-lib.sh
qemu_machine
log "writing a provisioning file onto the boot partition (with a static address and the school's time server)"
PROVISION_EXTRA=$STATIC_PROVISION
provision_disk "$WORK/disk.img" "$WORK"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
boot() {
  "${QEMU[@]}" \
    -drive file="$WORK/disk.img",format=raw,if=virtio \
    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-10.0.2.77:8080 -device virtio-net-pci,netdev=n0 \
    -monitor unix:"$WORK/monitor.sock",server,nowait \
    > "$WORK/console.log" 2>&1 &
  QPID=$!
}
wait_healthy() {
  local t0=$SECONDS
  until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
    kill -0 "$QPID" 2>/dev/null || fail "QEMU exited before /healthz answered"
    if grep -aq 'Failed to start.*Ketang\|ketangd.service: Failed\|ketang-firstboot.service: Main process exited' "$WORK/console.log"; then
      grep -a 'Failed\|ketang' "$WORK/console.log" | tail -n 20 >&2
      fail "a Ketang unit failed to start"
    fi
    [ $((SECONDS - t0)) -lt $((400 * SLOW)) ] || fail "/healthz did not answer within $((400 * SLOW)) s"
    sleep 2
  done
  log "/healthz answers after $((SECONDS - t0)) s"
}
power_cut() {
  kill -9 "$QPID"; wait "$QPID" 2>/dev/null || true
  QPID=
  log "power cut (QEMU killed)"
}
status() { curl -sf "http://127.0.0.1:$PORT/api/v1/status"; }
field() { json_field "$1"; }

log "first boot (UEFI, systemd-boot, slot A)"
boot
wait_healthy
check_provisioned A 900
log "the static address 10.0.2.77/24 answers (DHCP would have given 10.0.2.15)"
log "provisioned: hf-0042 / kt-qemu-0001, technician password set"
log "slot A, image $(status | field "['system']['image']"), data partition grown: $(status | field "['system']['data_free_mb']") MiB free"
power_cut
check_first_boot "$WORK/console.log" "$WORK/disk.img"
log "the provisioning file was removed from the boot partition"

log "second boot: the data partition kept the identity"
boot
wait_healthy
[ "$(status | field "['device']['device_id']")" = kt-qemu-0001 ] || fail "the identity did not survive a reboot"
grep -aq 'ketang-firstboot: provisioned' "$WORK/console.log" && fail "provisioning ran again"
power_cut
log "passed"
