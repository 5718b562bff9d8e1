//! Time limits at the HTTP edge: the request timeout, and the bounded wait for a model slot.
//!
//! The wasm runtime bounds each model call (time and memory); these bound everything around it.
//! A request that is not answered within the request timeout (a client trickling its body, a
//! long queue) gets 408. A prediction waits at most the queue timeout for one of the
//! `max_concurrency` model slots and is otherwise refused with 503 and `Retry-After`, so that an
//! overloaded replica sheds load at once instead of queueing without bound.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, TryAcquireError};

use super::{AppError, AppState};
use crate::config::DEFAULTS;

/// The edge's time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Longest one request may take from its headers to its response (body read, wait for a
    /// model slot and model call included).
    pub request_timeout: Duration,
    /// Longest a prediction waits for a free model slot before it is refused with 503; zero
    /// refuses at once when every slot is busy.
    pub queue_timeout: Duration,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            request_timeout: Duration::from_millis(DEFAULTS.request_timeout_ms),
            queue_timeout: Duration::from_millis(DEFAULTS.queue_timeout_ms),
        }
    }
}

/// Answers 408 when the rest of the stack has not answered within the request timeout. The
/// abandoned handler is dropped; a model call it started finishes on its blocking thread (within
/// the wasm time limit) and keeps its slot until then.
pub async fn request_timeout(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.edge_limits().request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::RequestTimeout(format!(
            "request not completed within the {} ms request timeout",
            limit.as_millis()
        ))
        .into_response(),
    }
}

/// Takes a model slot, waiting at most the queue timeout. The permit is owned so that the
/// blocking model call can hold it until the wasm call returns, even if the request that asked
/// for it was abandoned.
pub(super) async fn call_slot(state: &AppState) -> Result<OwnedSemaphorePermit, AppError> {
    let calls = state.calls();
    let wait = state.edge_limits().queue_timeout;
    let closed = || AppError::Internal("call semaphore closed".to_string());
    match calls.clone().try_acquire_owned() {
        Ok(permit) => return Ok(permit),
        Err(TryAcquireError::Closed) => return Err(closed()),
        Err(TryAcquireError::NoPermits) => {}
    }
    if !wait.is_zero()
        && let Ok(acquired) = tokio::time::timeout(wait, calls.clone().acquire_owned()).await
    {
        return acquired.map_err(|_| closed());
    }
    Err(AppError::Busy(format!(
        "every model slot is busy (waited {} ms); retry shortly",
        wait.as_millis()
    )))
}
