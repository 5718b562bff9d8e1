//! Operations: logging setup, Prometheus metrics, the prediction log and the drift check.
//!
//! Layout: this file installs the `tracing` subscriber; [`metrics`] holds every Prometheus
//! family; [`predlog`] writes one JSON line per prediction off the request path; [`drift`]
//! compares recent inputs with the model's training statistics. None of it decides anything
//! about models or requests: handlers and the watcher report to it.

pub mod drift;
pub mod metrics;
pub mod predlog;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` is a level or full tracing directives. Calling it
/// twice (as tests may) keeps the first subscriber.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
