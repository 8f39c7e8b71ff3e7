#!/usr/bin/env bash
# Builds the Ketang appliance disk image from Debian packages (amd64 or arm64; see
# docs/technician.md and docs/arm64.md).
#
#   image/build.sh [--arch amd64|arm64] [--board NAME] [--variant headless|kiosk] [--debug]
#                  [--out DIR] [--no-compress]
#
#   --arch amd64        (default) x86 OPS modules and mini PCs (UEFI)
#   --arch arm64        ARM boards with UEFI firmware (or U-Boot's UEFI, see --board) and
#                       QEMU's virt machine; ketangd cross-compiled (scripts/arm64-env.sh),
#                       the root file system made with mmdebstrap under qemu-user
#   --board NAME        an arm64 board profile from image/boards/NAME.conf: its U-Boot is
#                       written in front of the first partition and its device tree goes
#                       onto the boot partition (implies --arch arm64)
#
#   --variant headless  (default) the daemon, no display stack: the OPS module of a flat
#                       panel whose own screen shows the board from a LAN browser, and the
#                       variant the boot test uses
#   --variant kiosk     adds Weston's kiosk shell + Chromium on the board's screen
#   --debug             put the debug build of ketangd in the image (the one the tests
#                       already made: what ./scripts/test boots). Default: a release
#                       build, what a school gets (~10 min more from clean). --release
#                       is accepted and is the default.
#   --out DIR           where the image goes (default target/image)
#   --no-compress       skip the .img.zst (the boot test uses the raw image)
#
# Layout (GPT): 1 "esp" (vfat, 128 MiB: systemd-boot, kernel, initrd, loader entries for
# A and B, the first-boot provisioning file), 2 "rootA" and 3 "rootB" (ext4, read-only
# root; B starts as a copy of A), 4 "data" (ext4: the store, config, keys; persistent).
# Loop-free: file systems are made with mkfs.ext4 -d / mkfs.vfat + mtools and placed with
# dd into a sparse file partitioned by sfdisk. Output: ketang-<variant>-amd64.img, its
# block map (.bmap, for `bmaptool copy`), and .img.zst.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VARIANT=headless
ARCH=amd64
BOARD=
PROFILE=release
OUT=$ROOT/target/image
COMPRESS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) VARIANT=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --board) BOARD=$2; ARCH=arm64; shift 2 ;;
    --release) PROFILE=release; shift ;;
    --debug) PROFILE=debug; shift ;;
    --out) OUT=$(realpath -m "$2"); shift 2 ;;
    --no-compress) COMPRESS=0; shift ;;
    *) echo "image/build.sh: unknown option $1 (see the header of this file)" >&2; exit 2 ;;
  esac
done
case "$VARIANT" in headless|kiosk) ;; *) echo "image/build.sh: --variant headless or kiosk" >&2; exit 2 ;; esac
case "$ARCH" in amd64|arm64) ;; *) echo "image/build.sh: --arch amd64 or arm64" >&2; exit 2 ;; esac
FIRST_PARTITION_MIB=1
CONSOLE="console=tty0 console=ttyS0,115200"
[ "$ARCH" = arm64 ] && CONSOLE="console=tty0 console=ttyAMA0,115200"
if [ -n "$BOARD" ]; then
  [ -f "image/boards/$BOARD.conf" ] || {
    echo "image/build.sh: no board profile image/boards/$BOARD.conf (there are: $(ls image/boards | sed -n 's/\.conf$//p' | tr '\n' ' '))" >&2; exit 2; }
  # Sets UBOOT_PACKAGE, UBOOT_DIR, DTB, IDBLOADER_SECTOR, UBOOT_SECTOR, FIRST_PARTITION_MIB,
  # CONSOLE (image/boards/README.md).
  . "image/boards/$BOARD.conf"
