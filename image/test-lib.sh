# Shared by image/test-boot.sh and image/test-update.sh (sourced, bash).

# provision_disk DISK WORK: puts a provisioning file (kt-qemu-0001, technician password
# $TECH_PASSWORD, then $PROVISION_EXTRA: more keys or tables) onto DISK's boot partition,
# as a technician would.
TECH_PASSWORD='qemu-技术员-password'
provision_disk() {
  cargo build -q -p ketang-daemon --bin ketangd
  local hash
  hash=$(printf '%s\n' "$TECH_PASSWORD" | target/debug/ketangd hash-password)
  cat > "$2/ketang-provision.toml" <<EOT
school_id = "hf-0042"
classroom_id = "g7-c3"
device_id = "kt-qemu-0001"
class_name = "七年级(3)班"
technician_password_hash = "$hash"
http_listen = "0.0.0.0:8080"
${PROVISION_EXTRA:-}
EOT
  MTOOLS_SKIP_CHECK=1 mcopy -i "$1@@1M" "$2/ketang-provision.toml" ::/ketang/ketang-provision.toml
}

# json_field PYTHON-SUBSCRIPT: a field of the JSON on stdin, e.g. "['system']['slot']".
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

# The machine QEMU emulates for the image's architecture, $ARCH (amd64: q35 with OVMF,
# arm64: virt with AAVMF, both UEFI), into the array QEMU; the firmware's variables are
# copied to $WORK/vars.fd. SLOW multiplies the tests' time limits (arm64 under TCG boots
# about twice as slowly; docs/arm64.md).
ARCH=${ARCH:-amd64}
SLOW=1
qemu_machine() {
  case "$ARCH" in
    amd64)
      command -v qemu-system-x86_64 >/dev/null && [ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 ovmf >/dev/null
      cp /usr/share/OVMF/OVMF_VARS_4M.fd "$WORK/vars.fd"
      # -cpu max: the emulated default CPU has no AES instructions (TLS would crawl).
      QEMU=(qemu-system-x86_64 -machine q35 -cpu max
        -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd) ;;
    arm64)
      command -v qemu-system-aarch64 >/dev/null && [ -f /usr/share/AAVMF/AAVMF_CODE.fd ] \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm qemu-efi-aarch64 >/dev/null
      cp /usr/share/AAVMF/AAVMF_VARS.fd "$WORK/vars.fd"
      # -cpu max has the ARMv8 crypto extensions (AES for TLS); pauth-impdef: QEMU's cheap
      # pointer authentication instead of the architected one, far faster under TCG.
      QEMU=(qemu-system-aarch64 -machine virt -cpu max,pauth-impdef=on
        -drive if=pflash,format=raw,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd)
      SLOW=2 ;;
    *) echo "ARCH must be amd64 or arm64, not $ARCH" >&2; exit 2 ;;
  esac
  QEMU+=(-m 1536 -smp 2 -nographic -no-reboot -drive if=pflash,format=raw,file="$WORK/vars.fd")
}
