//! A serial port (`/dev/ttyS*`, `/dev/ttyUSB*`) in raw 8N1 mode at a given baud rate, as
//! the `embedded-io` traits the panel driver takes.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{
    BaudRate, ControlFlags, FlushArg, SetArg, cfmakeraw, cfsetspeed, tcflush, tcgetattr, tcsetattr,
};

/// An open serial port.
#[derive(Debug)]
pub(crate) struct SerialPort {
    file: File,
}

fn baud(b: u32) -> Option<BaudRate> {
    Some(match b {
        1200 => BaudRate::B1200,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19_200 => BaudRate::B19200,
        38_400 => BaudRate::B38400,
        57_600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        _ => return None,
    })
}

impl SerialPort {
    /// Opens `path` raw, 8N1, at `baud_rate`, ignoring modem lines.
    ///
    /// # Errors
    /// The port cannot be opened (missing, permission denied) or configured; the message
    /// names the port.
    pub(crate) fn open(path: &Path, baud_rate: u32) -> std::io::Result<Self> {
        let rate = baud(baud_rate).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("baud rate {baud_rate} is not supported"),
            )
        })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(path)?;
        let mut t = tcgetattr(file.as_fd()).map_err(std::io::Error::from)?;
        cfmakeraw(&mut t);
        cfsetspeed(&mut t, rate).map_err(std::io::Error::from)?;
        t.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
        t.control_flags &= !(ControlFlags::CSTOPB | ControlFlags::PARENB | ControlFlags::CRTSCTS);
        tcsetattr(file.as_fd(), SetArg::TCSANOW, &t).map_err(std::io::Error::from)?;
        tcflush(file.as_fd(), FlushArg::TCIOFLUSH).map_err(std::io::Error::from)?;
        Ok(Self { file })
    }
}

impl embedded_io::ErrorType for SerialPort {
    type Error = std::io::Error;
}

impl embedded_io::Read for SerialPort {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.file.read(buf)
    }
}

impl embedded_io::ReadReady for SerialPort {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::ZERO).map_err(std::io::Error::from)?;
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the serial port hung up (USB adapter unplugged?)",
            ));
        }
        Ok(n > 0 && revents.contains(PollFlags::POLLIN))
    }
}

impl embedded_io::Write for SerialPort {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.file.flush()
    }
}
