//! `history.jsonl` read as typed entries, and the questions asked of it: which version is live,
//! which versions exist, and which version was live before the current one.
//!
//! Each line is one [`HistoryEvent`](super::records::HistoryEvent): a training run
//! (`"event": "train"`, or no `event` at all in lines written before events were named), a
//! `publish`, a `rollback` or a `seed`. Readers tolerate what they do not know: lines that do not
//! parse as a history event or have no `version` are skipped, unknown events are kept as
//! [`Event::Other`], and missing metrics are `None`. Recorded sha256s are read through
//! [`normalize_sha256`](super::records::normalize_sha256). The live version is never taken
//! from the history alone: it is the version whose recorded sha256 equals that of `model.wasm`,
//! so a hand-copied file or a run interrupted between recording and promoting is reported as
//! it really is.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::{HistoryEvent, VersionRecord};
use super::{live_path, read_artifact, versions_dir};
use crate::model::sha256_hex;

/// What a history line records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A `modelhost train` run, promoted or not.
    Train,
    /// A `modelhost publish` of a model built elsewhere.
    Publish,
    /// A `modelhost rollback`.
    Rollback,
    /// An event this version of modelhost does not know.
    Other(String),
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Event {
    /// The event's name as written in the history.
    pub fn as_str(&self) -> &str {
        match self {
            Event::Train => "train",
            Event::Publish => "publish",
            Event::Rollback => "rollback",
            Event::Other(name) => name,
        }
    }
}

/// One history line, with the fields modelhost interprets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// 1-based line number in `history.jsonl`.
    pub line: usize,
    pub event: Event,
    /// The version trained, published, or rolled back to.
    pub version: String,
    /// sha256 of that version's artifact, when recorded.
    pub sha256: Option<String>,
    /// When it happened (RFC 3339), when recorded.
    pub at: Option<String>,
    /// Whether this event made `version` the live model (or meant to).
    pub promoted: bool,
    /// Training runs: whether the gate passed. `None` for events without a gate.
    pub gate_passed: Option<bool>,
    pub f1: Option<f64>,
    pub roc_auc: Option<f64>,
    /// Rollbacks: the version that was live before, if it was known.
    pub from: Option<String>,
}

impl HistoryEntry {
    /// Interprets one parsed line through [`HistoryEvent`]; `None` if it is not a history line
    /// with a string `version`.
    pub fn from_value(line: usize, value: &Value) -> Option<HistoryEntry> {
        let parsed = HistoryEvent::deserialize(value).ok()?;
        let event = match &parsed {
            HistoryEvent::Train(_) => Event::Train,
            HistoryEvent::Publish(_) => Event::Publish,
            HistoryEvent::Rollback(_) => Event::Rollback,
            other => Event::Other(other.name().to_string()),
        };
        let metric = |key: &str| parsed.metrics().get(key)?.as_f64();
        Some(HistoryEntry {
            line,
            event,
            version: parsed.version()?.to_string(),
            sha256: parsed.sha256(),
            at: parsed.at().map(str::to_string),
            promoted: parsed.promoted(),
            gate_passed: parsed.gate_passed(),
            f1: metric("f1"),
            roc_auc: metric("roc_auc"),
            from: parsed.from().map(str::to_string),
        })
    }
}

/// Every interpretable line of `history.jsonl`, oldest first.
/// (Like [`read_history`](super::read_history), but numbering lines by their place in the
/// file.)
pub fn read_entries(registry_dir: &Path, model_name: &str) -> std::io::Result<Vec<HistoryEntry>> {
    Ok(super::read_history_text(registry_dir, model_name)?
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let value: Value = serde_json::from_str(line).ok()?;
            HistoryEntry::from_value(i + 1, &value)
        })
        .collect())
}

/// What `model.wasm` is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Live {
    /// There is no `model.wasm`.
    Missing,
    /// `model.wasm` is this recorded version.
    Known { version: String, sha256: String },
    /// `model.wasm` matches no recorded version (copied in by hand, for example).
    Unrecorded { sha256: String },
}

impl Live {
    /// The live version, if it is a recorded one.
    pub fn version(&self) -> Option<&str> {
        match self {
            Live::Known { version, .. } => Some(version),
            _ => None,
        }
    }

    /// sha256 of `model.wasm`, if there is one.
    pub fn sha256(&self) -> Option<&str> {
        match self {
            Live::Known { sha256, .. } | Live::Unrecorded { sha256 } => Some(sha256),
            Live::Missing => None,
        }
    }
}

/// Identifies `model.wasm` by its sha256: first against the history (latest line first), then
/// against the `versions/*.json` records.
pub fn live(
    registry_dir: &Path,
    model_name: &str,
    entries: &[HistoryEntry],
) -> std::io::Result<Live> {
    let bytes = match read_artifact(&live_path(registry_dir, model_name)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Live::Missing),
        Err(e) => return Err(e),
    };
    let sha256 = sha256_hex(&bytes);
    if let Some(entry) = entries
        .iter()
        .rev()
        .find(|e| e.sha256.as_deref() == Some(sha256.as_str()))
    {
        return Ok(Live::Known {
            version: entry.version.clone(),
            sha256,
        });
    }
    for version in known_versions(registry_dir, model_name, &[])? {
        let record = version_record(registry_dir, model_name, &version)?;
        if record.and_then(|r| r.sha256()).as_deref() == Some(sha256.as_str()) {
            return Ok(Live::Known { version, sha256 });
        }
    }
    Ok(Live::Unrecorded { sha256 })
}

