//! A serial link on a pseudo-terminal in raw mode (no echo, no line editing, no CR/LF
//! translation), as `embedded-io` traits: what the panel driver gets on a real board from
//! `/dev/ttyS*` or a USB serial adapter.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

/// One end of a pseudo-terminal.
#[derive(Debug)]
pub struct PtyLink {
    file: File,
}

/// Opens a raw pseudo-terminal pair: (the driver's end, the simulated device's end).
///
/// # Panics
/// The kernel refuses a pseudo-terminal (tests only).
#[must_use]
pub fn pair() -> (PtyLink, PtyLink) {
    #[allow(
        clippy::expect_used,
        reason = "test support: no pty is a broken machine"
    )]
    let p = openpty(None, None).expect("openpty");
    for fd in [&p.master, &p.slave] {
        #[allow(clippy::expect_used, reason = "test support")]
        let mut t = tcgetattr(fd).expect("tcgetattr");
        cfmakeraw(&mut t);
        #[allow(clippy::expect_used, reason = "test support")]
        tcsetattr(fd, SetArg::TCSANOW, &t).expect("tcsetattr");
    }
    (PtyLink::new(p.slave), PtyLink::new(p.master))
}

impl PtyLink {
    fn new(fd: OwnedFd) -> Self {
        Self {
            file: File::from(fd),
        }
    }

    /// Opens a real serial port (`/dev/ttyS0`, `/dev/ttyUSB0`) raw, 8N1, at `baud`: the same
    /// link on a bench.
    ///
    /// # Errors
    /// The port cannot be opened or configured, or `baud` is not a standard rate.
    pub fn open_tty(path: &std::path::Path, baud: u32) -> std::io::Result<Self> {
        use nix::sys::termios::{BaudRate, cfsetspeed};
        use std::os::unix::fs::OpenOptionsExt as _;
        let rate = match baud {
            1200 => BaudRate::B1200,
            2400 => BaudRate::B2400,
            4800 => BaudRate::B4800,
            9600 => BaudRate::B9600,
            19_200 => BaudRate::B19200,
            38_400 => BaudRate::B38400,
            57_600 => BaudRate::B57600,
            115_200 => BaudRate::B115200,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{baud} is not a standard baud rate"),
                ));
            }
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NOCTTY.bits())
            .open(path)?;
        let mut t = tcgetattr(&file).map_err(std::io::Error::from)?;
        cfmakeraw(&mut t);
        cfsetspeed(&mut t, rate).map_err(std::io::Error::from)?;
        tcsetattr(&file, SetArg::TCSANOW, &t).map_err(std::io::Error::from)?;
        Ok(Self { file })
    }

    /// Whether bytes wait, within `ms` milliseconds.
    ///
    /// # Errors
    /// poll(2) failed.
    pub fn wait_readable(&self, ms: u16) -> std::io::Result<bool> {
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(ms)).map_err(std::io::Error::from)?;
        Ok(n > 0
            && fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN)))
    }

    /// Reads what waits (blocking until something does).
    ///
    /// # Errors
    /// The read failed.
    pub fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }

    /// Writes all of `b`.
    ///
    /// # Errors
    /// The write failed.
    pub fn write_all_now(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.file.write_all(b)?;
        self.file.flush()
    }
}

impl embedded_io::ErrorType for PtyLink {
    type Error = std::io::Error;
}

impl embedded_io::Read for PtyLink {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.file.read(buf)
    }
}

impl embedded_io::ReadReady for PtyLink {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        self.wait_readable(0)
    }
}

impl embedded_io::Write for PtyLink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.file.flush()
    }
}