fi
# Names of the outputs: ketang-<variant>-<arch or board>.img
NAME=$VARIANT-${BOARD:-$ARCH}
step=0
log() { step=$((step + 1)); printf '==> image [%d] %s\n' "$step" "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "image/build.sh: run as root (mmdebstrap, file ownership in the image)" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need mmdebstrap mmdebstrap; need mkfs.vfat dosfstools; need mcopy mtools; need sfdisk fdisk
need bmaptool bmap-tools; need zstd zstd; need mkfs.ext4 e2fsprogs
if [ "$ARCH" = amd64 ]; then
  [ -f /usr/lib/systemd/boot/efi/systemd-bootx64.efi ] || need bootctl systemd-boot-efi
  [ -f /usr/lib/systemd/boot/efi/systemd-bootx64.efi ] || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd-boot-efi >/dev/null; }
else
  # arm64: mmdebstrap runs the packages' scripts under qemu-user (binfmt); the cross
  # toolchain links ketangd; systemd-boot's arm64 loader comes from the root file system.
  . scripts/arm64-env.sh
  arm64_env
  need arch-test arch-test
fi

mkdir -p "$OUT" "$OUT/cache"
WORK=$(mktemp -d "$OUT/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log "ketangd ($PROFILE, $ARCH) and the models"
TARGET_ARGS=(); TARGET_DIR=$ROOT/target
if [ "$ARCH" = arm64 ]; then TARGET_ARGS=(--target "$ARM64_TARGET"); TARGET_DIR=$ROOT/target/$ARM64_TARGET; fi
if [ "$PROFILE" = release ]; then
  cargo build -q --release "${TARGET_ARGS[@]}" -p ketang-daemon --bin ketangd
elif [ "${KETANG_PREBUILT:-0}" != 1 ] || [ "$ARCH" != amd64 ]; then
  # (KETANG_PREBUILT=1: ./scripts/test's one build of the workspace made target/debug/ketangd.)
  cargo build -q "${TARGET_ARGS[@]}" -p ketang-daemon --bin ketangd
fi
BIN=$TARGET_DIR/$PROFILE/ketangd
models/obtain.sh "$ROOT/target/models" >/dev/null

# --- the root file system (cached by package list) ---------------------------------------
PKGS="systemd,systemd-sysv,chrony,udev,dbus,kmod,iproute2,ca-certificates,linux-image-$ARCH,initramfs-tools,zstd,mtools,rauc,rauc-service,curl,dosfstools,alsa-utils,modemmanager,wpasupplicant,wireless-regdb"
if [ "$VARIANT" = kiosk ]; then PKGS="$PKGS,weston,chromium,fonts-wqy-microhei"; fi
# arm64 takes systemd-boot's EFI loader from its own packages.
if [ "$ARCH" = arm64 ]; then PKGS="$PKGS,systemd-boot-efi"; fi
KEY=$(printf 'slim1 %s' "$PKGS" | sha256sum | cut -c1-12)  # bump 'slim1' when the mmdebstrap options change
BASE=$OUT/cache/rootfs-$VARIANT-$KEY.tar
if [ ! -s "$BASE" ]; then
  log "Debian bookworm rootfs with mmdebstrap ($VARIANT, $ARCH; minutes, more under qemu-user; cached in $BASE)"
  # No translations, manuals or docs on a classroom board (the copyright files stay).
  mmdebstrap --variant=minbase --include="$PKGS" \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --components=main --architectures="$ARCH" \
    --customize-hook='echo ketang > "$1/etc/hostname"' \
    bookworm "$BASE.tmp.tar" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" >&2
  mv "$BASE.tmp.tar" "$BASE"
else
  log "rootfs from the cache ($BASE)"
fi
R=$WORK/rootfs
mkdir -p "$R"
tar -xf "$BASE" -C "$R"

# Update signing keys: KETANG_UPDATE_KEYS=DIR (ca.pem, signer.pem, signer.key), else
# development keys made once in $OUT/keys (fine for tests, never for a school).
KEYS=${KETANG_UPDATE_KEYS:-$OUT/keys}
if [ ! -s "$KEYS/ca.pem" ]; then
  log "development update keys in $KEYS (set KETANG_UPDATE_KEYS for real ones)"
  mkdir -p "$KEYS"
  openssl req -x509 -newkey rsa:3072 -nodes -keyout "$KEYS/ca.key" -out "$KEYS/ca.pem" -days 3650 \
    -subj "/CN=Ketang development update CA" 2>/dev/null
  openssl req -newkey rsa:3072 -nodes -keyout "$KEYS/signer.key" -out "$KEYS/signer.csr" \
    -subj "/CN=Ketang development bundle signer" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n' > "$KEYS/ext.cnf"
  openssl x509 -req -in "$KEYS/signer.csr" -CA "$KEYS/ca.pem" -CAkey "$KEYS/ca.key" -CAcreateserial \
    -out "$KEYS/signer.pem" -days 3650 -extfile "$KEYS/ext.cnf" 2>/dev/null
fi

log "installing Ketang into the rootfs"
install -m 0755 "$BIN" "$R/usr/bin/ketangd"
if [ "$ARCH" = arm64 ]; then aarch64-linux-gnu-strip "$R/usr/bin/ketangd"
else strip "$R/usr/bin/ketangd" 2>/dev/null || true; fi
mkdir -p "$R/usr/share/ketang/models" "$R/usr/share/doc/ketang"
# Every model with a licence; not MobileFaceNet, whose weights have none (docs/models.md).
for m in "$ROOT"/target/models/*.onnx; do
  case "$(basename "$m")" in mobilefacenet_*) continue ;; esac
  cp "$m" "$R/usr/share/ketang/models/"
done
cp "$ROOT"/docs/*.md "$R/usr/share/doc/ketang/"
LICENCE_TARGET=x86_64-unknown-linux-gnu
[ "$ARCH" = arm64 ] && LICENCE_TARGET=aarch64-unknown-linux-gnu
python3 "$ROOT/image/licences.py" "$R/usr/share/doc/ketang/THIRD-PARTY.md" "$LICENCE_TARGET"
cp "$ROOT/image/ketangd.service" "$R/etc/systemd/system/ketangd.service"
install -m 0644 "$ROOT/image/rootfs/ketang-firstboot.service" "$R/etc/systemd/system/"
install -m 0755 "$ROOT/image/rootfs/ketang-firstboot" "$R/usr/lib/ketang/ketang-firstboot" 2>/dev/null || {
  mkdir -p "$R/usr/lib/ketang"; install -m 0755 "$ROOT/image/rootfs/ketang-firstboot" "$R/usr/lib/ketang/ketang-firstboot"; }
install -m 0644 "$ROOT/image/rootfs/fstab" "$R/etc/fstab"
mkdir -p "$R/etc/rauc"
# A bundle is for one architecture: compatible=ketang-amd64 or ketang-arm64.
sed "s/^compatible=ketang-amd64\$/compatible=ketang-$ARCH/" "$ROOT/image/rootfs/rauc-system.conf" > "$R/etc/rauc/system.conf"
chmod 0644 "$R/etc/rauc/system.conf"
install -m 0644 "$KEYS/ca.pem" "$R/etc/rauc/keyring.pem"
for f in rauc-bootloader ketang-health ketang-update; do
  install -m 0755 "$ROOT/image/rootfs/$f" "$R/usr/lib/ketang/$f"
done
install -m 0644 "$ROOT/image/rootfs/ketang-lib.sh" "$R/usr/lib/ketang/lib.sh"
# Time: chrony with NTS first (image/rootfs/chrony.conf; docs/technician.md, "Time").
install -m 0644 "$ROOT/image/rootfs/chrony.conf" "$R/etc/chrony/chrony.conf"
# The alarm's SMS fallback: ModemManager drives a cellular modem if one is plugged in, and
# polkit lets the daemon's user send messages and reboot on the cloud's command (50-ketang.rules).
install -d -m 0755 "$R/etc/polkit-1/rules.d"
install -m 0644 "$ROOT/image/rootfs/50-ketang.rules" "$R/etc/polkit-1/rules.d/50-ketang.rules"
install -m 0644 "$ROOT/image/rootfs/ketang-health.service" "$ROOT/image/rootfs/ketang-update.service" \
  "$ROOT/image/rootfs/ketang-update.path" "$R/etc/systemd/system/"
mkdir -p "$R/usr/lib/repart.d"
install -m 0644 "$ROOT/image/rootfs/repart-50-data.conf" "$R/usr/lib/repart.d/50-data.conf"
install -m 0644 "$ROOT/image/rootfs/20-wired.network" "$R/etc/systemd/network/20-wired.network"
# Wi-Fi from the provisioning file (ketang-wifi; docs/technician.md, "Wi-Fi"), behind the cable.
install -m 0644 "$ROOT/image/rootfs/30-wireless.network" "$R/etc/systemd/network/30-wireless.network"
# The emergency console (docs/technician.md): on the serial console of CONSOLE and on tty2,
# instead of Debian's gettys (root is locked: their login prompt opened nothing).
install -m 0755 "$ROOT/image/rootfs/ketang-console" "$R/usr/lib/ketang/ketang-console"
install -m 0644 "$ROOT/image/rootfs/ketang-console@.service" "$R/etc/systemd/system/"
SERIAL_TTY=$(printf '%s\n' "$CONSOLE" | sed -n 's/.*console=\(tty[A-Za-z]*[0-9]*\),.*/\1/p')
mkdir -p "$R/etc/systemd/logind.conf.d"
printf '[Login]\nNAutoVTs=0\nReserveVT=0\n' > "$R/etc/systemd/logind.conf.d/ketang.conf"
install -m 0755 "$ROOT/image/rootfs/ketang-wifi" "$R/usr/lib/ketang/ketang-wifi"
install -m 0644 "$ROOT/image/rootfs/ketang-wifi.service" "$ROOT/image/rootfs/ketang-wifi.path" \
  "$ROOT/image/rootfs/ketang-wifi-reload.service" "$R/etc/systemd/system/"
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' > "$R/etc/systemd/journald.conf.d/ketang.conf"
# The config lives on the data partition (the root is read-only).
rm -rf "$R/etc/ketang"; ln -s /var/lib/ketang/config "$R/etc/ketang"
# Mount points on the read-only root.
mkdir -p "$R/boot/efi" "$R/var/lib/ketang"
# A read-only root: machine-id made at boot, no stale identity baked in.
: > "$R/etc/machine-id"; rm -f "$R/var/lib/dbus/machine-id"
chroot "$R" /bin/sh -e -c '
  for g in gpio spi i2c; do getent group $g >/dev/null || groupadd --system $g; done
  getent passwd ketang >/dev/null || useradd --system --home-dir /var/lib/ketang --no-create-home \
    --shell /usr/sbin/nologin --user-group --groups gpio,spi,i2c,dialout,input,video,audio ketang
  passwd -l root >/dev/null
  systemctl enable ketangd.service ketang-firstboot.service ketang-health.service ketang-update.service ketang-update.path \
    ketang-wifi.service ketang-wifi.path systemd-networkd.service chrony.service >/dev/null 2>&1
  # The D-Bus wpa_supplicant of the package is not used: ketang-wifi runs the one a board needs.
  systemctl mask wpa_supplicant.service >/dev/null 2>&1 || true
  systemctl mask getty@.service serial-getty@.service >/dev/null 2>&1
  systemctl enable ketang-console@tty2.service '"${SERIAL_TTY:+ketang-console@$SERIAL_TTY.service}"' >/dev/null 2>&1
  systemctl mask ssh.service >/dev/null 2>&1 || true
'
if [ "$VARIANT" = kiosk ]; then
  install -m 0644 "$ROOT/image/rootfs/ketang-kiosk.service" "$R/etc/systemd/system/"
  install -D -m 0644 "$ROOT/image/rootfs/kiosk-weston.ini" "$R/usr/share/ketang/kiosk-weston.ini"
  install -D -m 0755 "$ROOT/image/rootfs/ketang-kiosk-browser" "$R/usr/lib/ketang/kiosk-browser"
  # Chromium's managed policy: no translate bubble (it offered to translate the board into
  # English on the first boot in QEMU), no sign-in, sync, password or autofill prompts, no
  # downloads, no developer tools.
  install -D -m 0644 "$ROOT/image/rootfs/chromium-policy.json" "$R/etc/chromium/policies/managed/ketang.json"
  chroot "$R" /bin/sh -e -c '
    getent passwd kiosk >/dev/null || useradd --system --create-home --user-group --groups video,input,render kiosk
    systemctl enable ketang-kiosk.service >/dev/null 2>&1'
fi
KVER=$(ls "$R/lib/modules" | head -n 1)
# Kernel drivers a headless classroom board never loads (GPUs: the kiosk variant keeps them;
# InfiniBand, ISDN, TV/DVB cards); USB (UVC) cameras and the V4L2 core stay.
M=$R/lib/modules/$KVER/kernel/drivers
rm -rf "$M/infiniband" "$M/isdn" "$M/media/pci" "$M/media/dvb-frontends" "$M/media/tuners" \
  "$M/media/dvb-core" "$M/media/firewire" "$M/media/mmc" "$M/media/radio" "$M/media/usb/dvb-usb" \
  "$M/media/usb/dvb-usb-v2"
[ "$VARIANT" = kiosk ] || rm -rf "$M/gpu"
chroot "$R" depmod -a "$KVER"
# (The initrd holds no module removed above. On arm64 every program in mkinitramfs runs under
# qemu-user, about ten minutes: the one the kernel package made is kept.)
[ "$ARCH" = arm64 ] || chroot "$R" update-initramfs -u -k "$KVER" >/dev/null 2>&1 || true
cat > "$R/usr/lib/ketang/image-release" <<EOF
KETANG_IMAGE_VARIANT=$VARIANT
KETANG_IMAGE_ARCH=$ARCH
KETANG_IMAGE_BOARD=${BOARD:-generic}
KETANG_IMAGE_PROFILE=$PROFILE
KETANG_IMAGE_KERNEL=$KVER
KETANG_IMAGE_BUILT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
KETANG_IMAGE_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
EOF

# --- the partitions ----------------------------------------------------------------------
log "boot partition (systemd-boot, kernel $KVER, entries for slots A and B)"
ESP=$WORK/esp.img
truncate -s 128M "$ESP"
mkfs.vfat -F 32 -n KETANG-ESP "$ESP" >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$ESP" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/ketang
if [ "$ARCH" = amd64 ]; then
  mcopy -i "$ESP" /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$ESP" /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/systemd/systemd-bootx64.efi
  mcopy -i "$ESP" "$R/boot/vmlinuz-$KVER" ::/vmlinuz
else
  mcopy -i "$ESP" "$R/usr/lib/systemd/boot/efi/systemd-bootaa64.efi" ::/EFI/BOOT/BOOTAA64.EFI
  mcopy -i "$ESP" "$R/usr/lib/systemd/boot/efi/systemd-bootaa64.efi" ::/EFI/systemd/systemd-bootaa64.efi
  # Debian's arm64 vmlinuz is a gzip-compressed Image; systemd-boot starts the kernel's
  # EFI stub only from the uncompressed one.
  if gzip -t "$R/boot/vmlinuz-$KVER" 2>/dev/null; then
    gzip -dc "$R/boot/vmlinuz-$KVER" > "$WORK/vmlinuz"
  else
    cp "$R/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
  fi
  mcopy -i "$ESP" "$WORK/vmlinuz" ::/vmlinuz
fi
DEVICETREE=
if [ -n "${DTB:-}" ]; then
  # The board's device tree from the kernel package, loaded by systemd-boot (U-Boot's own
  # tree is only for U-Boot; docs/arm64.md).
  mmd -i "$ESP" ::/dtb
  mcopy -i "$ESP" "$R/usr/lib/linux-image-$KVER/$DTB" "::/dtb/$(basename "$DTB")"
  DEVICETREE="devicetree /dtb/$(basename "$DTB")\n"
fi
mcopy -i "$ESP" "$R/boot/initrd.img-$KVER" ::/initrd.img
printf 'default a.conf\ntimeout 0\nconsole-mode keep\n' > "$WORK/loader.conf"
mcopy -i "$ESP" "$WORK/loader.conf" ::/loader/loader.conf
for slot in A B; do
  lower=$(echo "$slot" | tr A-Z a-z)
  printf "title Ketang (slot %s)\nlinux /vmlinuz\ninitrd /initrd.img\n${DEVICETREE}options root=PARTLABEL=root%s ro rootwait $CONSOLE rauc.slot=%s\n" \
    "$slot" "$slot" "$slot" > "$WORK/$lower.conf"
  mcopy -i "$ESP" "$WORK/$lower.conf" "::/loader/entries/$lower.conf"
done
printf 'good\n' > "$WORK/slot-A.state"
mcopy -i "$ESP" "$WORK/slot-A.state" ::/ketang/slot-A.state
printf 'Put ketang-provision.toml here (docs/technician.md); it is applied once at first boot, then removed.\n' \
  > "$WORK/README.txt"
mcopy -i "$ESP" "$WORK/README.txt" ::/ketang/README.txt

log "root slot A (ext4 from the rootfs) and an empty slot B"
USED_MB=$(du -sm "$R" | cut -f1)
ROOT_MB=$(( (USED_MB * 13 / 10 + 127) / 64 * 64 ))
ROOTA=$WORK/rootA.img
mkfs.ext4 -q -L rootA -d "$R" -E root_owner=0:0 "$ROOTA" "${ROOT_MB}M"
# The same file system is what an update bundle carries (image/bundle.sh).
cp --sparse=always "$ROOTA" "$OUT/ketang-$NAME.rootfs.ext4"
DATA=$WORK/data.img
# The data partition is the daemon's from birth (its user's ids from the root file
# system): first boot never has to chown anything there as root.
KUID=$(awk -F: '$1 == "ketang" { print $3 }' "$R/etc/passwd")
KGID=$(awk -F: '$1 == "ketang" { print $4 }' "$R/etc/passwd")
[ -n "$KUID" ] && [ -n "$KGID" ] || { echo "image/build.sh: no user ketang in the root file system" >&2; exit 1; }
rm -rf "$WORK/data"
mkdir -p "$WORK/data/config" "$WORK/data/keys"
chmod 0700 "$WORK/data/keys"
chown -R "$KUID:$KGID" "$WORK/data"
mkfs.ext4 -q -L data -d "$WORK/data" -E root_owner="$KUID:$KGID" "$DATA" 256M
ROOTB=$WORK/rootB.img
mkfs.ext4 -q -L rootB "$ROOTB" "${ROOT_MB}M"

log "disk image (GPT: esp, rootA, rootB, data)"
IMG=$OUT/ketang-$NAME.img
rm -f "$IMG"
MB=$((1024 * 1024))
ESP_MB=128; DATA_MB=256
TOTAL_MB=$((FIRST_PARTITION_MIB + ESP_MB + ROOT_MB + ROOT_MB + DATA_MB + 1))
truncate -s "${TOTAL_MB}M" "$IMG"
# Root partitions carry the Discoverable Partitions type of their architecture.
ROOT_TYPE=4f68bce3-e8cd-4db1-96e7-fbcaf984b709
[ "$ARCH" = arm64 ] && ROOT_TYPE=b921b045-1df0-41c3-af44-4c6f280d3fae
sfdisk -q "$IMG" <<EOF
label: gpt
start=${FIRST_PARTITION_MIB}MiB, size=${ESP_MB}MiB, type=uefi, name=esp
size=${ROOT_MB}MiB, type=$ROOT_TYPE, name=rootA
size=${ROOT_MB}MiB, type=$ROOT_TYPE, name=rootB
size=${DATA_MB}MiB, type=linux, name=data
EOF
off=$FIRST_PARTITION_MIB
for part in "$ESP:$ESP_MB" "$ROOTA:$ROOT_MB" "$ROOTB:$ROOT_MB" "$DATA:$DATA_MB"; do
  f=${part%%:*}; size=${part##*:}
  dd if="$f" of="$IMG" bs=1M seek="$off" conv=notrunc,sparse status=none
  off=$((off + size))
done
if [ -n "$BOARD" ] && [ -n "${UBOOT_PACKAGE:-}" ]; then
  # The board's boot loader in front of the first partition (where its boot ROM looks):
  # U-Boot from the Debian package, which then starts systemd-boot through its UEFI.
  log "U-Boot for $BOARD ($UBOOT_PACKAGE) at sectors $IDBLOADER_SECTOR and $UBOOT_SECTOR"
  # The package is downloaded on its own (an apt configuration of its own, arm64, in the
  # cache folder), so every board shares the generic arm64 root file system.
  A=$OUT/cache/apt-arm64
  mkdir -p "$A/lists/partial" "$A/archives/partial" "$A/etc"
  printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' > "$A/etc/sources.list"
  APT_OPTS=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Dir::Etc::SourceList="$A/etc/sources.list"
    -o Dir::Etc::SourceParts=- -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A" -o Dir::State::Status=/dev/null -o APT::Sandbox::User=root)
  apt-get -qq "${APT_OPTS[@]}" update >&2
  (cd "$A/archives" && apt-get -qq "${APT_OPTS[@]}" download "$UBOOT_PACKAGE" >&2)
  rm -rf "$WORK/uboot"; mkdir "$WORK/uboot"
  dpkg-deb -x "$(ls -t "$A/archives/${UBOOT_PACKAGE}"_*_arm64.deb | head -n 1)" "$WORK/uboot"
  U=$WORK/uboot/usr/lib/u-boot/$UBOOT_DIR
  [ -s "$U/idbloader.img" ] && [ -s "$U/u-boot.itb" ] || {
    echo "image/build.sh: $UBOOT_PACKAGE has no idbloader.img/u-boot.itb in /usr/lib/u-boot/$UBOOT_DIR" >&2; exit 1; }
  end=$(( (UBOOT_SECTOR * 512 + $(stat -c %s "$U/u-boot.itb")) / MB ))
  [ "$end" -lt "$FIRST_PARTITION_MIB" ] || {
    echo "image/build.sh: U-Boot would overlap the boot partition (ends at $end MiB)" >&2; exit 1; }
  dd if="$U/idbloader.img" of="$IMG" bs=512 seek="$IDBLOADER_SECTOR" conv=notrunc status=none
  dd if="$U/u-boot.itb" of="$IMG" bs=512 seek="$UBOOT_SECTOR" conv=notrunc status=none
fi
bmaptool -q create -o "$IMG.bmap" "$IMG"
if [ "$COMPRESS" = 1 ]; then
  log "compressing (zstd)"
  zstd -q -f -T0 -10 "$IMG" -o "$IMG.zst"
fi
log "done: $IMG (${TOTAL_MB} MiB, root slots ${ROOT_MB} MiB each)"
ls -la "$OUT" | grep ketang >&2