/// The versions that have an artifact in `versions/`: those named in `entries` first, in order
/// of first appearance, then the others by name.
pub fn known_versions(
    registry_dir: &Path,
    model_name: &str,
    entries: &[HistoryEntry],
) -> std::io::Result<Vec<String>> {
    let dir = versions_dir(registry_dir, model_name);
    let listing = match std::fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut on_disk = Vec::new();
    for item in listing {
        let name = item?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(version) = name.strip_suffix(".wasm").filter(|v| !v.starts_with('.')) {
            on_disk.push(version.to_string());
        }
    }
    on_disk.sort();
    let mut known: Vec<String> = Vec::with_capacity(on_disk.len());
    for entry in entries {
        if on_disk.contains(&entry.version) && !known.contains(&entry.version) {
            known.push(entry.version.clone());
        }
    }
    for version in on_disk {
        if !known.contains(&version) {
            known.push(version);
        }
    }
    Ok(known)
}

/// `versions/<version>.json`, if it exists and parses as a [`VersionRecord`].
pub fn version_record(
    registry_dir: &Path,
    model_name: &str,
    version: &str,
) -> std::io::Result<Option<VersionRecord>> {
    let path = super::version_record_path(registry_dir, model_name, version);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The versions that were live, in order, replaying the history as an undo stack: a promoting
/// train or publish pushes its version; a rollback to the version just below the top pops (it
/// undid the last promotion), any other rollback pushes. A version is never pushed twice in a
/// row, so re-promoting the live version changes nothing.
pub fn promotion_stack(entries: &[HistoryEntry]) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    for entry in entries.iter().filter(|e| e.promoted) {
        let undo = entry.event == Event::Rollback
            && stack.len() >= 2
            && stack[stack.len() - 2] == entry.version;
        if undo {
            stack.pop();
        } else if stack.last() != Some(&entry.version) {
            stack.push(entry.version.clone());
        }
    }
    stack
}

/// The version that was live before `live` became live, by [`promotion_stack`]; `None` if
/// `live` was never promoted through the history or nothing was live before it.
pub fn previous_version(entries: &[HistoryEntry], live: &str) -> Option<String> {
    let stack = promotion_stack(entries);
    let position = stack.iter().rposition(|v| v == live)?;
    position.checked_sub(1).map(|i| stack[i].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entries(lines: &[Value]) -> Vec<HistoryEntry> {
        lines
            .iter()
            .enumerate()
            .filter_map(|(i, v)| HistoryEntry::from_value(i + 1, v))
            .collect()
    }

    fn train(v: &str, promoted: bool) -> Value {
        json!({"version": v, "promoted": promoted, "metrics": {"f1": 0.7}, "gate": {"passed": promoted}})
    }

    fn rollback(v: &str) -> Value {
        json!({"event": "rollback", "version": v, "promoted": true})
    }

    #[test]
    fn old_train_lines_rollbacks_and_unknown_events_are_all_read() {
        let read = entries(&[
            train("a", true),
            rollback("a"),
            json!({"event": "retrain-later", "version": "z"}),
            json!({"no_version": true}),
            json!([1, 2]),
        ]);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].event, Event::Train);
        assert_eq!(read[0].f1, Some(0.7));
        assert_eq!(read[0].gate_passed, Some(true));
        assert_eq!(read[1].event, Event::Rollback);
        assert_eq!(read[1].f1, None);
        assert_eq!(read[2].event, Event::Other("retrain-later".into()));
        assert!(!read[2].promoted);
    }

    #[test]
    fn refused_runs_are_not_promotions() {
        let read = entries(&[train("a", true), train("b", false), train("c", true)]);
        assert_eq!(promotion_stack(&read), ["a", "c"]);
        assert_eq!(previous_version(&read, "c").as_deref(), Some("a"));
        assert_eq!(previous_version(&read, "a"), None);
        assert_eq!(previous_version(&read, "b"), None);
    }

    #[test]
    fn repeated_rollbacks_walk_back_and_a_new_promotion_remembers_where_it_came_from() {
        let mut lines = vec![train("a", true), train("b", true), train("c", true)];
        lines.push(rollback("b"));
        assert_eq!(
            previous_version(&entries(&lines), "b").as_deref(),
            Some("a")
        );
        lines.push(rollback("a"));
        assert_eq!(previous_version(&entries(&lines), "a"), None);
        lines.push(train("d", true));
        assert_eq!(
            previous_version(&entries(&lines), "d").as_deref(),
            Some("a")
        );
        // A rollback to a named older version is undone by the next plain rollback.
        lines.push(rollback("c"));
        assert_eq!(promotion_stack(&entries(&lines)), ["a", "d", "c"]);
        assert_eq!(
            previous_version(&entries(&lines), "c").as_deref(),
            Some("d")
        );
    }

    #[test]
    fn training_the_same_version_twice_does_not_make_it_its_own_predecessor() {
        let read = entries(&[train("a", true), train("b", true), train("b", true)]);
        assert_eq!(previous_version(&read, "b").as_deref(), Some("a"));
    }
}
