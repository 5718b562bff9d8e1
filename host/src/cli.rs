//! The command line: subcommands and the `serve` flags, which are generated from
//! [`config::SETTINGS`](crate::config::SETTINGS) so that a flag, its environment variable and its
//! default are declared once.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::commands::drift::{DriftOptions, ModelSource};
use crate::commands::import::ImportOptions;
use crate::commands::predict::PredictOptions;
use crate::commands::publish::PublishOptions;
use crate::commands::rollback::RollbackOptions;
use crate::commands::train::{DEFAULT_SYNTHETIC_ROWS, DataSource, TrainOptions};
use crate::commands::{CommandError, Exit, RegistryTarget};
use crate::config::kinds::{Kind, Positive};
use crate::config::{DECLARED, Flags, SETTINGS};
use crate::telemetry::drift::Thresholds;
use modelhost_train::{ModelSpec, SpecOverrides};

/// Serve machine-learning models compiled to WebAssembly.
///
/// Models are `model.wasm` files in a registry directory (REGISTRY_DIR/MODEL_NAME/model.wasm).
/// The server runs the selected one in a sandbox, answers POST /predict on port 8000, and
/// switches to a new artifact as soon as a complete, valid one lands in the registry.
#[derive(Debug, Parser)]
#[command(
    name = "modelhost",
    version,
    args_conflicts_with_subcommands = true,
    after_help = exit_help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve` is the default subcommand: its flags are accepted without it.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the model REGISTRY_DIR/MODEL_NAME/model.wasm over HTTP (the default).
    ///
    /// Settings come from defaults < --config FILE < environment < flags.
    /// A bad setting exits with status 64 and one line naming it.
    Serve(ServeArgs),
    /// Check a wasm file against the model ABI without serving it, and print its info.
    ///
    /// Runs every check the server runs before a model may serve: file type, imports, start
    /// function, exports, ABI version, info document, compile and self-test. Exits 0 if the
    /// server would accept the file, 1 with the reason if it would refuse it.
    Inspect(InspectArgs),
    /// Train a model (the churn lab's pipeline) and publish it into the registry.
    ///
    /// What the data means comes from a model spec (TOML, docs/SPEC.md): the target column;
    /// each feature's kind (numeric, integer, number, categorical, auto), the range requests
    /// are validated against (min, max), clipping (clip_min, clip_max) and case rule (lower,
    /// upper, keep); the gate (f1_min). Without --spec it is the lab's churn spec
    /// (train/specs/churn.toml, built in); --target, --features, --numeric, --categorical and
    /// --gate-f1 change the spec for one run.
    ///
    /// Data: --synthetic N (the lab's generator) or --data FILE.csv. Cleaning and checks as the
    /// lab: values clipped and categories case-normalised as the spec says, required columns
    /// present, at most 5 % nulls per column, numeric columns numeric. Fit: standardisation + one-hot +
    /// L2 logistic regression (C = 1). The decision threshold is tuned for F1 on the training
    /// rows; metrics are measured on the hold-out (--test-data, or a stratified 25 % split).
    ///
    /// Every run writes versions/<v>.wasm, versions/<v>.json and a history.jsonl line. If F1 >=
    /// --gate-f1 and >= the always-0 baseline, model.wasm is replaced atomically and running
    /// servers switch to it.
    ///
    /// Exit status: 0 trained and promoted; 4 trained and recorded, but refused by the gate
    /// (live model unchanged); 65 a data check failed (nothing written); 64 bad arguments;
    /// 1 any other error (nothing promoted).
    Train(Box<TrainArgs>),
    /// Make an earlier version the live model.wasm again.
    ///
    /// Without --to: undo the last promotion, i.e. promote the version that was live before the
    /// current one. The current one is identified by the sha256 of model.wasm; "before" comes
    /// from replaying history.jsonl (promoted train runs and publishes push a version, a
    /// rollback to the version below pops it), so repeated rollbacks walk further back instead
    /// of toggling. With --to VERSION: promote that version (any in versions/, promoted before
    /// or not).
    ///
    /// The version's file must match its recorded sha256 and pass the server's load checks;
    /// then model.wasm is replaced atomically and a {"event":"rollback",...} line is appended to
    /// history.jsonl. Running servers switch to it by themselves.
    ///
    /// Exit status: 0 rolled back (or the version was already live: nothing written); 64 --to
    /// names an unknown version (the message lists the known ones) or bad arguments; 1 nothing
    /// to roll back to, the version's file is missing, corrupt or refused, or a registry I/O
    /// error (model.wasm unchanged).
    Rollback(RollbackArgs),
    /// List the model's history (one row per training run, publish or rollback) with F1,
    /// ROC AUC, gate verdict and promotion; the live model is marked with `*`.
    ///
    /// The live model is the version whose recorded sha256 equals that of model.wasm, so a
    /// hand-copied or unrecorded model.wasm is reported as such. Writes nothing.
    ///
    /// Exit status: 0 listed; 64 the model has no folder in the registry or bad arguments;
    /// 1 the registry could not be read.
    Versions(VersionsArgs),
    /// Publish a model.wasm built elsewhere: check it, store it as a version, promote it.
    ///
    /// The file is checked exactly like `inspect` (ABI, compile, info document, self-test in
    /// the sandbox); its info name must equal --model-name and its info version must not
    /// already name a different file. Then versions/<version>.wasm and versions/<version>.json
    /// (sha256, source path, published_at, the model's own metrics), a history.jsonl line and
    /// finally model.wasm are written, each atomically (temp file + fsync + rename): an
    /// interrupted publish leaves the previous model live and complete. A model.wasm.sha256
    /// beside model.wasm, if there is one, is rewritten to match (as by train and rollback).
    /// This is the safe way to "drop in a model.wasm".
    ///
    /// Exit status: 0 published and promoted (or these exact bytes were already live: nothing
    /// written); 65 the file is unreadable, refused by the checks, or named or versioned wrongly
    /// (nothing written); 64 bad arguments; 1 a registry write failed (model.wasm unchanged).
    Publish(PublishArgs),
    /// Import a model trained elsewhere: an XGBoost or LightGBM model becomes a sandboxed
    /// model.wasm (the tree kernel, the model's trees in its data).
    ///
    /// Export the model first:
    ///   XGBoost (binary:logistic, gbtree): booster.save_model("model.json") or
    ///     XGBClassifier().fit(...).save_model("model.json")  (JSON, not .ubj)
    ///   LightGBM (objective binary): LGBMClassifier().fit(...).booster_.save_model("model.txt")
    ///     or booster.save_model("model.txt")
    /// The format is told from the content (a JSON "learner"; a "tree" / "version=v" header);
    /// --format forces it. The schema is the model's feature names (XGBoost feature_names,
    /// LightGBM feature_names=), every feature a number of any value; --spec FILE.toml adds
    /// ranges (min, max) and integer kinds for the features it names, so requests outside them
    /// get 422s as for a trained model.
    /// Categorical splits, multi-class models, other objectives, dart and linear trees are
    /// refused with the reason; so are files over 64 MiB, more than 10000 trees or 1000000
    /// nodes, paths deeper than 128, cycles, dangling children and non-finite values, each
    /// naming the tree and the node. Probabilities agree with the framework's predict_proba.
    ///
    /// With --output FILE.wasm the artifact is written there. Otherwise it is checked like
    /// `publish` (the server's load checks and self-test), named --model-name, and stored and
    /// promoted in REGISTRY_DIR/MODEL_NAME/ exactly as publish stores a file, with an
    /// {"event":"import",...} history line.
    ///
    /// Exit status: 0 imported; 65 the file is unreadable, not an importable model, or refused
    /// (nothing written); 64 bad arguments; 1 a write failed or the artifact was refused.
    #[command(verbatim_doc_comment)]
    Import(ImportArgs),
    /// Score a CSV or JSONL file in batch through the same sandbox and checks as POST /predict.
    ///
    /// The model is checked like `inspect`. Input: a CSV file with a header row (cells of
    /// numeric features are read as numbers, others as strings, empty cells as missing) or one
    /// JSON object per line, told by the extension (.csv, .jsonl, .ndjson) or --format. Rows
    /// are validated like /predict requests and scored 1000 per model call. Output: one JSON
    /// line per input row, in input order, with the /predict fields (request_id from the row,
    /// else "row-<n>"; model_version; prediction; probability; latency_ms, the row's share of
    /// its batch; features; ts). An invalid row gives {"row": n, "error": "row n: field ...",
    /// "fields": [...]} in its place and the run goes on, each field named as in a 422 answer
    /// ({"loc": [n, field], "field", "type", "msg"}); rows are 1-based data rows (CSV records
    /// after the header, JSONL line numbers).
    ///
    /// Exit status: 0 every row scored; 65 at least one row was invalid (all lines written, the
    /// first errors are listed on stderr), or the model or input file is unreadable or refused;
    /// 64 bad arguments or an unknown input format; 1 the output could not be written or a
    /// model call failed (no output file is left behind).
    Predict(PredictArgs),
    /// Check the inputs of recent predictions against the model's training statistics.
    ///
    /// The offline form of GET /monitoring/drift, for a CronJob. Reads the last --window
    /// predictions from prediction logs (--log FILE, or --log DIR for DIR/predictions.log and
    /// DIR/*/predictions.log, one per replica; rotated .1, .2, ... files are read when needed)
    /// and compares them with the training statistics inside the model (--model FILE.wasm, else
    /// the live model of REGISTRY_DIR/MODEL_NAME). Numeric features: z = |mean_recent -
    /// mean_train| / std_train, alert at z >= --z-threshold. Categorical features: population
    /// stability index against training frequencies, alert at psi >= --psi-threshold.
    ///
    /// Exit status: 0 no drift; 3 drift found (the report names the features); 65 no log or
    /// an unreadable log or model; 64 bad arguments; 1 any other error.
    Drift(DriftArgs),
}

/// Where a model's registry folder is.
///
/// `hide_env_values`: clap otherwise renders the variable's current value into the help, as
/// `[env: REGISTRY_DIR=]` when it is unset; the help names the variable, as `serve --help` does.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Registry directory.
    #[arg(
        long,
        alias = "registry",
        env = DECLARED.registry_dir.env,
        hide_env_values = true,
        default_value = DECLARED.registry_dir.default
    )]
    pub registry_dir: PathBuf,
    /// Model name: the model's files are in REGISTRY_DIR/MODEL_NAME/.
    #[arg(
        long,
        env = DECLARED.model_name.env,
        hide_env_values = true,
        default_value = DECLARED.model_name.default
    )]
    pub model_name: String,
}

/// The exit statuses, listed under `modelhost --help`.
fn exit_help() -> String {
    format!("Exit status:\n{}", Exit::table())
}

impl RegistryArgs {
    /// As the library takes it.
    pub fn target(&self) -> RegistryTarget {
        RegistryTarget {
            registry_dir: self.registry_dir.clone(),
            model_name: self.model_name.clone(),
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Promote this version instead of the previous one.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Print a JSON report instead of the human one.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct VersionsArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print the listing as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// The wasm file to publish.
    #[arg(value_name = "FILE.wasm")]
    pub file: PathBuf,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON report instead of the human one.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The model file: XGBoost JSON (model.json) or LightGBM text (model.txt).
    #[arg(value_name = "MODEL_FILE")]
    pub file: PathBuf,
    /// The format, instead of telling it from the content.
    #[arg(long, value_enum)]
    pub format: Option<crate::import::Format>,
    /// Write the artifact to this file instead of storing it in the registry.
    #[arg(long, value_name = "FILE.wasm")]
    pub output: Option<PathBuf>,
    /// A model spec (TOML, docs/SPEC.md): its features' min/max become the request ranges and
    /// kind "integer" an integer feature; every spec feature must be one of the model's.
    #[arg(long, value_name = "FILE.toml")]
    pub spec: Option<PathBuf>,
    /// The registry, and the name the model is given (its info name).
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON report instead of the human one.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PredictArgs {
    /// The model to score with.
    #[arg(long, value_name = "FILE.wasm")]
    pub model: PathBuf,
    /// The rows to score.
    #[arg(long, value_name = "FILE.csv|FILE.jsonl")]
    pub input: PathBuf,
    /// Write the JSON lines here (atomically, when complete) instead of to standard output.
    #[arg(long, value_name = "FILE.jsonl")]
    pub output: Option<PathBuf>,
    /// Input format, if the extension does not tell.
    #[arg(long, value_enum)]
    pub format: Option<crate::commands::predict::InputFormat>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Where to publish: artifacts go to REGISTRY_DIR/MODEL_NAME/.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Training data: a CSV file with a header row.
    #[arg(long, value_name = "FILE.csv", conflicts_with = "synthetic")]
    pub data: Option<PathBuf>,
    /// Hold-out data; when given, training uses all of --data and metrics come from this file.
    #[arg(long, value_name = "FILE.csv", requires = "data")]
    pub test_data: Option<PathBuf>,
    /// Generate N rows with the lab's synthetic churn generator (the default source).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SYNTHETIC_ROWS)]
    pub synthetic: usize,
    /// Seed for the generator and the train/test split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The model spec (TOML): target, features with kind, range, clipping and case rule, gate
    /// (default: the churn lab's, train/specs/churn.toml).
    #[arg(long, value_name = "FILE.toml")]
    pub spec: Option<PathBuf>,
    /// Target column (0/1) (default: the spec's).
    #[arg(long)]
    pub target: Option<String>,
    /// Feature columns, in order (comma-separated; default: the spec's). A feature the spec
    /// declares keeps its rules; another has its kind inferred from the data.
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Treat these columns as numeric (an error names any non-numeric value).
    #[arg(long, value_name = "COL", value_delimiter = ',')]
    pub numeric: Vec<String>,
    /// Treat these columns as categorical even if they look numeric.
    #[arg(long, value_name = "COL", value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Minimum hold-out F1 for promotion (default: the spec's gate, 0.70 for churn).
    #[arg(long)]
    pub gate_f1: Option<f64>,
    /// Also write the training data (after cleaning) to this CSV file.
    #[arg(long, value_name = "FILE.csv")]
    pub export_data: Option<PathBuf>,
    /// Print a JSON summary instead of the human one.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// The wasm file to check.
    pub file: PathBuf,
    /// Print the full report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// KServe's spellings of three `serve` flags, as its serving runtimes pass them
/// (`--model_name={{.Name}}`, `--model_dir=/mnt/models`, `--http_port=8080`: Python argparse's
/// underscores): (setting key, flag). They are other spellings of existing settings, not
/// settings of their own, so each is a clap alias of the setting's flag, listed beside it in
/// `--help`, with no environment variable, TOML key or README row of its own to keep apart.
pub const KSERVE_FLAGS: &[(&str, &str)] = &[
    ("model_name", "model_name"),
    ("model_dir", "model_dir"),
    ("port", "http_port"),
];

/// The `serve` flags: `--config` plus one flag per setting.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    /// TOML file with settings (keys as in `--help`, with underscores).
    pub config: Option<PathBuf>,
    /// Settings given as flags, by key.
    pub flags: Flags,
}

impl Args for ServeArgs {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        cmd = cmd.arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("TOML file with settings; keys are the flag names with '_' for '-'"),
        );
        for setting in SETTINGS {
            let default = if setting.default.is_empty() {
                String::new()
            } else {
                format!(" [default: {}]", setting.default)
            };
            let aliases = KSERVE_FLAGS
                .iter()
                .filter(|(key, _)| *key == setting.key)
                .map(|(_, alias)| *alias);
            cmd = cmd.arg(
                Arg::new(setting.key)
                    .long(setting.long())
                    .visible_aliases(aliases)
                    .value_name(setting.env)
                    .help(format!("{} [env: {}]{default}", setting.help, setting.env)),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(path) = matches.get_one::<PathBuf>("config") {
            self.config = Some(path.clone());
        }
        for setting in SETTINGS {
            if let Some(value) = matches.get_one::<String>(setting.key) {
                self.flags.insert(setting.key, value.clone());
            }
        }
        Ok(())
    }
}

impl Cli {
    /// The subcommand to run, `serve` when none was named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct DriftArgs {
    /// A prediction log, or a directory holding predictions.log or <replica>/predictions.log.
    /// Repeatable.
    #[arg(long = "log", value_name = "PATH", required = true)]
    pub logs: Vec<PathBuf>,
    /// The model whose training statistics to compare with: a wasm file (a path ending in
    /// `.wasm` or holding a `/`; every log line counts), or a model's name in the registry (only
    /// its log lines count). Default: the live model of --model-name, whose lines count.
    #[arg(long, value_name = "FILE.wasm|NAME")]
    pub model: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Most recent predictions to look at.
    #[arg(long, default_value_t = crate::telemetry::drift::DEFAULT_WINDOW, value_parser = window)]
    pub window: usize,
    /// z at or above which a numeric feature alerts.
    #[arg(long, default_value_t = crate::telemetry::drift::DEFAULT_Z_THRESHOLD, value_parser = positive)]
    pub z_threshold: f64,
    /// Population stability index at or above which a categorical feature alerts.
    #[arg(long, default_value_t = crate::telemetry::drift::DEFAULT_PSI_THRESHOLD, value_parser = positive)]
    pub psi_threshold: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn window(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a whole number of at least 1, got {text:?}"
        )),
    }
}

/// A threshold, read as the server's drift thresholds are ([`Positive`]).
fn positive(text: &str) -> Result<f64, String> {
    Positive::parse(text).map_err(|reason| format!("{reason}, got {text:?}"))
}

// Each command's arguments as its library function takes them.

impl RollbackArgs {
    pub fn options(&self) -> RollbackOptions {
        RollbackOptions {
            target: self.registry.target(),
            to: self.to.clone(),
        }
    }
}

impl PublishArgs {
    pub fn options(&self) -> PublishOptions {
        PublishOptions {
            target: self.registry.target(),
            file: self.file.clone(),
        }
    }
}

impl ImportArgs {
    pub fn options(&self) -> ImportOptions {
        ImportOptions {
            file: self.file.clone(),
            format: self.format,
            output: self.output.clone(),
            target: self.registry.target(),
            spec: self.spec.clone(),
        }
    }
}

impl PredictArgs {
    pub fn options(&self) -> PredictOptions {
        PredictOptions {
            model: self.model.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
            format: self.format,
        }
    }
}

impl DriftArgs {
    pub fn options(&self) -> DriftOptions {
        DriftOptions {
            logs: self.logs.clone(),
            model: match &self.model {
                Some(file)
                    if file.ends_with(".wasm") || file.contains(std::path::MAIN_SEPARATOR) =>
                {
                    ModelSource::File(PathBuf::from(file))
                }
                Some(name) => ModelSource::Registry(RegistryTarget {
                    model_name: name.clone(),
                    ..self.registry.target()
                }),
                None => ModelSource::Registry(self.registry.target()),
            },
            window: self.window,
            thresholds: Thresholds {
                z: self.z_threshold,
                psi: self.psi_threshold,
            },
        }
    }
}

impl TrainArgs {
    /// The options: the spec (`--spec`, or the churn lab's) with this run's changes applied,
    /// or a usage error naming `--gate-f1` when it is not a number from 0 to 1, or the spec's
    /// file, feature and field when the spec is wrong.
    pub fn options(&self) -> Result<TrainOptions, CommandError> {
        if let Some(gate_f1) = self.gate_f1
            && !(0.0..=1.0).contains(&gate_f1)
        {
            return Err(CommandError::Usage(format!(
                "invalid --gate-f1={gate_f1}: expected a number from 0 to 1"
            )));
        }
        let source = match &self.data {
            Some(path) => DataSource::Csv {
                path: path.clone(),
                test_path: self.test_data.clone(),
            },
            None => DataSource::Synthetic {
                n_rows: self.synthetic,
            },
        };
        let spec = match &self.spec {
            Some(path) => ModelSpec::read(path),
            None => Ok(ModelSpec::churn()),
        };
        let overrides = SpecOverrides {
            target: self.target.clone(),
            features: self.features.clone(),
            numeric: self.numeric.clone(),
            categorical: self.categorical.clone(),
            gate_f1: self.gate_f1,
        };
        let spec = spec
            .and_then(|spec| spec.with_overrides(&overrides))
            .map_err(|e| CommandError::Usage(e.to_string()))?;
        Ok(TrainOptions {
            registry_dir: self.registry.registry_dir.clone(),
            model_name: self.registry.model_name.clone(),
            source,
            spec,
            seed: self.seed,
            export_data: self.export_data.clone(),
        })
    }
}
