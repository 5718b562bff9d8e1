//! `modelhost versions`: the model's history, one row per run or event, with its metrics, and the
//! live model marked.
//!
//! The live row is the latest event that promoted the version whose recorded sha256 equals that
//! of `model.wasm` (see [`history::live`]); a rollback row shows the metrics of the version it
//! rolled back to. Reading only: nothing is written.

use std::fmt;

use serde::Serialize;

use super::{CommandError, RegistryTarget};
use crate::registry::history::{self, Event, HistoryEntry, Live};
use crate::registry::{self};

/// One history line as listed.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    /// Whether this row's version is the live model (one row at most).
    pub live: bool,
    #[serde(flatten)]
    pub entry: HistoryEntry,
}

/// The listing.
#[derive(Debug, Clone, Serialize)]
pub struct VersionsReport {
    pub model_name: String,
    pub live: Live,
    pub history: Vec<VersionRow>,
}

/// Lists the history of `target`. An error if the model has no folder in the registry.
pub fn versions(target: &RegistryTarget) -> Result<VersionsReport, CommandError> {
    let RegistryTarget {
        registry_dir,
        model_name,
    } = target;
    if !target.model_dir().is_dir() {
        return Err(CommandError::Usage(format!(
            "no model `{model_name}` in registry {}: {} is not a directory",
            registry_dir.display(),
            target.model_dir().display()
        )));
    }
    let mut entries = history::read_entries(registry_dir, model_name).map_err(CommandError::io(
        &registry::history_path(registry_dir, model_name),
    ))?;
    let live = history::live(registry_dir, model_name, &entries).map_err(CommandError::io(
        &registry::live_path(registry_dir, model_name),
    ))?;
    fill_rollback_metrics(target, &mut entries);
    let live_row = live.version().and_then(|version| {
        let is_live = |e: &HistoryEntry| e.version == version;
        entries
            .iter()
            .rposition(|e| is_live(e) && e.promoted)
            .or_else(|| entries.iter().rposition(is_live))
    });
    let history = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| VersionRow {
            live: Some(i) == live_row,
            entry,
        })
        .collect();
    Ok(VersionsReport {
        model_name: model_name.clone(),
        live,
        history,
    })
}

/// Rollback lines carry no metrics; show those of the version they promoted: from its latest
/// train or publish line, else from `versions/<v>.json`.
fn fill_rollback_metrics(target: &RegistryTarget, entries: &mut [HistoryEntry]) {
    for i in 0..entries.len() {
        if entries[i].event != Event::Rollback || entries[i].f1.is_some() {
            continue;
        }
        let version = entries[i].version.clone();
        let source = entries
            .iter()
            .rev()
            .find(|e| e.version == version && e.event != Event::Rollback && e.f1.is_some())
            .map(|e| (e.f1, e.roc_auc));
        let (f1, roc_auc) = source.unwrap_or_else(|| {
            let record =
                history::version_record(&target.registry_dir, &target.model_name, &version)
                    .ok()
                    .flatten();
            let metric = |key: &str| record.as_ref()?.metrics().get(key)?.as_f64();
            (metric("f1"), metric("roc_auc"))
        });
        entries[i].f1 = f1;
        entries[i].roc_auc = roc_auc;
    }
}

impl super::Report for VersionsReport {}

impl fmt::Display for VersionsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.live {
            Live::Known { version, sha256 } => {
                write!(f, "{}: live {version} (sha256 {sha256})", self.model_name)?
            }
            Live::Unrecorded { sha256 } => write!(
                f,
                "{}: live model.wasm (sha256 {sha256}) matches no recorded version",
                self.model_name
            )?,
            Live::Missing => write!(f, "{}: no live model.wasm", self.model_name)?,
        }
        if self.history.is_empty() {
            return write!(f, "\nno history recorded");
        }
        let width = self
            .history
            .iter()
            .map(|r| r.entry.version.len())
            .max()
            .unwrap_or(0)
            .max("VERSION".len());
        write!(
            f,
            "\n  {:<width$}  {:<8}  {:<20}  {:<6}  {:<7}  {:<7}  PROMOTED",
            "VERSION", "EVENT", "AT", "F1", "ROC_AUC", "GATE"
        )?;
        let number = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
        for row in &self.history {
            let e = &row.entry;
            let gate = match e.gate_passed {
                Some(true) => "passed",
                Some(false) => "refused",
                None => "-",
            };
            let from = match (&e.event, &e.from) {
                (Event::Rollback, Some(from)) => format!("  (from {from})"),
                _ => String::new(),
            };
            write!(
                f,
                "\n{} {:<width$}  {:<8}  {:<20}  {:<6}  {:<7}  {:<7}  {}{from}",
                if row.live { "*" } else { " " },
                e.version,
                e.event.as_str(),
                e.at.as_deref().unwrap_or("-"),
                number(e.f1),
                number(e.roc_auc),
                gate,
                if e.promoted { "yes" } else { "no" },
            )?;
        }
        Ok(())
    }
}
