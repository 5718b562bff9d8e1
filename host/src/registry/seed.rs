//! Seeding: how the first model arrives in an empty registry.
//!
//! A server may be given a seed directory (`seed_dir`, `MODELHOST_SEED_DIR`): a read-only
//! registry with the same layout, such as the default model the container image carries. At
//! startup, before the watcher runs, [`seed`] installs `SEED_DIR/MODEL_NAME/model.wasm` as
//! `REGISTRY_DIR/MODEL_NAME/model.wasm` if, and only if, the registry has no `model.wasm` yet.
//! Where the seed records the model's version (`versions/<v>.wasm` and `versions/<v>.json` with
//! a matching sha256), those two files are copied too and a `seed` line is appended to
//! `history.jsonl`, so `versions` and `rollback` know the seeded model like a trained one.
//!
//! Properties:
//! - **Never overwrites.** Files are written to a unique temp file, fsynced, and then
//!   hard-linked to their name, which fails if the name exists; so a `model.wasm` that a
//!   training Job, a publish or another replica wrote first, even a moment before, is kept.
//! - **Races are safe.** Two replicas starting together on one volume both try; exactly one
//!   link succeeds, the other reports [`Seeded::Lost`] and writes no history line.
//! - **The registry must exist.** A missing registry directory means the volume is not mounted:
//!   nothing is created, and `/startup` keeps saying so.
//!
//! The seeded bytes are only copied here; like any other artifact they are loaded, checked and
//! self-tested by the watcher before they serve.

use std::path::Path;

use super::atomic::link_new;
use super::history;
use super::records::{HistoryEvent, SeedLine, Source, VersionRecord, field};
use super::{append_history, live_path, read_artifact, version_path, version_record_path};
use crate::model::sha256_hex;

/// What [`seed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seeded {
    /// The registry already has a `model.wasm`; nothing was written.
    Present,
    /// The registry directory does not exist (not mounted); nothing was written.
    NoRegistry,
    /// The seed directory has no `model.wasm` for this model; nothing was written.
    NoSeed,
    /// The seed's `model.wasm` was installed. `version` is its recorded version, if the seed
    /// records one (its version files were then copied and a history line appended).
    Installed {
        version: Option<String>,
        sha256: String,
    },
    /// Another process installed a `model.wasm` between the check and the install; it was kept.
    Lost,
}

/// Installs the seed's model into an empty registry; see the module documentation.
pub fn seed(registry_dir: &Path, seed_dir: &Path, model_name: &str) -> std::io::Result<Seeded> {
    let live = live_path(registry_dir, model_name);
    if exists(&live)? {
        return Ok(Seeded::Present);
    }
    if !registry_dir.is_dir() {
        return Ok(Seeded::NoRegistry);
    }
    let bytes = match read_artifact(&live_path(seed_dir, model_name)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Seeded::NoSeed),
        Err(e) => return Err(e),
    };
    let sha256 = sha256_hex(&bytes);
    let recorded = recorded_version(seed_dir, model_name, &sha256)?;

    // The version files first, so the watcher finds the record when it loads the model.
    if let Some(recorded) = &recorded {
        let version = &recorded.version;
        link_new(&version_path(registry_dir, model_name, version), &bytes)?;
        link_new(
            &version_record_path(registry_dir, model_name, version),
            &recorded.record,
        )?;
    }
    if !link_new(&live, &bytes)? {
        return Ok(Seeded::Lost);
    }
    let version = recorded.map(|recorded| {
        let line = HistoryEvent::Seed(SeedLine {
            model_name: Some(model_name.to_string()),
            version: recorded.version.clone(),
            file: Some(format!("versions/{}.wasm", recorded.version)),
            sha256: Some(sha256.clone()),
            source: field(&Source::SeedDir { seed_dir }),
            at: Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()),
            metrics: recorded.metrics,
            promoted: Some(true),
            extra: Default::default(),
        });
        (recorded.version, line)
    });
    let version = match version {
        Some((version, line)) => {
            // The model is installed either way; a missing history line only hides it from
            // `rollback`'s undo stack, so this failure is reported but does not undo the seed.
            if let Err(e) = append_history(registry_dir, model_name, &line) {
                tracing::warn!(error = %e, "seeded model installed, but history.jsonl could not be written");
            }
            Some(version)
        }
        None => None,
    };
    Ok(Seeded::Installed { version, sha256 })
}

