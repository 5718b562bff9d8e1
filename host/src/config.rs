//! Server configuration: defaults < TOML file (`--config`) < environment < flags.
//!
//! Every setting is declared once, in the `settings!` table of `config/settings.rs`: its TOML
//! key, environment variable, [kind](kinds) (type and range), default and help. From that one
//! line follow the `serve` flag ([`crate::cli`]), the TOML key, validation, the typed default
//! ([`DEFAULTS`]), the typed value ([`Settings`]) and the README's settings table
//! ([`markdown_table`], which a test compares with the README). A setting is read through its
//! struct field, so a misspelt key is a compile error rather than a lookup that fails at run
//! time. Resolution takes the environment through a lookup function, so tests pass a map instead
//! of mutating the process environment. A bad value is a [`ConfigError`] naming the key and the
//! value (never the value of a secret); `main` exits 64 on it.
//!
//! This module only reads configuration; it starts nothing.

pub mod kinds;
mod location;
mod settings;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::runtime::Limits;
use kinds::Kind;
pub use kinds::{MAX_MODELS, ModelSelection, Secret};
pub use settings::{
    DECLARED, DEFAULTS, Declarations, Defaults, SETTINGS, Setting, Settings, markdown_table,
};

/// The resolved configuration of `modelhost serve`. `Debug` shows every field except the
/// monitoring token's value ([`Secret`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub model_name: String,
    /// The models served beside `model_name` (see [`ModelSelection`]).
    pub model_names: ModelSelection,
    pub log_level: String,
    pub log_format: LogFormat,
    pub host: IpAddr,
    pub port: u16,
    /// `REGISTRY_DIR`, or the parent of `MODELHOST_MODEL_DIR` when that names the model's
    /// directory ([`location`]).
    pub registry_dir: PathBuf,
    /// The served model's folder in `registry_dir`: `MODEL_NAME`, or the last component of
    /// `MODELHOST_MODEL_DIR`. The model is served as `model_name` either way.
    pub model_folder: String,
    /// True when `MODELHOST_MODEL_DIR` (`--model-dir`, KServe's `--model_dir`) named the
    /// model's directory: it belongs to whatever filled it (KServe's storage initializer, a
    /// read-only volume), so the server writes nothing there: no seeding, no temp-file cleanup.
    pub model_dir_given: bool,
    /// True when no flag, variable or file set `registry_dir` (nor `model_dir`): it is then
    /// looked for in the working directory's ancestors too
    /// ([`Config::locate_default_registry`]).
    pub registry_dir_is_default: bool,
    pub log_dir: PathBuf,
    /// A read-only registry whose model is copied into an empty `registry_dir` at startup
    /// (see [`crate::registry::seed`]); `None`: no seeding.
    pub seed_dir: Option<PathBuf>,
    pub monitoring_token: Option<Secret>,
    pub wasm_timeout: Duration,
    pub wasm_memory_bytes: usize,
    pub max_concurrency: u32,
    pub poll_interval: Duration,
    /// Whether file-system events (inotify) speed up the poll; false: polling only.
    pub watch_events: bool,
    pub max_body_bytes: usize,
    /// Longest one HTTP request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Longest a prediction waits for a free model slot before it is answered 503.
    pub queue_timeout: Duration,
    /// Most rows one batch request (`POST /predict` with `instances`, or a v2 infer) may hold.
    pub max_batch_rows: usize,
    /// Whether answered predictions are appended to `LOG_DIR/predictions.log`.
    pub prediction_log: bool,
    /// Rotate the prediction log past this many bytes.
    pub log_max_bytes: u64,
    /// Rotated prediction logs kept.
    pub log_keep: u32,
    /// Predictions the live drift report looks at.
    pub drift_window: usize,
    /// z at or above which a numeric feature alerts.
    pub drift_z_threshold: f64,
    /// PSI at or above which a categorical feature alerts.
    pub drift_psi_threshold: f64,
    /// On SIGTERM: how long `/ready` reports 503 before the listener closes, so load balancers
    /// stop sending new requests first.
    pub shutdown_delay: Duration,
    /// On SIGTERM: the longest in-flight requests get to finish once the listener closed.
    pub drain_timeout: Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON lines when stderr is not a terminal, text otherwise.
    Auto,
    Json,
    Text,
}

