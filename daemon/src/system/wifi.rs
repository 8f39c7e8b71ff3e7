//! Wi-Fi for school networks (docs/technician.md, "Wi-Fi"): the provisioning file's
//! `[wifi]` table, checked, becomes `wifi.conf` beside the config (mode 0600: it holds the
//! key) and its certificates under `wifi/`. The image's root script `ketang-wifi` turns that
//! into wpa_supplicant's configuration.
//!
//! Every string value is written as hex digits and every other value is one word of a fixed
//! set, so the root script can keep exactly the lines it knows and no value can carry a
//! directive of its own into wpa_supplicant's file (which can load code: `opensc_engine_path`).
//! WPA2's passphrase is written as the 256-bit key it stands for (IEEE 802.11i PBKDF2), not
//! as the passphrase.

use std::fmt::Write as _;

use serde::Deserialize;

/// How the network is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Security {
    /// WPA2-Personal (a passphrase; PSK).
    Wpa2Personal,
    /// WPA3-Personal (SAE, management frames protected).
    Wpa3Personal,
    /// An access point in WPA3 transition mode: SAE where the board can, else PSK.
    Wpa2Wpa3Personal,
    /// WPA2-Enterprise: 802.1X with the school's RADIUS server.
    Wpa2Enterprise,
}

impl Security {
    fn as_str(self) -> &'static str {
        match self {
            Self::Wpa2Personal => "wpa2-personal",
            Self::Wpa3Personal => "wpa3-personal",
            Self::Wpa2Wpa3Personal => "wpa2-wpa3-personal",
            Self::Wpa2Enterprise => "wpa2-enterprise",
        }
    }
}

/// The 802.1X method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Eap {
    /// PEAP with MSCHAPv2 inside (an account and password).
    Peap,
    /// EAP-TLS (a client certificate).
    Tls,
}

/// The provisioning file's `[wifi]` table.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct Wifi {
    ssid: String,
    security: Security,
    #[serde(default)]
    passphrase: Option<String>,
    #[serde(default)]
    eap: Option<Eap>,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    anonymous_identity: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    ca_pem: Option<String>,
    #[serde(default)]
    server_domain: Option<String>,
    #[serde(default)]
    client_cert_pem: Option<String>,
    #[serde(default)]
    client_key_pem: Option<String>,
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    country: Option<String>,
}

/// The regulatory domain when the file names none: the boards are in China.
const DEFAULT_COUNTRY: &str = "CN";

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// WPA2's pre-shared key for `passphrase` on `ssid` (IEEE 802.11i-2004, H.4:
/// PBKDF2-HMAC-SHA1, 4096 rounds, 256 bits).
pub(crate) fn wpa_psk(passphrase: &str, ssid: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(passphrase.as_bytes(), ssid.as_bytes(), 4096, &mut key);
    key
}

