//! Monitoring routes — `GET /metrics`, `GET /monitoring/drift`, and the version history and
//! recent swaps and refusals the console charts (`/monitoring/history`, `/monitoring/events`) —
//! and the bearer-token guard
//! that protects them when a token is set (`MONITORING_TOKEN`, or the file
//! `MONITORING_TOKEN_FILE`).
//!
//! The token is compared in constant time and never logged or echoed; a wrong or missing token
//! gets 401 with `WWW-Authenticate: Bearer`. The scheme name is case-insensitive.

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::bodies::{RecentEvents, VersionHistory};
use super::{AppError, AppState};
use crate::model::{Model, Served};
use crate::telemetry::drift::{DriftReport, Thresholds, drift_report};

/// Rejects requests without `Authorization: Bearer <token>` when a token is configured.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.monitoring_token() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials)
        .unwrap_or("");
    // Compare full-length byte strings in constant time; only the length may leak, which
    // reveals nothing useful about a random token.
    let ok: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
    if ok {
        next.run(request).await
    } else {
        AppError::Unauthorized("missing or wrong bearer token for monitoring endpoints".to_string())
            .into_response()
    }
}

/// Marks a monitoring answer `Cache-Control: no-store`: metrics and drift describe this moment,
/// and a cache between the scraper and the server would hand out a stale moment as the current
/// one (or keep a copy of data the token guards).
pub async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The token of an `Authorization: Bearer <token>` value. The scheme name is matched without
/// regard to case (RFC 7235 §2.1), so `bearer` and `BEARER` clients are let in too.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// `GET /metrics`: Prometheus (OpenMetrics) text, with the drift figures of each served model's
/// live window against its training statistics (none while it serves nothing).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let served = state.catalog().served();
    let drift: Vec<(&str, Option<DriftReport>)> = served
        .values()
        .map(|served| {
            let report = served
                .current()
                .map(|model| live_report(served, &model, state.drift_thresholds()));
            (served.name(), report)
        })
        .collect();
    let body = state.metrics().encode_with_drift(&drift);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `served`'s live drift report: its window against `model`'s training statistics.
fn live_report(served: &Served, model: &Model, thresholds: Thresholds) -> DriftReport {
    let window = served.drift();
    drift_report(
        model.info(),
        &window.snapshot(),
        window.capacity(),
        thresholds,
    )
}

/// Which model, and optional overrides for the drift thresholds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftQuery {
    /// A served model's name (default: the default model).
    model: Option<String>,
    z_threshold: Option<f64>,
    psi_threshold: Option<f64>,
}

/// `GET /monitoring/drift[?model=NAME]`: the live drift report over the last N predictions of a
/// served model (the default model unless `model` names another; 404 naming the served ones).
pub async fn drift(
    State(state): State<AppState>,
    query: Result<Query<DriftQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let mut thresholds = state.drift_thresholds();
    for (name, value, slot) in [
        ("z_threshold", query.z_threshold, &mut thresholds.z),
        ("psi_threshold", query.psi_threshold, &mut thresholds.psi),
    ] {
        if let Some(value) = value {
            if !(value.is_finite() && value > 0.0) {
                return Err(AppError::BadRequest(format!(
                    "{name} must be a positive number, got {value}"
                )));
            }
            *slot = value;
        }
    }
    let served = match &query.model {
        Some(name) => state.model_named(name)?,
        None => state.default_model().clone(),
    };
    let model = served.current().ok_or_else(|| {
        AppError::NoModel("no model is serving; drift needs its training statistics".to_string())
    })?;
    Ok(Json(live_report(&served, &model, thresholds)).into_response())
}

/// The most history lines `/monitoring/history` answers with (the newest): a registry trained
/// every few minutes for years stays one bounded answer.
pub const MAX_HISTORY_ROWS: usize = 1000;

/// The largest `history.jsonl` `/monitoring/history` reads: some 60,000 runs. The file is
/// read whole on each request, so one that grew past any real history is refused, by name,
/// rather than read.
pub const MAX_HISTORY_BYTES: u64 = 32 * 1024 * 1024;

/// `GET /monitoring/history`: the registry's history of this model and its live version, read
/// from the registry on each request (off the executor: it is file I/O).
pub async fn history(State(state): State<AppState>) -> Result<Json<VersionHistory>, AppError> {
    let registry_dir = state.registry_dir().to_path_buf();
    let model_name = state.model_name().to_string();
    let folder = state.model_folder().to_string();
    let read = tokio::task::spawn_blocking(move || {
        let path = crate::registry::history_path(&registry_dir, &folder);
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        if size > MAX_HISTORY_BYTES {
            return Err(std::io::Error::other(format!(
                "{} is {size} bytes, over the {MAX_HISTORY_BYTES} this route reads",
                path.display()
            )));
        }
        let entries = crate::registry::history::read_entries(&registry_dir, &folder)?;
        let live = crate::registry::history::live(&registry_dir, &folder, &entries)?;
        let live = live.version().map(str::to_string);
        Ok::<_, std::io::Error>(VersionHistory::new(
            model_name,
            live,
            entries,
            MAX_HISTORY_ROWS,
        ))
    })
    .await
    .map_err(|e| AppError::Internal(format!("reading the history failed: {e}")))?;
    read.map(Json).map_err(|e| {
        AppError::Internal(format!(
            "reading the history of {} in {} failed: {e}",
            state.model_name(),
            state.registry_dir().display()
        ))
    })
}

/// `GET /monitoring/events`: the swaps and refused candidates this server has seen lately.
pub async fn events(State(state): State<AppState>) -> Json<RecentEvents> {
    let active = state.active();
    Json(RecentEvents::new(&active.status(), active.recent()))
}