impl Config {
    /// The per-call limits for the wasm runtime.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.wasm_memory_bytes,
            timeout: self.wasm_timeout,
            // Leave slots for loads and self-tests beside the serving calls.
            max_instances: self.max_concurrency + 8,
        }
    }

    /// The served model's directory: `REGISTRY_DIR/MODEL_NAME`, or `MODELHOST_MODEL_DIR`.
    pub fn model_dir(&self) -> PathBuf {
        self.registry_dir.join(&self.model_folder)
    }

    /// With the default `registry_dir` (`./registry`) and no such directory in `cwd`, the
    /// nearest `registry/` above `cwd` that holds `MODEL_NAME` is used instead, the way git
    /// finds `.git`: a server started with default settings anywhere in a checkout serves the
    /// committed default model. Returns the directory it switched to, if any. An explicit
    /// setting is never second-guessed.
    pub fn locate_default_registry(&mut self, cwd: &Path) -> Option<PathBuf> {
        if !self.registry_dir_is_default || cwd.join(&self.registry_dir).is_dir() {
            return None;
        }
        let relative = self
            .registry_dir
            .strip_prefix(".")
            .unwrap_or(&self.registry_dir);
        let found = cwd
            .ancestors()
            .skip(1)
            .map(|dir| dir.join(relative))
            .find(|dir| dir.join(&self.model_folder).is_dir())?;
        self.registry_dir = found.clone();
        Some(found)
    }
}

/// Why the configuration is unusable. One line, naming the key and (unless secret) the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {key}={value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("invalid {key}: {reason}")]
    InvalidSecret { key: String, reason: String },
    #[error("{first} and {second} are both set: set only one of them")]
    Conflict { first: String, second: String },
    #[error("{first} and {second} are both set and disagree: {reason}")]
    Disagree {
        first: String,
        second: String,
        reason: String,
    },
    #[error("invalid {key}: {path}: {reason}")]
    SecretFile {
        key: String,
        path: PathBuf,
        reason: String,
    },
    #[error("config file {path}: unknown key `{key}`")]
    UnknownKey { path: PathBuf, key: String },
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// Values given as flags, by TOML key. Flags win over everything else.
pub type Flags = BTreeMap<&'static str, String>;

/// The layers a setting can come from, highest first: flags, environment, TOML file.
struct Sources<'a> {
    flags: &'a Flags,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: BTreeMap<String, String>,
}

/// A setting's text, and where it came from (for messages).
struct Raw {
    value: String,
    source: String,
    /// False when the default applies.
    set: bool,
    /// The layer it came from: 0 default, 1 TOML file, 2 environment, [`FLAG`].
    layer: u8,
}

/// The layer of a value given as a flag, the highest ([`Raw::layer`]).
const FLAG: u8 = 3;

impl Sources<'_> {
    /// `setting`'s text from the highest layer that sets it, else its default.
    fn raw(&self, setting: &Setting) -> Raw {
        let (value, source, layer) = if let Some(v) = self.flags.get(setting.key) {
            (v.clone(), setting.flag(), FLAG)
        } else if let Some(v) = (self.env)(setting.env) {
            (v, setting.env.to_string(), 2)
        } else if let Some(v) = self.file.get(setting.key) {
            (v.clone(), setting.key.to_string(), 1)
        } else {
            (setting.default.to_string(), setting.key.to_string(), 0)
        };
        Raw {
            value,
            source,
            set: layer > 0,
            layer,
        }
    }

    /// `setting`'s value, parsed as a `K`; an error names where the value came from and,
    /// unless it is a secret, the value.
    fn parse<K: Kind>(&self, setting: &Setting) -> Result<K::Value, ConfigError> {
        let Raw { value, source, .. } = self.raw(setting);
        K::parse(&value).map_err(|reason| {
            if K::SECRET {
                ConfigError::InvalidSecret {
                    key: source,
                    reason,
                }
            } else {
                ConfigError::Invalid {
                    key: source,
                    value,
                    reason,
                }
            }
        })
    }
}

