//! The bodies of the probes and `/model`, and the error bodies that carry more than `error`.
//!
//! Each type is both what its handler serialises and what the OpenAPI document describes, so
//! the document cannot drift from the answers. Field order is the wire order; an `Option` is
//! left out when the answer has nothing to say there (`skip_serializing_if`), except in
//! `/model`, whose `last_error` and `last_error_at` are always present and `null` when unset.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use modelhost_abi::info::{FeatureSpec, TrainingStats};

use crate::model::{Model, SlotEvent, SlotStatus};
use crate::registry::history::HistoryEntry;

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    status: String,
}

impl Health {
    /// The process answers.
    pub fn ok() -> Self {
        Health {
            status: "ok".to_string(),
        }
    }
}

/// `GET /ready`: `ready` with the model, or `not ready` with the reason.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "model": "churn", "version": "v2eea169a56b4"}))]
pub struct Ready {
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Ready {
    /// `model` is serving.
    pub fn serving(model: &Model) -> Self {
        Ready {
            status: "ready".to_string(),
            model: Some(model.info().name.clone()),
            version: Some(model.version().to_string()),
            reason: None,
        }
    }

    /// Not ready, and why.
    pub fn not_ready(reason: String) -> Self {
        Ready {
            status: "not ready".to_string(),
            model: None,
            version: None,
            reason: Some(reason),
        }
    }
}

/// One served model in `GET /models` and `POST /v2/repository/index` (the repository
/// extension's entry): its name, the version serving (empty while none does), `READY` or
/// `UNAVAILABLE`, and why it is unavailable (empty while ready).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"name": "churn", "version": "v2eea169a56b4", "state": "READY", "reason": ""}))]
pub struct RepositoryEntry {
    pub name: String,
    pub version: String,
    #[schema(value_type = ModelState)]
    pub state: &'static str,
    pub reason: String,
}

/// A served model's state, as Triton's repository index names it.
#[derive(ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
pub enum ModelState {
    READY,
    UNAVAILABLE,
}

impl RepositoryEntry {
    /// `served`'s entry.
    pub fn of(served: &crate::model::Served) -> Self {
        match served.current() {
            Some(model) => RepositoryEntry {
                name: served.name().to_string(),
                version: model.version().to_string(),
                state: "READY",
                reason: String::new(),
            },
            None => RepositoryEntry {
                name: served.name().to_string(),
                version: String::new(),
                state: "UNAVAILABLE",
                reason: served.not_serving_reason(),
            },
        }
    }

    /// Every served model's entry, by name.
    pub fn every(catalog: &crate::model::Catalog) -> Vec<Self> {
        catalog
            .served()
            .values()
            .map(|served| Self::of(served))
            .collect()
    }

    /// Whether the model serves.
    pub fn is_ready(&self) -> bool {
        self.state == "READY"
    }
}

/// `GET /models`: the default model's name and every served model.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"default": "churn", "models": [
    {"name": "churn", "version": "v2eea169a56b4", "state": "READY", "reason": ""}
]}))]
pub struct ModelList {
    /// The model `/predict` and `/model` answer for (`MODEL_NAME`).
    pub default: String,
    pub models: Vec<RepositoryEntry>,
}

/// `GET /startup`: `started` with the version, or `starting` with the reason.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "started", "version": "v2eea169a56b4"}))]
pub struct Startup {
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Startup {
    /// `model` is serving.
    pub fn started(model: &Model) -> Self {
        Startup {
            status: "started".to_string(),
            version: Some(model.version().to_string()),
            reason: None,
        }
    }

    /// Still starting, and why.
    pub fn starting(reason: String) -> Self {
        Startup {
            status: "starting".to_string(),
            version: None,
            reason: Some(reason),
        }
    }
}

/// `GET /model`: the serving model, where it came from, and the last refused candidate.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelDescription {
    name: String,
    version: String,
    sha256: String,
    /// RFC 3339.
    loaded_at: String,
    #[schema(value_type = String)]
    path: PathBuf,
    size_bytes: u64,
    task: String,
    threshold: f64,
    /// The input schema: one entry per feature, with its kind and range or vocabulary.
    #[schema(value_type = Vec<Object>)]
    schema: Vec<FeatureSpec>,
    outputs: Vec<String>,
    metrics: BTreeMap<String, f64>,
    /// Training statistics the drift report compares against.
    #[schema(value_type = Object)]
    training: TrainingStats,
    /// Why the last candidate artifact was refused, if one was.
    last_error: Option<String>,
    last_error_at: Option<String>,
    swaps: u64,
    rejections: u64,
}

