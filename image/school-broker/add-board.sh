#!/usr/bin/env bash
# Adds a board to the school broker made by setup.sh: a random password for DEVICE_ID in
# DIR/passwd, and prints the board's credentials file (school_link.credentials_file,
# mode 0600 on the board). Reload the broker afterwards (kill -HUP, or restart it).
#
#   image/school-broker/add-board.sh DIR DEVICE_ID > school-link-credentials.toml
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
dir=$1 device=$2
[[ "$device" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || { echo "add-board.sh: device id $device is not 1-64 of A-Z a-z 0-9 - _ ." >&2; exit 2; }
[ -f "$dir/passwd" ] || { echo "add-board.sh: $dir/passwd is missing; run setup.sh first" >&2; exit 2; }
password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
mosquitto_passwd -b "$dir/passwd" "$device" "$password"
# Mosquitto started as root drops to its own user: it must be able to read and write here.
if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then chown -R mosquitto: "$dir"; fi
printf 'username = "%s"\npassword = "%s"\n' "$device" "$password"
