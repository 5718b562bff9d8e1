//! `modelhost train`: the lab's pipeline end to end — data, checks, fit, metrics, gate — ending in
//! a versioned wasm artifact in the registry, promoted to `model.wasm` only if it passes the gate.
//!
//! What the model's data means — target, feature kinds, request ranges, case rules, clipping,
//! gate — comes from its [`mt::ModelSpec`] (the churn lab's `train/specs/churn.toml` unless
//! `--spec FILE` names another); this module names no column. The numbers come from the
//! `modelhost-train` crate; this module turns its fitted pipeline into
//! an ABI info document and an artifact, checks the artifact in the same sandbox the server uses,
//! and publishes it crash-safely (see [`registry::write_atomic`]). It never touches a running
//! server: servers notice the new `model.wasm` by themselves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use modelhost_abi::info::{
    FeatureKind, FeatureSpec, GoldenValue, ModelInfo, TASK_BINARY_CLASSIFICATION,
};
use modelhost_abi::params::FittedFeature as AbiFeature;
use modelhost_train as mt;
use serde::Serialize;

use super::CommandError;
use crate::artifact::build_artifact;
use crate::model::{Model, sha256_hex};
use crate::registry;
use crate::registry::records::{HistoryEvent, Source, TrainRecord, VersionRecord, field};
use crate::runtime::{Limits, Runtime};

mod report;

/// Rows the lab's generator makes unless `--synthetic N` says otherwise.
pub const DEFAULT_SYNTHETIC_ROWS: usize = 1200;

/// Where the training rows come from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// The lab's generator.
    Synthetic { n_rows: usize },
    /// A CSV file with a header row, and optionally a separate hold-out file.
    Csv {
        path: PathBuf,
        test_path: Option<PathBuf>,
    },
}

/// Everything `train` needs.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub registry_dir: PathBuf,
    pub model_name: String,
    pub source: DataSource,
    /// The model's spec, with any command-line changes applied.
    pub spec: mt::ModelSpec,
    pub seed: u64,
    /// Also write the (cleaned) training data here as CSV.
    pub export_data: Option<PathBuf>,
}

/// Why training stopped before anything was written. (`modelhost_train::TrainError` is the
/// fitting crate's own, narrower error; this one is the whole run's, and becomes a
/// [`CommandError`] at the command's edge.)
#[derive(Debug, thiserror::Error)]
pub enum TrainFailure {
    #[error("data check failed: {0}")]
    Data(String),
    #[error("{0}")]
    Fit(String),
    #[error("the trained artifact failed its own checks: {0}")]
    Artifact(String),
    #[error("registry {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// What a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    pub model_name: String,
    pub version: String,
    pub promoted: bool,
    pub gate: Gate,
    pub metrics: mt::Evaluation,
    pub sha256: String,
    pub artifact: PathBuf,
    pub size_bytes: usize,
    pub data: mt::DataSummary,
    pub n_train: usize,
    pub n_test: usize,
    /// True when an earlier run or publish had already stored this version (the same bytes):
    /// its `versions/<v>.json` was kept as it was, and this run is told by its history line.
    pub already_recorded: bool,
}

/// The quality gate and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub f1_min: f64,
    pub f1: f64,
    pub baseline_f1: f64,
    pub passed: bool,
}

/// The range requests are validated against: the spec's, when it declares one (the lab API's
/// for the churn columns); otherwise the training range widened by its own span on both sides.
fn feature_range(rule: Option<&mt::FeatureRule>, range: Option<&mt::NumericRange>) -> (f64, f64) {
    if let Some(declared) = rule.and_then(mt::FeatureRule::range) {
        return declared;
    }
    let (lo, hi) = range.map_or((0.0, 0.0), |r| (r.min, r.max));
    let span = (hi - lo).max(1.0);
    ((lo - span).floor(), (hi + span).ceil())
}

