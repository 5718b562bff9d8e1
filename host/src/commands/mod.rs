//! Every subcommand: [`serve`], [`train`], [`inspect`], [`rollback`], [`versions`],
//! [`publish`], [`import`], [`predict`] and [`drift`]. Each is a library function taking plain options and
//! returning a typed [`Report`] (printable for people, serialisable for `--json`, with the
//! [`Exit`] status it ends with) or a [`CommandError`] that knows its exit status, so the binary
//! only parses, resolves the configuration, starts logging and calls one of them.
//!
//! Registry writes go through [`registry::write_atomic`](crate::registry::write_atomic) and
//! [`registry::append_history`](crate::registry::append_history): a crash at any instant leaves
//! the previous live model in place and never a partial file.

pub mod drift;
pub mod import;
pub mod inspect;
pub mod predict;
pub mod publish;
pub mod rollback;
pub mod serve;
pub mod train;
pub mod versions;

use std::fmt::Display;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::ConfigError;
use crate::model::Model;
use crate::output;
use crate::runtime::{Limits, Runtime};
use inspect::check_file;

/// Every exit status of `modelhost`, each with one meaning (`modelhost --help` lists them, so
/// does the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumIter)]
#[repr(u8)]
pub enum Exit {
    /// The command did what it was asked: served until stopped, trained and promoted, no drift.
    Success = 0,
    /// Anything else went wrong: a registry or output I/O error, a failed model call, nothing
    /// to roll back to, the server could not start. Nothing was promoted.
    Failure = 1,
    /// `drift` found drift (the report names the features).
    Drift = 3,
    /// `train` trained and recorded a model, but the gate refused it: the live model is
    /// unchanged.
    GateRefused = 4,
    /// A bad configuration, command line or argument (EX_USAGE).
    Usage = 64,
    /// An input file is unreadable or invalid: training data failing a check, a model refused by
    /// `publish` or `predict`, invalid rows in a batch, no prediction log (EX_DATAERR).
    Data = 65,
}

impl Exit {
    /// The status as the process returns it.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// One line per status, for `--help`: `  64  a bad configuration ...`.
    pub fn table() -> String {
        use strum::IntoEnumIterator;
        Exit::iter()
            .map(|exit| format!("  {:>2}  {}", exit.code(), exit.meaning()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// What the status means, in a few words.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => {
                "any other error (I/O, a failed model call, the server could not start)"
            }
            Exit::Drift => "drift: drift found",
            Exit::GateRefused => {
                "train: trained and recorded, refused by the gate (live model unchanged)"
            }
            Exit::Usage => "bad configuration, command line or argument",
            Exit::Data => "an input file is unreadable or invalid (data, model, rows, logs)",
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// Why a command failed, grouped by exit status. Every message is complete: a cause is said in
/// it, never also exposed as a source.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// An argument names something that does not exist (an unknown version), or is out of range;
    /// exit 64.
    #[error("{0}")]
    Usage(String),
    /// The configuration of `serve` is unusable; exit 64.
    #[error("{0}")]
    Config(#[from] ConfigError),
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
    pub fn exit(&self) -> Exit {
        match self {
            CommandError::Usage(_) | CommandError::Config(_) => Exit::Usage,
            CommandError::Data(_) => Exit::Data,
            CommandError::Io { .. } | CommandError::Failed(_) => Exit::Failure,
        }
    }

    /// An [`CommandError::Io`] builder for `map_err`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CommandError + use<> {
        let path = path.to_path_buf();
        move |error| CommandError::Io { path, error }
    }
}

/// What a command prints when it has run: a report for people (`Display`) or, with `--json`, for
/// programs (`Serialize`), and the exit status it ends with.
pub trait Report: Serialize + Display {
    /// The exit status after this report: [`Exit::Success`] unless the report itself is bad
    /// news (drift found, the gate refused, invalid rows).
    fn exit(&self) -> Exit {
        Exit::Success
    }

    /// Prints the report to standard output through [`output::print`]: a reader that went away
    /// (`| head -1`) is no failure, the command keeps its status; any other write error is.
    fn print(&self, json: bool) -> Result<Exit, CommandError> {
        let mut text = if json {
            serde_json::to_string_pretty(self).unwrap_or_default()
        } else {
            self.to_string()
        };
        text.push('\n');
        output::print(&text).map_err(|e| {
            CommandError::Failed(format!(
                "cannot write to standard output: {}",
                crate::error::chain(&e)
            ))
        })?;
        Ok(self.exit())
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
