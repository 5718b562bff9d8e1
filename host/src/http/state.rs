//! The state every handler shares: the served models (the default model's unit at hand, the
//! others in the [`Catalog`]), the registry paths, the call slots, the model executor, the edge
//! limits and the observers. Its fields are private to this module, so handlers, batches, the
//! v2 routes and monitoring all see it through the same methods — how a model is called, which
//! model a route names, which serves and why none does are decided here once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Extension;
use tokio::sync::Semaphore;

use super::observe::RequestId;
use super::{AppError, EdgeLimits};
use crate::model::executor::Executor;
use crate::model::response::PredictResponse;
use crate::model::{ActiveModel, Catalog, Model, Served};
use crate::telemetry::drift::Thresholds;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::predlog::PredictionLog;

/// What watches the answers — metrics, the prediction log, the size of each model's live drift
/// window — and the monitoring token that guards what they show at `/metrics` and
/// `/monitoring/*`.
pub struct Observers {
    pub metrics: Arc<Metrics>,
    /// `None` disables the prediction log (tests, embedding).
    pub predlog: Option<PredictionLog>,
    /// Predictions each model's live drift window holds.
    pub drift_window: usize,
    pub drift_thresholds: Thresholds,
    /// When set, monitoring routes require `Authorization: Bearer <token>`.
    pub monitoring_token: Option<String>,
}