/// [`seed`], with its outcome logged. A failure is logged and otherwise ignored: the server
/// then waits for a model like on any empty registry.
pub fn seed_logged(registry_dir: &Path, seed_dir: &Path, model_name: &str) -> Option<Seeded> {
    let registry = registry_dir.display();
    let seed_path = live_path(seed_dir, model_name);
    let seed_path = seed_path.display();
    match seed(registry_dir, seed_dir, model_name) {
        Ok(Seeded::Installed { version, sha256 }) => {
            tracing::info!(
                model = model_name,
                version = version.as_deref().unwrap_or("unrecorded"),
                %sha256,
                from = %seed_path,
                %registry,
                "registry had no model; installed the seed model"
            );
            Some(Seeded::Installed { version, sha256 })
        }
        Ok(Seeded::Present) => {
            tracing::debug!(model = model_name, %registry, "registry has a model; not seeding");
            Some(Seeded::Present)
        }
        Ok(Seeded::Lost) => {
            tracing::info!(
                model = model_name,
                %registry,
                "another process installed a model while seeding; keeping it"
            );
            Some(Seeded::Lost)
        }
        Ok(Seeded::NoRegistry) => {
            tracing::warn!(
                %registry,
                "registry directory does not exist (not mounted?); not seeding"
            );
            Some(Seeded::NoRegistry)
        }
        Ok(Seeded::NoSeed) => {
            tracing::warn!(
                model = model_name,
                seed = %seed_path,
                "seed directory has no model for MODEL_NAME; waiting for one in the registry"
            );
            Some(Seeded::NoSeed)
        }
        Err(e) => {
            tracing::error!(
                model = model_name,
                seed = %seed_path,
                %registry,
                error = %e,
                "seeding the registry failed; waiting for a model in the registry"
            );
            None
        }
    }
}

/// The seed's record of the version whose bytes are `sha256`.
struct Recorded {
    version: String,
    /// `versions/<v>.json`, as bytes.
    record: Vec<u8>,
    metrics: serde_json::Value,
}

