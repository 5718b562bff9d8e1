//! The load pipeline's steps that touch files or compile: stat, settle, read, load. Every
//! blocking step runs on a blocking thread.

use std::path::Path;

use super::state::{Candidate, Refusal, Snapshot};
use super::{SETTLE, Watcher};
use crate::model::{Model, sha256_hex};
use crate::registry;
use crate::runtime::is_cut_short;

impl Watcher {
    /// The current snapshot; `None` while `model.wasm` is absent.
    pub(super) fn snapshot(&self) -> Result<Option<Snapshot>, String> {
        let stat = |path: &Path| {
            registry::fingerprint(path).map_err(|e| format!("cannot stat {}: {e}", path.display()))
        };
        let Some(artifact) = stat(&self.path)? else {
            return Ok(None);
        };
        let checksum = stat(&self.checksum_path)?;
        Ok(Some(Snapshot { artifact, checksum }))
    }

    /// Waits until the snapshot has been the same over [`SETTLE`]; `None` if a file vanished.
    /// Files last changed longer ago than that (the usual case at startup) are settled already.
    pub(super) async fn settle(&self, mut snapshot: Snapshot) -> Option<Snapshot> {
        let mut settled = snapshot.age().is_some_and(|age| age >= SETTLE);
        while !settled {
            tokio::time::sleep(SETTLE).await;
            match self.snapshot() {
                Ok(Some(again)) if again == snapshot => settled = true,
                Ok(Some(again)) => snapshot = again,
                Ok(None) | Err(_) => return None,
            }
        }
        Some(snapshot)
    }

    /// Reads both files on a blocking thread.
    pub(super) async fn read(&self, snapshot: Snapshot) -> (Candidate, Vec<u8>) {
        let path = self.path.clone();
        let checksum_path = self.checksum_path.clone();
        let has_checksum = snapshot.checksum.is_some();
        let read = tokio::task::spawn_blocking(move || {
            let bytes = registry::read_artifact(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let expected = if has_checksum {
                match registry::read_checksum(&checksum_path) {
                    Ok(expected) => expected.map(Ok),
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        Some(Err(e.to_string()))
                    }
                    Err(e) => return Err(format!("cannot read {}: {e}", checksum_path.display())),
                }
            } else {
                None
            };
            Ok((bytes, expected))
        })
        .await;
        match read {
            Ok(Ok((bytes, expected))) => {
                let sha256 = sha256_hex(&bytes);
                (Candidate::Bytes { sha256, expected }, bytes)
            }
            Ok(Err(reason)) => (Candidate::Unreadable(reason), Vec::new()),
            Err(e) => (
                Candidate::Unreadable(format!("reader task failed: {e}")),
                Vec::new(),
            ),
        }
    }

    /// Checks, compiles and self-tests `bytes` on a blocking thread, then compares the sha256
    /// recorded for the version they name, if any. On refusal, the reason naming the file, and
    /// whether the bytes are a wasm module cut short ([`is_cut_short`]): a copy that may still
    /// be in progress.
    pub(super) async fn load(&self, bytes: Vec<u8>, sha256: &str) -> Result<Model, Refusal> {
        let runtime = self.runtime.clone();
        let source = self.path.clone();
        let registry_dir = self.registry_dir.clone();
        let model_name = self.model_name.clone();
        // Held until the load is done; a closed semaphore (never closed) would just not wait.
        let _slot = match &self.loads {
            Some(slots) => slots.clone().acquire_owned().await.ok(),
            None => None,
        };
        let loaded = tokio::task::spawn_blocking(move || {
            let model = Model::load(&runtime, &bytes, source).map_err(|e| {
                (e.reason(), crate::error::chain(&e), is_cut_short(&bytes))
            })?;
            let version = model.version();
            match registry::recorded_sha256(&registry_dir, &model_name, version) {
                Some(recorded) if recorded != model.sha256 => {
                    let record = registry::version_record_path(&registry_dir, &model_name, version);
                    Err((
                        "checksum",
                        format!(
                            "sha256 {} does not match the sha256 {} records for version {version} ({recorded})",
                            model.sha256,
                            record.display()
                        ),
                        false,
                    ))
                }
                _ => Ok(model),
            }
        })
        .await;
        match loaded {
            Ok(Ok(model)) => Ok(model),
            Ok(Err((kind, message, cut_short))) => {
                tracing::debug!(reason = kind, sha256, "candidate refused: {message}");
                let reason = format!("{}: {message}", self.path.display());
                Err(Refusal {
                    kind,
                    reason,
                    cut_short,
                })
            }
            Err(e) => Err(Refusal::new(
                "loader_panic",
                format!("loader task failed for {}: {e}", self.path.display()),
            )),
        }
    }
}
