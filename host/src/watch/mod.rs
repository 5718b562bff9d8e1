//! Watching the registry: noticing a new `model.wasm` and handing it to the load pipeline.
//!
//! **When a check runs.** The poll is the source of truth: [`Watcher::run`] checks the model
//! folder every poll interval (2 s by default), which is all there is on network volumes where
//! inotify is blind. File-system events (`notify`, [`events`]) only make a check come sooner:
//! the folder `REGISTRY_DIR/MODEL_NAME/` is watched (or, until it exists, its nearest existing
//! ancestor, re-armed after every check), notify's thread forwards a wake-up into a tokio
//! channel and does nothing else, and a burst of events is coalesced until it has been quiet
//! for 75 ms (at most 500 ms), so a write in many chunks costs one check. Events can be turned
//! off (`watch_events = false`) to poll only; a watcher that cannot be created falls back to it.
//!
//! **What a check compares.** A [`Snapshot`] is the fingerprint (size, mtime, inode) of
//! `model.wasm` and of the optional checksum file `model.wasm.sha256`. An unchanged snapshot
//! costs one `stat` per file, unless the bytes were read less than 2 s after their mtime: then
//! a same-size rewrite within the file system's mtime granularity would be invisible, so the
//! bytes are read again (and de-duplicated by sha256) until the snapshot is older than that.
//!
//! **When a candidate is complete.** Its snapshot must stay the same over a settle window of
//! 150 ms, and must not change while it is read. Where a checksum is recorded, it must match:
//! - `model.wasm.sha256` (optional, beside `model.wasm`: 64 hex digits, or `sha256sum` output)
//!   names the bytes `model.wasm` must have. A mismatch is not a defect but an incomplete
//!   copy: nothing is compiled, and the check waits for either file to change. Write it before
//!   copying a file in place (`kubectl cp`) and a half-copied file is never even compiled. A
//!   stale checksum file holds back every new artifact, visibly (see below); delete it to stop
//!   checking.
//! - `versions/<version>.json`, written by `modelhost train`, records the sha256 of each
//!   version. Once the bytes have loaded and named their version, a record with another sha256
//!   refuses them: the response's `model_version` must name exactly the bytes that computed it.
//!
//! **Load pipeline.** read → sha256 → checksum → ABI checks and compile → self-test
//! ([`Model::load`], on a blocking thread, never on the executor nor on notify's thread) →
//! version record → [`ActiveModel::install`], an atomic swap. A request keeps the model it
//! started with. Bytes equal to the serving model are never reloaded (their return after a
//! refused candidate clears `last_error`).
//!
//! **Refusals.** A refused candidate never displaces the serving model. A candidate is
//! identified by its sha256 and the checksum it was held to: the same candidate is judged once,
//! and only a change to `model.wasm` or its checksum file triggers a new attempt. A refusal is
//! reported (logged at ERROR, counted in `rejections`, shown as `last_error` in `GET /model`)
//! once both files have been quiet for 1 s ([`REPORT_QUIET`]); until then it is only held and
//! logged at INFO as waiting for the file to settle, because a file that is still young may be
//! a copy paused mid-write, and a truncated file seen mid-copy must not be reported when the
//! completed file is about to load. Bytes that are a wasm module cut short (the header and
//! sections read cleanly, but the last section needs more bytes than the file has; an empty
//! file too) are what such a copy looks like while it pauses: they are logged at WARN as
//! incomplete and waited for until the files have been quiet for 5 s ([`INCOMPLETE_QUIET`]),
//! so a copy that stalls for a few seconds loads when it completes and is never counted as a
//! refusal. A truncated file that stays as it is is refused after that, as any other.
//! `last_error` never affects readiness; the next successful install clears it.
//!
//! **Deletion.** A missing `model.wasm` never unloads the serving model: the watcher warns once
//! per disappearance and keeps serving.
//!
//! **Several models.** A [`Watcher`] watches one model folder; [`Fleet`] runs one per served
//! model and, with `MODEL_NAMES=*`, follows the registry's folders as they appear and go.
//!
//! Files: this module holds the check and the run loop; [`events`] the notify side, `pipeline`
//! the stat, settle, read and load steps, `state` what was seen and how verdicts are
//! reported, and `fleet` the watchers of every served model.

