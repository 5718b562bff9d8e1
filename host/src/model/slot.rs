//! The active-model slot: the one place the serving model is swapped.

use std::collections::VecDeque;
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

/// How many swaps and refusals [`ActiveModel::recent`] remembers: enough for an operator to see
/// what happened lately, bounded so a registry that keeps refusing costs nothing more.
pub const RECENT_EVENTS: usize = 32;

/// A swap or a refusal, as the slot saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotEvent {
    /// `version` (with `sha256`) became the serving model, replacing `from` (none at first load).
    Swap {
        at: SystemTime,
        version: String,
        sha256: String,
        from: Option<String>,
    },
    /// A candidate was refused for `reason`; the serving model stayed.
    Refused { at: SystemTime, reason: String },
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
    /// The last [`RECENT_EVENTS`] swaps and refusals, oldest first; a std `Mutex` for the same
    /// reason as `status`.
    recent: Mutex<VecDeque<SlotEvent>>,
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
        let (version, sha256) = (model.version().to_string(), model.sha256.clone());
        let previous = self.current.swap(Some(model));
        let mut status = self.lock_status();
        status.swaps += 1;
        status.last_error = None;
        status.last_error_at = None;
        drop(status);
        self.remember(SlotEvent::Swap {
            at: SystemTime::now(),
            version,
            sha256,
            from: previous.as_ref().map(|m| m.version().to_string()),
        });
        previous
    }

    /// Records a refused candidate; the serving model is untouched.
    pub fn reject(&self, reason: String) {
        let at = SystemTime::now();
        let mut status = self.lock_status();
        status.rejections += 1;
        status.last_error = Some(reason.clone());
        status.last_error_at = Some(at);
        drop(status);
        self.remember(SlotEvent::Refused { at, reason });
    }

    /// The last [`RECENT_EVENTS`] swaps and refusals, oldest first.
    pub fn recent(&self) -> Vec<SlotEvent> {
        self.lock_recent().iter().cloned().collect()
    }

    fn remember(&self, event: SlotEvent) {
        let mut recent = self.lock_recent();
        if recent.len() == RECENT_EVENTS {
            recent.pop_front();
        }
        recent.push_back(event);
    }

    fn lock_recent(&self) -> std::sync::MutexGuard<'_, VecDeque<SlotEvent>> {
        // Each push leaves the queue whole, so a poisoned lock is still used.
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_remembers_the_latest_refusals_oldest_first_and_no_more() {
        let slot = ActiveModel::new();
        for n in 0..RECENT_EVENTS + 5 {
            slot.reject(format!("refusal {n}"));
        }
        let recent = slot.recent();
        assert_eq!(recent.len(), RECENT_EVENTS);
        let reasons: Vec<&str> = recent
            .iter()
            .map(|event| match event {
                SlotEvent::Refused { reason, .. } => reason.as_str(),
                SlotEvent::Swap { .. } => panic!("no swap happened: {event:?}"),
            })
            .collect();
        assert_eq!(reasons[0], "refusal 5");
        assert_eq!(
            reasons[RECENT_EVENTS - 1],
            format!("refusal {}", RECENT_EVENTS + 4)
        );
        assert_eq!(slot.status().rejections, (RECENT_EVENTS + 5) as u64);
    }
}
