#!/usr/bin/env bash
# Checks a board profile's image without the board (docs/arm64.md, "Real boards"): U-Boot
# byte for byte where the SoC's boot ROM reads it, the partitions after it, the board's
# device tree on the boot partition and named by both slots' loader entries, systemd-boot's
# arm64 loader where U-Boot's distro boot looks, the board's console.
#
#   image/test-board.sh NAME     (builds target/image/ketang-headless-NAME.img when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BOARD=${1:?usage: image/test-board.sh NAME (a profile in image/boards/)}
IMG=target/image/ketang-headless-$BOARD.img
log() { printf '==> board test (%s): %s\n' "$BOARD" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
[ -s "$IMG" ] || image/build.sh --board "$BOARD" --debug --no-compress
. "image/boards/$BOARD.conf"
export MTOOLS_SKIP_CHECK=1
ESP="$IMG@@${FIRST_PARTITION_MIB}M"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

first=$(sfdisk -d "$IMG" | awk -F'[=,]' '/name="esp"/ { gsub(/ /, "", $2); print $2 }')
[ "$first" = $((FIRST_PARTITION_MIB * 2048)) ] || fail "the boot partition starts at sector $first, not at $FIRST_PARTITION_MIB MiB"
log "the boot partition starts at $FIRST_PARTITION_MIB MiB"

if [ -n "${UBOOT_PACKAGE:-}" ]; then
  deb=$(ls -t "target/image/cache/apt-arm64/archives/${UBOOT_PACKAGE}"_*_arm64.deb | head -n 1)
  dpkg-deb -x "$deb" "$WORK/uboot"
  for part in "idbloader.img:$IDBLOADER_SECTOR" "u-boot.itb:$UBOOT_SECTOR"; do
    f=$WORK/uboot/usr/lib/u-boot/$UBOOT_DIR/${part%%:*}; at=${part##*:}
    size=$(stat -c %s "$f")
    dd if="$IMG" bs=512 skip="$at" count=$(( (size + 511) / 512 )) status=none | head -c "$size" | cmp -s - "$f" \
      || fail "${part%%:*} from $(basename "$deb") is not at sector $at"
    log "${part%%:*} ($size bytes, $(basename "$deb")) at sector $at"
  done
fi

mdir -b -i "$ESP" ::/EFI/BOOT | grep -q 'BOOTAA64.EFI' || fail "no EFI/BOOT/BOOTAA64.EFI for U-Boot's distro boot"
dtb=$(basename "$DTB")
mdir -b -i "$ESP" ::/dtb | grep -q "$dtb" || fail "no dtb/$dtb on the boot partition"
for slot in a b; do
  mtype -i "$ESP" "::/loader/entries/$slot.conf" > "$WORK/$slot.conf"
  grep -qx "devicetree /dtb/$dtb" "$WORK/$slot.conf" || fail "slot $slot's loader entry does not load $dtb"
  grep -q "options .*$CONSOLE" "$WORK/$slot.conf" || fail "slot $slot's loader entry lacks the console '$CONSOLE'"
done
log "BOOTAA64.EFI, dtb/$dtb, both loader entries with the tree and '$CONSOLE'"
log "passed"
