//! Batches: many rows validated against the model's schema, scored in one wasm call, and
//! answered row by row with the lab's fields. `POST /predict` with `{"instances": [...]}` and the
//! v2 infer route both score through [`score_rows`], which records every answered row.
//!
//! A batch is all or nothing: one invalid row fails the request, and the error names every row
//! and field at fault (the first few in `error`, more in `detail`).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::bodies::{InvalidRows, RowProblem};
use super::observe::X_REQUEST_ID;
use super::{AppError, AppState};
use crate::model::response::{self, PredictResponse};
use crate::model::schema::{FieldError, PreparedRow, prepare_row, type_name};
use crate::model::{Model, Served};

/// Problems spelled out in an error message; the rest are counted.
const PROBLEMS_IN_MESSAGE: usize = 10;
/// Problems listed in a 422's `detail`.
const PROBLEMS_IN_DETAIL: usize = 100;

/// One problem with one row of a batch.
#[derive(Debug)]
pub(super) struct RowError {
    pub row: usize,
    /// `None` when the row itself is at fault (not an object).
    pub field: Option<String>,
    pub kind: &'static str,
    pub message: String,
}

impl RowError {
    pub fn field(row: usize, error: FieldError) -> Self {
        RowError {
            row,
            field: Some(error.field),
            kind: error.kind,
            message: error.message,
        }
    }
}

/// "row 3: field `tenure_months` must be …; row 7: …", the first few problems.
pub(super) fn summary(errors: &[RowError]) -> String {
    let mut parts: Vec<String> = errors
        .iter()
        .take(PROBLEMS_IN_MESSAGE)
        .map(|e| format!("row {}: {}", e.row, e.message))
        .collect();
    if errors.len() > PROBLEMS_IN_MESSAGE {
        parts.push(format!(
            "and {} more problems",
            errors.len() - PROBLEMS_IN_MESSAGE
        ));
    }
    parts.join("; ")
}

/// 413 when a batch holds more rows than `max_batch_rows`.
pub(super) fn check_batch_limit(
    state: &AppState,
    what: &str,
    n_rows: usize,
) -> Result<(), AppError> {
    let max = state.max_batch_rows();
    if n_rows > max {
        return Err(AppError::PayloadTooLarge(format!(
            "{what} holds {n_rows} rows; at most {max} are allowed per request (max_batch_rows)"
        )));
    }
    Ok(())
}

/// Scored rows: the raw probabilities, and the lab's answer for each row (already recorded).
pub(super) struct Scored {
    pub probabilities: Vec<f64>,
    pub answers: Vec<PredictResponse>,
}

/// Scores validated rows in one model call and records each answer (prediction log, counters,
/// drift window). Each row comes with its request id.
pub(super) async fn score_rows(
    state: &AppState,
    served: &Served,
    model: &Arc<Model>,
    rows: Vec<(String, PreparedRow)>,
    started: Instant,
) -> Result<Scored, AppError> {
    let n_cols = model.info().features.len();
    let mut matrix = Vec::with_capacity(rows.len() * n_cols);
    for (_, prepared) in &rows {
        matrix.extend_from_slice(&prepared.row);
    }
    let probabilities = state.call_model(model.clone(), matrix).await?;
    if probabilities.len() != rows.len() {
        return Err(AppError::Internal(format!(
            "model answered {} rows for a batch of {}",
            probabilities.len(),
            rows.len()
        )));
    }
    // Every row of a batch was answered by the same call, so they share its latency.
    let latency = started.elapsed().as_secs_f64();
    let answers = rows
        .into_iter()
        .zip(&probabilities)
        .map(|((request_id, prepared), &probability)| {
            let answer =
                PredictResponse::new(model, request_id, probability, latency, prepared.features);
            state.record_answer(served, &answer);
            answer
        })
        .collect();
    Ok(Scored {
        probabilities,
        answers,
    })
}

/// `POST /predict` with `{"instances": [...]}`: `{"predictions": [...]}`, one lab answer per
/// row, in order. A row's `request_id` is its own, or the batch's followed by `/<row>`.
pub(super) async fn predict_batch(
    state: &AppState,
    served: &Served,
    model: Arc<Model>,
    object: &Map<String, Value>,
    batch_id: String,
    started: Instant,
) -> Result<Response, AppError> {
    let instances = match object.get("instances") {
        Some(Value::Array(instances)) => instances,
        other => {
            return Err(AppError::Validation(vec![FieldError::new(
                "instances",
                "type",
                format!(
                    "field `instances` must be an array of objects, got {}",
                    other.map_or("nothing", type_name)
                ),
            )]));
        }
    };
    if instances.is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(
            "instances",
            "range",
            "field `instances` must hold at least one row".to_string(),
        )]));
    }
    check_batch_limit(state, "field `instances`", instances.len())?;

    let mut rows = Vec::with_capacity(instances.len());
    let mut problems = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        let Value::Object(fields) = instance else {
            problems.push(RowError {
                row: i,
                field: None,
                kind: "type",
                message: format!("must be a JSON object, got {}", type_name(instance)),
            });
            continue;
        };
        let request_id = match response::request_id(fields) {
            Ok(id) => id.unwrap_or_else(|| format!("{batch_id}/{i}")),
            Err(error) => {
                problems.push(RowError::field(i, error));
                continue;
            }
        };
        match prepare_row(model.info(), fields) {
            Ok(prepared) => rows.push((request_id, prepared)),
            Err(errors) => problems.extend(errors.into_iter().map(|e| RowError::field(i, e))),
        }
    }
    if !problems.is_empty() {
        return Err(invalid_rows(&problems));
    }

    let scored = score_rows(state, served, &model, rows, started).await?;
    let mut response = Json(json!({ "predictions": scored.answers })).into_response();
    if let Ok(id) = HeaderValue::from_str(&batch_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    }
    Ok(response)
}

/// 422 naming each row and field (see [`InvalidRows`]), the first [`PROBLEMS_IN_DETAIL`] in
/// `detail`.
fn invalid_rows(problems: &[RowError]) -> AppError {
    let detail = problems
        .iter()
        .take(PROBLEMS_IN_DETAIL)
        .map(|p| {
            let mut loc = vec![json!("body"), json!("instances"), json!(p.row)];
            loc.extend(p.field.iter().map(|f| json!(f)));
            RowProblem {
                loc,
                row: p.row,
                field: p.field.clone(),
                kind: p.kind,
                msg: p.message.clone(),
            }
        })
        .collect();
    AppError::InvalidRows(InvalidRows {
        error: summary(problems),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(row: usize) -> RowError {
        RowError {
            row,
            field: Some("tenure_months".to_string()),
            kind: "range",
            message: "field `tenure_months` must be between 0 and 200, got 201".to_string(),
        }
    }

    #[test]
    fn the_summary_names_rows_and_counts_the_rest() {
        assert_eq!(
            summary(&[problem(3)]),
            "row 3: field `tenure_months` must be between 0 and 200, got 201"
        );
        let many: Vec<RowError> = (0..25).map(problem).collect();
        let message = summary(&many);
        assert!(
            message.starts_with("row 0: field `tenure_months`"),
            "{message}"
        );
        assert!(message.contains("row 9: "), "{message}");
        assert!(!message.contains("row 10: "), "{message}");
        assert!(message.ends_with("; and 15 more problems"), "{message}");
    }
}