/// Loads, checks and cleans the data; restricts it to the spec's features in their order.
fn load_data(
    options: &TrainOptions,
    path: &Path,
) -> Result<(mt::Dataset, mt::DataSummary), TrainFailure> {
    let spec = &options.spec;
    let overrides = spec.kind_overrides();
    let mut raw = mt::read_csv(path, &spec.target, &overrides).map_err(|e| match e {
        // The spec's kinds are implied, not asked for: a column they name is simply missing.
        mt::DataError::UnknownOverride { column } if spec.feature(&column).is_some() => {
            TrainFailure::Data(format!(
                "{}: {}",
                path.display(),
                mt::DataError::MissingColumn { column }
            ))
        }
        e => TrainFailure::Data(format!("{}: {e}", path.display())),
    })?;
    raw.columns.retain(|c| spec.feature(&c.name).is_some());
    let (mut data, summary) = mt::clean_and_check(raw, spec)
        .map_err(|e| TrainFailure::Data(format!("{}: {e}", path.display())))?;
    data.columns
        .sort_by_key(|c| spec.features.iter().position(|f| f.name == c.name));
    Ok((data, summary))
}

/// The lab's synthetic data, restricted to the spec's features in their order; a feature the
/// generator does not make is a data error naming it.
fn synthetic_data(
    spec: &mt::ModelSpec,
    n_rows: usize,
    seed: u64,
) -> Result<mt::Dataset, TrainFailure> {
    let mut data = mt::synthetic_churn(n_rows, seed);
    let mut columns = Vec::with_capacity(spec.features.len());
    for feature in &spec.features {
        let Some(at) = data.columns.iter().position(|c| c.name == feature.name) else {
            return Err(TrainFailure::Data(format!(
                "--synthetic {n_rows}: the lab's generator makes {}, not the spec's feature `{}`",
                data.names().join(", "),
                feature.name
            )));
        };
        columns.push(data.columns.swap_remove(at));
    }
    data.columns = columns;
    Ok(data)
}

/// Fewest rows `train` accepts: with two of each class the stratified split leaves one of each
/// to fit on and one of each to evaluate on. Fewer rows is a data error naming the source, not
/// the misleading "only one class" the split would lead to.
pub const MIN_ROWS: usize = 4;