impl ModelDescription {
    /// `model`, with the slot's record of swaps and refusals.
    pub fn new(model: &Model, status: &SlotStatus) -> Self {
        let info = model.info();
        ModelDescription {
            name: info.name.clone(),
            version: info.version.clone(),
            sha256: model.sha256.clone(),
            loaded_at: humantime::format_rfc3339_seconds(model.loaded_at).to_string(),
            path: model.source.clone(),
            size_bytes: model.size_bytes,
            task: info.task.clone(),
            threshold: info.threshold,
            schema: info.features.clone(),
            outputs: info.outputs.clone(),
            metrics: info.metrics.clone(),
            training: info.training.clone(),
            last_error: status.last_error.clone(),
            last_error_at: last_error_at(status),
            swaps: status.swaps,
            rejections: status.rejections,
        }
    }
}

/// `GET /model` while nothing serves (503): why, the model and path the server waits for, and
/// the last refused candidate.
#[derive(Debug, Serialize)]
pub struct ModelUnavailable {
    error: String,
    name: String,
    path: PathBuf,
    last_error: Option<String>,
    last_error_at: Option<String>,
    rejections: u64,
}

impl ModelUnavailable {
    /// Nothing serves `name` from `path`, for `error`.
    pub fn new(error: String, name: String, path: PathBuf, status: &SlotStatus) -> Self {
        ModelUnavailable {
            error,
            name,
            path,
            last_error: status.last_error.clone(),
            last_error_at: last_error_at(status),
            rejections: status.rejections,
        }
    }
}

/// When the last candidate was refused, RFC 3339.
fn last_error_at(status: &SlotStatus) -> Option<String> {
    status
        .last_error_at
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
}

/// `GET /monitoring/history`: the model's `history.jsonl`, newest last, and the version
/// `model.wasm` holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionHistory {
    model: String,
    /// The version whose recorded sha256 is `model.wasm`'s; `null` when the file is missing or
    /// its bytes are recorded nowhere.
    live: Option<String>,
    /// Lines in the history; `entries` holds the last [`MAX_HISTORY_ROWS`](super::monitoring::MAX_HISTORY_ROWS).
    total: usize,
    entries: Vec<HistoryRow>,
}

impl VersionHistory {
    /// The last `keep` of `entries`.
    pub fn new(
        model: String,
        live: Option<String>,
        entries: Vec<HistoryEntry>,
        keep: usize,
    ) -> Self {
        let total = entries.len();
        let entries = entries
            .into_iter()
            .skip(total.saturating_sub(keep))
            .map(HistoryRow::from)
            .collect();
        VersionHistory {
            model,
            live,
            total,
            entries,
        }
    }
}

/// One history line: a training run, a publish, a rollback or a seed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"line": 1, "event": "train", "version": "v2eea169a56b4",
    "sha256": "b4c1ee795aa37c89e7b93c2e07ae80a348cc03ed3c193d27495d57ae421164ed",
    "at": "2026-12-02T01:06:11Z", "promoted": true, "gate_passed": true, "f1": 0.7128712871287128,
    "roc_auc": 0.6762791941522553, "from": null}))]
pub struct HistoryRow {
    /// 1-based line number in `history.jsonl`.
    line: usize,
    /// `train`, `publish`, `rollback`, `seed`, or an event a later version wrote.
    event: String,
    version: String,
    sha256: Option<String>,
    /// RFC 3339.
    at: Option<String>,
    /// Whether this event made `version` the live model.
    promoted: bool,
    /// Training runs: whether the gate passed; `null` for events without a gate.
    gate_passed: Option<bool>,
    f1: Option<f64>,
    roc_auc: Option<f64>,
    /// Rollbacks: the version that was live before.
    from: Option<String>,
}

impl From<HistoryEntry> for HistoryRow {
    fn from(entry: HistoryEntry) -> Self {
        HistoryRow {
            line: entry.line,
            event: entry.event.as_str().to_string(),
            version: entry.version,
            sha256: entry.sha256,
            at: entry.at,
            promoted: entry.promoted,
            gate_passed: entry.gate_passed,
            f1: entry.f1,
            roc_auc: entry.roc_auc,
            from: entry.from,
        }
    }
}

