# Sourced (bash) by scripts/test-arm64 and image/build.sh --arch arm64: what building and
# running arm64 code on an x86 machine needs (docs/arm64.md).
#
#   arm64_env     installs what is missing (as root, apt-get): Debian's cross toolchain,
#                 qemu-user with binfmt, Rust's aarch64 standard library; then exports the
#                 linker, the C compiler and the dynamic loader's prefix for qemu-user.
#                 Fails naming what is missing when it cannot be installed.

ARM64_TARGET=aarch64-unknown-linux-gnu

arm64_log() { printf '==> arm64: %s\n' "$*" >&2; }

arm64_apt() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    arm64_log "missing Debian packages $*: install them and rerun"
    return 1
  fi
  arm64_log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  }
}

arm64_env() {
  local missing=()
  command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing+=(libc6-dev-arm64-cross)
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  [ "${#missing[@]}" -eq 0 ] || arm64_apt "${missing[@]}" || return 1

  # binfmt: the kernel runs aarch64 programs through qemu-user (tests start ketangd and
  # mmdebstrap runs the packages' scripts). The F flag keeps it working inside chroots.
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || {
      arm64_log "binfmt_misc is not mounted and cannot be (needs root): aarch64 programs cannot run here"
      return 1
    }
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || {
      arm64_log "could not register qemu-aarch64 with binfmt_misc (update-binfmts --enable qemu-aarch64)"
      return 1
    }
  fi

  if ! rustup target list --installed 2>/dev/null | grep -qx "$ARM64_TARGET"; then
    arm64_log "adding Rust's standard library for $ARM64_TARGET (rustup target add)"
    rustup target add "$ARM64_TARGET" >&2 || {
      arm64_log "Rust's standard library for $ARM64_TARGET is not installed and rustup could not fetch it: run 'rustup target add $ARM64_TARGET' where the network allows"
      return 1
    }
  fi

  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  # qemu-user finds the aarch64 dynamic loader and libc here (also for programs the tests start).
  export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
}
