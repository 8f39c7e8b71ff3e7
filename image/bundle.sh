#!/usr/bin/env bash
# Makes a signed RAUC update bundle from the root file system of the last image/build.sh
# (target/image/ketang-<variant>-<arch>.rootfs.ext4), for `rauc install` on a board
# (docs/technician.md, "Updates").
#
#   image/bundle.sh [--arch amd64|arm64] [--variant headless|kiosk] [--broken] [--out FILE]
#
#   --arch     the image's architecture (default amd64): the bundle is compatible only
#              with boards of that architecture (ketang-amd64, ketang-arm64)
#
#   --broken   a bundle whose ketangd cannot start (for the rollback test)
# Signing keys: KETANG_UPDATE_KEYS=DIR with ca.pem, signer.pem, signer.key; default
# target/image/keys (development keys made by image/build.sh; never ship those).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VARIANT=headless
ARCH=amd64
BROKEN=0
OUT=
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) VARIANT=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --broken) BROKEN=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "image/bundle.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
KEYS=${KETANG_UPDATE_KEYS:-$ROOT/target/image/keys}
case "$ARCH" in amd64|arm64) ;; *) echo "image/bundle.sh: --arch amd64 or arm64" >&2; exit 2 ;; esac
ROOTFS=$ROOT/target/image/ketang-$VARIANT-$ARCH.rootfs.ext4
[ -s "$ROOTFS" ] || { echo "image/bundle.sh: no $ROOTFS: run image/build.sh first" >&2; exit 1; }
for t in rauc mksquashfs debugfs; do
  command -v "$t" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rauc squashfs-tools e2fsprogs >/dev/null
done
VERSION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev)
[ "$BROKEN" = 1 ] && VERSION=$VERSION-broken
OUT=${OUT:-$ROOT/target/image/ketang-$VARIANT-$ARCH-$VERSION.raucb}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/bundle"
cp --sparse=always "$ROOTFS" "$WORK/bundle/rootfs.ext4"
if [ "$BROKEN" = 1 ]; then
  # A daemon that exits at once: the updated slot never becomes healthy.
  printf '#!/bin/sh\necho "ketangd: broken build for the rollback test" >&2\nexit 1\n' > "$WORK/broken"
  debugfs -w -R "rm /usr/bin/ketangd" "$WORK/bundle/rootfs.ext4" >/dev/null 2>&1
  debugfs -w -R "write $WORK/broken /usr/bin/ketangd" "$WORK/bundle/rootfs.ext4" >/dev/null 2>&1
  debugfs -w -R "sif /usr/bin/ketangd mode 0100755" "$WORK/bundle/rootfs.ext4" >/dev/null 2>&1
fi
cat > "$WORK/bundle/manifest.raucm" <<MAN
[update]
compatible=ketang-$ARCH
version=$VERSION
description=Ketang $VARIANT root file system

[bundle]
format=plain

[image.rootfs]
filename=rootfs.ext4
MAN
rm -f "$OUT"
# zstd: about as small as the default gzip, several times faster to make and to install.
rauc bundle --cert "$KEYS/signer.pem" --key "$KEYS/signer.key" --keyring "$KEYS/ca.pem" \
  --mksquashfs-args="-comp zstd -Xcompression-level 6" "$WORK/bundle" "$OUT" >&2
echo "$OUT"