/// Resolves the configuration from a TOML file (if any), an environment lookup, and flags.
pub fn resolve(
    config_file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &Flags,
) -> Result<Config, ConfigError> {
    let file = match config_file {
        Some(path) => read_toml(path)?,
        None => BTreeMap::new(),
    };
    let sources = Sources { flags, env, file };
    let s = Settings::parse(&sources)?;
    let location = location::resolve(&sources, &s)?;
    let token_file = &DECLARED.monitoring_token_file;
    let monitoring_token = match (s.monitoring_token, s.monitoring_token_file) {
        (token, None) => token,
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                first: sources.raw(&DECLARED.monitoring_token).source,
                second: sources.raw(token_file).source,
            });
        }
        (None, Some(path)) => Some(Secret(read_token_file(
            &sources.raw(token_file).source,
            &path,
        )?)),
    };
    Ok(Config {
        model_name: s.model_name,
        model_names: s.model_names,
        log_level: s.log_level,
        log_format: s.log_format,
        host: s.host,
        port: s.port as u16,
        registry_dir: location.registry_dir,
        model_folder: location.folder,
        model_dir_given: location.model_dir_given,
        registry_dir_is_default: location.registry_dir_is_default,
        log_dir: s.log_dir,
        seed_dir: location.seed_dir,
        monitoring_token,
        wasm_timeout: Duration::from_millis(s.wasm_timeout_ms),
        wasm_memory_bytes: (s.wasm_memory_mib as usize) << 20,
        max_concurrency: s.max_concurrency as u32,
        poll_interval: Duration::from_millis(s.poll_interval_ms),
        watch_events: s.watch_events,
        max_body_bytes: s.max_body_bytes as usize,
        request_timeout: Duration::from_millis(s.request_timeout_ms),
        queue_timeout: Duration::from_millis(s.queue_timeout_ms),
        max_batch_rows: s.max_batch_rows as usize,
        prediction_log: s.prediction_log,
        log_max_bytes: s.log_max_mib << 20,
        log_keep: s.log_keep as u32,
        drift_window: s.drift_window as usize,
        drift_z_threshold: s.drift_z_threshold,
        drift_psi_threshold: s.drift_psi_threshold,
        shutdown_delay: Duration::from_millis(s.shutdown_delay_ms),
        drain_timeout: Duration::from_millis(s.drain_timeout_ms),
    })
}

/// The rule every monitoring token follows, wherever it comes from: a client sends it in an
/// `Authorization` header, where white space at either end would be lost and control
/// characters are not allowed, so such a token could never match.
fn check_token(token: &str) -> Result<(), &'static str> {
    if token.trim() != token || token.chars().any(|c| c.is_control()) {
        Err("must not contain white space at either end or control characters")
    } else {
        Ok(())
    }
}

/// Longest token file read. A token is a few dozen bytes; the cap keeps a wrong path (a log,
/// `/dev/zero`) from being read whole into memory at startup.
const TOKEN_FILE_MAX_BYTES: u64 = 4096;

/// The monitoring token in `path` (`source` names the setting that gave the path). One trailing
/// newline is dropped, since `echo` and most editors end a file with one while a Secret mounted
/// as a file usually has none; anything else must pass [`check_token`]. Errors name the setting
/// and the file, never the file's content.
fn read_token_file(source: &str, path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let error = |reason: String| ConfigError::SecretFile {
        key: source.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(TOKEN_FILE_MAX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| error(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > TOKEN_FILE_MAX_BYTES {
        return Err(error(format!(
            "larger than {TOKEN_FILE_MAX_BYTES} bytes, too large for a token"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| error("is not UTF-8 text".to_string()))?;
    let token = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if token.is_empty() {
        return Err(error("is empty: expected the token".to_string()));
    }
    check_token(token).map_err(|reason| error(format!("the token it holds {reason}")))?;
    Ok(token.to_string())
}

/// A plain level (`info`), or tracing directives (`info,modelhost=debug`). A bare word that is
/// not a level is refused: tracing would read `verbose` as a target name and log nothing.
fn valid_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let filter = filter.trim();
    if filter.is_empty() || tracing_subscriber::EnvFilter::try_new(filter).is_err() {
        return false;
    }
    filter
        .split(',')
        .all(|directive| match directive.rsplit_once('=') {
            Some((_, level)) => LEVELS.contains(&level.trim().to_ascii_lowercase().as_str()),
            None => {
                let directive = directive.trim();
                LEVELS.contains(&directive.to_ascii_lowercase().as_str())
                    || directive.contains(['[', ':'])
            }
        })
}

/// Reads the TOML file into text values by key; unknown keys are errors.
fn read_toml(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: ")
        });
        file_error(format!("{}{}", at.unwrap_or_default(), e.message()))
    })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        if !SETTINGS.iter().any(|s| s.key == key) {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                key,
            });
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(file_error(format!(
                    "`{key}` must be a string or a number, got a {}",
                    other.type_str()
                )));
            }
        };
        values.insert(key, text);
    }
    Ok(values)
}

#[cfg(test)]
mod tests;