/// Runs the pipeline and publishes the result. Returns the outcome whether or not the gate
/// passed; nothing is written when an error is returned.
pub fn train(options: &TrainOptions) -> Result<TrainOutcome, TrainFailure> {
    let (data, summary, holdout) = match &options.source {
        DataSource::Synthetic { n_rows } => {
            let data = synthetic_data(&options.spec, *n_rows, options.seed)?;
            let summary = mt::DataSummary::of(&data);
            (data, summary, None)
        }
        DataSource::Csv { path, test_path } => {
            let (data, summary) = load_data(options, path)?;
            let holdout = match test_path {
                Some(test_path) => Some(load_data(options, test_path)?.0),
                None => None,
            };
            (data, summary, holdout)
        }
    };
    if data.n_rows() < MIN_ROWS {
        let source = match &options.source {
            DataSource::Synthetic { n_rows } => format!("--synthetic {n_rows}"),
            DataSource::Csv { path, .. } => path.display().to_string(),
        };
        return Err(TrainFailure::Data(format!(
            "{source}: {} too few to train and evaluate a model on; at least {MIN_ROWS} rows are needed",
            match data.n_rows() {
                1 => "1 row is".to_string(),
                n => format!("{n} rows are"),
            }
        )));
    }
    if let Some(path) = &options.export_data {
        mt::write_csv(&data, &options.spec.target, path)
            .map_err(|e| TrainFailure::Data(format!("cannot export to {}: {e}", path.display())))?;
    }
    let (train_rows, test_rows) = match holdout {
        Some(test) => (data.clone(), test),
        None => {
            let (train_idx, test_idx) = mt::stratified_split(&data.target, 0.25, options.seed);
            (data.subset(&train_idx), data.subset(&test_idx))
        }
    };
    if train_rows.target.iter().all(|t| *t == train_rows.target[0]) {
        return Err(TrainFailure::Data(format!(
            "the target column `{}` has only one class in the training rows",
            options.spec.target
        )));
    }
    let (fitted, metrics, threshold) = mt::run_pipeline(&train_rows, &test_rows, 1.0)
        .map_err(|e| TrainFailure::Fit(e.to_string()))?;
    let stats = mt::DatasetStats::from_dataset(&train_rows);

    let mut info = model_info(options, &fitted, &metrics, threshold, &stats);
    let (intercept, features) = abi_features(&fitted);
    let golden = golden_inputs(&test_rows);
    // The version is derived from everything the artifact says, so it is stable across runs.
    info.version = "pending".to_string();
    let provisional = build_artifact(&info, intercept, &features, &golden)
        .map_err(|e| TrainFailure::Artifact(e.to_string()))?;
    info.version = format!("v{}", &sha256_hex(&provisional)[..12]);
    let bytes = build_artifact(&info, intercept, &features, &golden)
        .map_err(|e| TrainFailure::Artifact(e.to_string()))?;
    let sha256 = sha256_hex(&bytes);

    // Check it exactly as a server would before anything reaches the registry.
    let runtime =
        Runtime::new(Limits::default()).map_err(|e| TrainFailure::Artifact(e.to_string()))?;
    Model::load(&runtime, &bytes, PathBuf::from("candidate.wasm"))
        .map_err(|e| TrainFailure::Artifact(e.to_string()))?;

    let f1_min = options.spec.gate.f1_min;
    let gate = Gate {
        f1_min,
        f1: metrics.f1,
        baseline_f1: metrics.baseline_f1,
        passed: metrics.f1 >= f1_min && metrics.f1 >= metrics.baseline_f1,
    };
    let outcome = TrainOutcome {
        model_name: options.model_name.clone(),
        version: info.version.clone(),
        promoted: gate.passed,
        gate,
        metrics,
        sha256,
        artifact: registry::version_path(&options.registry_dir, &options.model_name, &info.version),
        size_bytes: bytes.len(),
        data: summary,
        n_train: train_rows.n_rows(),
        n_test: test_rows.n_rows(),
        already_recorded: false,
    };
    let stored = publish_run(options, &outcome, &bytes)?;
    Ok(TrainOutcome {
        already_recorded: !stored.new_record,
        ..outcome
    })
}

fn model_info(
    options: &TrainOptions,
    fitted: &mt::FittedPipeline,
    metrics: &mt::Evaluation,
    threshold: f64,
    stats: &mt::DatasetStats,
) -> ModelInfo {
    let features = fitted
        .features
        .iter()
        .map(|feature| match feature {
            mt::FittedFeature::Numeric { name, kind, .. } => {
                let rule = options.spec.feature(name);
                let (min, max) = feature_range(rule, stats.ranges.get(name));
                let declared_number = rule.is_some_and(|r| r.kind == mt::SpecKind::Number);
                let kind = if *kind == mt::FeatureKind::Integer && !declared_number {
                    FeatureKind::Integer { min, max }
                } else {
                    FeatureKind::Number { min, max }
                };
                FeatureSpec {
                    name: name.clone(),
                    kind,
                }
            }
            mt::FittedFeature::Categorical {
                name, vocabulary, ..
            } => FeatureSpec {
                name: name.clone(),
                kind: FeatureKind::Categorical {
                    vocabulary: vocabulary.clone(),
                    case: options
                        .spec
                        .feature(name)
                        .map_or_else(Default::default, mt::FeatureRule::case_rule),
                },
            },
        })
        .collect();
    let mut metric_map = BTreeMap::new();
    metric_map.insert("accuracy".to_string(), metrics.accuracy);
    metric_map.insert("precision".to_string(), metrics.precision);
    metric_map.insert("recall".to_string(), metrics.recall);
    metric_map.insert("f1".to_string(), metrics.f1);
    if let Some(auc) = metrics.roc_auc {
        metric_map.insert("roc_auc".to_string(), auc);
    }
    metric_map.insert("baseline_f1".to_string(), metrics.baseline_f1);
    metric_map.insert("n_test".to_string(), metrics.n as f64);
    let training = stats.training.clone();
    ModelInfo {
        name: options.model_name.clone(),
        version: String::new(),
        task: TASK_BINARY_CLASSIFICATION.to_string(),
        features,
        outputs: vec!["probability".to_string()],
        threshold,
        training,
        metrics: metric_map,
        golden: Vec::new(),
        family: None,
    }
}

