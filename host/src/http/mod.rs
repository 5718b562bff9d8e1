//! The HTTP edge: routes, handlers and the one error type that turns failures into JSON.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it over a real socket or
//! with `oneshot`. Handlers take a snapshot of the active model per request and run model calls
//! on blocking threads, bounded by a semaphore. This module knows nothing of wasmtime: it sees
//! [`Model`](crate::model::Model), its info document and its errors.

mod error;
mod handlers;

pub use error::AppError;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::model::ActiveModel;

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
    /// Bounds the model calls running at once; a call waits for a permit.
    calls: Semaphore,
}

impl AppState {
    /// State for serving `model_name` from `registry_dir` with at most `max_concurrency`
    /// model calls at once.
    pub fn new(
        active: Arc<ActiveModel>,
        registry_dir: PathBuf,
        model_name: String,
        max_concurrency: u32,
    ) -> Self {
        let model_path = crate::registry::live_path(&registry_dir, &model_name);
        AppState {
            inner: Arc::new(Shared {
                active,
                registry_dir,
                model_path,
                model_name,
                calls: Semaphore::new(max_concurrency as usize),
            }),
        }
    }
}

/// The router with every route.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/predict", post(handlers::predict))
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/startup", get(handlers::startup))
        .route("/model", get(handlers::model))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}
