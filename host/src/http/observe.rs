//! The middleware every request passes through: a request id, a tracing span, and the HTTP
//! metrics (count and latency by route, method and status).
//!
//! The request id is the caller's `X-Request-Id` when it is a sane token (1–128 visible ASCII
//! characters), otherwise a fresh UUID. It is put in the request's extensions as [`RequestId`]
//! for handlers (the lab's `/predict` uses it when the body has no `request_id`) and echoed in
//! the response's `X-Request-Id` unless the handler already set one.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;
use crate::model::response::MAX_REQUEST_ID_LEN;
use crate::telemetry::metrics::HttpLabels;

/// `x-request-id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// This request's id, as chosen by [`observe`].
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Route label for requests no route matched, so unknown paths cannot explode label cardinality.
const UNMATCHED: &str = "unmatched";

pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let method = request.method().as_str().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));

    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let mut response = next.run(request).instrument(span.clone()).await;

    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let labels = HttpLabels {
        route,
        method,
        status,
    };
    let metrics = state.metrics();
    metrics.http_requests.get_or_create(&labels).inc();
    metrics
        .http_duration
        .get_or_create(&labels)
        .observe(elapsed);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, latency_ms = elapsed * 1000.0, "request failed");
        } else {
            tracing::debug!(status, latency_ms = elapsed * 1000.0, "request answered");
        }
    });
    if !response.headers().contains_key(&X_REQUEST_ID)
        && let Ok(value) = HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

/// Whether a caller's request id is one to adopt (1–128 visible ASCII characters).
pub(super) fn is_sane_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}
