//! `modelhost rollback`: make an earlier version the live `model.wasm` again.
//!
//! Without `--to`, the target is the version that was live before the current one, found by
//! replaying `history.jsonl` as an undo stack (see
//! [`history::promotion_stack`](crate::registry::history::promotion_stack)): repeated rollbacks
//! walk further back instead of toggling between two versions. The current version is
//! identified by the sha256 of `model.wasm`, never assumed from the last history line. The
//! target's file must match its recorded sha256 and pass the server's load checks before it is
//! promoted (atomically, via [`registry::install_live`], which keeps an operator's
//! `model.wasm.sha256` true); then a `rollback` line is appended to the history.

use std::fmt;

use serde::Serialize;

use super::{CommandError, RegistryTarget, now_rfc3339};
use crate::model::{Model, sha256_hex};
use crate::registry;
use crate::registry::history::{self, HistoryEntry, Live};
use crate::registry::records::{HistoryEvent, RollbackLine};

/// What `rollback` needs.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    pub target: RegistryTarget,
    /// The version to promote; `None` for the one live before the current one.
    pub to: Option<String>,
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub model_name: String,
    /// The version now live.
    pub version: String,
    pub sha256: String,
    /// The version live before, if it was a recorded one.
    pub from: Option<String>,
    /// sha256 of the `model.wasm` replaced, if there was one.
    pub from_sha256: Option<String>,
    /// False when the target was already live (nothing was written).
    pub changed: bool,
}

impl super::Report for RollbackReport {}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed {
            return write!(
                f,
                "{} {} is already live; nothing changed",
                self.model_name, self.version
            );
        }
        let from = match (&self.from, &self.from_sha256) {
            (Some(version), _) => version.clone(),
            (None, Some(sha)) => format!("an unrecorded model.wasm (sha256 {sha})"),
            (None, None) => "no live model".to_string(),
        };
        write!(
            f,
            "rolled back {} from {from} to {} (sha256 {})",
            self.model_name, self.version, self.sha256
        )
    }
}

/// Performs the rollback. Nothing is written when an error is returned, except that a failure
/// to append the history line after promoting is reported as such.
pub fn rollback(options: &RollbackOptions) -> Result<RollbackReport, CommandError> {
    let RegistryTarget {
        registry_dir,
        model_name,
    } = &options.target;
    let history_path = registry::history_path(registry_dir, model_name);
    let entries =
        history::read_entries(registry_dir, model_name).map_err(CommandError::io(&history_path))?;
    let live = history::live(registry_dir, model_name, &entries).map_err(CommandError::io(
        &registry::live_path(registry_dir, model_name),
    ))?;
    let versions_dir = registry::versions_dir(registry_dir, model_name);
    let known = history::known_versions(registry_dir, model_name, &entries)
        .map_err(CommandError::io(&versions_dir))?;
    let known_list = || {
        if known.is_empty() {
            format!("{} holds no versions", versions_dir.display())
        } else {
            format!("known versions: {}", known.join(", "))
        }
    };

    let version = match &options.to {
        Some(version) => {
            if !known.contains(version) {
                let recorded = entries.iter().any(|e| e.version == *version);
                let problem = if recorded {
                    format!(
                        "version `{version}` is in the history but {} is missing",
                        registry::version_path(registry_dir, model_name, version).display()
                    )
                } else {
                    format!("unknown version `{version}` for model `{model_name}`")
                };
                return Err(CommandError::Usage(format!("{problem} ({})", known_list())));
            }
            version.clone()
        }
        None => previous(&options.target, &entries, &live, &known, &known_list())?,
    };

    let from_sha256 = live.sha256().map(str::to_string);
    let from = live.version().map(str::to_string);
    if from.as_deref() == Some(version.as_str()) {
        return Ok(RollbackReport {
            model_name: model_name.clone(),
            sha256: from_sha256.unwrap_or_default(),
            version,
            from,
            from_sha256: None,
            changed: false,
        });
    }

    let recorded_sha = recorded_sha256(&options.target, &entries, &version)?;
    let runtime = super::runtime()?;
    let path = registry::version_path(registry_dir, model_name, &version);
    let bytes = registry::read_artifact(&path).map_err(CommandError::io(&path))?;
    let sha256 = sha256_hex(&bytes);
    if let Some(recorded) = recorded_sha.as_deref().filter(|r| *r != sha256) {
        return Err(CommandError::Failed(format!(
            "{} does not match its recorded sha256 (recorded {recorded}, file {sha256}); not promoted",
            path.display()
        )));
    }
    Model::load(&runtime, &bytes, path.clone()).map_err(|e| {
        CommandError::Failed(format!(
            "{} would be refused ({}): {e}; not promoted",
            path.display(),
            e.reason()
        ))
    })?;
    registry::remove_stale_temps_logged(registry_dir, model_name);
    registry::install_live(registry_dir, model_name, &bytes).map_err(CommandError::io(
        &registry::live_path(registry_dir, model_name),
    ))?;

    let line = HistoryEvent::Rollback(RollbackLine {
        model_name: Some(model_name.clone()),
        version: version.clone(),
        sha256: Some(sha256.clone()),
        from: from.clone(),
        from_sha256: from_sha256.clone(),
        named: Some(options.to.is_some()),
        at: Some(now_rfc3339()),
        promoted: Some(true),
        extra: Default::default(),
    });
    registry::append_history(registry_dir, model_name, &line).map_err(|e| {
        CommandError::Failed(format!(
            "rolled back to {version}, but could not record it in {}: {e}",
            history_path.display()
        ))
    })?;
    Ok(RollbackReport {
        model_name: model_name.clone(),
        version,
        sha256,
        from,
        from_sha256,
        changed: true,
    })
}

/// The version live before the current one, or an error saying why there is none.
fn previous(
    target: &RegistryTarget,
    entries: &[HistoryEntry],
    live: &Live,
    known: &[String],
    known_list: &str,
) -> Result<String, CommandError> {
    let current = match live {
        Live::Missing => {
            return Err(CommandError::Failed(format!(
                "there is no live {} to roll back from; name a version with --to ({known_list})",
                registry::live_path(&target.registry_dir, &target.model_name).display()
            )));
        }
        Live::Unrecorded { sha256 } => {
            return Err(CommandError::Failed(format!(
                "the live model.wasm (sha256 {sha256}) matches no recorded version; name a version with --to ({known_list})"
            )));
        }
        Live::Known { version, .. } => version,
    };
    let Some(previous) = history::previous_version(entries, current) else {
        return Err(CommandError::Failed(format!(
            "no version was live before `{current}` according to the history; name a version with --to ({known_list})"
        )));
    };
    if !known.contains(&previous) {
        return Err(CommandError::Failed(format!(
            "the previous version `{previous}` is in the history but {} is missing; name a version with --to ({known_list})",
            registry::version_path(&target.registry_dir, &target.model_name, &previous).display()
        )));
    }
    Ok(previous)
}

/// The sha256 recorded for `version`: in `versions/<v>.json`, else in its latest history line.
fn recorded_sha256(
    target: &RegistryTarget,
    entries: &[HistoryEntry],
    version: &str,
) -> Result<Option<String>, CommandError> {
    let record = history::version_record(&target.registry_dir, &target.model_name, version)
        .map_err(CommandError::io(&registry::version_record_path(
            &target.registry_dir,
            &target.model_name,
            version,
        )))?;
    let from_record = record.and_then(|r| r.sha256());
    Ok(from_record.or_else(|| {
        entries
            .iter()
            .rev()
            .filter(|e| e.version == version)
            .find_map(|e| e.sha256.clone())
    }))
}
