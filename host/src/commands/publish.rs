//! `modelhost publish FILE.wasm`: the safe way to drop in a model built elsewhere.
//!
//! The file is checked exactly as `inspect` checks it
//! ([`check_file`](crate::commands::inspect::check_file): ABI checks, compile, info document, self-test
//! in the sandbox), its `info.name` must be the model name,
//! and its `info.version` must be usable as a file name and must not already name different
//! bytes. Only then is anything written, in this order and each file crash-safely:
//! `versions/<v>.wasm`, `versions/<v>.json`, a `publish` line in `history.jsonl`, and finally
//! `model.wasm` (with an operator's `model.wasm.sha256` kept true, see
//! [`registry::install_live`]). A crash before the last step leaves the previous model live and
//! complete; the version files it leaves are harmless (a later publish of the same file reuses
//! them).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CommandError, RegistryTarget, now_rfc3339};
use crate::model::{Model, sha256_hex};
use crate::registry::history;
use crate::registry::records::{HistoryEvent, PublishRecord, Source, VersionRecord, field};
use crate::registry::{self};

/// What `publish` needs.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub target: RegistryTarget,
    /// The artifact to publish.
    pub file: PathBuf,
}

/// What a publish did.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub model_name: String,
    pub version: String,
    pub sha256: String,
    pub size_bytes: u64,
    /// `versions/<v>.wasm`.
    pub artifact: PathBuf,
    /// The version live before, if it was a recorded one.
    pub from: Option<String>,
    /// False when these exact bytes were already live (nothing was written).
    pub changed: bool,
}

impl super::Report for PublishReport {}

impl fmt::Display for PublishReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed {
            return write!(
                f,
                "{} {} (sha256 {}) is already live; nothing changed",
                self.model_name, self.version, self.sha256
            );
        }
        writeln!(
            f,
            "published {} {} ({} bytes, sha256 {})",
            self.model_name, self.version, self.size_bytes, self.sha256
        )?;
        writeln!(f, "  artifact {}", self.artifact.display())?;
        match &self.from {
            Some(from) => write!(f, "  promoted to model.wasm, replacing {from}"),
            None => write!(f, "  promoted to model.wasm"),
        }
    }
}

/// Checks `options.file` and, if it passes, stores and promotes it. Nothing is written when a
/// check fails.
pub fn publish(options: &PublishOptions) -> Result<PublishReport, CommandError> {
    let runtime = super::runtime()?;
    let (bytes, model) = super::check_model(&options.file, &runtime)?;
    store_checked(
        &options.target,
        &options.file,
        &bytes,
        &model,
        Event::Publish,
    )
}

/// The history event a stored version is recorded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `modelhost publish` of a wasm file.
    Publish,
    /// `modelhost import` of another framework's model file.
    Import,
}

/// Stores and promotes `bytes`, a model already loaded (checked and self-tested) as `model`,
/// from `file`: the name and version checks, then `versions/<v>.wasm`, `versions/<v>.json`, the
/// history line and `model.wasm` through [`registry::store_version`]. Nothing is written when a
/// check fails.
pub fn store_checked(
    target: &RegistryTarget,
    file: &Path,
    bytes: &[u8],
    model: &Model,
    event: Event,
) -> Result<PublishReport, CommandError> {
    let RegistryTarget {
        registry_dir,
        model_name,
    } = target;
    let info = model.info();
    if info.name != *model_name {
        return Err(CommandError::Data(format!(
            "{}: the model is named `{}`, not `{model_name}`; publish it with --model-name {}",
            file.display(),
            info.name,
            info.name
        )));
    }
    let version = info.version.clone();
    registry::check_version_name(&version)
        .map_err(|problem| CommandError::Data(format!("{}: {problem}", file.display())))?;
    let sha256 = model.sha256.clone();

    let artifact = registry::version_path(registry_dir, model_name, &version);
    let stored = match registry::read_artifact(&artifact) {
        Ok(existing) if sha256_hex(&existing) == sha256 => true,
        Ok(existing) => {
            return Err(CommandError::Data(format!(
                "{}: version `{version}` already exists as {} with different contents (sha256 {}); a different model needs a new version",
                file.display(),
                artifact.display(),
                sha256_hex(&existing)
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(CommandError::io(&artifact)(e)),
    };

    let entries = history::read_entries(registry_dir, model_name).map_err(CommandError::io(
        &registry::history_path(registry_dir, model_name),
    ))?;
    let live = history::live(registry_dir, model_name, &entries).map_err(CommandError::io(
        &registry::live_path(registry_dir, model_name),
    ))?;
    let from = live.version().map(str::to_string);
    let mut report = PublishReport {
        model_name: model_name.clone(),
        version: version.clone(),
        sha256: sha256.clone(),
        size_bytes: model.size_bytes,
        artifact: artifact.clone(),
        from,
        changed: true,
    };
    if stored && live.sha256() == Some(sha256.as_str()) {
        report.changed = false;
        return Ok(report);
    }

    let source = absolute(file);
    let published_at = now_rfc3339();
    let publish = PublishRecord {
        model_name: Some(model_name.clone()),
        version: version.clone(),
        file: Some(format!("versions/{version}.wasm")),
        sha256: Some(sha256.clone()),
        size_bytes: Some(model.size_bytes),
        source: field(&Source::File { file: &source }),
        published_at: Some(published_at),
        threshold: Some(info.threshold),
        metrics: field(&info.metrics),
        from: report.from.clone(),
        from_sha256: live.sha256().map(str::to_string),
        promoted: Some(true),
        extra: Default::default(),
    };
    let (line, record) = match event {
        Event::Publish => (
            HistoryEvent::Publish(publish.clone()),
            VersionRecord::Publish(publish),
        ),
        Event::Import => (
            HistoryEvent::Import(publish.clone()),
            VersionRecord::Import(publish),
        ),
    };
    registry::store_version(
        registry_dir,
        model_name,
        &registry::VersionWrite {
            version: &version,
            bytes,
            record: &record,
            history_line: &line,
            promote: true,
        },
    )
    .map_err(|(path, error)| CommandError::Io { path, error })?;
    Ok(report)
}

/// `path` made absolute against the current directory, for the record.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
