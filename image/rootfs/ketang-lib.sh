# Shared by the root scripts ketang-update, ketang-health and ketang-firstboot
# (/usr/lib/ketang/lib.sh). The daemon runs as the unprivileged user ketang and owns its
# data directory; these scripts run as root. The rule (docs/privacy.md, "Threat model"):
# root never writes, chowns or deletes through a path the daemon controls.
#   * What the daemon hands over (the update spool, its config directory) is read, written
#     and removed with the daemon's own rights (as_daemon): a link it planted reaches
#     nothing the daemon could not reach itself.
#   * Root's own state lives where the daemon cannot write: the ESP (root only) and
#     /run/ketang-update (root-owned; the daemon reads the installer's state there).
# The KETANG_* variables exist for image/test-root-scripts.sh; on a board they are unset.
DATA=${KETANG_DATA:-/var/lib/ketang}
SPOOL=$DATA/update
ESP_ROOT=${KETANG_ESP_ROOT:-/boot/efi}
ESP_DIR=$ESP_ROOT/ketang
RUN_DIR=${KETANG_RUN:-/run/ketang-update}
ESP_STATE=$ESP_DIR/update.state
KETANGD=${KETANGD:-/usr/bin/ketangd}

# as_daemon CMD...: runs CMD as the daemon's user.
as_daemon() {
  # shellcheck disable=SC2086 # the variable is a command prefix
  ${KETANG_AS_DAEMON:-setpriv --reuid=ketang --regid=ketang --init-groups --} "$@"
}

# restore_state: the installer's latest step (kept on the ESP across reboots and slots)
# becomes /run/ketang-update/state, which the daemon shows and sends on `update`.
restore_state() {
  [ -f "$ESP_STATE" ] || return 0
  mkdir -p "$RUN_DIR" && chmod 0755 "$RUN_DIR" \
    && cp "$ESP_STATE" "$RUN_DIR/state.tmp" && chmod 0644 "$RUN_DIR/state.tmp" \
    && mv -f "$RUN_DIR/state.tmp" "$RUN_DIR/state"
}

# publish_state < STEP: records an installer step (key=value lines) on the ESP and for the
# daemon, replacing the previous one atomically.
publish_state() {
  mkdir -p "$ESP_DIR" && cat > "$ESP_STATE.tmp" && mv -f "$ESP_STATE.tmp" "$ESP_STATE" \
    && restore_state
  sync
}
