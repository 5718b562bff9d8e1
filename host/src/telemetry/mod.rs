//! Operations: logging setup, Prometheus metrics, the prediction log and the drift check.
//!
//! Layout: this file installs the `tracing` subscriber; [`metrics`] holds every Prometheus
//! family; [`predlog`] writes one JSON line per prediction off the request path; [`drift`]
//! compares recent inputs with the model's training statistics. None of it decides anything
//! about models or requests: handlers and the watcher report to it.

pub mod drift;
pub mod metrics;
pub mod predlog;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Log lines that could not be written to standard error, since the process started.
static LOG_LINES_DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many log lines could not be written (their reader went away, or the write failed).
/// Exported as `modelhost_log_lines_dropped_total`.
pub fn log_lines_dropped() -> u64 {
    LOG_LINES_DROPPED.load(Ordering::Relaxed)
}

/// Standard error for the log. The server must outlive its log's reader (`serve 2>&1 | head`,
/// a collector that restarts): a line that cannot be written is dropped and counted, never an
/// error — the formatter would report the error with `eprintln!`, which panics on a closed
/// stderr. The formatter hands over each event as one buffer, so one failed write is one line.
struct StderrLines;

impl Write for StderrLines {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if std::io::stderr().lock().write_all(line).is_err() {
            LOG_LINES_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the global subscriber. `filter` is a level or full tracing directives. Calling it
/// twice (as tests may) keeps the first subscriber.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr_is_terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !stderr_is_terminal,
    };
    // Colour only for a person at a terminal (and not if NO_COLOR asks): escape codes in a file
    // or a pipe are noise to whatever reads it.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(stderr_is_terminal && !no_color)
        .log_internal_errors(false)
        .with_writer(|| StderrLines);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
