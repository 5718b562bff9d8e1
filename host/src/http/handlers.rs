//! Route handlers: the lab's `/predict`, the three probes, and `/model`.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::Body;
use super::observe::{RequestId, X_REQUEST_ID};
use super::{AppError, AppState};
use crate::model::Model;
use crate::model::response::{self, PredictResponse};
use crate::model::schema::{BodyError, parse_object, prepare_row};

/// `POST /predict`: one customer in, one prediction out; or `{"instances": [...]}` in,
/// `{"predictions": [...]}` out (see [`batch`](super::batch)).
pub async fn predict(
    State(state): State<AppState>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<Body, AppError>,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let Body(body) = body?;
    check_json_content_type(&headers)?;
    let object = parse_object(&body).map_err(|error| match error {
        BodyError::Malformed(message) => AppError::BadRequest(message),
        BodyError::NotAnObject(message) => AppError::Unprocessable(message),
        BodyError::NotFinite(errors) => AppError::Validation(errors),
    })?;
    let given = response::request_id(&object).map_err(|error| AppError::Validation(vec![error]))?;
    let request_id = chosen_request_id(given, request_id);

    let model = serving_model(&state)?;
    if object.contains_key("instances") {
        return super::batch::predict_batch(&state, model, &object, request_id, started).await;
    }
    let prepared = prepare_row(model.info(), &object).map_err(AppError::Validation)?;
    let probabilities = call_model(&state, model.clone(), prepared.row).await?;
    let answer = PredictResponse::new(
        &model,
        request_id,
        probabilities[0],
        started.elapsed().as_secs_f64(),
        prepared.features,
    );
    state.record_answer(&answer);
    let echoed = HeaderValue::from_str(&answer.request_id).ok();
    let mut response = Json(answer).into_response();
    if let Some(id) = echoed {
        response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    }
    Ok(response)
}

/// Runs the model on a call thread, at most `max_concurrency` requests at once; 503 when no slot
/// frees up within the queue timeout (see [`limits`](super::limits)). Requests waiting at the
/// same moment share one call (see [`coalesce`](super::coalesce)).
pub(super) async fn call_model(
    state: &AppState,
    model: Arc<Model>,
    rows: Vec<f64>,
) -> Result<Vec<f64>, AppError> {
    let permit = super::limits::call_slot(state).await?;
    let n_rows = rows.len() / model.info().features.len().max(1);
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = super::coalesce::Job {
        model,
        rows,
        n_rows,
        permit,
        reply,
    };
    state
        .coalescer()
        .send(job)
        .map_err(|_| AppError::Internal("the model call threads stopped".to_string()))?;
    answer
        .await
        .map_err(|_| AppError::Internal("a model call was dropped unanswered".to_string()))?
        .map_err(AppError::Model)
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "content type must be application/json, got {:?}",
            if content_type.is_empty() {
                "nothing"
            } else {
                content_type
            }
        )))
    }
}

pub(super) fn no_model(state: &AppState) -> AppError {
    AppError::NoModel(not_serving_reason(state))
}

/// Why the server is not ready — shutting down, or no model serving — or `None` when it is.
pub(super) fn not_ready_reason(state: &AppState) -> Option<String> {
    if state.is_draining() {
        Some("shutting down".to_string())
    } else if state.inner.active.current().is_none() {
        Some(not_serving_reason(state))
    } else {
        None
    }
}

/// The serving model, or 503 with the reason nothing serves.
pub(super) fn serving_model(state: &AppState) -> Result<Arc<Model>, AppError> {
    state.inner.active.current().ok_or_else(|| no_model(state))
}

/// A prediction's id: the one the request body gives, else the request's id (the caller's
/// `X-Request-Id` or the one the middleware generated), else a fresh UUID.
pub(super) fn chosen_request_id(
    given: Option<String>,
    request_id: Option<Extension<RequestId>>,
) -> String {
    given
        .or_else(|| request_id.map(|Extension(RequestId(id))| id))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Why nothing is serving, for 503 bodies.
pub(super) fn not_serving_reason(state: &AppState) -> String {
    let shared = &state.inner;
    let status = shared.active.status();
    match (status.last_error, status.waiting) {
        (Some(error), _) => format!("no model is serving: the last candidate was refused: {error}"),
        (None, Some(waiting)) => format!("no model is serving yet: {waiting}"),
        (None, None) => format!(
            "no model is serving yet: waiting for {}",
            shared.model_path.display()
        ),
    }
}

/// `GET /health`: the process answers HTTP. Never depends on the model.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 while a model is serving, else 503 with the reason.
pub async fn ready(State(state): State<AppState>) -> Response {
    match (not_ready_reason(&state), state.inner.active.current()) {
        (None, Some(model)) => Json(json!({
            "status": "ready",
            "model": model.info().name,
            "version": model.version(),
        }))
        .into_response(),
        (reason, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not ready",
                "reason": reason.unwrap_or_else(|| not_serving_reason(&state)),
            })),
        )
            .into_response(),
    }
}

/// `GET /startup`: 503 until the registry exists and a model is serving.
pub async fn startup(State(state): State<AppState>) -> Response {
    let shared = &state.inner;
    if !shared.registry_dir.is_dir() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "starting",
                "reason": format!("registry directory {} does not exist", shared.registry_dir.display()),
            })),
        )
            .into_response();
    }
    match shared.active.current() {
        Some(model) => {
            Json(json!({ "status": "started", "version": model.version() })).into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "starting", "reason": not_serving_reason(&state) })),
        )
            .into_response(),
    }
}

/// `GET /model`: what is serving, where it came from, its schema and metrics.
pub async fn model(State(state): State<AppState>) -> Response {
    let shared = &state.inner;
    let status = shared.active.status();
    let last_error = status.last_error.clone();
    let last_error_at = status
        .last_error_at
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let Some(model) = shared.active.current() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": not_serving_reason(&state),
                "name": shared.model_name,
                "path": shared.model_path,
                "last_error": last_error,
                "last_error_at": last_error_at,
                "rejections": status.rejections,
            })),
        )
            .into_response();
    };
    let info = model.info();
    Json(json!({
        "name": info.name,
        "version": info.version,
        "sha256": model.sha256,
        "loaded_at": humantime::format_rfc3339_seconds(model.loaded_at).to_string(),
        "path": model.source,
        "size_bytes": model.size_bytes,
        "task": info.task,
        "threshold": info.threshold,
        "schema": info.features,
        "outputs": info.outputs,
        "metrics": info.metrics,
        "training": info.training,
        "last_error": last_error,
        "last_error_at": last_error_at,
        "swaps": status.swaps,
        "rejections": status.rejections,
    }))
    .into_response()
}

/// Any unknown route.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {}", uri.path()))
}

/// A known route with the wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
