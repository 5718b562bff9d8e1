//! The active-model slot: the one place the serving model is swapped.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;

use super::Model;

/// What the slot knows besides the model itself: the last failed load and counters.
#[derive(Debug, Clone, Default)]
pub struct SlotStatus {
    /// Why the most recent candidate was refused, if the most recent load attempt failed or
    /// an older failure has not been superseded by a successful load.
    pub last_error: Option<String>,
    /// When `last_error` happened.
    pub last_error_at: Option<SystemTime>,
    /// Successful loads (the first one included).
    pub swaps: u64,
    /// Refused candidates.
    pub rejections: u64,
    /// While there is no artifact to load: why (what was looked at, what the registry holds).
    pub waiting: Option<String>,
}

/// The serving model. Readers take a cheap snapshot (`Arc<Model>`) and keep it for the whole
/// request, so a swap never changes the model under a request that already started.
///
/// The status sits behind a std `Mutex`: it is touched once per load attempt and per `/model`
/// request, never across an `.await`, so an async lock would buy nothing.
#[derive(Default)]
pub struct ActiveModel {
    current: ArcSwapOption<Model>,
    status: Mutex<SlotStatus>,
}

impl ActiveModel {
    /// An empty slot: nothing serves until the first [`ActiveModel::install`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The serving model, if any.
    pub fn current(&self) -> Option<Arc<Model>> {
        self.current.load_full()
    }

    /// Atomically makes `model` the serving model and returns the one it replaced.
    pub fn install(&self, model: Arc<Model>) -> Option<Arc<Model>> {
        let previous = self.current.swap(Some(model));
        let mut status = self.lock_status();
        status.swaps += 1;
        status.last_error = None;
        status.last_error_at = None;
        previous
    }

    /// Records a refused candidate; the serving model is untouched.
    pub fn reject(&self, reason: String) {
        let mut status = self.lock_status();
        status.rejections += 1;
        status.last_error = Some(reason);
        status.last_error_at = Some(SystemTime::now());
    }

    /// Forgets the last refusal without a swap, when the live file is the serving model again
    /// (a refused candidate was replaced by the bytes already serving).
    pub fn clear_error(&self) {
        let mut status = self.lock_status();
        status.last_error = None;
        status.last_error_at = None;
    }

    /// Records why there is nothing to load yet (`None`: an artifact is there).
    pub fn set_waiting(&self, waiting: Option<String>) {
        self.lock_status().waiting = waiting;
    }

    /// A copy of the status.
    pub fn status(&self) -> SlotStatus {
        self.lock_status().clone()
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, SlotStatus> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way that
        // matters, so a poisoned lock is still used.
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}
