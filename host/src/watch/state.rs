//! What the watcher has seen of the model folder, and how it reports a verdict on it.

use std::time::{Duration, Instant, SystemTime};

use super::{INCOMPLETE_QUIET, Outcome, RACY, REPORT_QUIET, Watcher};
use crate::registry::Fingerprint;

/// The fingerprints of `model.wasm` and its optional checksum file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub(super) artifact: Fingerprint,
    pub(super) checksum: Option<Fingerprint>,
}

impl Snapshot {
    /// The later mtime of the two files; `None` if one is unknown.
    pub(super) fn modified(&self) -> Option<SystemTime> {
        let artifact = self.artifact.modified?;
        match self.checksum {
            Some(checksum) => Some(artifact.max(checksum.modified?)),
            None => Some(artifact),
        }
    }

    /// How long ago, by mtime, the files last changed (zero for an mtime in the future).
    pub(super) fn age(&self) -> Option<Duration> {
        self.modified()
            .map(|m| SystemTime::now().duration_since(m).unwrap_or_default())
    }
}

/// What was judged: the bytes' sha256 and the checksum they were held to, or why they could not
/// be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Candidate {
    Bytes {
        sha256: String,
        expected: Option<Result<String, String>>,
    },
    Unreadable(String),
}

/// Why a candidate was refused: its metric label, the message naming the file, and whether
/// the bytes are a wasm module cut short (then the refusal waits for [`INCOMPLETE_QUIET`]).
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    pub(super) kind: &'static str,
    pub(super) reason: String,
    pub(super) cut_short: bool,
}

impl Refusal {
    /// A refusal of whole bytes.
    pub(super) fn new(kind: &'static str, reason: String) -> Refusal {
        Refusal {
            kind,
            reason,
            cut_short: false,
        }
    }

    /// How long the files must stay unchanged before this refusal is reported.
    fn quiet(&self) -> Duration {
        if self.cut_short {
            INCOMPLETE_QUIET
        } else {
            REPORT_QUIET
        }
    }
}

#[derive(Default)]
pub(super) struct Seen {
    /// The snapshot last read, and when it was read and first seen.
    pub(super) snapshot: Option<Snapshot>,
    pub(super) read_at: Option<SystemTime>,
    pub(super) since: Option<Instant>,
    /// The last candidate judged, loaded or not.
    pub(super) candidate: Option<Candidate>,
    /// A refusal of `candidate` not reported yet.
    pub(super) held: Option<Refusal>,
    pub(super) stat_error: Option<String>,
    pub(super) missing_warned: bool,
}

impl Seen {
    /// Whether `snapshot` is the one last read, and old enough that its fingerprint can be
    /// trusted to change with its bytes.
    pub(super) fn trusts(&self, snapshot: &Snapshot) -> bool {
        self.snapshot.as_ref() == Some(snapshot)
            && snapshot
                .modified()
                .zip(self.read_at)
                .and_then(|(modified, read_at)| read_at.duration_since(modified).ok())
                .is_some_and(|gap| gap >= RACY)
    }

    /// How long the current snapshot has been unchanged: by mtime, or since it was first seen.
    pub(super) fn quiet_for(&self) -> Duration {
        let seen = self.since.map(|s| s.elapsed()).unwrap_or_default();
        let aged = self.snapshot.and_then(|s| s.age()).unwrap_or_default();
        seen.max(aged)
    }
}

impl Watcher {
    /// Reports the refusal now if the files have been quiet long enough ([`REPORT_QUIET`], or
    /// [`INCOMPLETE_QUIET`] for a module cut short), else holds it and says what it waits for:
    /// a file that is young may be a copy paused mid-write, which is not refused but waited for.
    pub(super) fn hold_or_report(&self, seen: &mut Seen, refusal: Refusal) -> Outcome {
        let quiet = refusal.quiet();
        let changed = seen.quiet_for();
        if changed >= quiet {
            return self.report(seen, refusal.kind, refusal.reason);
        }
        let path = self.path.display();
        if refusal.cut_short {
            tracing::warn!(
                path = %path,
                changed_ms_ago = changed.as_millis() as u64,
                "model file is incomplete (a wasm module cut short), waiting for it to settle; \
                 refused only if it stays unchanged for {quiet:?}"
            );
        } else {
            tracing::info!(
                path = %path,
                changed_ms_ago = changed.as_millis() as u64,
                "model file changed too recently to judge, waiting for it to settle; \
                 refused if it stays unchanged for {quiet:?}: {}",
                refusal.reason
            );
        }
        let reason = refusal.reason.clone();
        seen.held = Some(refusal);
        Outcome::Held(reason)
    }

    /// Reports a held refusal once the files have stayed unchanged long enough.
    pub(super) fn report_if_quiet(&self, seen: &mut Seen) -> Outcome {
        match seen.held.take() {
            Some(held) if seen.quiet_for() >= held.quiet() => {
                self.report(seen, held.kind, held.reason)
            }
            Some(held) => {
                let reason = held.reason.clone();
                seen.held = Some(held);
                Outcome::Held(reason)
            }
            None => Outcome::Unchanged,
        }
    }

    pub(super) fn report(&self, seen: &mut Seen, kind: &'static str, reason: String) -> Outcome {
        seen.held = None;
        match self.active.current() {
            Some(model) => tracing::error!(
                model = %self.model_name,
                serving = model.version(),
                reason = kind,
                "refused candidate, still serving the loaded model: {reason}"
            ),
            None => tracing::error!(
                model = %self.model_name,
                reason = kind,
                "refused candidate: {reason}"
            ),
        }
        if let Some(metrics) = &self.metrics {
            metrics.reject(&self.model_name, kind);
        }
        self.active.reject(reason.clone());
        Outcome::Rejected(reason)
    }

    pub(super) fn missing(&self, seen: &mut Seen) -> Outcome {
        seen.snapshot = None;
        seen.held = None;
        seen.stat_error = None;
        if !seen.missing_warned {
            seen.missing_warned = true;
            match self.active.current() {
                Some(model) => tracing::warn!(
                    path = %self.path.display(),
                    version = model.version(),
                    "live artifact is missing; still serving the loaded model"
                ),
                None => {
                    let absence =
                        crate::registry::Absence::survey(&self.registry_dir, &self.model_name);
                    tracing::warn!(
                        path = %self.path.display(),
                        registry_exists = absence.registry_exists,
                        models = ?absence.models,
                        "{absence}; waiting for one"
                    );
                    self.active.set_waiting(Some(absence.to_string()));
                }
            }
        }
        Outcome::Missing
    }

    /// A failing `stat` is reported once per distinct error, not on every poll.
    pub(super) fn stat_failed(&self, seen: &mut Seen, reason: String) -> Outcome {
        seen.snapshot = None;
        if seen.stat_error.as_ref() == Some(&reason) {
            return Outcome::Unchanged;
        }
        seen.stat_error = Some(reason.clone());
        self.report(seen, "unreadable", reason)
    }
}