impl Observers {
    /// Metrics only: no prediction log, no token, the default drift window.
    pub fn without_log() -> Self {
        Observers {
            metrics: Arc::new(Metrics::new(None)),
            predlog: None,
            drift_window: crate::telemetry::drift::DEFAULT_WINDOW,
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
    /// The default model (`MODEL_NAME`), resolved once so `/predict` looks nothing up.
    default: Arc<Served>,
    /// Every served model, the default among them.
    catalog: Arc<Catalog>,
    registry_dir: PathBuf,
    /// Bounds the model calls running at once; a call waits for a permit at most
    /// `edge.queue_timeout`, and holds it until the wasm call itself returns.
    calls: Arc<Semaphore>,
    /// Runs the model calls, on its call threads.
    executor: Arc<Executor>,
    /// The request timeout and the wait for a model slot.
    edge: EdgeLimits,
    observers: Observers,
    /// Set when shutdown begins: `/ready` answers 503 so traffic moves elsewhere first.
    draining: AtomicBool,
    /// Most rows one batch request may hold.
    max_batch_rows: usize,
}

/// Rows one batch request may hold unless [`AppState::with_max_batch_rows`] says otherwise.
pub const DEFAULT_MAX_BATCH_ROWS: usize = crate::config::DEFAULTS.max_batch_rows as usize;

impl AppState {
    /// State for serving `model_name` from `registry_dir` with at most `max_concurrency`
    /// model calls at once, run on `executor` (whose owner stops it).
    pub fn new(
        active: Arc<ActiveModel>,
        registry_dir: PathBuf,
        model_name: String,
        max_concurrency: u32,
        observers: Observers,
        executor: Arc<Executor>,
    ) -> Self {
        let default = Arc::new(Served::new(
            &model_name,
            active,
            &registry_dir,
            observers.drift_window,
        ));
        let catalog = Arc::new(Catalog::single(default, &registry_dir));
        Self::serving(catalog, max_concurrency, observers, executor)
    }

    /// State for serving every model of `catalog`, the default model at `/predict`.
    pub fn serving(
        catalog: Arc<Catalog>,
        max_concurrency: u32,
        observers: Observers,
        executor: Arc<Executor>,
    ) -> Self {
        let default = catalog.default_model().clone();
        let registry_dir = catalog.registry_dir().to_path_buf();
        AppState {
            inner: Arc::new(Shared {
                default,
                catalog,
                registry_dir,
                calls: Arc::new(Semaphore::new(max_concurrency as usize)),
                executor,
                edge: EdgeLimits::default(),
                observers,
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

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.observers.metrics
    }

    /// Records one answered prediction of `served`: a prediction-log line (the response
    /// itself, in the lab's field order; on a server asked for several models, then the model's
    /// name), the per-version counter, and the model's live drift window. Every route that
    /// answers predictions calls this once per row.
    pub fn record_answer(&self, served: &Served, answer: &PredictResponse) {
        let observers = &self.inner.observers;
        observers
            .metrics
            .count_prediction(served.name(), &answer.model_version);
        served.drift().push(answer.features.clone());
        if let Some(log) = &observers.predlog {
            let line = if self.inner.catalog.names_each_model() {
                serde_json::to_string(&LogLine {
                    answer,
                    model: served.name(),
                })
            } else {
                serde_json::to_string(answer)
            };
            match line {
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

    /// The default model's slot.
    pub(super) fn active(&self) -> &ActiveModel {
        self.inner.default.active()
    }

    /// The default model.
    pub(super) fn default_model(&self) -> &Arc<Served> {
        &self.inner.default
    }

    /// Every served model.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }

    /// The served model named `name`: 404 naming the served ones for any other.
    pub(super) fn model_named(&self, name: &str) -> Result<Arc<Served>, AppError> {
        if name == self.inner.default.name() {
            return Ok(self.inner.default.clone());
        }
        self.inner.catalog.get(name).ok_or_else(|| {
            AppError::NotFound(format!(
                "unknown model `{name}`: this server serves {}",
                self.inner.catalog.names()
            ))
        })
    }

    /// The registry directory the server watches.
    pub(super) fn registry_dir(&self) -> &Path {
        &self.inner.registry_dir
    }

    /// The name of the default model.
    pub(super) fn model_name(&self) -> &str {
        self.inner.default.name()
    }

    /// The default model's folder in the registry directory.
    pub(super) fn model_folder(&self) -> &str {
        self.inner.default.folder()
    }

    /// The model-call slots (see [`limits::call_slot`](super::limits::call_slot)).
    pub(super) fn calls(&self) -> &Arc<Semaphore> {
        &self.inner.calls
    }

    /// The token monitoring routes require, when one is set.
    pub(super) fn monitoring_token(&self) -> Option<&str> {
        self.inner.observers.monitoring_token.as_deref()
    }

    /// The drift thresholds configured for the server.
    pub(super) fn drift_thresholds(&self) -> Thresholds {
        self.inner.observers.drift_thresholds
    }

    /// Runs the model on a call thread, at most `max_concurrency` requests at once; 503 when no
    /// slot frees up within the queue timeout (see [`limits`](super::limits)). Requests waiting
    /// at the same moment share one call (see [`executor`](crate::model::executor)).
    pub(super) async fn call_model(
        &self,
        model: Arc<Model>,
        rows: Vec<f64>,
    ) -> Result<Vec<f64>, AppError> {
        let permit = super::limits::call_slot(self).await?;
        Ok(self.inner.executor.call(model, rows, Some(permit)).await?)
    }

    /// Why the server is not ready — shutting down, or a model it must serve not serving
    /// (see [`Catalog::not_ready_reason`]) — or `None` when it is.
    pub(super) fn not_ready_reason(&self) -> Option<String> {
        if self.is_draining() {
            Some("shutting down".to_string())
        } else {
            self.inner.catalog.not_ready_reason()
        }
    }

    /// The default model serving, or 503 with the reason nothing serves.
    pub(super) fn serving_model(&self) -> Result<Arc<Model>, AppError> {
        Self::serving_model_of(&self.inner.default)
    }

    /// `served`'s serving model, or 503 with the reason nothing serves.
    pub(super) fn serving_model_of(served: &Served) -> Result<Arc<Model>, AppError> {
        served
            .current()
            .ok_or_else(|| AppError::NoModel(served.not_serving_reason()))
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

    /// Why the default model is not serving, for 503 bodies.
    pub(super) fn not_serving_reason(&self) -> String {
        self.inner.default.not_serving_reason()
    }
}

/// A prediction-log line: the answer's fields in the lab's order, then the model that answered
/// (a field added last, so readers of earlier lines read these as well).
#[derive(serde::Serialize)]
struct LogLine<'a> {
    #[serde(flatten)]
    answer: &'a PredictResponse,
    model: &'a str,
}
