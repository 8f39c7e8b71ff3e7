//! Test support shared by Ketang's crates, so each helper exists once
//! (docs/development.md §8): free ports, a real Mosquitto on 127.0.0.1, and the folder of
//! real models. A dev-dependency only; it depends on no workspace crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port free on 127.0.0.1 right now.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository's root (this crate is `hw-tests/testkit`).
#[must_use]
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder of real models for the tests that run them: `KETANG_MODELS` (the documented
/// model cache variable), else `target/models` (what `models/obtain.sh` writes). It must hold
/// `marker`. Nothing outside the repository is looked at otherwise.
#[must_use]
pub fn models_dir(marker: &str) -> PathBuf {
    let candidates = [
        std::env::var_os("KETANG_MODELS").map(PathBuf::from),
        Some(repo_root().join("target/models")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.join(marker).is_file() {
            return c;
        }
    }
    panic!(
        "no models (looked for {marker}): run models/obtain.sh, or set KETANG_MODELS to a folder holding them (docs/models.md)"
    );
}

fn mosquitto() -> &'static str {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("mosquitto is not installed: `apt-get install mosquitto` (./scripts/test does it)");
}

/// A real Mosquitto on 127.0.0.1, with persistence and its log in `dir`; killed on drop.
#[derive(Debug)]
pub struct Broker {
    /// The port it listens on.
    pub port: u16,
    /// Its folder (config, persistence, log).
    pub dir: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// Starts Mosquitto on a free port, with persistence in `dir` and `extra` config lines.
    #[must_use]
    pub fn start(dir: &Path, extra: &str) -> Broker {
        Self::start_on(dir, free_port(), extra)
    }

    /// Starts Mosquitto on `port` (unless `extra` has its own `listener`).
    #[must_use]
    pub fn start_on(dir: &Path, port: u16, extra: &str) -> Broker {
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        let listener = if extra.contains("listener ") {
            String::new()
        } else {
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n")
        };
        std::fs::write(
            &conf,
            format!(
                "{listener}persistence true\npersistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages 0\nlog_dest file {}/mosquitto.log\n{extra}\n",
                dir.display(),
                dir.display()
            ),
        )
        .unwrap();
        // Started as root, mosquitto drops to user `mosquitto`: let it write its dir.
        let _ = Command::new("chown")
            .args(["-R", "mosquitto:"])
            .arg(dir)
            .status();
        let _ = Command::new("chmod")
            .args(["755"])
            .arg(dir.parent().unwrap_or(dir))
            .status();
        let mut b = Broker {
            port,
            dir: dir.to_owned(),
            conf,
            child: None,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let child = Command::new(mosquitto())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// kill -9: no chance to save or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// kill -9, then start again.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGTERM, so Mosquitto saves its persistence file (sessions, subscriptions); it stays
    /// down until [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// SIGTERM, so Mosquitto saves its persistence file (sessions, subscriptions), then start
    /// again.
    pub fn graceful_restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `openssl ARGS` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        st.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// A test PKI made in `dir`: a CA (`ca.pem`, `ca.key`, named `name`), a server certificate
/// for 127.0.0.1 (`server.pem`, `server.key`) and a client certificate (`client.pem`,
/// `client.key`), all readable by anyone (Mosquitto may drop privileges).
pub fn pki(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let ca_subject = format!("/CN={name} CA");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &ca_subject,
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        let (subject, key, csr) = (
            format!("/CN={who}"),
            format!("{who}.key"),
            format!("{who}.csr"),
        );
        openssl(
            dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subject, "-keyout", &key, "-out",
                &csr,
            ],
        );
        let (out, ext) = (format!("{who}.pem"), format!("{who}.ext"));
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &out,
                "-extfile",
                &ext,
            ],
        );
    }
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir).status();
}

/// An HTTPS server on 127.0.0.1 (Python's `http.server` behind `ssl`: real status codes,
/// `Content-Length`) serving the files of `root` (and saving a PUT's body there) with the server certificate of a [`pki`]
/// in `pki_dir`; stopped on drop.
#[derive(Debug)]
pub struct HttpsServer {
    child: Child,
    /// Its port.
    pub port: u16,
}

const HTTPS_SERVER: &str = r#"
import functools, http.server, os, ssl, sys
port, cert, key, root = sys.argv[1:5]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
    # An upload (system.diagnostics): the body is saved as root/<path with / as _>.
    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        name = self.path.strip("/").replace("/", "_") or "upload"
        with open(os.path.join(root, name), "wb") as f:
            f.write(body)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()
server = http.server.ThreadingHTTPServer(
    ("127.0.0.1", int(port)), functools.partial(Quiet, directory=root))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.handle_error = lambda *a: None
server.serve_forever()
"#;

impl HttpsServer {
    /// Starts it and waits until it accepts connections.
    #[must_use]
    pub fn start(root: &Path, pki_dir: &Path) -> Self {
        let port = free_port();
        let child = Command::new("python3")
            .arg("-c")
            .arg(HTTPS_SERVER)
            .arg(port.to_string())
            .arg(pki_dir.join("server.pem"))
            .arg(pki_dir.join("server.key"))
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is installed");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the HTTPS test server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real HTTP CONNECT proxy (Debian's tinyproxy) on 127.0.0.1, as a school's proxy: it
/// lets CONNECT through to `allow_port` only, asks for Basic authentication when `auth` is
/// given, and logs every CONNECT to its log file. Killed on drop.
#[derive(Debug)]
pub struct Tinyproxy {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
}

impl Tinyproxy {
    /// Starts it with its files in `dir`.
    ///
    /// # Panics
    /// When tinyproxy is not installed (`./scripts/test` installs it) or does not listen.
    pub fn start(dir: &Path, allow_port: u16, auth: Option<(&str, &str)>) -> Self {
        let port = free_port();
        let conf = dir.join("tinyproxy.conf");
        let log = dir.join("tinyproxy.log");
        let mut text = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 20\nAllow 127.0.0.1\nConnectPort {allow_port}\n",
            log.display()
        );
        if let Some((u, p)) = auth {
            text.push_str(&format!("BasicAuth {u} {p}\n"));
        }
        std::fs::write(&conf, text).expect("writing tinyproxy.conf");
        let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("tinyproxy is installed (./scripts/test installs it)");
        let child = std::process::Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting tinyproxy");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "tinyproxy did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child, port, log }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
