//! Interactive flat panel / whiteboard control over RS-232.
//!
//! [`Panel`] speaks one [`Dialect`] over any `embedded-io` serial link. Every setting is
//! verified: after a set, the driver asks the panel for the state and compares
//! ([`PanelError::NotApplied`] when the panel says otherwise). Every exchange has a
//! deadline ([`PanelError::Timeout`]); a panel that answers only noise is
//! [`PanelError::Garbage`]; a refusal is [`PanelError::Refused`].

mod protocol;

pub use protocol::{Dialect, Encoded, Input, Line, MAX_REQUEST, Reply, Request, encode, parse};

use embedded_hal::delay::DelayNs;
use embedded_io::{Read, ReadReady, Write};

/// Why a panel request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelError<E> {
    /// The serial link failed.
    Io(E),
    /// No answer within the deadline.
    Timeout {
        /// The request that went unanswered.
        request: Request,
        /// How long the driver waited, in milliseconds.
        waited_ms: u32,
    },
    /// Only bytes that are not this dialect came back (wrong dialect, baud rate or wiring).
    Garbage {
        /// The request.
        request: Request,
    },
    /// The panel refused the request (not supported by this model, or out of range).
    Refused {
        /// The request.
        request: Request,
    },
    /// The panel acknowledged but reads back another state.
    NotApplied {
        /// What was set.
        wanted: Reply,
        /// What the panel says now.
        got: Reply,
    },
}

impl<E: core::fmt::Debug> core::fmt::Display for PanelError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PanelError::Io(e) => write!(f, "serial link error: {e:?}"),
            PanelError::Timeout { request, waited_ms } => {
                write!(
                    f,
                    "no answer to {request:?} within {waited_ms} ms (panel off at the mains, cable, or baud rate?)"
                )
            }
            PanelError::Garbage { request } => write!(
                f,
                "the answer to {request:?} is not this dialect (check the dialect and baud rate)"
            ),
            PanelError::Refused { request } => write!(f, "the panel refused {request:?}"),
            PanelError::NotApplied { wanted, got } => {
                write!(
                    f,
                    "the panel reads back {got:?} after being set to {wanted:?}"
                )
            }
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for PanelError<E> {}

/// The longest line kept from a panel; longer lines are garbage.
const MAX_LINE: usize = 64;

/// A panel on a serial link.
#[derive(Debug)]
pub struct Panel<IO> {
    io: IO,
    dialect: Dialect,
    timeout_ms: u32,
}

impl<IO, E> Panel<IO>
where
    IO: Read<Error = E> + Write<Error = E> + ReadReady<Error = E>,
    E: embedded_io::Error,
{
    /// A panel speaking `dialect` on `io`, answering within `timeout_ms` per exchange.
    pub const fn new(io: IO, dialect: Dialect, timeout_ms: u32) -> Self {
        Self {
            io,
            dialect,
            timeout_ms,
        }
    }

    /// Gives the link back.
    pub fn destroy(self) -> IO {
        self.io
    }

    /// The dialect.
    pub const fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Sends `req` and returns the panel's answer to it (for a set, the state read back
    /// with the matching query, checked against what was set).
    ///
    /// # Errors
    /// See [`PanelError`].
    pub fn request(
        &mut self,
        req: Request,
        delay: &mut impl DelayNs,
    ) -> Result<Reply, PanelError<E>> {
        let answer = self.exchange(req, delay)?;
        let Some(wanted) = req.expected() else {
            return Ok(answer);
        };
        // Design: a set is verified by reading the state back, whatever the set's own
        // answer said: some panels acknowledge before applying, some never answer a set.
        let got = self.exchange(req.query(), delay)?;
        if got == wanted {
            Ok(got)
        } else {
            Err(PanelError::NotApplied { wanted, got })
        }
    }

    /// Power on or to standby, verified.
    ///
    /// # Errors
    /// See [`PanelError`].
    pub fn set_power(&mut self, on: bool, delay: &mut impl DelayNs) -> Result<(), PanelError<E>> {
        self.request(Request::SetPower(on), delay).map(|_| ())
    }

    /// Whether the panel is on.
    ///
    /// # Errors
    /// See [`PanelError`].
    pub fn power(&mut self, delay: &mut impl DelayNs) -> Result<bool, PanelError<E>> {
        match self.request(Request::GetPower, delay)? {
            Reply::Power(on) => Ok(on),
            _ => Err(PanelError::Garbage {
                request: Request::GetPower,
            }),
        }
    }

    /// Selects an input, verified.
    ///
    /// # Errors
    /// See [`PanelError`].
    pub fn set_input(
        &mut self,
        input: Input,
        delay: &mut impl DelayNs,
    ) -> Result<(), PanelError<E>> {
        self.request(Request::SetInput(input), delay).map(|_| ())
    }

    /// The current input.
    ///
    /// # Errors
    /// See [`PanelError`].
    pub fn input(&mut self, delay: &mut impl DelayNs) -> Result<Input, PanelError<E>> {
        match self.request(Request::GetInput, delay)? {
            Reply::Input(i) => Ok(i),
            _ => Err(PanelError::Garbage {
                request: Request::GetInput,
            }),
        }
    }

    /// One exchange: drop stale bytes, write, read lines until the answer or the deadline.
    fn exchange(&mut self, req: Request, delay: &mut impl DelayNs) -> Result<Reply, PanelError<E>> {
        self.drain()?;
        let sent = encode(self.dialect, req);
        self.io.write_all(sent.as_bytes()).map_err(PanelError::Io)?;
        self.io.flush().map_err(PanelError::Io)?;
        let mut line = [0u8; MAX_LINE];
        let mut len = 0usize;
        let mut garbage = false;
        let mut waited_ms = 0u32;
        let mut byte = [0u8; 1];
        // A panel that streams noise must not keep the driver forever.
        let mut budget = 16 * MAX_LINE;
        loop {
            if !self.io.read_ready().map_err(PanelError::Io)? {
                if waited_ms >= self.timeout_ms {
                    return Err(if garbage {
                        PanelError::Garbage { request: req }
                    } else {
                        PanelError::Timeout {
                            request: req,
                            waited_ms,
                        }
                    });
                }
                delay.delay_ms(1);
                waited_ms += 1;
                continue;
            }
            if self.io.read(&mut byte).map_err(PanelError::Io)? == 0 {
                continue;
            }
            budget -= 1;
            if budget == 0 {
                return Err(PanelError::Garbage { request: req });
            }
            let b = byte[0];
            let end = protocol::is_terminator(self.dialect, b);
            if len < MAX_LINE {
                line[len] = b;
                len += 1;
            } else {
                garbage = true;
                len = 0;
                continue;
            }
            if !end {
                continue;
            }
            match parse(self.dialect, req, sent.as_bytes(), &line[..len]) {
                Line::Reply(Reply::Refused) => return Err(PanelError::Refused { request: req }),
                Line::Reply(r) => return Ok(r),
                Line::Noise => {}
                Line::Garbage => garbage = true,
            }
            len = 0;
        }
    }

    /// Drops whatever the panel sent unasked (boot banners, late answers).
    fn drain(&mut self) -> Result<(), PanelError<E>> {
        let mut buf = [0u8; 64];
        while self.io.read_ready().map_err(PanelError::Io)? {
            if self.io.read(&mut buf).map_err(PanelError::Io)? == 0 {
                break;
            }
        }
        Ok(())
    }
}