mod events;
mod fleet;
mod pipeline;
mod state;

pub use fleet::Fleet;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Mutex;

use self::state::{Candidate, Refusal, Seen};
use crate::model::ActiveModel;
use crate::registry;
use crate::runtime::Runtime;
use crate::telemetry::metrics::Metrics;

/// How long a file must stay unchanged before it is read.
pub const SETTLE: Duration = Duration::from_millis(150);

/// How long a refused candidate's files must stay unchanged before the refusal is reported.
pub const REPORT_QUIET: Duration = Duration::from_secs(1);

/// How long a candidate that is a wasm module cut short (see [`crate::runtime::is_cut_short`])
/// must stay unchanged before it is refused: the look of a copy paused mid-write. Longer than
/// [`REPORT_QUIET`] because such a pause is common (a network copy stalls, `kubectl cp`
/// waits on the API server) and refusing a copy still in progress raises a false alarm,
/// while a truncated file that really is final only waits a few seconds more to be refused.
pub const INCOMPLETE_QUIET: Duration = Duration::from_secs(5);

/// Bytes read less than this after their mtime are read again on the next check: coarse mtimes
/// (1-2 s on some file systems) can hide a same-size rewrite.
pub const RACY: Duration = Duration::from_secs(2);

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing new.
    Unchanged,
    /// The live file is absent.
    Missing,
    /// A new model is serving; its version.
    Installed(String),
    /// The candidate was refused and the refusal reported; the reason.
    Rejected(String),
    /// The candidate was refused but its files changed too recently to report it (or it does not
    /// match its checksum yet, or is a module cut short: a copy that may be paused mid-write);
    /// the reason, reported if the files stay unchanged.
    Held(String),
}

/// When the watcher checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Every check is at most this far apart.
    pub poll_interval: Duration,
    /// Whether file-system events trigger a check sooner.
    pub events: bool,
}

/// Loads new artifacts from one model folder into the active slot.
pub struct Watcher {
    runtime: Arc<Runtime>,
    active: Arc<ActiveModel>,
    registry_dir: PathBuf,
    model_name: String,
    path: PathBuf,
    checksum_path: PathBuf,
    seen: Mutex<Seen>,
    metrics: Option<Arc<Metrics>>,
    /// Shared by the watchers of one server: bounds the loads (compile and self-test) that run
    /// at once, so many models starting together stay within the runtime's spare instances.
    loads: Option<Arc<tokio::sync::Semaphore>>,
}

/// Loads that run at once in one server (see [`Watcher::with_load_slots`]): fewer than the
/// instances the runtime keeps beside the serving calls.
pub const LOADS_AT_ONCE: usize = 4;

impl Watcher {
    /// A watcher of `registry_dir/model_name/`.
    pub fn new(
        runtime: Arc<Runtime>,
        active: Arc<ActiveModel>,
        registry_dir: &Path,
        model_name: &str,
    ) -> Self {
        Watcher {
            runtime,
            active,
            registry_dir: registry_dir.to_path_buf(),
            model_name: model_name.to_string(),
            path: registry::live_path(registry_dir, model_name),
            checksum_path: registry::checksum_path(registry_dir, model_name),
            seen: Mutex::new(Seen::default()),
            metrics: None,
            loads: None,
        }
    }

