//! Route handlers: the lab's `/predict`, the three probes, and `/model`.

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
    let request_id = AppState::chosen_request_id(given, request_id);

    let model = state.serving_model()?;
    if object.contains_key("instances") {
        return super::batch::predict_batch(&state, model, &object, request_id, started).await;
    }
    let prepared = prepare_row(model.info(), &object).map_err(AppError::Validation)?;
    let probabilities = state.call_model(model.clone(), prepared.row).await?;
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

/// `GET /health`: the process answers HTTP. Never depends on the model.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 while a model is serving, else 503 with the reason.
pub async fn ready(State(state): State<AppState>) -> Response {
    match (state.not_ready_reason(), state.active().current()) {
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
                "reason": reason.unwrap_or_else(|| state.not_serving_reason()),
            })),
        )
            .into_response(),
    }
}

/// `GET /startup`: 503 until the registry exists and a model is serving.
pub async fn startup(State(state): State<AppState>) -> Response {
    if !state.registry_dir().is_dir() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "starting",
                "reason": format!("registry directory {} does not exist", state.registry_dir().display()),
            })),
        )
            .into_response();
    }
    match state.active().current() {
        Some(model) => {
            Json(json!({ "status": "started", "version": model.version() })).into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "starting", "reason": state.not_serving_reason() })),
        )
            .into_response(),
    }
}

/// `GET /model`: what is serving, where it came from, its schema and metrics.
pub async fn model(State(state): State<AppState>) -> Response {
    let status = state.active().status();
    let last_error = status.last_error.clone();
    let last_error_at = status
        .last_error_at
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let Some(model) = state.active().current() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": state.not_serving_reason(),
                "name": state.model_name(),
                "path": state.model_path(),
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
