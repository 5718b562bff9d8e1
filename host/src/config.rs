//! Server configuration: defaults < TOML file (`--config`) < environment < flags.
//!
//! Every setting is declared once in [`SETTINGS`] with its TOML key, environment variable,
//! default and help. Resolution takes the environment through a lookup function, so tests pass
//! a map instead of mutating the process environment. A bad value is a [`ConfigError`] naming
//! the key and the value (never the value of a secret); `main` exits 64 on it.
//!
//! This module only reads configuration; it starts nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::runtime::Limits;

/// The resolved configuration of `modelhost serve`.
#[derive(Clone, PartialEq)]
pub struct Config {
    pub model_name: String,
    pub log_level: String,
    pub log_format: LogFormat,
    pub host: IpAddr,
    pub port: u16,
    pub registry_dir: PathBuf,
    /// True when no flag, variable or file set `registry_dir`: it is then looked for in the
    /// working directory's ancestors too ([`Config::locate_default_registry`]).
    pub registry_dir_is_default: bool,
    pub log_dir: PathBuf,
    /// A read-only registry whose model is copied into an empty `registry_dir` at startup
    /// (see [`crate::registry::seed`]); `None`: no seeding.
    pub seed_dir: Option<PathBuf>,
    pub monitoring_token: Option<String>,
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

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The monitoring token is a secret: show only whether it is set.
        f.debug_struct("Config")
            .field("model_name", &self.model_name)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("registry_dir", &self.registry_dir)
            .field("registry_dir_is_default", &self.registry_dir_is_default)
            .field("log_dir", &self.log_dir)
            .field("seed_dir", &self.seed_dir)
            .field(
                "monitoring_token",
                &self.monitoring_token.as_ref().map(|_| "<set>"),
            )
            .field("wasm_timeout", &self.wasm_timeout)
            .field("wasm_memory_bytes", &self.wasm_memory_bytes)
            .field("max_concurrency", &self.max_concurrency)
            .field("poll_interval", &self.poll_interval)
            .field("watch_events", &self.watch_events)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("queue_timeout", &self.queue_timeout)
            .field("max_batch_rows", &self.max_batch_rows)
            .field("prediction_log", &self.prediction_log)
            .field("log_max_bytes", &self.log_max_bytes)
            .field("log_keep", &self.log_keep)
            .field("drift_window", &self.drift_window)
            .field("drift_z_threshold", &self.drift_z_threshold)
            .field("drift_psi_threshold", &self.drift_psi_threshold)
            .field("shutdown_delay", &self.shutdown_delay)
            .field("drain_timeout", &self.drain_timeout)
            .finish()
    }
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

    /// `REGISTRY_DIR/MODEL_NAME`.
    pub fn model_dir(&self) -> PathBuf {
        self.registry_dir.join(&self.model_name)
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
            .find(|dir| dir.join(&self.model_name).is_dir())?;
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

/// One setting: its names in each layer, default and help.
pub struct Setting {
    /// Key in the TOML file.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Default value, as text (empty: unset).
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Whether the value is a secret, never to be printed.
    pub secret: bool,
}

const fn setting(
    key: &'static str,
    env: &'static str,
    default: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        env,
        default,
        help,
        secret: false,
    }
}

