#!/usr/bin/env bash
# Level 2 of the hardware tests: the daemon's Linux glue against real kernel devices, in a
# QEMU VM (TCG; no KVM needed). The VM runs Debian's own kernel with:
#   * gpio-sim (not built in any Debian kernel: compiled here out of tree from Debian's
#     linux-source, as ../shared/FACTS.md describes) for the button, siren and PIR lines;
#   * uinput (and the evdev module) for a virtual USB keyboard-wedge card reader;
#   * vivid (the kernel's virtual V4L2 camera) for the classroom camera, with the models;
#   * snd-aloop (the kernel's loopback sound card) for the classroom microphone;
# and runs `ketang-virtual` (hw-tests/src/bin/ketang-virtual.rs), which starts the real
# `ketangd run` against them and checks what the status page and the lines show.
#
#   hw-tests/virtual/run.sh          build what is missing, boot, check (about 1-2 min)
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
for p in qemu-system-x86 busybox-static cpio xz-utils make alsa-utils "linux-headers-$KVER"; do need_pkg "$p"; done

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
(cd "$ROOT" && cargo build -q -p ketang-daemon --bin ketangd -p ketang-hw-tests --bin ketang-virtual)

log "packing the initramfs"
rm -rf initrd initrd.img; mkdir -p initrd/{bin,mods,lib64,lib/x86_64-linux-gnu,etc}
cp /bin/busybox initrd/bin/busybox
for b in "$ROOT/target/debug/ketangd" "$ROOT/target/debug/ketang-virtual" /usr/bin/arecord /usr/bin/aplay; do
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
/bin/ketang-virtual /bin/ketangd
echo "KETANG-L2 EXIT $?"
poweroff -f
INIT
chmod +x initrd/init
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
log "passed: ${done_line#KETANG-L2 DONE }"