fn abi_features(fitted: &mt::FittedPipeline) -> (f64, Vec<AbiFeature>) {
    let features = fitted
        .features
        .iter()
        .map(|feature| match feature {
            mt::FittedFeature::Numeric {
                mean, scale, coef, ..
            } => AbiFeature::Numeric {
                mean: *mean,
                scale: *scale,
                coef: *coef,
            },
            mt::FittedFeature::Categorical { coefs, .. } => AbiFeature::Categorical {
                coefs: coefs.clone(),
            },
        })
        .collect();
    (fitted.intercept, features)
}

/// The first eight hold-out rows, plus one with an unseen category, as golden inputs.
fn golden_inputs(test: &mt::Dataset) -> Vec<Vec<GoldenValue>> {
    let to_golden = |cell: &mt::Cell<'_>| match cell {
        mt::Cell::Number(x) => GoldenValue::Number(*x),
        mt::Cell::Category(s) => GoldenValue::Category(s.to_string()),
    };
    let mut golden: Vec<Vec<GoldenValue>> = (0..test.n_rows().min(8))
        .map(|i| test.row(i).iter().map(to_golden).collect())
        .collect();
    if let Some(first) = golden.first() {
        let unseen = first
            .iter()
            .map(|v| match v {
                GoldenValue::Category(_) => GoldenValue::Category("unseen-category".to_string()),
                other => other.clone(),
            })
            .collect();
        golden.push(unseen);
    }
    golden
}

/// Writes `versions/<v>.wasm` and `versions/<v>.json` (unless the version is stored already:
/// an existing record is never rewritten), a `history.jsonl` line (the record, led by
/// `"event": "train"`), and — if the gate passed — `model.wasm`, each crash-safely and in that
/// order, so a crash at any point leaves the previous live model in place.
fn publish_run(
    options: &TrainOptions,
    outcome: &TrainOutcome,
    bytes: &[u8],
) -> Result<registry::Stored, TrainFailure> {
    let trained_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let source = match &options.source {
        DataSource::Synthetic { n_rows } => Source::Synthetic { synthetic: *n_rows },
        DataSource::Csv { path, test_path } => Source::Csv {
            csv: path,
            test_csv: test_path.as_deref(),
        },
    };
    let run = TrainRecord {
        model_name: Some(outcome.model_name.clone()),
        version: outcome.version.clone(),
        file: Some(format!("versions/{}.wasm", outcome.version)),
        sha256: Some(outcome.sha256.clone()),
        trained_at: Some(trained_at),
        seed: Some(options.seed),
        source: field(&source),
        data: field(&outcome.data),
        n_train: Some(outcome.n_train as u64),
        n_test: Some(outcome.n_test as u64),
        metrics: field(&outcome.metrics),
        gate: field(&outcome.gate),
        passed: Some(outcome.gate.passed),
        promoted: Some(outcome.promoted),
        extra: Default::default(),
    };
    let line = HistoryEvent::Train(run.clone());
    let record = VersionRecord::Train(run);
    registry::store_version(
        &options.registry_dir,
        &options.model_name,
        &registry::VersionWrite {
            version: &outcome.version,
            bytes,
            record: &record,
            history_line: &line,
            promote: outcome.promoted,
        },
    )
    .map_err(|(path, error)| TrainFailure::Io { path, error })
}

impl From<TrainFailure> for CommandError {
    /// A data check is a data error (exit 65); everything else is a failure (exit 1). The
    /// message is kept as it is.
    fn from(e: TrainFailure) -> Self {
        match e {
            TrainFailure::Data(_) => CommandError::Data(e.to_string()),
            _ => CommandError::Failed(e.to_string()),
        }
    }
}