/// Every setting `serve` reads, in the order `--help` lists them.
pub const SETTINGS: &[Setting] = &[
    setting(
        "model_name",
        "MODEL_NAME",
        "churn",
        "model to serve: REGISTRY_DIR/MODEL_NAME/model.wasm",
    ),
    setting(
        "registry_dir",
        "REGISTRY_DIR",
        "./registry",
        "directory holding one folder per model",
    ),
    setting(
        "log_dir",
        "LOG_DIR",
        "./logs",
        "directory for the prediction log",
    ),
    setting(
        "seed_dir",
        "MODELHOST_SEED_DIR",
        "",
        "registry to copy MODEL_NAME's model.wasm from at startup when REGISTRY_DIR has none (unset or empty: no seeding)",
    ),
    setting("host", "HOST", "0.0.0.0", "address to listen on"),
    setting(
        "port",
        "PORT",
        "8000",
        "TCP port to listen on (0 picks a free one)",
    ),
    setting(
        "log_level",
        "LOG_LEVEL",
        "info",
        "log level or tracing filter directives (e.g. `info,modelhost=debug`)",
    ),
    setting(
        "log_format",
        "LOG_FORMAT",
        "auto",
        "log format: auto (JSON unless on a terminal), json or text",
    ),
    Setting {
        key: "monitoring_token",
        env: "MONITORING_TOKEN",
        default: "",
        help: "bearer token required by /metrics and /monitoring/* (unset: open)",
        secret: true,
    },
    setting(
        "monitoring_token_file",
        "MONITORING_TOKEN_FILE",
        "",
        "file holding the bearer token for /metrics and /monitoring/*, read at startup (one trailing newline ignored), e.g. a mounted Secret; not together with MONITORING_TOKEN",
    ),
    setting(
        "wasm_timeout_ms",
        "MODELHOST_WASM_TIMEOUT_MS",
        "50",
        "time limit of one wasm call, in milliseconds",
    ),
    setting(
        "wasm_memory_mib",
        "MODELHOST_WASM_MEMORY_MIB",
        "64",
        "memory limit of one wasm instance, in MiB",
    ),
    setting(
        "max_concurrency",
        "MODELHOST_MAX_CONCURRENCY",
        "64",
        "wasm calls that may run at once",
    ),
    setting(
        "poll_interval_ms",
        "MODELHOST_POLL_INTERVAL_MS",
        "2000",
        "how often the registry is polled for a new model, in milliseconds",
    ),
    setting(
        "watch_events",
        "MODELHOST_WATCH_EVENTS",
        "true",
        "also watch the model folder for file-system events: true, or false to poll only",
    ),
    setting(
        "max_body_bytes",
        "MODELHOST_MAX_BODY_BYTES",
        "1048576",
        "largest accepted request body, in bytes",
    ),
    setting(
        "request_timeout_ms",
        "MODELHOST_REQUEST_TIMEOUT_MS",
        "10000",
        "longest one HTTP request may take (body, queue and model call) before it is answered 408, in milliseconds",
    ),
    setting(
        "queue_timeout_ms",
        "MODELHOST_QUEUE_TIMEOUT_MS",
        "1000",
        "longest a prediction waits for a free wasm slot before it is answered 503 with Retry-After, in milliseconds (0: at once)",
    ),
    setting(
        "max_batch_rows",
        "MODELHOST_MAX_BATCH_ROWS",
        "1000",
        "most rows one batch request may hold (POST /predict with instances, v2 infer)",
    ),
    setting(
        "prediction_log",
        "MODELHOST_PREDICTION_LOG",
        "true",
        "append one JSON line per answered prediction to LOG_DIR/predictions.log: true or false",
    ),
    setting(
        "log_max_mib",
        "MODELHOST_LOG_MAX_MIB",
        "50",
        "rotate the prediction log when it would grow past this many MiB",
    ),
    setting(
        "log_keep",
        "MODELHOST_LOG_KEEP",
        "5",
        "rotated prediction logs kept (predictions.log.1 ... .N)",
    ),
    setting(
        "drift_window",
        "MODELHOST_DRIFT_WINDOW",
        "200",
        "predictions the live drift report (/monitoring/drift) looks at",
    ),
    setting(
        "drift_z_threshold",
        "MODELHOST_DRIFT_Z_THRESHOLD",
        "2.5",
        "z = |mean_recent - mean_train| / std_train at or above which a numeric feature alerts",
    ),
    setting(
        "drift_psi_threshold",
        "MODELHOST_DRIFT_PSI_THRESHOLD",
        "0.2",
        "population stability index at or above which a categorical feature alerts",
    ),
    setting(
        "shutdown_delay_ms",
        "MODELHOST_SHUTDOWN_DELAY_MS",
        "3000",
        "on SIGTERM, milliseconds /ready answers 503 before the listener closes",
    ),
    setting(
        "drain_timeout_ms",
        "MODELHOST_DRAIN_TIMEOUT_MS",
        "20000",
        "on SIGTERM, milliseconds in-flight requests get to finish after the listener closed",
    ),
];

