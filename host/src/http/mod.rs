//! The HTTP edge: routes, handlers and the one error type that turns failures into JSON.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it over a real socket or
//! with `oneshot`. Handlers take a snapshot of the active model per request and run model calls
//! on the call threads of [`coalesce`], bounded by a semaphore. This module knows nothing of
//! wasmtime: it sees
//! [`Model`](crate::model::Model), its info document and its errors.

mod batch;
mod coalesce;
mod error;
mod handlers;
mod limits;
mod monitoring;
mod observe;
pub mod oip;
pub mod openapi;

pub use error::AppError;
use error::BodyLimit;
pub use limits::EdgeLimits;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router, middleware};
use tokio::sync::Semaphore;

use crate::model::ActiveModel;
use crate::model::response::PredictResponse;
use crate::telemetry::drift::{DriftWindow, Thresholds};
use crate::telemetry::metrics::{Metrics, VersionLabels};
use crate::telemetry::predlog::PredictionLog;

/// The operational parts handlers report to: metrics, the prediction log, the live drift
/// window, and the monitoring token that guards `/metrics` and `/monitoring/*`.
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    /// `None` disables the prediction log (tests, embedding).
    pub predlog: Option<PredictionLog>,
    pub drift_window: DriftWindow,
    pub drift_thresholds: Thresholds,
    /// When set, monitoring routes require `Authorization: Bearer <token>`.
    pub monitoring_token: Option<String>,
}

impl Telemetry {
    /// Metrics only: no prediction log, no token, the default drift window.
    pub fn without_log() -> Self {
        Telemetry {
            metrics: Arc::new(Metrics::new(None)),
            predlog: None,
            drift_window: DriftWindow::new(crate::telemetry::drift::DEFAULT_WINDOW),
            drift_thresholds: Thresholds::default(),
            monitoring_token: None,
        }
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    active: Arc<ActiveModel>,
    registry_dir: PathBuf,
    model_path: PathBuf,
    model_name: String,
    /// Bounds the model calls running at once; a call waits for a permit at most
    /// `edge.queue_timeout`, and holds it until the wasm call itself returns.
    calls: Arc<Semaphore>,
    /// The model call threads' queue, started on first use.
    coalescer: std::sync::OnceLock<std::sync::mpsc::Sender<coalesce::Job>>,
    /// The request timeout and the wait for a model slot.
    edge: EdgeLimits,
    telemetry: Telemetry,
    /// Set when shutdown begins: `/ready` answers 503 so traffic moves elsewhere first.
    draining: AtomicBool,
    /// Most rows one batch request may hold.
    max_batch_rows: usize,
}

/// Rows one batch request may hold unless [`AppState::with_max_batch_rows`] says otherwise.
pub const DEFAULT_MAX_BATCH_ROWS: usize = 1000;

impl AppState {
    /// State for serving `model_name` from `registry_dir` with at most `max_concurrency`
    /// model calls at once.
    pub fn new(
        active: Arc<ActiveModel>,
        registry_dir: PathBuf,
        model_name: String,
        max_concurrency: u32,
        telemetry: Telemetry,
    ) -> Self {
        let model_path = crate::registry::live_path(&registry_dir, &model_name);
        AppState {
            inner: Arc::new(Shared {
                active,
                registry_dir,
                model_path,
                model_name,
                calls: Arc::new(Semaphore::new(max_concurrency as usize)),
                coalescer: std::sync::OnceLock::new(),
                edge: EdgeLimits::default(),
                telemetry,
                draining: AtomicBool::new(false),
                max_batch_rows: DEFAULT_MAX_BATCH_ROWS,
            }),
        }
    }

    /// The shared state, to configure while this is its only handle.
    fn configure(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.inner).expect("configure an AppState before cloning it")
    }

    /// Allows batch requests (`/predict` with `instances`, v2 infer) of up to `n` rows. Call it
    /// before the state is cloned (into a router, say).
    pub fn with_max_batch_rows(mut self, n: usize) -> Self {
        self.configure().max_batch_rows = n;
        self
    }

    /// Sets the request timeout and the longest wait for a model slot. Call it before the state
    /// is cloned.
    pub fn with_edge_limits(mut self, limits: EdgeLimits) -> Self {
        self.configure().edge = limits;
        self
    }

    /// The request timeout and the longest wait for a model slot.
    pub fn edge_limits(&self) -> EdgeLimits {
        self.inner.edge
    }

    /// Most rows one batch request may hold.
    pub fn max_batch_rows(&self) -> usize {
        self.inner.max_batch_rows
    }

    /// Where model calls are sent (see [`coalesce`]).
    fn coalescer(&self) -> &std::sync::mpsc::Sender<coalesce::Job> {
        self.inner
            .coalescer
            .get_or_init(|| coalesce::start(self.inner.telemetry.metrics.clone()))
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.telemetry.metrics
    }

    /// Records one answered prediction: a prediction-log line (the response itself, in the
    /// lab's field order), the per-version counter, and the live drift window. Every route that
    /// answers predictions calls this once per row.
    pub fn record_answer(&self, answer: &PredictResponse) {
        let telemetry = &self.inner.telemetry;
        telemetry
            .metrics
            .predictions
            .get_or_create(&VersionLabels {
                version: answer.model_version.clone(),
            })
            .inc();
        telemetry.drift_window.push(answer.features.clone());
        if let Some(log) = &telemetry.predlog {
            match serde_json::to_string(answer) {
                Ok(line) => log.record(line),
                Err(e) => tracing::error!(error = %e, "cannot serialise a prediction log line"),
            }
        }
    }

    /// Marks the server as shutting down: `/ready` answers 503 from now on.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }
}

/// The router with every route.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    let monitoring = Router::new()
        .route("/metrics", get(monitoring::metrics))
        .route("/monitoring/drift", get(monitoring::drift))
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
        .merge(oip_routes())
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs))
        .route("/docs/redoc-2.5.4.js", get(openapi::viewer))
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

/// The Open Inference Protocol v2 routes; each model route also answers under
/// `/versions/{version}`.
fn oip_routes() -> Router<AppState> {
    Router::new()
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::server_live))
        .route("/v2/health/ready", get(oip::server_ready))
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
