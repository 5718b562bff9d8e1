//! `modelhost inspect FILE`: run every load-time check on an artifact without serving it.
//!
//! [`check_file`] is the one definition of "a file the server would accept"; `publish` and
//! `predict` use it too, so a model is never stored or run on weaker checks than the server's.

use std::fmt;
use std::path::{Path, PathBuf};

use modelhost_abi::info::{FeatureKind, ModelInfo};
use serde::Serialize;

use super::{CommandError, Report};

use crate::model::Model;
use crate::registry;
use crate::runtime::Limits;
use crate::runtime::{LoadError, Runtime};

/// Why a file would not be accepted as a model. The message says the cause; it is not also
/// exposed as a source, so printing the chain says it once (see [`crate::error::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file could not be read (or is larger than any artifact may be).
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file was read but fails a load-time check.
    #[error("{} would be refused ({}): {error}", path.display(), error.reason())]
    Refused { path: PathBuf, error: LoadError },
}

/// Reads `path` and loads it exactly as the server would (ABI checks, compile, info, self-test).
/// Returns the bytes and the loaded model.
pub fn check_file(path: &Path, runtime: &Runtime) -> Result<(Vec<u8>, Model), CheckError> {
    let bytes = registry::read_artifact(path).map_err(|error| CheckError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let model =
        Model::load(runtime, &bytes, path.to_path_buf()).map_err(|error| CheckError::Refused {
            path: path.to_path_buf(),
            error,
        })?;
    Ok((bytes, model))
}

/// What `inspect` found: the file would be accepted, and what it says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    pub path: PathBuf,
    pub sha256: String,
    pub size_bytes: u64,
    pub abi_version: i32,
    pub self_test: String,
    pub info: ModelInfo,
}

impl Report for InspectReport {}

/// Checks `path` (see [`check_file`]) and returns its report; an error (exit 1) names the reason
/// the host would refuse it.
pub fn inspect(path: &Path, limits: Limits) -> Result<InspectReport, CommandError> {
    let failed = |e: &dyn std::error::Error| CommandError::Failed(crate::error::chain(e));
    let runtime = Runtime::new(limits).map_err(|e| failed(e.as_ref()))?;
    let (_, model) = check_file(path, &runtime).map_err(|e| failed(&e))?;
    let info = model.info();
    Ok(InspectReport {
        path: path.to_path_buf(),
        sha256: model.sha256.clone(),
        size_bytes: model.size_bytes,
        abi_version: modelhost_abi::ABI_VERSION,
        self_test: format!("passed ({} golden pairs)", info.golden.len()),
        info: info.clone(),
    })
}

/// A number as the JSON report writes it, so the summary and `--json` agree digit for digit.
fn number(x: f64) -> serde_json::Value {
    serde_json::Value::from(x)
}

impl fmt::Display for InspectReport {
    /// The human summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = &self.info;
        writeln!(f, "ok: {} would be accepted", self.path.display())?;
        writeln!(f, "  name       {}", info.name)?;
        writeln!(f, "  version    {}", info.version)?;
        writeln!(f, "  sha256     {}", self.sha256)?;
        writeln!(f, "  size       {} bytes", self.size_bytes)?;
        writeln!(f, "  threshold  {}", number(info.threshold))?;
        writeln!(f, "  self-test  {}", self.self_test)?;
        if let Some(family) = &info.family {
            write!(f, "  family     {}", family.name)?;
            if let Some(source) = &family.source {
                write!(f, " (from {source})")?;
            }
            for (what, count) in [
                ("trees", family.trees),
                ("nodes", family.nodes),
                ("parameter bytes", family.parameter_bytes),
            ] {
                if let Some(count) = count {
                    write!(f, ", {count} {what}")?;
                }
            }
            writeln!(f)?;
        }
        write!(f, "  features:")?;
        for feature in &info.features {
            let (kind, detail) = match &feature.kind {
                FeatureKind::Categorical { vocabulary, .. } => (
                    "categorical",
                    format!("categories {}", serde_json::json!(vocabulary)),
                ),
                FeatureKind::Integer { min, max } => {
                    ("integer", format!("{}..{}", number(*min), number(*max)))
                }
                FeatureKind::Number { min, max } => {
                    ("number", format!("{}..{}", number(*min), number(*max)))
                }
            };
            write!(f, "\n    {:<24} {kind:<12} {detail}", feature.name)?;
        }
        if !info.metrics.is_empty() {
            write!(f, "\n  metrics:")?;
            for (name, value) in &info.metrics {
                write!(f, "\n    {name:<24} {}", number(*value))?;
            }
        }
        Ok(())
    }
}
