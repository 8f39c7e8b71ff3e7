#!/usr/bin/env bash
# The image's root scripts against a daemon that plants links in its own directories
# (docs/privacy.md, "Threat model"): ketang-update, ketang-health and ketang-firstboot run
# as root, the daemon is played by the user `nobody` (as_daemon), rauc and systemctl are
# fakes on PATH. Every planted link points at root-owned "victims" outside the data
# directory; after each run they must be untouched: not written, not chowned, not removed.
# Then the ordinary paths: an update handed over, a trial marked good, a first boot with a
# provisioning file. No QEMU; a second or two. Needs root (skipped otherwise).
# Usage: image/test-root-scripts.sh [KETANGD]   (default: target/debug/ketangd)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KETANGD_BIN=${1:-$ROOT/target/debug/ketangd}
log() { printf '==> root scripts: %s\n' "$*" >&2; }
fail() { printf 'test-root-scripts: FAILED: %s\n' "$*" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then log "skipped (needs root: the scripts run as root, the daemon as nobody)"; exit 0; fi
[ -x "$KETANGD_BIN" ] || fail "no ketangd at $KETANGD_BIN (cargo build -p ketang-daemon)"

W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
chmod 0755 "$W"
export KETANG_LIB=$ROOT/image/rootfs/ketang-lib.sh
export KETANG_DATA=$W/data KETANG_ESP_ROOT=$W/esp KETANG_RUN=$W/run KETANG_MEDIA=$W/media
export KETANG_CMDLINE=$W/cmdline KETANG_USB_DEV=$W/no-stick KETANGD=$KETANGD_BIN
export KETANG_TIME_DIR=$W/run-chrony KETANG_NET_DIR=$W/run-network KETANG_WIFI_DIR=$W/run-wifi
export KETANG_AS_DAEMON="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
daemon() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
mkdir -p "$W/bin" "$W/esp/ketang"
cat > "$W/bin/rauc" <<EOF2
#!/bin/sh
echo "\$*" >> "$W/rauc.log"
EOF2
cat > "$W/bin/systemctl" <<EOF2
#!/bin/sh
echo "\$*" >> "$W/systemctl.log"
case "\$*" in *is-failed*) exit 1 ;; esac
EOF2
chmod 0755 "$W/bin/rauc" "$W/bin/systemctl"
export PATH=$W/bin:$PATH

