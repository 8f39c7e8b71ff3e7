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
