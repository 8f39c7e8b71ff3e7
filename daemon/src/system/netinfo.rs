//! The board's network as technicians see it on `/status` and `/tech` (`system.network`):
//! each interface (wired or Wi-Fi, its state, a Wi-Fi link's signal) from sysfs and
//! `/proc/net/wireless`, and the Wi-Fi network the provisioning file asked for (from the
//! daemon's own `wifi.conf`, `wifi.rs`: its name and security, never its key).

use std::path::Path;

use ketang_web::{NetInterface, NetworkInfo, WifiInfo};

/// Reads the interfaces under `sys_net` (`/sys/class/net`), the signal levels in
/// `proc_wireless` (`/proc/net/wireless`) and the configured Wi-Fi in `wifi_conf`.
pub(crate) fn read(sys_net: &Path, proc_wireless: &Path, wifi_conf: Option<&Path>) -> NetworkInfo {
    let levels = std::fs::read_to_string(proc_wireless).unwrap_or_default();
    let mut interfaces: Vec<NetInterface> = std::fs::read_dir(sys_net)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let dir = e.path();
            let wifi = dir.join("wireless").is_dir() || dir.join("phy80211").exists();
            let wired = !wifi
                && dir.join("device").exists()
                && std::fs::read_to_string(dir.join("type")).is_ok_and(|t| t.trim() == "1");
            if !(wifi || wired) {
                return None; // loopback, bridges, tunnels
            }
            let state = std::fs::read_to_string(dir.join("operstate"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned());
            Some(NetInterface {
                signal_dbm: if wifi { signal(&levels, &name) } else { None },
                kind: if wifi { "wifi" } else { "wired" }.to_owned(),
                name,
                state,
            })
        })
        .collect();
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    NetworkInfo {
        interfaces,
        wifi: wifi_conf
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| configured(&t)),
    }
}

/// A Wi-Fi link's level in dBm from `/proc/net/wireless`
/// (`wlan0: 0000   70.  -40.  -256 …`).
fn signal(levels: &str, name: &str) -> Option<i32> {
    levels.lines().find_map(|l| {
        let (iface, rest) = l.split_once(':')?;
        if iface.trim() != name {
            return None;
        }
        let level = rest.split_whitespace().nth(2)?.trim_end_matches('.');
        level.parse::<f64>().ok().map(|v| v as i32)
    })
}

/// The configured network from `wifi.conf`: its name (hex there) and security.
fn configured(text: &str) -> Option<WifiInfo> {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
    };
    let hex = field("ssid")?;
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    Some(WifiInfo {
        ssid: String::from_utf8_lossy(&bytes?).into_owned(),
        security: field("security")?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn interfaces_their_state_the_signal_and_the_configured_network_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net");
        let mk = |name: &str, files: &[(&str, &str)], dirs: &[&str]| {
            let d = net.join(name);
            std::fs::create_dir_all(&d).unwrap();
            for (f, t) in files {
                std::fs::write(d.join(f), t).unwrap();
            }
            for s in dirs {
                std::fs::create_dir_all(d.join(s)).unwrap();
            }
        };
        mk("lo", &[("type", "772\n"), ("operstate", "unknown\n")], &[]);
        mk(
            "enp1s0",
            &[("type", "1\n"), ("operstate", "down\n")],
            &["device"],
        );
        mk(
            "wlan0",
            &[("type", "1\n"), ("operstate", "up\n")],
            &["device", "wireless"],
        );
        mk("docker0", &[("type", "1\n"), ("operstate", "up\n")], &[]);
        let wireless = dir.path().join("wireless");
        std::fs::write(
            &wireless,
            "Inter-| sta-|   Quality        |   Discarded packets\n face | tus | link level noise |  nwid  crypt\n wlan0: 0000   58.  -52.  -256        0      0\n",
        )
        .unwrap();
        let conf = dir.path().join("wifi.conf");
        std::fs::write(
            &conf,
            "security=wpa2-enterprise\nssid=e6a0a1e59bad\ncountry=CN\neap=peap\npassword=7077\n",
        )
        .unwrap();
        let n = read(&net, &wireless, Some(&conf));
        let got: Vec<_> = n
            .interfaces
            .iter()
            .map(|i| {
                (
                    i.name.as_str(),
                    i.kind.as_str(),
                    i.state.as_str(),
                    i.signal_dbm,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("enp1s0", "wired", "down", None),
                ("wlan0", "wifi", "up", Some(-52))
            ]
        );
        let w = n.wifi.unwrap();
        assert_eq!(
            (w.ssid.as_str(), w.security.as_str()),
            ("校园", "wpa2-enterprise")
        );
        // No wifi.conf: no configured network; a garbled one likewise.
        assert!(read(&net, &wireless, None).wifi.is_none());
        std::fs::write(&conf, "ssid=zz\nsecurity=wpa2-personal\n").unwrap();
        assert!(read(&net, &wireless, Some(&conf)).wifi.is_none());
    }
}
