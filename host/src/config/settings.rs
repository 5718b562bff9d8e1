//! The declarations: every setting once, in the [`settings!`] table, and what is generated from
//! it (see the [parent module](super)). Adding a setting is one line here plus the field of
//! [`Config`](super::Config) it becomes in [`resolve`](super::resolve).

use super::kinds::{
    self, Dir, Flag, Format, Int, Ip, Kind, LogFilter, ModelName, ModelNames, OptionalPath,
    Positive, Token,
};
use super::{ConfigError, Sources};

/// One setting's declaration: its names in each layer, default, help and what it accepts.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Key in the TOML file; the flag is the key with `-` for `_` ([`Setting::flag`]).
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Default value, as text (empty: unset).
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Whether the value is a secret, never to be printed.
    pub secret: bool,
    /// What a valid value looks like (from its [`Kind`]).
    pub accepts: fn() -> String,
}

impl Setting {
    /// The `serve` flag's long name: the key with `-` for `_`.
    pub fn long(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The `serve` flag as typed: `--` and [`Setting::long`].
    pub fn flag(&self) -> String {
        format!("--{}", self.long())
    }
}

/// Declares every setting once: `key: Kind = default, env "VAR", help "...";`. Generates
/// [`Settings`] (a typed field per setting), [`Defaults`]/[`DEFAULTS`] (the typed defaults),
/// [`Declarations`]/[`DECLARED`] (each [`Setting`] by name) and [`SETTINGS`] (all of them, in
/// order). The default is a literal, written here only: its text (in `--help`, the README,
/// resolution) is the literal's, and code that needs the value reads `DEFAULTS.key`.
macro_rules! settings {
    ($( $key:ident: $kind:ty = $default:literal, env $env:literal, help $help:literal; )*) => {
        /// Every setting's validated value, by key.
        #[derive(Debug)]
        pub struct Settings {
            $( #[doc = $help] pub $key: <$kind as Kind>::Value, )*
        }

        /// Every setting's default, by key, as declared.
        #[derive(Debug, Clone, Copy)]
        pub struct Defaults {
            $( #[doc = $help] pub $key: <$kind as Kind>::Literal, )*
        }

        /// The defaults of [`SETTINGS`].
        pub const DEFAULTS: Defaults = Defaults { $( $key: $default, )* };

        /// Every setting's declaration, by key.
        #[derive(Debug, Clone, Copy)]
        pub struct Declarations {
            $( #[doc = $help] pub $key: Setting, )*
        }

        /// The declarations of [`SETTINGS`], by key.
        pub const DECLARED: Declarations = Declarations {
            $( $key: Setting {
                key: stringify!($key),
                env: $env,
                default: kinds::unquote(stringify!($default)),
                help: $help,
                secret: <$kind as Kind>::SECRET,
                accepts: <$kind as Kind>::accepts,
            }, )*
        };

        /// Every setting `serve` reads, in the order `--help` and the README list them.
        pub const SETTINGS: &[Setting] = &[ $( DECLARED.$key, )* ];

        impl Settings {
            /// Each setting from the layer that sets it, parsed by its kind; the first bad one
            /// is the error.
            pub(super) fn parse(sources: &Sources<'_>) -> Result<Settings, ConfigError> {
                Ok(Settings { $( $key: sources.parse::<$kind>(&DECLARED.$key)?, )* })
            }
        }
    };
}

settings! {
    model_name: ModelName = "churn", env "MODEL_NAME",
        help "model to serve: REGISTRY_DIR/MODEL_NAME/model.wasm";
    model_names: ModelNames = "", env "MODEL_NAMES",
        help "more models to serve beside MODEL_NAME (the default model, always served), each at /models/NAME/ and /v2/models/NAME/: a comma-separated list, or `*` for every folder of REGISTRY_DIR holding a model.wasm (unset: MODEL_NAME only)";
    registry_dir: Dir = "./registry", env "REGISTRY_DIR",
        help "directory holding one folder per model";
    model_dir: OptionalPath = "", env "MODELHOST_MODEL_DIR",
        help "the model's own directory, holding model.wasm directly (KServe's /mnt/models), served as MODEL_NAME instead of REGISTRY_DIR/MODEL_NAME and never written; replaces REGISTRY_DIR and MODELHOST_SEED_DIR from the environment (unset or empty: REGISTRY_DIR/MODEL_NAME)";
    log_dir: Dir = "./logs", env "LOG_DIR",
        help "directory for the prediction log";
    seed_dir: OptionalPath = "", env "MODELHOST_SEED_DIR",
        help "registry to copy MODEL_NAME's model.wasm from at startup when REGISTRY_DIR has none (unset or empty: no seeding)";
    host: Ip = "0.0.0.0", env "HOST",
        help "address to listen on";
    port: Int<0, 65535> = 8000, env "PORT",
        help "TCP port to listen on (0 picks a free one)";
    log_level: LogFilter = "info", env "LOG_LEVEL",
        help "log level or tracing filter directives (e.g. `info,modelhost=debug`)";
    log_format: Format = "auto", env "LOG_FORMAT",
        help "log format: auto (JSON unless on a terminal), json or text";
    monitoring_token: Token = "", env "MONITORING_TOKEN",
        help "bearer token required by /metrics and /monitoring/* (unset: open)";
    monitoring_token_file: OptionalPath = "", env "MONITORING_TOKEN_FILE",
        help "file holding the bearer token for /metrics and /monitoring/*, read at startup (one trailing newline ignored), e.g. a mounted Secret; not together with MONITORING_TOKEN";
    wasm_timeout_ms: Int<1, 60000> = 50, env "MODELHOST_WASM_TIMEOUT_MS",
        help "time limit of one wasm call, in milliseconds";
    wasm_memory_mib: Int<1, 4095> = 64, env "MODELHOST_WASM_MEMORY_MIB",
        help "memory limit of one wasm instance, in MiB";
    max_concurrency: Int<1, 10000> = 64, env "MODELHOST_MAX_CONCURRENCY",
        help "wasm calls that may run at once";
    poll_interval_ms: Int<100, 3600000> = 2000, env "MODELHOST_POLL_INTERVAL_MS",
        help "how often the registry is polled for a new model, in milliseconds";
    watch_events: Flag = true, env "MODELHOST_WATCH_EVENTS",
        help "also watch the model folder for file-system events: true, or false to poll only";
    max_body_bytes: Int<1024, 1073741824> = 1048576, env "MODELHOST_MAX_BODY_BYTES",
        help "largest accepted request body, in bytes";
    request_timeout_ms: Int<1, 3600000> = 10000, env "MODELHOST_REQUEST_TIMEOUT_MS",
        help "longest one HTTP request may take (body, queue and model call) before it is answered 408, in milliseconds";
    queue_timeout_ms: Int<0, 600000> = 1000, env "MODELHOST_QUEUE_TIMEOUT_MS",
        help "longest a prediction waits for a free wasm slot before it is answered 503 with Retry-After, in milliseconds (0: at once)";
    max_batch_rows: Int<1, 100000> = 1000, env "MODELHOST_MAX_BATCH_ROWS",
        help "most rows one batch request may hold (POST /predict with instances, v2 infer)";
    prediction_log: Flag = true, env "MODELHOST_PREDICTION_LOG",
        help "append one JSON line per answered prediction to LOG_DIR/predictions.log: true or false";
    log_max_mib: Int<1, 1048576> = 50, env "MODELHOST_LOG_MAX_MIB",
        help "rotate the prediction log when it would grow past this many MiB";
    log_keep: Int<0, 1000> = 5, env "MODELHOST_LOG_KEEP",
        help "rotated prediction logs kept (predictions.log.1 ... .N)";
    drift_window: Int<1, 1000000> = 200, env "MODELHOST_DRIFT_WINDOW",
        help "predictions the live drift report (/monitoring/drift) looks at";
    drift_z_threshold: Positive = 2.5, env "MODELHOST_DRIFT_Z_THRESHOLD",
        help "z = |mean_recent - mean_train| / std_train at or above which a numeric feature alerts";
    drift_psi_threshold: Positive = 0.2, env "MODELHOST_DRIFT_PSI_THRESHOLD",
        help "population stability index at or above which a categorical feature alerts";
    shutdown_delay_ms: Int<0, 600000> = 3000, env "MODELHOST_SHUTDOWN_DELAY_MS",
        help "on SIGTERM, milliseconds /ready answers 503 before the listener closes";
    drain_timeout_ms: Int<0, 600000> = 20000, env "MODELHOST_DRAIN_TIMEOUT_MS",
        help "on SIGTERM, milliseconds in-flight requests get to finish after the listener closed";
}

/// The README's settings table: one row per setting, in declaration order. A test compares it
/// with the README, so the documentation cannot drift from the declarations.
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| env | flag / TOML key | default | accepts | what it sets |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            "unset".to_string()
        } else {
            format!("`{}`", s.default)
        };
        table.push_str(&format!(
            "| `{}` | `{}` / `{}` | {default} | {} | {} |\n",
            s.env,
            s.flag(),
            s.key,
            (s.accepts)(),
            s.help.replace('|', "\\|")
        ));
    }
    table
}