/// Values given as flags, by TOML key. Flags win over everything else.
pub type Flags = BTreeMap<&'static str, String>;

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
    let is_default = |s: &Setting| {
        !flags.contains_key(s.key) && env(s.env).is_none() && !file.contains_key(s.key)
    };
    let raw = |s: &Setting| -> (String, String) {
        // (value, where it came from, for messages)
        if let Some(v) = flags.get(s.key) {
            return (v.clone(), format!("--{}", s.key.replace('_', "-")));
        }
        if let Some(v) = env(s.env) {
            return (v, s.env.to_string());
        }
        if let Some(v) = file.get(s.key) {
            return (v.clone(), s.key.to_string());
        }
        (s.default.to_string(), s.key.to_string())
    };
    let mut values = BTreeMap::new();
    for s in SETTINGS {
        values.insert(s.key, raw(s));
    }
    let get = |key: &str| values[key].clone();
    let invalid = |key: &str, reason: &str| {
        let (value, source) = get(key);
        let secret = SETTINGS.iter().any(|s| s.key == key && s.secret);
        if secret {
            ConfigError::InvalidSecret {
                key: source,
                reason: reason.to_string(),
            }
        } else {
            ConfigError::Invalid {
                key: source,
                value,
                reason: reason.to_string(),
            }
        }
    };
    let int = |key: &str, min: u64, max: u64| -> Result<u64, ConfigError> {
        let (value, _) = get(key);
        match value.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(invalid(
                key,
                &format!("expected a whole number from {min} to {max}"),
            )),
        }
    };

    let boolean = |key: &str| -> Result<bool, ConfigError> {
        match get(key).0.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid(key, "expected true or false")),
        }
    };
    let positive = |key: &str| -> Result<f64, ConfigError> {
        match get(key).0.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err(invalid(key, "expected a positive number")),
        }
    };

    let model_name = get("model_name").0;
    if model_name.is_empty()
        || model_name.len() > 128
        || !model_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || model_name.starts_with('.')
    {
        return Err(invalid(
            "model_name",
            "expected 1-128 characters of letters, digits, '-', '_' or '.', not starting with '.'",
        ));
    }
    let log_level = get("log_level").0;
    if !valid_log_filter(&log_level) {
        return Err(invalid(
            "log_level",
            "expected trace, debug, info, warn, error, or tracing filter directives",
        ));
    }
    let log_format = match get("log_format").0.to_ascii_lowercase().as_str() {
        "auto" => LogFormat::Auto,
        "json" => LogFormat::Json,
        "text" => LogFormat::Text,
        _ => return Err(invalid("log_format", "expected auto, json or text")),
    };
    let host = get("host").0.trim().parse::<IpAddr>().map_err(|_| {
        invalid(
            "host",
            "expected an IP address such as 0.0.0.0 or 127.0.0.1",
        )
    })?;
    let port = int("port", 0, 65535)? as u16;
    let dir = |key: &str| -> Result<PathBuf, ConfigError> {
        let (value, _) = get(key);
        if value.trim().is_empty() {
            Err(invalid(key, "expected a directory path"))
        } else {
            Ok(PathBuf::from(value))
        }
    };
    let registry_dir = dir("registry_dir")?;
    let registry_dir_is_default = SETTINGS
        .iter()
        .find(|s| s.key == "registry_dir")
        .is_some_and(is_default);
    let log_dir = dir("log_dir")?;
    let seed_dir = Some(get("seed_dir").0)
        .filter(|d| !d.trim().is_empty())
        .map(PathBuf::from);
    let monitoring_token = Some(get("monitoring_token").0).filter(|t| !t.is_empty());
    if let Some(token) = &monitoring_token
        && let Err(reason) = check_token(token)
    {
        return Err(invalid("monitoring_token", reason));
    }
    let (token_file, token_file_source) = get("monitoring_token_file");
    let monitoring_token = match (monitoring_token, token_file.trim().is_empty()) {
        (token, true) => token,
        (Some(_), false) => {
            return Err(ConfigError::Conflict {
                first: get("monitoring_token").1,
                second: token_file_source,
            });
        }
        (None, false) => Some(read_token_file(&token_file_source, Path::new(&token_file))?),
    };

    Ok(Config {
        model_name,
        log_level,
        log_format,
        host,
        port,
        registry_dir,
        registry_dir_is_default,
        log_dir,
        seed_dir,
        monitoring_token,
        wasm_timeout: Duration::from_millis(int("wasm_timeout_ms", 1, 60_000)?),
        wasm_memory_bytes: (int("wasm_memory_mib", 1, 4095)? as usize) << 20,
        max_concurrency: int("max_concurrency", 1, 10_000)? as u32,
        poll_interval: Duration::from_millis(int("poll_interval_ms", 100, 3_600_000)?),
        watch_events: boolean("watch_events")?,
        max_body_bytes: int("max_body_bytes", 1024, 1 << 30)? as usize,
        request_timeout: Duration::from_millis(int("request_timeout_ms", 1, 3_600_000)?),
        queue_timeout: Duration::from_millis(int("queue_timeout_ms", 0, 600_000)?),
        max_batch_rows: int("max_batch_rows", 1, 100_000)? as usize,
        prediction_log: boolean("prediction_log")?,
        log_max_bytes: int("log_max_mib", 1, 1 << 20)? << 20,
        log_keep: int("log_keep", 0, 1000)? as u32,
        drift_window: int("drift_window", 1, 1_000_000)? as usize,
        drift_z_threshold: positive("drift_z_threshold")?,
        drift_psi_threshold: positive("drift_psi_threshold")?,
        shutdown_delay: Duration::from_millis(int("shutdown_delay_ms", 0, 600_000)?),
        drain_timeout: Duration::from_millis(int("drain_timeout_ms", 0, 600_000)?),
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