/// The seed's version of its `model.wasm`, if the seed records one and holds both its files
/// with the same bytes.
fn recorded_version(
    seed_dir: &Path,
    model_name: &str,
    sha256: &str,
) -> std::io::Result<Option<Recorded>> {
    let entries = history::read_entries(seed_dir, model_name)?;
    let Some(version) = history::live(seed_dir, model_name, &entries)?
        .version()
        .map(str::to_string)
    else {
        return Ok(None);
    };
    let stored = match read_artifact(&version_path(seed_dir, model_name, &version)) {
        Ok(stored) => stored,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let record_path = version_record_path(seed_dir, model_name, &version);
    let record = match std::fs::read(&record_path) {
        Ok(record) => record,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let parsed: Option<VersionRecord> = serde_json::from_slice(&record).ok();
    let record_sha = parsed.as_ref().and_then(VersionRecord::sha256);
    if sha256_hex(&stored) != sha256 || record_sha.as_deref() != Some(sha256) {
        return Ok(None);
    }
    let metrics = parsed
        .map(|r| r.metrics().clone())
        .unwrap_or(serde_json::Value::Null);
    Ok(Some(Recorded {
        version,
        record,
        metrics,
    }))
}

/// Whether anything (file, directory, link) has this name.
fn exists(path: &Path) -> std::io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A seed registry holding the committed default model.
    fn default_seed() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("registry")
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_empty_registry_gets_the_seed_model_its_version_files_and_a_history_line() {
        let registry = tempfile::tempdir().unwrap();
        let seeded = seed(registry.path(), &default_seed(), "churn").unwrap();
        let seed_bytes = std::fs::read(default_seed().join("churn/model.wasm")).unwrap();
        let Seeded::Installed {
            version: Some(version),
            sha256,
        } = seeded
        else {
            panic!("expected an install with a recorded version, got {seeded:?}");
        };
        assert_eq!(sha256, sha256_hex(&seed_bytes));
        let live = std::fs::read(live_path(registry.path(), "churn")).unwrap();
        assert_eq!(live, seed_bytes);
        assert_eq!(
            std::fs::read(version_path(registry.path(), "churn", &version)).unwrap(),
            seed_bytes
        );
        assert_eq!(
            names(&registry.path().join("churn")),
            ["history.jsonl", "model.wasm", "versions"],
            "no temp file is left behind"
        );
        let entries = history::read_entries(registry.path(), "churn").unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].event.as_str(), "seed");
        assert_eq!(entries[0].version, version);
        assert!(entries[0].promoted);
        assert_eq!(
            history::live(registry.path(), "churn", &entries)
                .unwrap()
                .version(),
            Some(version.as_str())
        );
    }

    #[test]
    fn an_existing_model_is_never_overwritten() {
        let registry = tempfile::tempdir().unwrap();
        let live = live_path(registry.path(), "churn");
        std::fs::create_dir_all(live.parent().unwrap()).unwrap();
        std::fs::write(&live, b"trained by the job").unwrap();
        assert_eq!(
            seed(registry.path(), &default_seed(), "churn").unwrap(),
            Seeded::Present
        );
        assert_eq!(std::fs::read(&live).unwrap(), b"trained by the job");
        assert_eq!(names(live.parent().unwrap()), ["model.wasm"]);
    }

    #[test]
    fn a_model_that_appears_during_the_seed_wins_and_no_history_is_written() {
        let registry = tempfile::tempdir().unwrap();
        let live = live_path(registry.path(), "churn");
        std::fs::create_dir_all(live.parent().unwrap()).unwrap();
        // The last step of a seed, after another writer's rename: the link must not replace it.
        std::fs::write(&live, b"other").unwrap();
        assert!(!link_new(&live, b"seed").unwrap());
        assert_eq!(std::fs::read(&live).unwrap(), b"other");
        assert_eq!(names(live.parent().unwrap()), ["model.wasm"]);
    }

    #[test]
    fn replicas_seeding_at_once_install_exactly_one_model() {
        let registry = tempfile::tempdir().unwrap();
        let outcomes: Vec<Seeded> = std::thread::scope(|scope| {
            let tasks: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| seed(registry.path(), &default_seed(), "churn").unwrap()))
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let installed = outcomes
            .iter()
            .filter(|o| matches!(o, Seeded::Installed { .. }))
            .count();
        assert_eq!(installed, 1, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Seeded::Installed { .. } | Seeded::Lost | Seeded::Present)),
            "{outcomes:?}"
        );
        let entries = history::read_entries(registry.path(), "churn").unwrap();
        assert_eq!(entries.len(), 1, "one history line, by the winner");
        let versions = names(&registry.path().join("churn/versions"));
        assert_eq!(versions.len(), 2, "{versions:?}");
    }

    #[test]
    fn nothing_happens_without_a_registry_or_a_seed() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("not-mounted");
        assert_eq!(
            seed(&missing, &default_seed(), "churn").unwrap(),
            Seeded::NoRegistry
        );
        assert!(!missing.exists(), "the registry is not created");
        assert_eq!(
            seed(root.path(), &default_seed(), "fraud").unwrap(),
            Seeded::NoSeed
        );
        assert_eq!(names(root.path()), Vec::<String>::new());
    }

    #[test]
    fn an_unrecorded_seed_is_installed_without_version_files() {
        let seed_dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(default_seed().join("churn/model.wasm")).unwrap();
        std::fs::create_dir_all(seed_dir.path().join("churn")).unwrap();
        std::fs::write(live_path(seed_dir.path(), "churn"), &bytes).unwrap();
        let registry = tempfile::tempdir().unwrap();
        assert_eq!(
            seed(registry.path(), seed_dir.path(), "churn").unwrap(),
            Seeded::Installed {
                version: None,
                sha256: sha256_hex(&bytes)
            }
        );
        assert_eq!(names(&registry.path().join("churn")), ["model.wasm"]);
    }
}
