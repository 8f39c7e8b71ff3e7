#!/bin/sh
# Wi-Fi in the level-2 VM (run by its /init; hw-tests/virtual/run.sh prepares /wifi):
# mac80211_hwsim gives two radios; the access point (hostapd, with its internal EAP server
# as the school's RADIUS server) runs on the first in a network namespace of its own, with
# a DHCP server behind it; the board's side is the real path: `ketangd provision` with a
# provisioning file's [wifi], then the image's own root script `ketang-wifi`, which writes
# wpa_supplicant's configuration and runs it on the second radio. Each network must
# associate, authenticate as named, get an address by DHCP and reach the access point;
# a wrong passphrase, a RADIUS server of another CA and one of the right CA under another
# name must not get in.
# Prints KETANG-L2 WIFI lines; KETANG-L2 FAIL on a failure.
W=/wifi
CTRL=/run/ketang-wifi/ctrl
fail() {
  echo "KETANG-L2 FAIL wifi $*"
  for f in /tmp/ap.log /tmp/board.log /tmp/udhcpc.log /tmp/udhcpd.log; do echo "--- $f"; tail -n 25 "$f" 2>/dev/null; done
  ifconfig wlan1 2>&1 | head -n 3
  exit 1
}

for m in $(cat $W/mods/order); do
  if [ "$m" = mac80211_hwsim ]; then insmod "$W/mods/$m.ko" radios=2; else insmod "$W/mods/$m.ko"; fi \
    || fail "insmod $m"
done
n=0; while [ ! -d /sys/class/net/wlan1 ]; do n=$((n + 1)); [ $n -lt 20 ] || fail "no wlan1 after loading mac80211_hwsim"; sleep 1; done

# The access point's side: its own network namespace (a process that holds it), the first
# radio moved into it, an address and a DHCP server there.
unshare -n sleep 100000 &
NS=$!
sleep 1
ap_phy=$(basename "$(readlink -f /sys/class/net/wlan0/phy80211)")
iw phy "$ap_phy" set netns "$NS" || fail "moving $ap_phy into the access point's namespace"
ap() { nsenter -t "$NS" -n "$@"; }
ap ifconfig lo 127.0.0.1 up
ap ifconfig wlan0 10.9.0.1 netmask 255.255.255.0 up || fail "the access point's address"
printf 'start 10.9.0.100\nend 10.9.0.120\ninterface wlan0\nlease_file /tmp/udhcpd.leases\n' > /tmp/udhcpd.conf
: > /tmp/udhcpd.leases
nsenter -t "$NS" -n udhcpd -f /tmp/udhcpd.conf > /tmp/udhcpd.log 2>&1 &
DHCPD=$!
printf '#!/bin/sh\ncase "$1" in bound|renew) ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up ;; esac\n' \
  > /tmp/udhcpc.script
chmod +x /tmp/udhcpc.script

