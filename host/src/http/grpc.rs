//! The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`, the service
//! Triton's and KServe's gRPC clients call) and `grpc.health.v1.Health`, on the HTTP port.
//!
//! One port serves both protocols so the Service, NetworkPolicy and probes need nothing new:
//! hyper's server speaks HTTP/1.1 and HTTP/2 (h2c with prior knowledge, as gRPC clients
//! connect), and [`with_grpc`] sends every request whose `content-type` is `application/grpc`
//! to the gRPC services, everything else to the REST router unchanged.
//!
//! The gRPC side is a protocol layer only. Inputs are decoded into the same per-feature columns
//! the REST route builds ([`oip::feature_columns`]), and from there the REST code runs: the same
//! schema check, batch limit, model call, prediction log and drift window
//! ([`oip::score_columns`]). Errors are the REST messages under the matching gRPC code
//! ([`status`]). The edge's limits apply as they do to REST: the body limit
//! (`MODELHOST_MAX_BODY_BYTES`, RESOURCE_EXHAUSTED naming it), the request timeout (or the
//! caller's shorter `grpc-timeout`, DEADLINE_EXCEEDED), the model slots. Every call is counted in
//! the HTTP metrics under its method's path (a fixed set; `unmatched` otherwise), with the HTTP
//! status the gRPC code maps to in Google's standard table, since a gRPC answer itself always
//! travels as HTTP 200.

#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod inference;
mod contents;
mod health;
mod service;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, header};
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tonic::{Code, Status};
use tower::{Service, ServiceExt};

use super::error::body_too_large;
use super::{AppError, AppState};
use crate::runtime::CallError;
use crate::telemetry::metrics::HttpLabels;

use self::inference::grpc_inference_service_server::GrpcInferenceServiceServer;

/// The methods a call is counted under; any other path is counted as `unmatched`.
const METHODS: &[&str] = &[
    "/inference.GRPCInferenceService/ServerLive",
    "/inference.GRPCInferenceService/ServerReady",
    "/inference.GRPCInferenceService/ModelReady",
    "/inference.GRPCInferenceService/ServerMetadata",
    "/inference.GRPCInferenceService/ModelMetadata",
    "/inference.GRPCInferenceService/ModelInfer",
    "/inference.GRPCInferenceService/RepositoryIndex",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
];

/// The REST router with the gRPC services beside it: requests with `content-type:
/// application/grpc` go to gRPC, every other request to `rest` as before.
pub fn with_grpc(rest: Router, state: AppState, max_body_bytes: usize) -> Router {
    let inference = GrpcInferenceServiceServer::new(service::Inference::new(state.clone()))
        .max_decoding_message_size(max_body_bytes);
    let health = health::server(state.clone()).max_decoding_message_size(max_body_bytes);
    let routes = tonic::service::Routes::new(inference)
        .add_service(health)
        .prepare();
    Router::new().fallback_service(Dispatch {
        rest,
        grpc: Grpc {
            routes,
            state,
            max_body_bytes,
        },
    })
}

/// Whether a request is a gRPC call (`application/grpc`, `application/grpc+proto`, ...).
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v == "application/grpc"
                || v.starts_with("application/grpc+")
                || v.starts_with("application/grpc;")
        })
}

#[derive(Clone)]
struct Dispatch {
    rest: Router,
    grpc: Grpc,
}

impl Service<Request<Body>> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both sides are always ready: a router clone per request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_grpc(request.headers()) {
            let grpc = self.grpc.clone();
            Box::pin(async move { Ok(grpc.call(request).await) })
        } else {
            Box::pin(self.rest.clone().oneshot(request))
        }
    }
}

#[derive(Clone)]
struct Grpc {
    routes: tonic::service::Routes,
    state: AppState,
    max_body_bytes: usize,
}

