#!/usr/bin/env bash
# Boots the appliance image in QEMU (TCG, UEFI with OVMF and systemd-boot) and checks it
# from the host through a forwarded port:
#   1. a provisioning file on the boot partition is applied at first boot: /healthz answers,
#      the status shows the provisioned identity, the technician password is set;
#      the data partition grew into the rest of a larger disk, the status names slot A;
#   2. the emergency console on the serial port (provisioned with its own password): a
#      wrong password is refused, the right one opens a root shell; in it a simulated radio
#      is plugged in (mac80211_hwsim) and the provisioned Wi-Fi's ketang-wifi.service runs
#      wpa_supplicant on it under its sandbox (scanning: there is no access point here;
#      hw-tests/virtual/wifi.sh connects to ones);
#   3. the power is cut (QEMU killed, no shutdown): the file is gone from the boot partition
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
CONSOLE_PASSWORD='qemu-console-紧急-5b1f'
chash=$(printf '%s\n' "$CONSOLE_PASSWORD" | target/debug/ketangd hash-password)
PROVISION_EXTRA="console_password_hash = \"$chash\"
$STATIC_PROVISION
[wifi]
ssid = \"KT-QEMU\"
security = \"wpa2-personal\"
passphrase = \"qemu-classroom-2026\""
WIFI_EXPECT='wpa2-personal network configured'
provision_disk "$WORK/disk.img" "$WORK"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The serial port is a socket (to type on the emergency console), logged to console.log.
boot() {
  : > "$WORK/console.log"
  "${QEMU[@]}" \
    -drive file="$WORK/disk.img",format=raw,if=virtio \
    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-10.0.2.77:8080 -device virtio-net-pci,netdev=n0 \
    -monitor unix:"$WORK/monitor.sock",server,nowait \
    -chardev socket,id=ser0,path="$WORK/serial.sock",server=on,wait=off,logfile="$WORK/console.log" \
    -serial chardev:ser0 \
    > "$WORK/qemu.log" 2>&1 &
  QPID=$!
}
# type_serial TEXT: types TEXT and Enter on the serial console.
type_serial() {
  python3 - "$WORK/serial.sock" "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
for ch in (sys.argv[2] + "\r").encode():
    s.send(bytes([ch])); time.sleep(0.02)
time.sleep(0.5); s.close()
PY
}
# serial_says PATTERN SECONDS [NTH]: the console log shows PATTERN (at least NTH times).
serial_says() {
  local t0=$SECONDS
  until [ "$(grep -ac "$1" "$WORK/console.log")" -ge "${3:-1}" ]; do
    [ $((SECONDS - t0)) -lt "$2" ] || fail "the serial console did not show \"$1\" within $2 s"
    sleep 1
  done
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
grep -aq 'ketang-firstboot: the emergency console is on' "$WORK/console.log" || fail "firstboot did not turn the emergency console on"
serial_says 'kt-qemu-0001 emergency console. Password:' $((120 * SLOW))
type_serial 'not-the-password'
serial_says 'Wrong password.' 30
serial_says 'kt-qemu-0001 emergency console. Password:' 60 2
type_serial "$CONSOLE_PASSWORD"
serial_says 'ketang-console: opened on /dev/ttyS0\|ketang-console: opened on /dev/ttyAMA0' 30
type_serial 'echo "KT-CONSOLE-UID-$(id -u)"'
serial_says 'KT-CONSOLE-UID-0' 30
log "the emergency console: a wrong password refused, the right one opened a root shell on the serial port"
type_serial 'modprobe mac80211_hwsim radios=1 && systemctl restart ketang-wifi && sleep 10; echo "KT-WIFI-$(systemctl is-active ketang-wifi)-$(wpa_cli -p /run/ketang-wifi/ctrl -i wlan0 status | sed -n s/^wpa_state=//p)"'
serial_says 'KT-WIFI-active-[A-Z]' $((90 * SLOW))
grep -aq 'ketang-wifi: wpa_supplicant on wlan0' "$WORK/console.log" || fail "ketang-wifi did not start wpa_supplicant on the radio"
log "Wi-Fi: ketang-wifi.service runs wpa_supplicant on a simulated radio ($(grep -ao 'KT-WIFI-active-[A-Z_]*' "$WORK/console.log" | tail -n 1))"
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
