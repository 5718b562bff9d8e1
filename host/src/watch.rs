//! Watching the registry: noticing a new `model.wasm` and handing it to the load pipeline.
//!
//! The watcher polls the live artifact's fingerprint (size, mtime, inode). When it changes, it
//! waits until the file has been still for a settle window, reads it, and passes the bytes to
//! [`Model::load`] on a blocking thread. A model that loads is installed in the [`ActiveModel`]
//! slot; one that fails is recorded there as `last_error`, and the same bytes (by sha256) are
//! not tried again until the file changes. A missing file never unloads the serving model.
//!
//! The watcher never serves requests and never compiles on the async executor.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::model::{ActiveModel, Model, sha256_hex};
use crate::registry::{self, Fingerprint};
use crate::runtime::Runtime;

/// How long a file must stay unchanged before it is read.
pub const SETTLE: Duration = Duration::from_millis(150);

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing new.
    Unchanged,
    /// The live file is absent.
    Missing,
    /// A new model is serving; its version.
    Installed(String),
    /// The candidate was refused; the reason.
    Rejected(String),
}

#[derive(Default)]
struct Seen {
    fingerprint: Option<Fingerprint>,
    /// sha256 of the last bytes tried, loaded or not.
    sha256: Option<String>,
    missing_warned: bool,
}

/// Loads new artifacts from one model folder into the active slot.
pub struct Watcher {
    runtime: Arc<Runtime>,
    active: Arc<ActiveModel>,
    path: PathBuf,
    seen: Mutex<Seen>,
}

impl Watcher {
    pub fn new(runtime: Arc<Runtime>, active: Arc<ActiveModel>, path: PathBuf) -> Self {
        Watcher {
            runtime,
            active,
            path,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// The artifact path being watched.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Checks the live file once and loads it if it changed.
    pub async fn check(&self) -> Outcome {
        let mut seen = self.seen.lock().await;
        let current = match registry::fingerprint(&self.path) {
            Ok(fp) => fp,
            Err(e) => {
                return self.refuse(
                    &mut seen,
                    None,
                    format!("cannot stat {}: {e}", self.path.display()),
                );
            }
        };
        let Some(mut fingerprint) = current else {
            if !seen.missing_warned {
                seen.missing_warned = true;
                match self.active.current() {
                    Some(model) => tracing::warn!(
                        path = %self.path.display(),
                        version = model.version(),
                        "live artifact is missing; still serving the loaded model"
                    ),
                    None => {
                        tracing::warn!(path = %self.path.display(), "no model artifact yet; waiting for one")
                    }
                }
            }
            seen.fingerprint = None;
            return Outcome::Missing;
        };
        seen.missing_warned = false;
        if seen.fingerprint == Some(fingerprint) {
            return Outcome::Unchanged;
        }
        // Wait for the writer to finish: the file must look the same across a settle window.
        // A file last modified longer ago than the window (the usual case at startup) is
        // already settled.
        let mut settled = fingerprint
            .modified
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= SETTLE);
        while !settled {
            tokio::time::sleep(SETTLE).await;
            match registry::fingerprint(&self.path) {
                Ok(Some(again)) if again == fingerprint => settled = true,
                Ok(Some(again)) => fingerprint = again,
                Ok(None) => return Outcome::Missing,
                Err(e) => {
                    return self.refuse(
                        &mut seen,
                        None,
                        format!("cannot stat {}: {e}", self.path.display()),
                    );
                }
            }
        }
        let path = self.path.clone();
        let bytes = match tokio::task::spawn_blocking(move || registry::read_artifact(&path)).await
        {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                let reason = format!("cannot read {}: {e}", self.path.display());
                return self.refuse(&mut seen, Some(fingerprint), reason);
            }
            Err(e) => return self.refuse(&mut seen, None, format!("reader task failed: {e}")),
        };
        // If the file changed while it was read, the next check starts over.
        if registry::fingerprint(&self.path).ok().flatten() != Some(fingerprint) {
            return Outcome::Unchanged;
        }
        seen.fingerprint = Some(fingerprint);
        let sha256 = sha256_hex(&bytes);
        if seen.sha256.as_deref() == Some(sha256.as_str()) {
            return Outcome::Unchanged;
        }
        seen.sha256 = Some(sha256.clone());

        let runtime = self.runtime.clone();
        let source = self.path.clone();
        let loaded =
            tokio::task::spawn_blocking(move || Model::load(&runtime, &bytes, source)).await;
        match loaded {
            Ok(Ok(model)) => {
                let version = model.version().to_string();
                let previous = self.active.install(Arc::new(model));
                tracing::info!(
                    path = %self.path.display(),
                    version = %version,
                    sha256 = %sha256,
                    previous = previous.as_ref().map(|m| m.version()),
                    "model loaded and serving"
                );
                Outcome::Installed(version)
            }
            Ok(Err(e)) => {
                let reason = format!("{}: {e}", self.path.display());
                tracing::error!(reason = e.reason(), sha256 = %sha256, "refused candidate {reason}");
                self.active.reject(reason.clone());
                Outcome::Rejected(reason)
            }
            Err(e) => self.refuse(&mut seen, None, format!("loader task failed: {e}")),
        }
    }

    fn refuse(&self, seen: &mut Seen, fingerprint: Option<Fingerprint>, reason: String) -> Outcome {
        seen.fingerprint = fingerprint;
        tracing::error!("{reason}");
        self.active.reject(reason.clone());
        Outcome::Rejected(reason)
    }

    /// Checks every `interval` until `shutdown` resolves.
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            self.check().await;
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}
