# Shared by image/test-boot.sh and image/test-update.sh (sourced, bash; they define `fail`
# and `status`, the board's /api/v1/status).

# provision_disk DISK WORK: puts a provisioning file (kt-qemu-0001, technician password
# $TECH_PASSWORD, then $PROVISION_EXTRA: more keys or tables) onto DISK's boot partition,
# as a technician would.
TECH_PASSWORD='qemu-技术员-password'
provision_disk() {
  [ "${KETANG_PREBUILT:-0}" = 1 ] || cargo build -q -p ketang-daemon --bin ketangd
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

# The provisioning both tests give the board ($PROVISION_EXTRA): a static address (QEMU's
# user network would give DHCP 10.0.2.15; the tests forward their port to 10.0.2.77 only,
# so the board answers only if the static address was applied) and the school's time server.
STATIC_PROVISION='ntp_servers = ["10.0.2.2"]
[network]
address = "10.0.2.77/24"
gateway = "10.0.2.2"
dns = ["10.0.2.3"]'

# check_first_boot CONSOLE DISK: the first boot's console shows the provisioning file
# applied (static address, time server; Wi-Fi as $WIFI_EXPECT says, by default none asked
# for) and the file is gone from the boot partition.
check_first_boot() {
  grep -aq 'ketang-firstboot: provisioned from /boot/efi/ketang/ketang-provision.toml' "$1" \
    || fail "the console does not show the first-boot provisioning"
  grep -aq 'ketang-firstboot: static address 10.0.2.77/24 from provisioning' "$1" \
    || fail "the console does not show the static address"
  grep -aq 'ketang-firstboot: 1 time server(s) from provisioning' "$1" \
    || fail "the console does not show the school's time server"
  grep -aq "ketang-wifi: ${WIFI_EXPECT:-no Wi-Fi in the provisioning file; wired only}" "$1" \
    || fail "ketang-wifi.service did not say \"${WIFI_EXPECT:-no Wi-Fi in the provisioning file; wired only}\""
  if MTOOLS_SKIP_CHECK=1 mdir -b -i "$2@@1M" ::/ketang 2>/dev/null | grep -q ketang-provision.toml; then
    fail "the provisioning file is still on the boot partition"
  fi
}

# check_provisioned SLOT MIN-FREE-MIB: the status shows the provisioned identity, the
# technician password set, SLOT, this image's build and architecture, and a data partition
# grown into the disk (at least MIN-FREE-MIB free).
check_provisioned() {
  [ "$(status | json_field "['device']['school_id']")" = hf-0042 ] || fail "the provisioned school id is not in the status"
  [ "$(status | json_field "['device']['device_id']")" = kt-qemu-0001 ] || fail "the provisioned device id is not in the status"
  [ "$(curl -sf "http://127.0.0.1:$PORT/api/v1/tech/provision" | json_field "['provisioned']")" = True ] \
    || fail "the technician password from the provisioning file is not set"
  [ "$(status | json_field "['system']['slot']")" = "$1" ] || fail "the status does not say the board runs slot $1"
  status | json_field "['system']['image']" | grep -q '^headless ' || fail "the status does not name the image build"
  status | json_field "['system']['image']" | grep -q "$ARCH" || fail "the status does not name the image's architecture ($ARCH)"
  local free
  free=$(status | json_field "['system']['data_free_mb']")
  [ "$free" -gt "$2" ] || fail "the data partition did not grow into the disk's free space (${free} MiB free)"
}