AP=; BOARD=
stop() { # both ended, not just asked to (a second hostapd on a radio still held fails)
  [ -n "$BOARD" ] && { kill "$BOARD" 2>/dev/null; wait "$BOARD" 2>/dev/null; }
  [ -n "$AP" ] && { kill "$AP" 2>/dev/null; wait "$AP" 2>/dev/null; }
  BOARD=; AP=
  ifconfig wlan1 0.0.0.0 2>/dev/null
}
# state FIELD: a field of wpa_supplicant's status on the board.
state() { wpa_cli -p "$CTRL" -i wlan1 status 2>/dev/null | sed -n "s/^$1=//p"; }
# start AP-CONF BOARD-PROVISIONING: the access point, then the board provisioned and
# ketang-wifi started, as on a board.
start() {
  stop
  # (Not through ap(): a function in the background is a subshell, and $! would be it.)
  nsenter -t "$NS" -n hostapd "$W/ap/$1.conf" > /tmp/ap.log 2>&1 &
  AP=$!
  rm -rf /tmp/board; mkdir -p /tmp/board
  # (A copy: provisioning removes the file it applied, as it does on a board.)
  cp "$W/boards/$2.toml" /tmp/board/provision.toml
  ketangd provision /tmp/board/provision.toml --etc /tmp/board/config --data-dir /tmp/board > /tmp/provision.log 2>&1 \
    || { cat /tmp/provision.log; fail "$1: ketangd provision refused $2.toml"; }
  KETANG_LIB=$W/lib.sh KETANG_DATA=/tmp/board KETANG_AS_DAEMON=env KETANG_WIFI_IFACE=wlan1 \
    sh "$W/ketang-wifi" > /tmp/board.log 2>&1 &
  BOARD=$!
}
passed=0
# connects CASE AP BOARD KEY_MGMT [EAP-METHOD]: the board gets in, as named.
connects() {
  start "$2" "$3"
  t=0
  until [ "$(state wpa_state)" = COMPLETED ]; do
    t=$((t + 1)); [ $t -le 90 ] || fail "$1: not connected within 90 s (wpa_state=$(state wpa_state))"
    sleep 1
  done
  km=$(state key_mgmt)
  [ "$km" = "$4" ] || fail "$1: key_mgmt is $km, not $4"
  if [ -n "${5:-}" ]; then
    [ "$(state 'EAP state')" = SUCCESS ] || fail "$1: 802.1X did not succeed"
    wpa_cli -p "$CTRL" -i wlan1 status | grep -q "^selectedMethod=.*($5)" || fail "$1: the method was not $5"
  fi
  udhcpc -i wlan1 -s /tmp/udhcpc.script -n -q -t 10 -T 2 > /tmp/udhcpc.log 2>&1 || fail "$1: no address by DHCP over Wi-Fi"
  ip=$(ifconfig wlan1 | sed -n 's/.*inet addr:\([0-9.]*\).*/\1/p')
  ping -c 2 -W 5 10.9.0.1 > /dev/null 2>&1 || fail "$1: the access point does not answer over Wi-Fi"
  grep -q 'ketang-wifi: wpa_supplicant on wlan1' /tmp/board.log || fail "$1: ketang-wifi did not start wpa_supplicant"
  passed=$((passed + 1))
  echo "KETANG-L2 WIFI $1: connected ($km${5:+, $5}), $ip by DHCP, the access point answers"
}
# refused CASE AP BOARD LOG-PATTERN: the board does not get in, and says why.
refused() {
  start "$2" "$3"
  t=0
  while [ $t -lt 25 ]; do
    [ "$(state wpa_state)" = COMPLETED ] && fail "$1: the board connected"
    grep -q "$4" /tmp/board.log && break
    t=$((t + 1)); sleep 1
  done
  grep -q "$4" /tmp/board.log || fail "$1: no \"$4\" from wpa_supplicant within 25 s"
  [ "$(state wpa_state)" = COMPLETED ] && fail "$1: the board connected"
  passed=$((passed + 1))
  echo "KETANG-L2 WIFI $1: refused: $(grep -m 1 "$4" /tmp/board.log | cut -c 1-160)"
}

connects "WPA2-Personal" psk psk WPA2-PSK
connects "WPA3-Personal (SAE)" sae sae SAE
connects "WPA2/WPA3 transition, the board takes SAE" mixed mixed SAE
connects "WPA2-Enterprise PEAP/MSCHAPv2" peap peap "WPA2/IEEE 802.1X/EAP" EAP-PEAP
connects "WPA2-Enterprise EAP-TLS" tls tls "WPA2/IEEE 802.1X/EAP" EAP-TLS
refused "a wrong passphrase" psk-other psk "WRONG_KEY\|4-Way Handshake failed\|pre-shared key may be incorrect"
refused "a RADIUS server of another CA" peap-rogue-ca peap "CTRL-EVENT-EAP-TLS-CERT-ERROR.*local issuer"
refused "the school's CA, another server name" peap-wrong-name peap "CTRL-EVENT-EAP-TLS-CERT-ERROR.*Domain suffix mismatch"
stop
kill "$DHCPD" "$NS" 2>/dev/null
echo "KETANG-L2 WIFI PASSED $passed/8"