/// `GET /monitoring/events`: this server's recent swaps and refused candidates, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecentEvents {
    /// Successful loads since start, the first included.
    swaps: u64,
    /// Refused candidates since start.
    rejections: u64,
    /// The last [`RECENT_EVENTS`](crate::model::RECENT_EVENTS) of them.
    events: Vec<RecentEvent>,
}

impl RecentEvents {
    /// The slot's counters and remembered events.
    pub fn new(status: &SlotStatus, events: Vec<SlotEvent>) -> Self {
        RecentEvents {
            swaps: status.swaps,
            rejections: status.rejections,
            events: events.into_iter().map(RecentEvent::from).collect(),
        }
    }
}

/// A swap (`version` replaced `from`) or a refusal (`reason`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"kind": "refused", "at": "2026-12-02T00:40:11Z", "version": null,
    "sha256": null, "from": null, "reason": "module imports env.abort; a model may import nothing"}))]
pub struct RecentEvent {
    /// `swap` or `refused`.
    kind: String,
    /// RFC 3339.
    at: String,
    version: Option<String>,
    sha256: Option<String>,
    from: Option<String>,
    reason: Option<String>,
}

impl From<SlotEvent> for RecentEvent {
    fn from(event: SlotEvent) -> Self {
        let rfc3339 = |at| humantime::format_rfc3339_seconds(at).to_string();
        match event {
            SlotEvent::Swap {
                at,
                version,
                sha256,
                from,
            } => RecentEvent {
                kind: "swap".to_string(),
                at: rfc3339(at),
                version: Some(version),
                sha256: Some(sha256),
                from,
                reason: None,
            },
            SlotEvent::Refused { at, reason } => RecentEvent {
                kind: "refused".to_string(),
                at: rfc3339(at),
                version: None,
                sha256: None,
                from: None,
                reason: Some(reason),
            },
        }
    }
}

/// A batch with invalid rows (422): the first few problems in `error`, each one in `detail`.
#[derive(Debug, Serialize)]
pub struct InvalidRows {
    pub error: String,
    pub detail: Vec<RowProblem>,
}

/// One problem with one row, in the shape single-row validation errors have, with the row
/// index in `loc` (as FastAPI reports list items) and in `row`.
#[derive(Debug, Serialize)]
pub struct RowProblem {
    /// `["body", "instances", row]`, then the field when one is at fault.
    pub loc: Vec<Value>,
    pub row: usize,
    /// `None` (`null`) when the row itself is at fault.
    pub field: Option<String>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub msg: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The component the OpenAPI document holds under `name`.
    fn documented(name: &str) -> Value {
        let document = serde_json::to_value(crate::http::openapi::document()).unwrap();
        document["components"]["schemas"][name].clone()
    }

    /// The schema `T` derives, as the document would hold it.
    fn derived<T: ToSchema>() -> Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    #[test]
    fn the_document_describes_the_types_the_handlers_serialise() {
        assert_eq!(documented("Health"), derived::<Health>());
        assert_eq!(documented("Ready"), derived::<Ready>());
        assert_eq!(documented("Startup"), derived::<Startup>());
        assert_eq!(
            documented("ModelDescription"),
            derived::<ModelDescription>()
        );
        assert_eq!(documented("VersionHistory"), derived::<VersionHistory>());
        assert_eq!(documented("RecentEvents"), derived::<RecentEvents>());
    }

    /// The body's bytes on the wire.
    fn json<T: Serialize>(body: &T) -> String {
        serde_json::to_string(body).unwrap()
    }

    #[test]
    fn an_answer_without_something_to_say_leaves_the_field_out() {
        assert_eq!(json(&Health::ok()), r#"{"status":"ok"}"#);
        assert_eq!(
            json(&Ready::not_ready("shutting down".to_string())),
            r#"{"status":"not ready","reason":"shutting down"}"#
        );
        assert_eq!(
            json(&Startup::starting(
                "registry directory ./r does not exist".to_string()
            )),
            r#"{"status":"starting","reason":"registry directory ./r does not exist"}"#
        );
        let unavailable = ModelUnavailable::new(
            "no model is serving yet".to_string(),
            "churn".to_string(),
            PathBuf::from("r/churn/model.wasm"),
            &SlotStatus::default(),
        );
        assert_eq!(
            json(&unavailable),
            r#"{"error":"no model is serving yet","name":"churn","path":"r/churn/model.wasm","last_error":null,"last_error_at":null,"rejections":0}"#
        );
    }
}
