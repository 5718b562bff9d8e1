//! The HTTP edge: routes, handlers and the one error type that turns failures into JSON.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it over a real socket or
//! with `oneshot`. The lab's routes answer for the default model (`MODEL_NAME`); every served
//! model answers at `/models/{name}/…` and `/v2/models/{name}/…`. Handlers take a snapshot of the active model per request and run model calls
//! on the [`Executor`](crate::model::executor::Executor) the state was given, bounded by a
//! semaphore. This module knows nothing of wasmtime: it sees [`Model`](crate::model::Model), its
//! info document and its errors.

mod batch;
mod bodies;
mod console;
mod error;
pub mod grpc;
mod handlers;
mod limits;
mod monitoring;
mod observe;
pub mod oip;
pub mod openapi;
mod state;

pub use error::AppError;
use error::BodyLimit;
pub use limits::EdgeLimits;
pub use state::{AppState, DEFAULT_MAX_BATCH_ROWS, Observers};

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router, middleware};

/// The router with every route.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    let monitoring = Router::new()
        .route("/metrics", get(monitoring::metrics))
        .route("/monitoring/drift", get(monitoring::drift))
        .route("/monitoring/history", get(monitoring::history))
        .route("/monitoring/events", get(monitoring::events))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            monitoring::require_token,
        ))
        .route_layer(middleware::map_response(monitoring::no_store));
    Router::new()
        .route("/predict", post(handlers::predict))
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/startup", get(handlers::startup))
        .route("/model", get(handlers::model))
        .route("/models", get(handlers::models))
        .route("/models/{name}", get(handlers::model_named))
        .route("/models/{name}/predict", post(handlers::predict_named))
        .merge(oip_routes())
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs))
        .route("/docs/redoc-2.5.4.js", get(openapi::viewer))
        .route("/", get(console::page))
        .route("/console.js", get(console::script))
        .route("/console.css", get(console::style))
        .merge(monitoring)
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(Extension(BodyLimit(max_body_bytes)))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// What the port serves: [`app`], and the gRPC services beside it for requests that are gRPC
/// calls ([`grpc`]).
pub fn app_with_grpc(state: AppState, max_body_bytes: usize) -> Router {
    grpc::with_grpc(app(state.clone(), max_body_bytes), state, max_body_bytes)
}

/// The Open Inference Protocol v2 routes; each model route also answers under
/// `/versions/{version}`.
fn oip_routes() -> Router<AppState> {
    Router::new()
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::server_live))
        .route("/v2/health/ready", get(oip::server_ready))
        .route("/v2/repository/index", post(oip::repository_index))
        .route("/v2/models/{name}", get(oip::model_metadata))
        .route("/v2/models/{name}/ready", get(oip::model_ready))
        .route("/v2/models/{name}/infer", post(oip::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(oip::model_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(oip::model_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(oip::infer),
        )
}
