//! Standard output and standard error for the commands, written so that a reader going away
//! ends the output instead of the process.
//!
//! Rust ignores SIGPIPE, so a write to a pipe whose reader has exited (`modelhost versions |
//! head -1`) fails with `BrokenPipe`, which `println!` turns into a panic. Every report a
//! command prints goes through [`Stdout`] instead: once the reader is gone, the rest of the
//! output is discarded and the command ends quietly with its own exit status, as if the reader
//! had read everything. Messages for people go through [`eprint_line`], which never fails.

use std::io::{self, Write};

/// Standard output, locked, that treats a closed reader as the end of the output: after a
/// `BrokenPipe` every write succeeds and is discarded. Any other write error is returned.
pub struct Stdout {
    inner: io::StdoutLock<'static>,
    closed: bool,
}

impl Stdout {
    /// Locks standard output for this writer's lifetime.
    pub fn lock() -> Self {
        Stdout {
            inner: io::stdout().lock(),
            closed: false,
        }
    }

    /// Whether the reader has gone away (everything written since was discarded).
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn absorb<T>(&mut self, result: io::Result<T>, discarded: T) -> io::Result<T> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(discarded)
            }
            other => other,
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.absorb(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.absorb(result, ())
    }
}

/// Writes `text` to standard output and flushes it; a closed reader is not an error (see
/// [`Stdout`]).
pub fn print(text: &str) -> io::Result<()> {
    let mut out = Stdout::lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes `text` and a newline to standard error, ignoring any failure: there is nowhere left to
/// report it, and a message must never be what stops a command or the server.
pub fn eprint_line(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.write_all(b"\n");
}