impl Grpc {
    /// One gRPC call under the edge's limits, counted in the HTTP metrics.
    async fn call(self, request: Request<Body>) -> Response {
        let started = Instant::now();
        let path = request.uri().path();
        let route = METHODS
            .iter()
            .find(|m| **m == path)
            .map_or("unmatched", |m| *m);
        let request_timeout = self.state.edge_limits().request_timeout;
        let (limit, limit_name) = match grpc_timeout(request.headers()) {
            Some(asked) if asked < request_timeout => (asked, "grpc-timeout"),
            _ => (request_timeout, "request timeout"),
        };
        let max = self.max_body_bytes;
        let request = request.map(|body| {
            Body::new(Limited::new(body, max).map_err(move |error| {
                if error.is::<LengthLimitError>() {
                    // tonic reads a `Status` found in a body error as the call's status.
                    Box::new(Status::resource_exhausted(body_too_large(max))) as tower::BoxError
                } else {
                    error
                }
            }))
        });
        let response = match tokio::time::timeout(limit, self.routes.oneshot(request)).await {
            Ok(Ok(response)) => response.map(Body::new),
            Ok(Err(never)) => match never {},
            Err(_) => Status::deadline_exceeded(format!(
                "request not completed within the {} ms {limit_name}",
                limit.as_millis()
            ))
            .into_http(),
        };
        let response = oversize_as_resource_exhausted(response, max);
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map_or(Code::Ok, Code::from_i32);
        let labels = HttpLabels {
            route: route.to_string(),
            method: "POST".to_string(),
            status: http_equivalent(code),
        };
        let metrics = self.state.metrics();
        metrics.http_requests.get_or_create(&labels).inc();
        metrics
            .http_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if code != Code::Ok {
            tracing::debug!(route, ?code, "gRPC call failed");
        }
        response
    }
}

/// tonic refuses a message whose declared length is over its decoding limit before reading it,
/// as OUT_OF_RANGE; over the body limit REST answers 413, so this says RESOURCE_EXHAUSTED with
/// the REST message, as a body that runs over the limit gets.
fn oversize_as_resource_exhausted(response: Response, max: usize) -> Response {
    let headers = response.headers();
    let too_large = headers.get("grpc-status").is_some_and(|v| v == "11")
        // grpc-message is percent-encoded on the wire.
        && headers.get("grpc-message").is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"Error,%20decoded%20message%20length%20too%20large")
        });
    if too_large {
        Status::resource_exhausted(body_too_large(max)).into_http()
    } else {
        response
    }
}

/// The caller's deadline from `grpc-timeout` (up to 8 digits and a unit: H, M, S, m, u, n);
/// `None` when absent or malformed (the request timeout then applies). Hand-written: tonic's
/// parser belongs to its transport server, which this crate does not use.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The HTTP status of a gRPC code in Google's standard mapping (`google/rpc/code.proto`), the
/// status label of a gRPC call in the HTTP metrics.
fn http_equivalent(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::Unauthenticated => 401,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
    }
}

/// A REST error as a gRPC status: the same message under the code of the same meaning.
pub(super) fn status(error: AppError) -> Status {
    match error {
        AppError::BadRequest(m)
        | AppError::UnsupportedMediaType(m)
        | AppError::Unprocessable(m) => Status::invalid_argument(m),
        AppError::Validation(errors) => Status::invalid_argument(
            errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        AppError::InvalidRows(rows) => Status::invalid_argument(rows.error),
        AppError::PayloadTooLarge(m) => Status::resource_exhausted(m),
        AppError::NoModel(m)
        | AppError::NotReady(m)
        | AppError::Starting(m)
        | AppError::Busy(m) => Status::unavailable(m),
        // Only `/model` answers this; no gRPC method does.
        AppError::ModelUnavailable(_) => Status::unavailable("no model is serving"),
        AppError::Unauthorized(m) => Status::unauthenticated(m),
        AppError::Model(CallError::Capacity) => {
            tracing::warn!("model call refused: {}", CallError::Capacity);
            Status::unavailable(format!("model call failed: {}", CallError::Capacity))
        }
        AppError::Model(e) => {
            tracing::error!(reason = e.reason(), "model call failed: {e}");
            let message = format!("model call failed: {e}");
            match e {
                CallError::Timeout(_) => Status::deadline_exceeded(message),
                _ => Status::internal(message),
            }
        }
        AppError::RequestTimeout(m) => Status::deadline_exceeded(m),
        AppError::NotFound(m) => Status::not_found(m),
        AppError::MethodNotAllowed(m) => Status::unimplemented(m),
        AppError::Internal(m) => {
            tracing::error!("internal error: {m}");
            Status::internal("internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read_in_every_unit() {
        let timeout = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(timeout("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(timeout("123456789S"), None, "more than 8 digits");
        assert_eq!(timeout("5"), None);
        assert_eq!(timeout("5x"), None);
        assert_eq!(timeout("-5S"), None);
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn only_grpc_content_types_go_to_grpc() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_grpc(&headers)
        };
        assert!(with("application/grpc"));
        assert!(with("application/grpc+proto"));
        assert!(!with("application/json"));
        assert!(!with("application/grpc-web"));
        assert!(!is_grpc(&HeaderMap::new()));
    }
}
