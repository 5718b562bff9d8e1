//! The registry-maintenance, batch and monitoring subcommands besides `train`: [`rollback`],
//! [`versions`], [`publish`], [`predict`] and [`drift`]. Each is a library function taking plain options and returning
//! a report (printable for people, serialisable for `--json`) or a [`CommandError`] that knows
//! its exit status, so the binary only parses, calls and prints.
//!
//! Registry writes go through [`registry::write_atomic`](crate::registry::write_atomic) and
//! [`registry::append_history`](crate::registry::append_history): a crash at any instant leaves
//! the previous live model in place and never a partial file.

pub mod drift;
pub mod inspect;
pub mod predict;
pub mod publish;
pub mod rollback;
pub mod train;
pub mod versions;

use std::path::{Path, PathBuf};

use crate::commands::inspect::check_file;
use crate::model::Model;
use crate::runtime::{Limits, Runtime};
use crate::{EXIT_CONFIG, EXIT_DATA};

/// Why a command failed, grouped by exit status. Every message is complete: a cause is said in
/// it, never also exposed as a source.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// An argument names something that does not exist (an unknown version); exit 64.
    #[error("{0}")]
    Usage(String),
    /// An input file is unreadable or invalid (a refused model, bad rows); exit 65.
    #[error("{0}")]
    Data(String),
    /// The registry or an output file could not be read or written; exit 1.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Anything else (nothing to roll back to, a model call failed); exit 1.
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(_) => EXIT_CONFIG as u8,
            CommandError::Data(_) => EXIT_DATA,
            CommandError::Io { .. } | CommandError::Failed(_) => 1,
        }
    }

    /// An [`CommandError::Io`] builder for `map_err`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CommandError + use<> {
        let path = path.to_path_buf();
        move |error| CommandError::Io { path, error }
    }
}

/// The registry folder of one model.
#[derive(Debug, Clone)]
pub struct RegistryTarget {
    pub registry_dir: PathBuf,
    pub model_name: String,
}

impl RegistryTarget {
    /// `registry_dir/model_name`.
    pub fn model_dir(&self) -> PathBuf {
        self.registry_dir.join(&self.model_name)
    }
}

/// The wasm runtime a command checks and runs models with, with the server's default limits.
/// Keep it alive while its models are used: it drives their time limit.
fn runtime() -> Result<Runtime, CommandError> {
    Runtime::new(Limits::default()).map_err(|e| {
        CommandError::Failed(format!(
            "cannot start the wasm runtime: {}",
            crate::error::chain(e.as_ref())
        ))
    })
}

/// Reads and loads `path` exactly as the server would ([`check_file`]); a refusal is a data
/// error naming the file and the reason.
fn check_model(path: &Path, runtime: &Runtime) -> Result<(Vec<u8>, Model), CommandError> {
    check_file(path, runtime).map_err(|e| CommandError::Data(crate::error::chain(&e)))
}

/// Now, as RFC 3339 to the second.
fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