# Root's files outside the data directory, as a compromised daemon would aim at them.
victims() {
  rm -rf "$W/victim"; mkdir -p "$W/victim/etc"
  printf 'timeout 3\n' > "$W/victim/loader.conf"; chmod 0644 "$W/victim/loader.conf"
}
victims_untouched() {
  [ "$(cat "$W/victim/loader.conf")" = "timeout 3" ] || fail "$1: loader.conf was written"
  [ "$(stat -c %U:%a "$W/victim/loader.conf")" = root:644 ] || fail "$1: loader.conf was chowned or chmodded: $(stat -c %U:%a "$W/victim/loader.conf")"
  [ "$(stat -c %U "$W/victim/etc")" = root ] || fail "$1: the victim directory was chowned"
  [ -z "$(ls -A "$W/victim/etc")" ] || fail "$1: files were written into the victim directory: $(ls -A "$W/victim/etc")"
}
fresh() { # a clean data directory owned by the daemon, slot A booted
  rm -rf "$W/data" "$W/run" "$W/esp/ketang"/* "$W"/*.log
  install -d -o nobody -g nogroup "$W/data" "$W/data/update"
  echo "BOOT_IMAGE=/vmlinuz rauc.slot=A" > "$W/cmdline"
  victims
}
field() { sed -n "s/^$1=//p" "$2"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
request() { daemon sh -c "printf 'sha256=%s\nsource=upload\n' $1 > '$W/data/update/request'"; }

log "ketang-update: the spooled bundle, state.tmp and state are links to root's files"
fresh
daemon ln -s "$W/victim/loader.conf" "$W/data/update/bundle.raucb"
daemon ln -s "$W/victim/loader.conf" "$W/data/update/state.tmp"
daemon ln -s "$W/victim/loader.conf" "$W/data/update/state"
request "$(sha "$W/victim/loader.conf")"
"$ROOT/image/rootfs/ketang-update" > "$W/out.txt" 2>&1 || fail "ketang-update exited $?: $(cat "$W/out.txt")"
victims_untouched "ketang-update"
[ ! -e "$W/rauc.log" ] || fail "rauc was asked to install a link: $(cat "$W/rauc.log")"
[ "$(field state "$W/esp/ketang/update.state")" = refused ] || fail "the step is not 'refused': $(cat "$W/esp/ketang/update.state")"
cmp -s "$W/esp/ketang/update.state" "$W/run/state" || fail "/run's copy differs from the ESP's"
[ "$(stat -c %U:%a "$W/run/state")" = root:644 ] || fail "/run state is $(stat -c %U:%a "$W/run/state")"
[ ! -L "$W/data/update/bundle.raucb" ] && [ ! -e "$W/data/update/request" ] || fail "the spool was not cleaned"

log "ketang-update: the spool itself is a link"
fresh
daemon mkdir "$W/data/elsewhere"
daemon sh -c "echo bundle > '$W/data/elsewhere/bundle.raucb'"
rmdir "$W/data/update"; daemon ln -s "$W/data/elsewhere" "$W/data/update"
request "$(sha "$W/data/elsewhere/bundle.raucb")"
"$ROOT/image/rootfs/ketang-update" > "$W/out.txt" 2>&1 || fail "ketang-update exited $?: $(cat "$W/out.txt")"
[ ! -e "$W/rauc.log" ] || fail "rauc was asked to install through a linked spool"
[ "$(field state "$W/esp/ketang/update.state")" = refused ] || fail "the step is not 'refused'"

log "ketang-update: an ordinary hand-over is installed, the step published, the board rebooted"
fresh
daemon sh -c "echo 'a signed bundle' > '$W/data/update/bundle.raucb'"
request "$(sha "$W/data/update/bundle.raucb")"
"$ROOT/image/rootfs/ketang-update" > "$W/out.txt" 2>&1 || fail "ketang-update exited $?: $(cat "$W/out.txt")"
grep -q "^install $W/data/update/bundle.raucb\$" "$W/rauc.log" || fail "rauc was not asked to install: $(cat "$W/rauc.log" 2>&1)"
[ "$(field state "$W/run/state")" = installed ] && [ "$(field slot "$W/run/state")" = B ] || fail "the step is not 'installed' into B: $(cat "$W/run/state")"
grep -qx reboot "$W/systemctl.log" || fail "no reboot"
[ ! -e "$W/data/update/bundle.raucb" ] || fail "the bundle stayed in the spool"

log "ketang-health: a trial that passes (the daemon answers on its configured address)"
echo "BOOT_IMAGE=/vmlinuz rauc.slot=B" > "$W/cmdline"
echo trial > "$W/esp/ketang/slot-B.state"
rm -rf "$W/run"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$W/etc"
printf 'data_dir = "%s"\n[device]\nschool_id = "hf-0042"\nclassroom_id = "g7-c3"\ndevice_id = "kt-1"\n[http]\nlisten = "127.0.0.1:%s"\n' \
  "$W/daemon-data" "$PORT" > "$W/etc/ketang.toml"
mkdir -p "$W/rt"
RUNTIME_DIRECTORY=$W/rt "$KETANGD_BIN" run --config "$W/etc/ketang.toml" > "$W/daemon.log" 2>&1 &
DPID=$!
trap 'kill $DPID 2>/dev/null || true; rm -rf "$W"' EXIT
# As on the board: the config is the daemon's (0600 in a 0700 folder), and the unit leaves
# root only CAP_DAC_READ_SEARCH.
chown -R nobody:nogroup "$W/etc"; chmod 0700 "$W/etc"; chmod 0600 "$W/etc/ketang.toml"
KETANG_HEALTH_CONFIG=$W/etc/ketang.toml setpriv --inh-caps=-all --bounding-set=-all,+dac_read_search -- \
  "$ROOT/image/rootfs/ketang-health" > "$W/out.txt" 2>&1 || fail "ketang-health exited $?: $(cat "$W/out.txt")"
# The URL the kiosk opens is the one the daemon serves on (not an assumed 127.0.0.1:8080).
[ "$(cat "$W/rt/board-url")" = "http://127.0.0.1:$PORT/" ] && [ "$(stat -c %a "$W/rt/board-url")" = 644 ] \
  || fail "board-url: $(cat "$W/rt/board-url" 2>&1) ($(stat -c %a "$W/rt/board-url" 2>&1))"
kill $DPID; wait $DPID 2>/dev/null || true
grep -q "slot B is healthy" "$W/out.txt" || fail "the trial did not pass: $(cat "$W/out.txt")"
grep -qx "status mark-good" "$W/rauc.log" || fail "not marked good: $(cat "$W/rauc.log")"
[ "$(field state "$W/run/state")" = marked_good ] && [ "$(field sha256 "$W/run/state")" = "$(field sha256 "$W/esp/ketang/update.state")" ] \
  || fail "the step is not 'marked_good' with the bundle's hash: $(cat "$W/run/state")"

log "ketang-firstboot: the config directory is a link to root's directory"
fresh
daemon ln -s "$W/victim/etc" "$W/data/config"
if "$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1; then fail "firstboot wrote through the link: $(cat "$W/out.txt")"; fi
victims_untouched "ketang-firstboot (config)"
log "ketang-firstboot: keys is a link to root's file"
fresh
daemon ln -s "$W/victim/loader.conf" "$W/data/keys"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || true
victims_untouched "ketang-firstboot (keys)"

log "ketang-firstboot: a provisioning file on the ESP is applied by the daemon's user"
fresh
hash=$(printf 'root-scripts-password\n' | "$KETANGD_BIN" hash-password)
printf 'school_id = "hf-0042"\nclassroom_id = "g7-c3"\ndevice_id = "kt-root-1"\ntechnician_password_hash = "%s"\n' "$hash" \
  > "$W/esp/ketang/ketang-provision.toml"
chmod 0600 "$W/esp/ketang/ketang-provision.toml"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
[ ! -e "$W/esp/ketang/ketang-provision.toml" ] || fail "the provisioning file stayed: $(cat "$W/out.txt")"
grep -q 'device_id = "kt-root-1"' "$W/data/config/ketang.toml" || fail "not provisioned: $(cat "$W/out.txt")"
bad=$(find "$W/data" ! -user nobody -printf '%p ')
[ -z "$bad" ] || fail "root left files of its own in the data directory: $bad"
ls /run/ketang-provision.* >/dev/null 2>&1 && fail "a private copy stayed in /run"
log "ketang-firstboot: one identity, kept in the data partition (#21)"
# The root is read-only with an empty /etc/machine-id, so the machine id is made anew at
# every boot. The QR code an unprovisioned board shows must still be the id it gets when
# a provisioning file without device_id is applied at a later boot.
fresh
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
shown=$(sed -n 's/^device_id = "\(.*\)"$/\1/p' "$W/data/config/ketang.toml")
case "$shown" in kt-????????????) ;; *) fail "the unprovisioned id is not kt- and 12 hex digits: '$shown'" ;; esac
[ "$(cat "$W/data/device-id")" = "$shown" ] || fail "the identity is not kept in the data partition: $(cat "$W/data/device-id" 2>&1)"
printf 'school_id = "hf-0042"\nclassroom_id = "g7-c3"\ntechnician_password_hash = "%s"\n' "$hash" \
  > "$W/esp/ketang/ketang-provision.toml"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
grep -q "device_id = \"$shown\"" "$W/data/config/ketang.toml" \
  || fail "provisioned as another id than the QR code showed ($shown): $(grep device_id "$W/data/config/ketang.toml")"
[ "$(stat -c %U "$W/data/device-id")" = nobody ] || fail "the identity file is not the daemon's"

log "ketang-firstboot: the school's time servers reach chrony, and nothing else does"
fresh
printf 'school_id = "hf-0042"\nclassroom_id = "g7-c3"\nntp_servers = ["ntp.school.example.cn", "10.0.0.1"]\ntechnician_password_hash = "%s"\n' "$hash" \
  > "$W/esp/ketang/ketang-provision.toml"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
[ "$(cat "$W/run-chrony/ketang.sources")" = "$(printf 'server ntp.school.example.cn iburst\nserver 10.0.0.1 iburst')" ] \
  || fail "chrony's sources: $(cat "$W/run-chrony/ketang.sources" 2>&1); $(cat "$W/out.txt")"
# A compromised daemon adds directives of its own, or points the file at root's: only
# plain server lines ever reach chrony.
daemon sh -c "printf 'sourcedir /etc\nserver evil.example iburst key 1\nserver ok.example iburst nts\n' >> '$W/data/config/time.sources'"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
grep -qv '^server [A-Za-z0-9.:-]* iburst\( nts\)\?$' "$W/run-chrony/ketang.sources" \
  && fail "a line other than a plain server reached chrony: $(cat "$W/run-chrony/ketang.sources")"
grep -qx 'server ok.example iburst nts' "$W/run-chrony/ketang.sources" || fail "the NTS line was dropped"
daemon rm -f "$W/data/config/time.sources"
daemon ln -s "$W/victim/loader.conf" "$W/data/config/time.sources"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || true
[ ! -s "$W/run-chrony/ketang.sources" ] || fail "root's file reached chrony: $(cat "$W/run-chrony/ketang.sources")"
victims_untouched "ketang-firstboot (time.sources)"

log "ketang-firstboot: a static address becomes networkd's, and only addresses do"
fresh
printf 'school_id = "hf-0042"\nclassroom_id = "g7-c3"\ntechnician_password_hash = "%s"\n[network]\naddress = "192.168.10.23/24"\ngateway = "192.168.10.1"\ndns = ["192.168.10.1", "223.5.5.5"]\n' "$hash" \
  > "$W/esp/ketang/ketang-provision.toml"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
want='[Match]
Name=en* eth*

[Network]
DHCP=no
Address=192.168.10.23/24
Gateway=192.168.10.1
DNS=192.168.10.1
DNS=223.5.5.5'
[ "$(grep -v '^#' "$W/run-network/10-ketang-static.network")" = "$want" ] \
  || fail "networkd's file: $(cat "$W/run-network/10-ketang-static.network" 2>&1); $(cat "$W/out.txt")"
# A compromised daemon adds sections of its own: they never reach networkd.
daemon sh -c "printf '[Route]\nGateway=6.6.6.6\ndns=1.1.1.1 # x\nExecStart=/bin/sh\n' >> '$W/data/config/network.conf'"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
[ "$(grep -v '^#' "$W/run-network/10-ketang-static.network")" = "$want" ] \
  || fail "something else reached networkd: $(cat "$W/run-network/10-ketang-static.network")"
# Without a static address (re-provisioned, or none): DHCP again.
daemon rm -f "$W/data/config/network.conf"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?"
[ ! -e "$W/run-network/10-ketang-static.network" ] || fail "the static address outlived its file"

log "ketang-wifi: wpa_supplicant's file is written by root from known lines only"
fresh
printf 'school_id = "hf-0042"\nclassroom_id = "g7-c3"\ntechnician_password_hash = "%s"\n[wifi]\nssid = "EDU"\nsecurity = "wpa2-enterprise"\neap = "peap"\nidentity = "kt-0001"\npassword = "pw"\nca_pem = """\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"""\n' "$hash" \
  > "$W/esp/ketang/ketang-provision.toml"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
"$ROOT/image/rootfs/ketang-wifi" --config-only > "$W/out.txt" 2>&1 || fail "ketang-wifi exited $?: $(cat "$W/out.txt")"
S=$W/run-wifi/wpa_supplicant.conf
grep -q '^  eap=PEAP$' "$S" && grep -q "^  ca_cert=\"$W/run-wifi/ca.pem\"$" "$S" || fail "wpa_supplicant's file: $(cat "$S")"
[ "$(stat -c %U:%a "$W/run-wifi")" = root:700 ] && [ "$(stat -c %U:%a "$S")" = root:600 ] \
  || fail "root's Wi-Fi files are not root's alone: $(stat -c %U:%a "$W/run-wifi" "$S")"
# A compromised daemon writes directives of its own (wpa_supplicant can load code:
# opensc_engine_path), quoted values and a second network: none of it reaches the file.
daemon sh -c "printf 'ssid=\"x\"\nopensc_engine_path=/tmp/evil.so\nidentity=41\n}\nnetwork={\nkey_mgmt=NONE\npassword=41 x\n' >> '$W/data/config/wifi.conf'"
"$ROOT/image/rootfs/ketang-wifi" --config-only > "$W/out.txt" 2>&1 || fail "ketang-wifi exited $?: $(cat "$W/out.txt")"
grep -q 'evil\|NONE\|"x"\|41 x' "$S" && fail "the daemon's own lines reached wpa_supplicant: $(cat "$S")"
[ "$(grep -c '^network={' "$S")" = 1 ] || fail "a second network reached wpa_supplicant: $(cat "$S")"
# The CA is a link to a file of root's that the daemon cannot read: refused, nothing copied.
chmod 0600 "$W/victim/loader.conf"
daemon rm -f "$W/data/config/wifi/ca.pem"
daemon ln -s "$W/victim/loader.conf" "$W/data/config/wifi/ca.pem"
code=0; "$ROOT/image/rootfs/ketang-wifi" --config-only > "$W/out.txt" 2>&1 || code=$?
[ "$code" = 3 ] && grep -q 'wifi/ca.pem is missing or not PEM' "$W/out.txt" || fail "a CA root's alone was not refused ($code): $(cat "$W/out.txt")"
[ ! -e "$S" ] && ! grep -qs timeout "$W/run-wifi/ca.pem" || fail "root's file was copied for wpa_supplicant"
chmod 0644 "$W/victim/loader.conf"
victims_untouched "ketang-wifi"
# Without Wi-Fi in the provisioning: nothing for wpa_supplicant, and not an error.
daemon rm -f "$W/data/config/wifi.conf"
"$ROOT/image/rootfs/ketang-wifi" --config-only > "$W/out.txt" 2>&1 || fail "ketang-wifi without Wi-Fi exited $?"
grep -q 'no Wi-Fi in the provisioning file; wired only' "$W/out.txt" && [ ! -e "$S" ] || fail "without Wi-Fi: $(cat "$W/out.txt")"
log "the emergency console: off unless provisioned; the password from the file opens a root shell"
fresh
export KETANG_CONSOLE_OFF_SLEEP=0 KETANG_CONSOLE_FAIL_SLEEP=0 KETANG_CONSOLE_SHELL="echo ROOT-SHELL"
out=$(printf 'anything\n' | "$ROOT/image/rootfs/ketang-console" 2>&1) || fail "the console exited $?: $out"
case "$out" in *"the emergency console is off"*) ;; *) fail "an unprovisioned console: $out" ;; esac
console_pw='console-紧急-7f3a9c21'
chash=$(printf '%s\n' "$console_pw" | "$KETANGD_BIN" hash-password)
printf 'school_id = "hf-0042"\nclassroom_id = "g7-c3"\ndevice_id = "kt-0042"\ntechnician_password_hash = "%s"\nconsole_password_hash = "%s"\n' "$hash" "$chash" \
  > "$W/esp/ketang/ketang-provision.toml"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
grep -q 'the emergency console is on' "$W/out.txt" || fail "firstboot did not turn the console on: $(cat "$W/out.txt")"
[ "$(cat "$W/esp/ketang/console.hash")" = "$chash" ] || fail "the console's hash on the ESP is not the file's"
code=0; out=$(printf 'wrong-password\n' | "$ROOT/image/rootfs/ketang-console" 2>&1) || code=$?
[ "$code" = 1 ] && case "$out" in *"Wrong password."*) true ;; *) false ;; esac || fail "a wrong password ($code): $out"
case "$out" in *ROOT-SHELL*) fail "a wrong password opened the shell" ;; esac
out=$(printf '%s\n' "$console_pw" | "$ROOT/image/rootfs/ketang-console" 2>&1) || fail "the right password: $? $out"
case "$out" in *"kt-0042 emergency console"*ROOT-SHELL*) ;; *) fail "the right password did not open the shell: $out" ;; esac
# Re-provisioned without a console password: off again.
printf 'school_id = "hf-0042"\nclassroom_id = "g7-c3"\ntechnician_password_hash = "%s"\n' "$hash" > "$W/esp/ketang/ketang-provision.toml"
# (A provisioned board takes a second file only with --force: a technician's re-provisioning.)
rm -f "$W/data/ketang.db"* 2>/dev/null
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
[ ! -e "$W/esp/ketang/console.hash" ] || fail "the console stayed on after a provisioning without its password: $(cat "$W/out.txt")"
out=$(printf '%s\n' "$console_pw" | "$ROOT/image/rootfs/ketang-console" 2>&1) || true
case "$out" in *"the emergency console is off"*) ;; *) fail "after re-provisioning without it: $out" ;; esac
# The daemon cannot turn it on: a hash it plants in its own files is never the console's.
daemon sh -c "printf 'console_password_hash = \"%s\"\n' '$chash' >> '$W/data/config/ketang.toml'"
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || fail "firstboot exited $?: $(cat "$W/out.txt")"
[ ! -e "$W/esp/ketang/console.hash" ] || fail "a hash the daemon planted turned the console on"
# A malformed console hash: the whole file is refused, the console stays off.
printf 'school_id = "hf-0042"\nclassroom_id = "g7-c3"\ntechnician_password_hash = "%s"\nconsole_password_hash = "$argon2id$v=19$x"\n' "$hash" > "$W/esp/ketang/ketang-provision.toml"
rm -f "$W/data/ketang.db"* 2>/dev/null
"$ROOT/image/rootfs/ketang-firstboot" > "$W/out.txt" 2>&1 || true
grep -q 'console_password_hash: not an Argon2id PHC string' "$W/out.txt" || fail "a malformed console hash: $(cat "$W/out.txt")"
[ ! -e "$W/esp/ketang/console.hash" ] || fail "a malformed hash turned the console on"
unset KETANG_CONSOLE_OFF_SLEEP KETANG_CONSOLE_FAIL_SLEEP KETANG_CONSOLE_SHELL
log "passed"
