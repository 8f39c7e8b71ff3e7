#!/usr/bin/env bash
# The units' hardening, measured by systemd's own tool (`systemd-analyze security
# --offline=true`, 0 = fully locked down, 10 = nothing): each must stay at or below its
# ceiling. What is left and why: docs/technician.md, "Hardening".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
fail=0
check() { # check UNIT-FILE CEILING
  local score
  score=$(systemd-analyze security --offline=true "$1" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$score" ] || { echo "hardening: no score for $1" >&2; fail=1; return; }
  if awk -v s="$score" -v c="$2" 'BEGIN { exit !(s <= c) }'; then
    printf '==> hardening: %-28s %s (ceiling %s)\n' "$(basename "$1")" "$score" "$2" >&2
  else
    printf 'hardening: %s scores %s, above its ceiling %s\n' "$(basename "$1")" "$score" "$2" >&2
    fail=1
  fi
}
# Every unit can be enabled (a lost [Install] section left the USB installer never started).
for u in "$ROOT"/image/ketangd.service "$ROOT"/image/rootfs/*.service "$ROOT"/image/rootfs/*.path; do
  grep -q '^WantedBy=' "$u" || grep -q '^# No \[Install\]: started by [a-z-]*\.path only\.$' "$u" || { echo "hardening: $(basename "$u") has no [Install] WantedBy=" >&2; fail=1; }
done
check "$ROOT/image/ketangd.service" 2.0
check "$ROOT/image/rootfs/ketang-health.service" 2.5
check "$ROOT/image/rootfs/ketang-firstboot.service" 2.0
check "$ROOT/image/rootfs/ketang-update.service" 7.5
check "$ROOT/image/rootfs/ketang-wifi.service" 3.0
check "$ROOT/image/rootfs/ketang-wifi-reload.service" 1.5
exit $fail
