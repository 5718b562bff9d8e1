//! `modelhost drift`: the live `GET /monitoring/drift` check, offline over prediction logs, for a
//! CronJob or a person.
//!
//! Logs are files or directories: a directory contributes its own `predictions.log` and that of
//! each direct subdirectory (one per replica when every pod logs to `LOG_DIR/<pod>/`). From each
//! log the last `window` predictions are read (rotated `.1`, `.2`, … files too when the live one
//! holds fewer); the rows of all logs are ordered by their `ts` and the last `window` kept. The
//! training statistics come from the model: a wasm file, or the live model of a registry — then
//! only that model's lines count, as a server of several models logs them all in one file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CommandError, RegistryTarget};
use crate::registry;
use crate::telemetry::drift::{DriftReport, LoggedRow, Thresholds, drift_report, read_log_window};
use crate::telemetry::predlog::FILE_NAME;

/// Where the training statistics come from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A wasm file; every log line is read.
    File(PathBuf),
    /// The live `model.wasm` of a registry's model; only log lines of that model are read
    /// (and lines that name no model, written by a server of one model).
    Registry(RegistryTarget),
}

/// What `drift` needs.
#[derive(Debug, Clone)]
pub struct DriftOptions {
    /// Log files or directories.
    pub logs: Vec<PathBuf>,
    pub model: ModelSource,
    /// Predictions looked at (the most recent).
    pub window: usize,
    pub thresholds: Thresholds,
}

/// The report and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct DriftSummary {
    /// The model whose training statistics were used.
    pub model_path: PathBuf,
    /// The log files read.
    pub log_files: Vec<PathBuf>,
    /// Lines that were not prediction records (skipped).
    pub unparsed_lines: usize,
    #[serde(flatten)]
    pub report: DriftReport,
}

/// Runs the drift check. The report says whether drift was found; an error means no report.
pub fn drift(options: &DriftOptions) -> Result<DriftSummary, CommandError> {
    if options.logs.is_empty() {
        return Err(CommandError::Usage(
            "no prediction log given: pass --log FILE or --log DIR".to_string(),
        ));
    }
    let model_path = match &options.model {
        ModelSource::File(path) => path.clone(),
        ModelSource::Registry(target) => {
            registry::live_path(&target.registry_dir, &target.model_name)
        }
    };
    let runtime = super::runtime()?;
    let (_, model) = super::check_model(&model_path, &runtime)?;

    let only_model = match &options.model {
        ModelSource::File(_) => None,
        ModelSource::Registry(target) => Some(target.model_name.as_str()),
    };
    let mut log_files = Vec::new();
    for path in &options.logs {
        log_files.extend(log_files_in(path)?);
    }
    if log_files.is_empty() {
        return Err(CommandError::Data(format!(
            "no {FILE_NAME} found in {}",
            options
                .logs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut rows: Vec<LoggedRow> = Vec::new();
    let mut unparsed_lines = 0;
    for file in &log_files {
        let (mut found, unparsed) = read_log_window(file, options.window, only_model)
            .map_err(|e| CommandError::Data(format!("cannot read {}: {e}", file.display())))?;
        unparsed_lines += unparsed;
        rows.append(&mut found);
    }
    // Stable: rows of one file keep their order; files interleave by time.
    rows.sort_by_key(|row| row.ts.unwrap_or(0));
    let excess = rows.len().saturating_sub(options.window);
    let recent: Vec<_> = rows.into_iter().skip(excess).map(|r| r.features).collect();
    let report = drift_report(model.info(), &recent, options.window, options.thresholds);
    Ok(DriftSummary {
        model_path,
        log_files,
        unparsed_lines,
        report,
    })
}

/// `path` itself if it is a file; for a directory, its `predictions.log` and those one level
/// down.
fn log_files_in(path: &Path) -> Result<Vec<PathBuf>, CommandError> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| CommandError::Data(format!("cannot read {}: {e}", path.display())))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let own = path.join(FILE_NAME);
    if own.is_file() {
        files.push(own);
    }
    let entries = std::fs::read_dir(path).map_err(CommandError::io(path))?;
    let mut nested = Vec::new();
    for entry in entries {
        let entry = entry.map_err(CommandError::io(path))?;
        let candidate = entry.path().join(FILE_NAME);
        if entry.path().is_dir() && candidate.is_file() {
            nested.push(candidate);
        }
    }
    nested.sort();
    files.extend(nested);
    Ok(files)
}

impl super::Report for DriftSummary {
    fn exit(&self) -> super::Exit {
        if self.report.drift {
            super::Exit::Drift
        } else {
            super::Exit::Success
        }
    }
}

impl fmt::Display for DriftSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = &self.report;
        writeln!(
            f,
            "model {} {} ({}); {} predictions of a window of {} from {} log file(s)",
            report.model_name,
            report.model_version,
            self.model_path.display(),
            report.n_predictions,
            report.window,
            self.log_files.len()
        )?;
        let figure = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
        let flag = |alert: bool| if alert { "  ALERT" } else { "" };
        for (name, d) in &report.numeric {
            writeln!(
                f,
                "  {name:<24} z   = {:>7}  (recent mean {}, train mean {:.3}, std {:.3}){}",
                figure(d.z),
                figure(d.mean_recent),
                d.mean_train,
                d.std_train,
                flag(d.alert)
            )?;
        }
        for (name, d) in &report.categorical {
            writeln!(
                f,
                "  {name:<24} psi = {:>7}{}",
                figure(d.psi),
                flag(d.alert)
            )?;
        }
        if self.unparsed_lines > 0 {
            writeln!(
                f,
                "  ({} line(s) were not prediction records and were skipped)",
                self.unparsed_lines
            )?;
        }
        if report.drift {
            write!(
                f,
                "drift: {} (z >= {}, psi >= {})",
                report.alerts.join(", "),
                report.thresholds.z,
                report.thresholds.psi
            )
        } else {
            write!(f, "no drift")
        }
    }
}
