//! The one error type at the HTTP edge. Every failure leaves as JSON with `error` naming the
//! problem; internals (paths inside the guest, wasm backtraces) are not leaked.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::bodies::{InvalidRows, ModelUnavailable, Ready, Startup};

use crate::model::executor::JobError;
use crate::model::schema::FieldError;
use crate::runtime::CallError;

/// A failed request.
#[derive(Debug)]
pub enum AppError {
    /// The request is malformed; 400.
    BadRequest(String),
    /// The content type is not JSON; 415.
    UnsupportedMediaType(String),
    /// The body is above the limit; 413.
    PayloadTooLarge(String),
    /// Fields failed validation; 422 with one entry per field.
    Validation(Vec<FieldError>),
    /// The body is JSON but not what the route takes; 422.
    Unprocessable(String),
    /// No model is serving; 503.
    NoModel(String),
    /// `/ready` while not ready (no model, or shutting down); 503 `{"status": "not ready", ...}`.
    NotReady(String),
    /// `/startup` before the registry exists and a model serves; 503 `{"status": "starting", ...}`.
    Starting(String),
    /// `/model` while no model serves; 503 with the model, the path waited for and the last
    /// refusal beside `error`.
    ModelUnavailable(Box<ModelUnavailable>),
    /// A monitoring route without the right bearer token; 401 with `WWW-Authenticate: Bearer`.
    Unauthorized(String),
    /// Rows of a batch failed validation; 422 naming each row and field.
    InvalidRows(InvalidRows),
    /// The model failed on this request; 500 (504 for a timeout).
    Model(CallError),
    /// Every model slot stayed busy for the queue timeout; 503 with `Retry-After`.
    Busy(String),
    /// The request was not answered within the request timeout; 408.
    RequestTimeout(String),
    /// No such route; 404.
    NotFound(String),
    /// Route exists, method does not; 405.
    MethodNotAllowed(String),
    /// A bug or a lost task; 500.
    Internal(String),
}

impl From<JobError> for AppError {
    /// The model's own failure is the request's (500/504); an executor that stopped or lost the
    /// job is the server's.
    fn from(error: JobError) -> Self {
        match error {
            JobError::Call(error) => AppError::Model(error),
            JobError::Stopped | JobError::Unanswered => AppError::Internal(error.to_string()),
        }
    }
}

/// The largest body a route reads (`max_body_bytes`). [`app`](super::app) puts it in every
/// request's extensions beside axum's `DefaultBodyLimit`, so a 413 can say what the limit is.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A request body, read whole under the body limit. A body that cannot be read is a JSON
/// error: 413 naming the limit and the setting that raises it, else 400.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let limit = request.extensions().get::<BodyLimit>().copied();
        Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(|rejection| body_error(rejection, limit))
    }
}

/// The error for a body that could not be read: 413 over the limit, else 400.
fn body_error(rejection: BytesRejection, limit: Option<BodyLimit>) -> AppError {
    if rejection.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::BadRequest(rejection.body_text());
    }
    match limit {
        Some(BodyLimit(bytes)) => AppError::PayloadTooLarge(body_too_large(bytes)),
        None => AppError::PayloadTooLarge(format!(
            "request body is too large: {}",
            rejection.body_text()
        )),
    }
}

/// What a body over the `bytes` limit is told, whichever protocol carried it.
pub(super) fn body_too_large(bytes: usize) -> String {
    format!(
        "request body is too large: it exceeds the {bytes}-byte limit that {} sets",
        crate::config::DECLARED.max_body_bytes.env
    )
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "error": m })),
            AppError::UnsupportedMediaType(m) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!({ "error": m }))
            }
            AppError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, json!({ "error": m })),
            AppError::Validation(errors) => {
                let summary = errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                // `detail` follows the shape FastAPI clients already parse.
                let detail: Vec<_> = errors
                    .iter()
                    .map(|e| json!({ "loc": ["body", e.field], "field": e.field, "type": e.kind, "msg": e.message }))
                    .collect();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "error": summary, "detail": detail }),
                )
            }
            AppError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, json!({ "error": m })),
            AppError::NoModel(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": m })),
            AppError::NotReady(reason) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(Ready::not_ready(reason)),
                )
                    .into_response();
            }
            AppError::Starting(reason) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(Startup::starting(reason)),
                )
                    .into_response();
            }
            AppError::ModelUnavailable(body) => {
                return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
            }
            AppError::Unauthorized(m) => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                    Json(json!({ "error": m })),
                )
                    .into_response();
            }
            AppError::InvalidRows(body) => {
                return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
            }
            AppError::Model(CallError::Capacity) => {
                tracing::warn!("model call refused: {}", CallError::Capacity);
                return busy(format!("model call failed: {}", CallError::Capacity));
            }
            AppError::Model(e) => {
                let status = match e {
                    CallError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                tracing::error!(reason = e.reason(), "model call failed: {e}");
                (
                    status,
                    json!({ "error": format!("model call failed: {e}") }),
                )
            }
            AppError::Busy(m) => return busy(m),
            AppError::RequestTimeout(m) => (StatusCode::REQUEST_TIMEOUT, json!({ "error": m })),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "error": m })),
            AppError::MethodNotAllowed(m) => {
                (StatusCode::METHOD_NOT_ALLOWED, json!({ "error": m }))
            }
            AppError::Internal(m) => {
                tracing::error!("internal error: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "internal error" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// Seconds a client is asked to wait before retrying a request refused for load.
const RETRY_AFTER_SECONDS: &str = "1";

/// 503 with `Retry-After`: the replica is overloaded, not broken.
fn busy(message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECONDS)],
        Json(json!({ "error": message })),
    )
        .into_response()
}
