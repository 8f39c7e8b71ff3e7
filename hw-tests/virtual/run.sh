#!/usr/bin/env bash
# Level 2 of the hardware tests: the daemon's Linux glue against real kernel devices, in a
# QEMU VM (TCG; no KVM needed). The VM runs Debian's own kernel with:
#   * gpio-sim (not built in any Debian kernel: compiled here out of tree from Debian's
#     linux-source, as ../shared/FACTS.md describes) for the button, siren and PIR lines;
#   * uinput (and the evdev module) for a virtual USB keyboard-wedge card reader;
#   * vivid (the kernel's virtual V4L2 camera) for the classroom camera, with the models;
#   * snd-aloop (the kernel's loopback sound card) for the classroom microphone;
#   * mac80211_hwsim (simulated radios) for Wi-Fi: hostapd as the school's access point and
#     RADIUS server, the board provisioned with `ketangd provision` and connected by the
#     image's own `ketang-wifi` (hw-tests/virtual/wifi.sh);
# and runs `ketang-virtual` (hw-tests/src/bin/ketang-virtual.rs), which starts the real
# `ketangd run` against them and checks what the status page and the lines show.
#
#   hw-tests/virtual/run.sh          build what is missing, boot, check (about 2-3 min)
#   KETANG_L2_ONLY=wifi hw-tests/virtual/run.sh   the Wi-Fi checks only
#
# Needs root (apt-get for qemu-system-x86, busybox-static, cpio, the kernel headers) on a
# Debian 12 machine. Downloads are cached in target/virtual/ (or $KETANG_L2_CACHE).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
log() { printf '==> level 2: %s\n' "$*" >&2; }

WORK=${KETANG_L2_CACHE:-$ROOT/target/virtual}
mkdir -p "$WORK"

apt_updated=0
need_pkg() {
  dpkg -s "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian package $1 and not root: install it and rerun"; exit 1
  fi
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1
  fi
  log "installing $1"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}

# The kernel Debian ships now (bookworm): image, headers and source of one version.
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$KPKG" ]; then
  [ "$apt_updated" = 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; }
  KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