fn is_hex_psk(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Wifi {
    fn personal(&self) -> bool {
        self.security != Security::Wpa2Enterprise
    }

    /// Every problem, named by its key (`wifi.…`); values are never quoted back.
    pub(crate) fn problems(&self, out: &mut Vec<String>) {
        if self.ssid.is_empty() || self.ssid.len() > 32 {
            out.push(format!(
                "wifi.ssid: {} bytes; a network name has 1 to 32",
                self.ssid.len()
            ));
        }
        if let Some(c) = &self.country
            && !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            out.push("wifi.country: not a two-letter country code (e.g. CN)".to_owned());
        }
        let mut not_here = |key: &str, present: bool, why: &str| {
            if present {
                out.push(format!("wifi.{key}: {why}"));
            }
        };
        if self.personal() {
            let why = "only for wpa2-enterprise";
            not_here("eap", self.eap.is_some(), why);
            not_here("identity", self.identity.is_some(), why);
            not_here("anonymous_identity", self.anonymous_identity.is_some(), why);
            not_here("password", self.password.is_some(), why);
            not_here("ca_pem", self.ca_pem.is_some(), why);
            not_here("server_domain", self.server_domain.is_some(), why);
            not_here("client_cert_pem", self.client_cert_pem.is_some(), why);
            not_here("client_key_pem", self.client_key_pem.is_some(), why);
            match &self.passphrase {
                None => out.push(format!(
                    "wifi.passphrase: needed for {}",
                    self.security.as_str()
                )),
                Some(p) if self.security == Security::Wpa2Personal && is_hex_psk(p) => {}
                Some(p) if self.security == Security::Wpa3Personal => {
                    // SAE takes any octets: 8 to 128 bytes of text here, no control characters.
                    if !(8..=128).contains(&p.len()) || p.chars().any(char::is_control) {
                        out.push(format!(
                            "wifi.passphrase: {} bytes; wpa3-personal takes 8 to 128 bytes of text without control characters",
                            p.len()
                        ));
                    }
                }
                Some(p) => {
                    // IEEE 802.11 (PSK, and a transition-mode network shares one passphrase):
                    // 8 to 63 printable ASCII characters.
                    if !(8..=63).contains(&p.len()) || !p.bytes().all(|b| (32..=126).contains(&b)) {
                        out.push(format!(
                            "wifi.passphrase: {} characters; {} takes 8 to 63 printable ASCII characters{}",
                            p.chars().count(),
                            self.security.as_str(),
                            if self.security == Security::Wpa2Personal {
                                " or the 64 hex digits of a key"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
            return;
        }
        not_here(
            "passphrase",
            self.passphrase.is_some(),
            "not for wpa2-enterprise (an account: identity and password, or a client certificate)",
        );
        let field_ok = |key: &str, v: &Option<String>, out: &mut Vec<String>| {
            if v.as_ref().is_some_and(|s| s.is_empty() || s.len() > 253) {
                out.push(format!("wifi.{key}: 1 to 253 bytes"));
            }
        };
        field_ok("identity", &self.identity, out);
        field_ok("anonymous_identity", &self.anonymous_identity, out);
        field_ok("server_domain", &self.server_domain, out);
        if self
            .password
            .as_ref()
            .is_some_and(|s| s.is_empty() || s.len() > 256)
        {
            out.push("wifi.password: 1 to 256 bytes".to_owned());
        }
        if self.identity.is_none() {
            out.push("wifi.identity: needed for wpa2-enterprise (the board's account)".to_owned());
        }
        // Without the RADIUS server's CA, any access point that names the SSID would be
        // handed the account: the board checks the server, always.
        match &self.ca_pem {
            None => out.push(
                "wifi.ca_pem: needed for wpa2-enterprise (the CA of the school's RADIUS server: without it the board could not tell the school's network from an impostor)".to_owned(),
            ),
            Some(p) if !p.contains("-----BEGIN ") => {
                out.push("wifi.ca_pem: not PEM text (-----BEGIN …)".to_owned());
            }
            Some(_) => {}
        }
        for (k, v) in [
            ("client_cert_pem", &self.client_cert_pem),
            ("client_key_pem", &self.client_key_pem),
        ] {
            if v.as_deref().is_some_and(|p| !p.contains("-----BEGIN ")) {
                out.push(format!("wifi.{k}: not PEM text (-----BEGIN …)"));
            }
        }
        match self.eap {
            None => {
                out.push("wifi.eap: needed for wpa2-enterprise: \"peap\" or \"tls\"".to_owned())
            }
            Some(Eap::Peap) => {
                if self.password.is_none() {
                    out.push("wifi.password: needed for eap = \"peap\"".to_owned());
                }
                if self.client_cert_pem.is_some() || self.client_key_pem.is_some() {
                    out.push(
                        "wifi.client_cert_pem, client_key_pem: only for eap = \"tls\"".to_owned(),
                    );
                }
            }
            Some(Eap::Tls) => {
                if self.client_cert_pem.is_none() || self.client_key_pem.is_none() {
                    out.push(
                        "wifi.client_cert_pem and client_key_pem: needed for eap = \"tls\""
                            .to_owned(),
                    );
                }
                if self.password.is_some() {
                    out.push("wifi.password: only for eap = \"peap\"".to_owned());
                }
            }
        }
    }

    /// `wifi.conf` (key=value lines: hex strings and fixed words) and the certificate files
    /// it needs, relative to the config's directory: (path, text, secret).
    pub(crate) fn render(&self) -> (String, Vec<(&'static str, String, bool)>) {
        let mut s = String::new();
        let _ = writeln!(s, "security={}", self.security.as_str());
        let _ = writeln!(s, "ssid={}", hex(self.ssid.as_bytes()));
        if self.hidden {
            s.push_str("hidden=1\n");
        }
        let _ = writeln!(
            s,
            "country={}",
            self.country.as_deref().unwrap_or(DEFAULT_COUNTRY)
        );
        let mut files = Vec::new();
        if let Some(p) = &self.passphrase {
            if matches!(
                self.security,
                Security::Wpa2Personal | Security::Wpa2Wpa3Personal
            ) {
                let psk = if is_hex_psk(p) {
                    p.to_ascii_lowercase()
                } else {
                    hex(&wpa_psk(p, &self.ssid))
                };
                let _ = writeln!(s, "psk={psk}");
            }
            if matches!(
                self.security,
                Security::Wpa3Personal | Security::Wpa2Wpa3Personal
            ) {
                let _ = writeln!(s, "sae_password={}", hex(p.as_bytes()));
            }
        }
        if let Some(e) = self.eap {
            let _ = writeln!(
                s,
                "eap={}",
                match e {
                    Eap::Peap => "peap",
                    Eap::Tls => "tls",
                }
            );
        }
        for (k, v) in [
            ("identity", &self.identity),
            ("anonymous_identity", &self.anonymous_identity),
            ("password", &self.password),
            ("domain_suffix_match", &self.server_domain),
        ] {
            if let Some(v) = v {
                let _ = writeln!(s, "{k}={}", hex(v.as_bytes()));
            }
        }
        if let Some(p) = &self.ca_pem {
            files.push(("wifi/ca.pem", p.clone(), false));
        }
        if let (Some(c), Some(k)) = (&self.client_cert_pem, &self.client_key_pem) {
            files.push(("wifi/client.pem", c.clone(), false));
            files.push(("wifi/client.key", k.clone(), true));
        }
        (s, files)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn wifi(toml_text: &str) -> Wifi {
        toml::from_str(toml_text).unwrap()
    }

    fn problems(w: &Wifi) -> Vec<String> {
        let mut v = Vec::new();
        w.problems(&mut v);
        v
    }

    #[test]
    fn the_wpa2_key_is_the_standards_test_vector() {
        // IEEE 802.11i-2004, H.4.2: "password" on the SSID "IEEE".
        assert_eq!(
            hex(&wpa_psk("password", "IEEE")),
            "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
        );
        assert_eq!(
            hex(&wpa_psk("ThisIsAPassword", "ThisIsASSID")),
            "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"
        );
    }

    #[test]
    fn personal_networks_become_hex_lines_and_never_the_passphrase_for_wpa2() {
        let w =
            wifi("ssid = \"校园网\"\nsecurity = \"wpa2-personal\"\npassphrase = \"password\"\n");
        assert!(problems(&w).is_empty());
        let (conf, files) = w.render();
        assert!(files.is_empty());
        assert_eq!(
            conf,
            format!(
                "security=wpa2-personal\nssid={}\ncountry=CN\npsk={}\n",
                hex("校园网".as_bytes()),
                hex(&wpa_psk("password", "校园网"))
            )
        );
        let w = wifi(
            "ssid = \"a\"\nsecurity = \"wpa2-wpa3-personal\"\npassphrase = \"p\\\"x} network={\"\nhidden = true\ncountry = \"HK\"\n",
        );
        assert!(problems(&w).is_empty(), "{:?}", problems(&w));
        let (conf, _) = w.render();
        assert!(conf.contains("hidden=1\ncountry=HK\n"), "{conf}");
        assert!(conf.contains(&format!("sae_password={}\n", hex(b"p\"x} network={"))));
        // Only hex digits and fixed words: nothing a value could smuggle.
        for line in conf.lines() {
            let (_, v) = line.split_once('=').unwrap();
            assert!(
                v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "{line}"
            );
        }
    }

    #[test]
    fn enterprise_needs_the_servers_ca_and_an_account_and_every_problem_is_named() {
        let w =
            wifi("ssid = \"EDU\"\nsecurity = \"wpa2-enterprise\"\npassphrase = \"secret-123\"\n");
        let p = problems(&w);
        for want in [
            "wifi.passphrase: not for wpa2-enterprise",
            "wifi.identity: needed",
            "wifi.ca_pem: needed",
            "wifi.eap: needed",
        ] {
            assert!(p.iter().any(|x| x.starts_with(want)), "{want} in {p:?}");
        }
        assert!(!p.iter().any(|x| x.contains("secret-123")), "{p:?}");
        let w = wifi(
            "ssid = \"EDU\"\nsecurity = \"wpa2-enterprise\"\neap = \"tls\"\nidentity = \"kt-0001\"\nca_pem = \"-----BEGIN CERTIFICATE-----\"\npassword = \"x\"\n",
        );
        let p = problems(&w);
        assert!(
            p.iter()
                .any(|x| x.starts_with("wifi.client_cert_pem and client_key_pem: needed")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.starts_with("wifi.password: only for eap = \"peap\"")),
            "{p:?}"
        );
        let w = wifi(
            "ssid = \"EDU\"\nsecurity = \"wpa2-enterprise\"\neap = \"peap\"\nidentity = \"kt-0001\"\nanonymous_identity = \"anonymous\"\npassword = \"pw\"\nca_pem = \"-----BEGIN CERTIFICATE-----\\n\"\nserver_domain = \"radius.school.cn\"\n",
        );
        assert!(problems(&w).is_empty(), "{:?}", problems(&w));
        let (conf, files) = w.render();
        assert!(conf.starts_with("security=wpa2-enterprise\n"));
        assert!(conf.contains("eap=peap\n"));
        assert!(conf.contains(&format!("identity={}\n", hex(b"kt-0001"))));
        assert!(conf.contains(&format!(
            "domain_suffix_match={}\n",
            hex(b"radius.school.cn")
        )));
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, "wifi/ca.pem");
    }

    #[test]
    fn personal_passphrases_are_checked() {
        let short = wifi("ssid = \"x\"\nsecurity = \"wpa2-personal\"\npassphrase = \"1234567\"\n");
        assert!(problems(&short)[0].starts_with("wifi.passphrase: 7 characters"));
        let long = wifi(&format!(
            "ssid = \"x\"\nsecurity = \"wpa2-personal\"\npassphrase = \"{}\"\n",
            "g".repeat(64)
        ));
        assert_eq!(problems(&long).len(), 1);
        let key = wifi(&format!(
            "ssid = \"x\"\nsecurity = \"wpa2-personal\"\npassphrase = \"{}\"\n",
            "A1".repeat(32)
        ));
        assert!(problems(&key).is_empty());
        assert!(
            key.render()
                .0
                .contains(&format!("psk={}\n", "a1".repeat(32)))
        );
        let sae =
            wifi("ssid = \"x\"\nsecurity = \"wpa3-personal\"\npassphrase = \"教室-sae-2026\"\n");
        assert!(problems(&sae).is_empty());
        let nl =
            wifi("ssid = \"x\"\nsecurity = \"wpa3-personal\"\npassphrase = \"教室-sae\\n2026\"\n");
        assert!(problems(&nl)[0].contains("without control characters"));
        let wpa2 =
            wifi("ssid = \"x\"\nsecurity = \"wpa2-personal\"\npassphrase = \"教室-sae-2026\"\n");
        assert!(problems(&wpa2)[0].contains("printable ASCII"));
        // A network name of 32 bytes is the most there is; 33 is refused.
        let at = |n: usize| {
            wifi(&format!(
                "ssid = \"{}\"\nsecurity = \"wpa2-personal\"\npassphrase = \"classroom-1\"\n",
                "s".repeat(n)
            ))
        };
        assert!(problems(&at(32)).is_empty());
        assert!(problems(&at(33))[0].starts_with("wifi.ssid: 33 bytes"));
        // 63 ASCII characters is WPA2's longest passphrase.
        let p63 = wifi(&format!(
            "ssid = \"x\"\nsecurity = \"wpa2-personal\"\npassphrase = \"{}\"\n",
            "p".repeat(63)
        ));
        assert!(problems(&p63).is_empty());
        let none = wifi("ssid = \"\"\nsecurity = \"wpa3-personal\"\n");
        let p = problems(&none);
        assert!(
            p.iter().any(|x| x.starts_with("wifi.ssid: 0 bytes")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.starts_with("wifi.passphrase: needed for wpa3-personal")),
            "{p:?}"
        );
    }
}