    /// Counts loads, swaps and refusals (by reason) in `metrics`, and keeps its `model_info`
    /// naming the serving model.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        metrics.register_model(&self.model_name);
        self.metrics = Some(metrics);
        self
    }

    /// Waits for one of `slots` before each load (compile and self-test).
    pub fn with_load_slots(mut self, slots: Arc<tokio::sync::Semaphore>) -> Self {
        self.loads = Some(slots);
        self
    }

    /// The artifact path being watched.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the model folder once and loads the artifact if it is a new, complete candidate.
    pub async fn check(&self) -> Outcome {
        let mut seen = self.seen.lock().await;
        let seen = &mut *seen;
        loop {
            let snapshot = match self.snapshot() {
                Ok(Some(snapshot)) => snapshot,
                Ok(None) => return self.missing(seen),
                Err(reason) => return self.stat_failed(seen, reason),
            };
            if seen.missing_warned {
                seen.missing_warned = false;
                self.active.set_waiting(None);
            }
            seen.stat_error = None;
            if seen.trusts(&snapshot) {
                return self.report_if_quiet(seen);
            }
            let Some(snapshot) = self.settle(snapshot).await else {
                continue;
            };
            let read_at = SystemTime::now();
            let candidate = self.read(snapshot).await;
            // If either file changed while it was read, start over.
            if self.snapshot().ok().flatten() != Some(snapshot) {
                continue;
            }
            if seen.snapshot != Some(snapshot) {
                seen.snapshot = Some(snapshot);
                seen.since = Some(Instant::now());
            }
            seen.read_at = Some(read_at);
            let (candidate, bytes) = candidate;
            if seen.candidate.as_ref() == Some(&candidate) {
                return self.report_if_quiet(seen);
            }
            seen.candidate = Some(candidate.clone());
            seen.held = None;
            let sha256 = match candidate {
                Candidate::Unreadable(reason) => {
                    return self.hold_or_report(seen, Refusal::new("unreadable", reason));
                }
                Candidate::Bytes {
                    expected: Some(Err(problem)),
                    ..
                } => return self.hold_or_report(seen, Refusal::new("checksum", problem)),
                Candidate::Bytes {
                    sha256,
                    expected: Some(Ok(expected)),
                } if sha256 != expected => {
                    let reason = format!(
                        "{}: sha256 {sha256} does not match {} ({expected}); waiting for either to change",
                        self.path.display(),
                        self.checksum_path.display()
                    );
                    return self.hold_or_report(seen, Refusal::new("checksum", reason));
                }
                Candidate::Bytes { sha256, .. } => sha256,
            };
            if let Some(model) = self.active.current().filter(|m| m.sha256 == sha256) {
                // The serving bytes are back (say, after a refused candidate): nothing to load,
                // and no refusal stands any more.
                if self.active.status().last_error.is_some() {
                    tracing::info!(
                        version = model.version(),
                        "live artifact is the serving model again"
                    );
                    self.active.clear_error();
                }
                return Outcome::Unchanged;
            }
            match self.load(bytes, &sha256).await {
                Ok(model) => {
                    let version = model.version().to_string();
                    if let Some(metrics) = &self.metrics {
                        metrics.model_loaded(
                            &self.model_name,
                            &model.info().name,
                            &version,
                            &sha256,
                        );
                    }
                    let previous = self.active.install(Arc::new(model));
                    tracing::info!(
                        path = %self.path.display(),
                        version = %version,
                        sha256 = %sha256,
                        previous = previous.as_ref().map(|m| m.version()),
                        "model loaded and serving"
                    );
                    return Outcome::Installed(version);
                }
                Err(refusal) => {
                    // A file that changed while it was compiled is judged again as a whole.
                    if self.snapshot().ok().flatten() != Some(snapshot) {
                        seen.candidate = None;
                        continue;
                    }
                    return self.hold_or_report(seen, refusal);
                }
            }
        }
    }

    /// Checks now, then on every event burst (if enabled) and at least every poll interval,
    /// until `shutdown` resolves.
    pub async fn run(
        self: Arc<Self>,
        schedule: Schedule,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let dir = self.registry_dir.join(&self.model_name);
        let mut events = if schedule.events {
            match events::Events::new(&dir) {
                Ok(events) => Some(events),
                Err(e) => {
                    tracing::warn!(
                        path = %dir.display(),
                        "cannot watch for file-system events, polling only: {e}"
                    );
                    None
                }
            }
        } else {
            None
        };
        loop {
            if let Some(events) = &mut events {
                events.arm();
            }
            // A check waits for a writer to finish; shutdown does not wait for the check.
            let outcome = tokio::select! {
                _ = &mut shutdown => return,
                outcome = self.check() => outcome,
            };
            // A held refusal is looked at again as soon as it may be reported.
            let wait = match outcome {
                Outcome::Held(_) => schedule.poll_interval.min(REPORT_QUIET),
                _ => schedule.poll_interval,
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
                _ = events::next_burst(events.as_mut()) => {}
            }
        }
    }
}