KVER=${KPKG#linux-image-}
log "kernel $KVER"
for p in qemu-system-x86 busybox-static cpio xz-utils make alsa-utils hostapd wpasupplicant iw openssl kmod \
  "linux-headers-$KVER"; do need_pkg "$p"; done

cd "$WORK"
if [ ! -f "kimg/boot/vmlinuz-$KVER" ]; then
  log "fetching $KPKG"
  rm -f linux-image-*.deb
  apt-get download "$KPKG" >/dev/null
  rm -rf kimg; dpkg-deb -x linux-image-*.deb kimg
fi
if [ ! -f "mod-$KVER/gpio_sim_oot.ko" ]; then
  log "building gpio-sim out of tree"
  if [ ! -f linux-source-6.1.tar.xz ]; then
    rm -f linux-source-6.1_*.deb
    apt-get download linux-source-6.1 >/dev/null
    dpkg-deb --fsys-tarfile linux-source-6.1_*.deb \
      | tar -x --wildcards './usr/src/linux-source-6.1.tar.xz' -O > linux-source-6.1.tar.xz
    rm -f linux-source-6.1_*.deb
  fi
  rm -rf src "mod-$KVER"; mkdir -p src "mod-$KVER"
  tar -xJf linux-source-6.1.tar.xz -C src linux-source-6.1/drivers/gpio/gpio-sim.c \
    linux-source-6.1/drivers/gpio/gpiolib.h linux-source-6.1/kernel/irq/irq_sim.c
  cp src/linux-source-6.1/drivers/gpio/gpio-sim.c src/linux-source-6.1/drivers/gpio/gpiolib.h \
    src/linux-source-6.1/kernel/irq/irq_sim.c "mod-$KVER/"
  # irq_sim's handle_simple_irq(irq_to_desc()) needs symbols modules cannot use.
  sed -i 's/handle_simple_irq(irq_to_desc(\([a-z_]*\)))/generic_handle_irq(\1)/' "mod-$KVER/irq_sim.c"
  printf 'obj-m := gpio_sim_oot.o\ngpio_sim_oot-y := gpio-sim.o irq_sim.o\n' > "mod-$KVER/Makefile"
  make -s -C "/usr/src/linux-headers-$KVER" M="$WORK/mod-$KVER" modules 2>&1 | grep -v 'Skipping BTF' || true
  test -f "mod-$KVER/gpio_sim_oot.ko"
fi

log "building ketangd and ketang-virtual"
# (KETANG_PREBUILT=1: ./scripts/test's one build of the workspace made them.)
[ "${KETANG_PREBUILT:-0}" = 1 ] || (cd "$ROOT" && cargo build -q -p ketang-daemon --bin ketangd -p ketang-hw-tests --bin ketang-virtual)

# wifi_prepare: /wifi in the initramfs (hw-tests/virtual/wifi.sh): the radio modules in
# load order, the image's ketang-wifi and lib.sh, a school CA with its RADIUS server and the
# board's client certificate (plus a rogue CA, and a server of the right CA under another
# name), the access points' hostapd files and the boards' provisioning files.
wifi_prepare() {
  local w=initrd/wifi c=initrd/wifi/certs
  mkdir -p "$w/mods" "$w/ap" "$w/boards" "$c"
  cp "$ROOT/hw-tests/virtual/wifi.sh" "$ROOT/image/rootfs/ketang-wifi" "$w/"
  cp "$ROOT/image/rootfs/ketang-lib.sh" "$w/lib.sh"
  # OpenSSL's legacy provider (MD4, for MSCHAPv2): hostapd's TLS does not start without it.
  mkdir -p initrd/usr/lib/x86_64-linux-gnu
  cp -r /usr/lib/x86_64-linux-gnu/ossl-modules initrd/usr/lib/x86_64-linux-gnu/
  : > "$w/mods/order"
  add_mod() { # add_mod NAME: NAME after what it depends on
    grep -qx "$1" "$w/mods/order" && return 0
    local f d
    f=$(find "kimg/lib/modules/$KVER/kernel" -name "$1.ko" | head -n 1)
    [ -n "$f" ] || { log "no module $1 in $KPKG"; exit 1; }
    for d in $(modinfo -F depends "$f" | tr ',' ' '); do add_mod "$d"; done
    cp "$f" "$w/mods/"; echo "$1" >> "$w/mods/order"
  }
  for m in ccm ctr cmac mac80211_hwsim; do add_mod "$m"; done
  # EC keys: TLS handshakes stay quick under TCG.
  ec() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
  ca() { # ca NAME CN
    ec "$c/$1.key"
    openssl req -x509 -new -key "$c/$1.key" -out "$c/$1.pem" -days 30 -subj "/CN=$2" 2>/dev/null
  }
  leaf() { # leaf NAME CA CN EXTENDED-KEY-USAGE
    ec "$c/$1.key"
    openssl req -new -key "$c/$1.key" -out "$c/$1.csr" -subj "/CN=$3" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=%s\nsubjectAltName=DNS:%s\n' "$4" "$3" > "$c/$1.ext"
    openssl x509 -req -in "$c/$1.csr" -CA "$c/$2.pem" -CAkey "$c/$2.key" -CAcreateserial \
      -out "$c/$1.pem" -days 30 -extfile "$c/$1.ext" 2>/dev/null
  }
  ca school-ca "Hefei education bureau RADIUS CA (test)"
  ca rogue-ca "Rogue CA (test)"
  leaf radius school-ca radius.hf.edu.cn serverAuth
  leaf evil school-ca radius.evil.example serverAuth
  leaf rogue rogue-ca radius.hf.edu.cn serverAuth
  leaf board school-ca kt-qemu-0001 clientAuth
  local hash
  hash=$(printf 'level2-technician\n' | "$ROOT/target/debug/ketangd" hash-password)
  ap_conf() { # ap_conf NAME SSID LINES...
    local name=$1 ssid=$2; shift 2
    printf 'interface=wlan0\ndriver=nl80211\nhw_mode=g\nchannel=6\nssid=%s\nwpa=2\nrsn_pairwise=CCMP\n' "$ssid" > "$w/ap/$name.conf"
    printf '%s\n' "$@" >> "$w/ap/$name.conf"
  }
  eap_ap() { # eap_ap NAME SERVER-CERT
    ap_conf "$1" KT-EDU wpa_key_mgmt=WPA-EAP ieee8021x=1 eap_server=1 eap_user_file=/wifi/eap_users \
      ca_cert=/wifi/certs/school-ca.pem server_cert="/wifi/certs/$2.pem" private_key="/wifi/certs/$2.key"
  }
  ap_conf psk KT-PSK wpa_key_mgmt=WPA-PSK wpa_passphrase=classroom-2026
  ap_conf psk-other KT-PSK wpa_key_mgmt=WPA-PSK wpa_passphrase=another-passphrase
  ap_conf sae KT-SAE wpa_key_mgmt=SAE ieee80211w=2 'sae_password=教室-sae-2026'
  ap_conf mixed KT-MIX 'wpa_key_mgmt=WPA-PSK SAE' ieee80211w=1 wpa_passphrase=mixed-classroom-2026
  eap_ap peap radius
  eap_ap tls radius
  eap_ap peap-rogue-ca rogue
  eap_ap peap-wrong-name evil
  # The RADIUS server's users: the board's certificate (EAP-TLS), or PEAP outside with the
  # board's account inside.
  printf '"kt-qemu-0001" TLS\n* PEAP\n"kt-qemu-0001" MSCHAPV2 "pw-board-2026" [2]\n' > "$w/eap_users"
  board() { # board NAME WIFI-TABLE-LINES...
    local name=$1; shift
    { printf 'school_id = "hf-0042"\nclassroom_id = "g7-c3"\ndevice_id = "kt-qemu-0001"\n'
      printf 'technician_password_hash = "%s"\n\n[wifi]\n' "$hash"
      printf '%s\n' "$@"; } > "$w/boards/$name.toml"
  }
  pem() { printf '%s = """\n%s\n"""' "$1" "$(cat "$c/$2")"; }
  board psk 'ssid = "KT-PSK"' 'security = "wpa2-personal"' 'passphrase = "classroom-2026"'
  board sae 'ssid = "KT-SAE"' 'security = "wpa3-personal"' 'passphrase = "教室-sae-2026"'
  board mixed 'ssid = "KT-MIX"' 'security = "wpa2-wpa3-personal"' 'passphrase = "mixed-classroom-2026"'
  board peap 'ssid = "KT-EDU"' 'security = "wpa2-enterprise"' 'eap = "peap"' 'identity = "kt-qemu-0001"' \
    'anonymous_identity = "anonymous"' 'password = "pw-board-2026"' 'server_domain = "hf.edu.cn"' "$(pem ca_pem school-ca.pem)"
  board tls 'ssid = "KT-EDU"' 'security = "wpa2-enterprise"' 'eap = "tls"' 'identity = "kt-qemu-0001"' \
    'server_domain = "hf.edu.cn"' "$(pem ca_pem school-ca.pem)" "$(pem client_cert_pem board.pem)" "$(pem client_key_pem board.key)"
  rm -f "$c"/*.csr "$c"/*.ext "$c"/*.srl
}

log "packing the initramfs"
rm -rf initrd initrd.img; mkdir -p initrd/{bin,mods,lib64,lib/x86_64-linux-gnu,etc}
cp /bin/busybox initrd/bin/busybox
for b in "$ROOT/target/debug/ketangd" "$ROOT/target/debug/ketang-virtual" /usr/bin/arecord /usr/bin/aplay \
  /usr/sbin/hostapd /usr/sbin/wpa_supplicant /usr/sbin/wpa_cli /usr/sbin/iw; do
  strip -o "initrd/bin/$(basename "$b")" "$b"
  for lib in $(ldd "$b" | awk '/=>/{print $3} /ld-linux/{print $1}'); do
    mkdir -p "initrd$(dirname "$lib")"; cp -L "$lib" "initrd$lib"
  done
done
# ALSA's configuration (arecord needs it to name devices) and a speech recording to play.
mkdir -p initrd/usr/share; cp -r /usr/share/alsa initrd/usr/share/
cp "$ROOT/models/tests/data/speech.wav" initrd/speech.wav
M=kimg/lib/modules/$KVER/kernel
cp "$M/fs/configfs/configfs.ko" "$M/drivers/input/evdev.ko" "$M/drivers/input/misc/uinput.ko" \
  "mod-$KVER/gpio_sim_oot.ko" initrd/mods/
# vivid, the kernel's virtual V4L2 camera, with what it needs (in load order).
VIVID="rc/rc-core cec/core/cec mc/mc v4l2-core/videodev common/videobuf2/videobuf2-common
  common/videobuf2/videobuf2-v4l2 common/videobuf2/videobuf2-memops common/videobuf2/videobuf2-vmalloc
  common/videobuf2/videobuf2-dma-contig v4l2-core/v4l2-dv-timings common/v4l2-tpg/v4l2-tpg test-drivers/vivid/vivid"
mkdir -p initrd/mods/media initrd/mods/sound initrd/models
# snd-aloop, the kernel's loopback sound card: what is played on one side is captured on the other.
for m in soundcore core/snd core/snd-timer core/snd-pcm drivers/snd-aloop; do cp "$M/sound/$m.ko" initrd/mods/sound/; done
for m in $VIVID; do cp "$M/drivers/media/$m.ko" initrd/mods/media/; done
echo "$VIVID" | tr ' ' '\n' | sed 's#.*/##' | grep . > initrd/mods/media/order
# The face and person models for the camera check.
[ -s "$ROOT/target/models/nanodet.onnx" ] || (cd "$ROOT" && models/obtain.sh target/models >/dev/null)
cp "$ROOT"/target/models/*.onnx initrd/models/
wifi_prepare
cat > initrd/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
ifconfig lo 127.0.0.1 up
insmod /mods/configfs.ko && mount -t configfs configfs /sys/kernel/config
insmod /mods/evdev.ko
insmod /mods/uinput.ko
insmod /mods/gpio_sim_oot.ko
for m in soundcore snd snd-timer snd-pcm snd-aloop; do insmod "/mods/sound/$m.ko"; done
# One vivid instance with only a video capture node (/dev/video0).
for m in $(cat /mods/media/order); do
  if [ "$m" = vivid ]; then insmod /mods/media/vivid.ko n_devs=1 node_types=0x1; else insmod "/mods/media/$m.ko"; fi
done
echo "KETANG-L2 BOOTED $(uname -r)"
sh /wifi/wifi.sh
if [ -f /wifi-only ]; then echo "KETANG-L2 DONE Wi-Fi only"; else
  /bin/ketang-virtual /bin/ketangd
  echo "KETANG-L2 EXIT $?"
fi
poweroff -f
INIT
chmod +x initrd/init
[ "${KETANG_L2_ONLY:-}" = wifi ] && : > initrd/wifi-only
(cd initrd && find . | cpio -o -H newc --quiet) > initrd.img

log "booting (TCG)"
set +e
timeout 600 qemu-system-x86_64 -m 1536 -smp 2 -nographic -no-reboot -net none \
  -kernel "kimg/boot/vmlinuz-$KVER" -initrd initrd.img \
  -append "console=ttyS0 quiet panic=-1" > console.log 2>&1
rc=$?
set -e
grep -a 'KETANG-L2' console.log >&2 || true
if [ "$rc" -ne 0 ]; then
  log "QEMU ended with $rc; the console:"; tail -n 40 console.log >&2; exit 1
fi
if ! grep -aq 'KETANG-L2 BOOTED' console.log; then
  log "the VM never reached /init; the console:"; tail -n 40 console.log >&2; exit 1
fi
done_line=$(grep -a 'KETANG-L2 DONE' console.log | tail -n 1 | tr -d '\r')
if [ -z "$done_line" ] || grep -aq 'KETANG-L2 FAIL' console.log; then
  log "FAILED (console: $WORK/console.log)"; exit 1
fi
grep -aq 'KETANG-L2 WIFI PASSED' console.log || { log "FAILED: the Wi-Fi checks did not finish (console: $WORK/console.log)"; exit 1; }
log "passed: ${done_line#KETANG-L2 DONE }"
