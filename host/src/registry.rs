//! The registry directory: where artifacts live and how they are read.
//!
//! Layout: `REGISTRY_DIR/<MODEL_NAME>/model.wasm` is the live artifact, replaced by atomic
//! rename (or, by hand, copied in place); `versions/<v>.wasm` + `versions/<v>.json` hold every
//! version ever trained or published, each written once ([`store_version`]), and
//! `history.jsonl` one line per run or event, appended under a lock ([`append_history`]; see
//! [`history`] for reading it). This module reads and writes files and describes them; it never
//! compiles anything and never touches the active model.

mod absence;
mod atomic;
pub mod history;
pub mod records;
pub mod seed;

pub use absence::Absence;
pub use atomic::{AtomicFile, STALE_TEMP_AGE, write_atomic};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::runtime::MAX_ARTIFACT_BYTES;

/// File name of the live artifact inside a model's folder.
pub const LIVE_FILE: &str = "model.wasm";

/// `registry_dir/model_name/model.wasm`.
pub fn live_path(registry_dir: &Path, model_name: &str) -> PathBuf {
    registry_dir.join(model_name).join(LIVE_FILE)
}

/// What identifies a version of a file on disk without reading it: a change in any of these
/// means the file may have new contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub len: u64,
    pub modified: Option<SystemTime>,
    pub inode: u64,
}

/// The fingerprint of `path`, or `None` if it does not exist (or is not a regular file).
pub fn fingerprint(path: &Path) -> std::io::Result<Option<Fingerprint>> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(Some(Fingerprint {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: inode(&meta),
        })),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// Reads an artifact, refusing files above [`MAX_ARTIFACT_BYTES`] without reading them whole.
pub fn read_artifact(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_ARTIFACT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_ARTIFACT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} is larger than {MAX_ARTIFACT_BYTES} bytes",
                path.display()
            ),
        ));
    }
    Ok(bytes)
}

/// `registry_dir/model_name/versions`.
pub fn versions_dir(registry_dir: &Path, model_name: &str) -> PathBuf {
    registry_dir.join(model_name).join("versions")
}

/// `registry_dir/model_name/history.jsonl`.
pub fn history_path(registry_dir: &Path, model_name: &str) -> PathBuf {
    registry_dir.join(model_name).join("history.jsonl")
}

/// Appends one JSON line to `history.jsonl`. Every writer (train, publish, rollback, seeding)
/// appends through here, because processes that share a volume — replicas seeding, a training
/// Job, an operator's `publish` — may append at the same moment: the file is opened for
/// appending and held under an exclusive advisory lock ([`std::fs::File::lock`]) for the
/// append, and the line goes out in one write and is fsynced before the lock is released. So
/// no two lines interleave and none is lost, and the file is never rewritten. A crash during
/// the write can at worst leave the last line cut short: readers skip it, and the next append
/// starts on a line of its own rather than continuing it.
pub fn append_history(
    registry_dir: &Path,
    model_name: &str,
    line: &records::HistoryEvent,
) -> std::io::Result<()> {
    append_serialized(registry_dir, model_name, line)
}

/// [`append_history`] of any document (its tests append lines of their own).
fn append_serialized(
    registry_dir: &Path,
    model_name: &str,
    line: &impl serde::Serialize,
) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let path = history_path(registry_dir, model_name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)?;
    file.lock()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot lock it for appending: {e}")))?;
    let len = file.metadata()?.len();
    let mut text = Vec::new();
    if len > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last != *b"\n" {
            text.push(b'\n');
        }
    }
    serde_json::to_writer(&mut text, line)?;
    text.push(b'\n');
    file.write_all(&text)?;
    file.sync_data()?;
    if len == 0 {
        atomic::sync_parent(&path)?;
    }
    // Closing the file releases the lock.
    Ok(())
}

/// Every line of `history.jsonl` that parses, oldest first.
pub fn read_history(
    registry_dir: &Path,
    model_name: &str,
) -> std::io::Result<Vec<serde_json::Value>> {
    Ok(read_history_text(registry_dir, model_name)?
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// The text of `history.jsonl`; empty when there is none yet.
fn read_history_text(registry_dir: &Path, model_name: &str) -> std::io::Result<String> {
    match std::fs::read_to_string(history_path(registry_dir, model_name)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        read => read,
    }
}

/// Whether `version` can name files in `versions/`: 1-128 ASCII letters, digits, `.`, `_`, `-`
/// and `+`, not starting with `.` (temp files start with `.`). The problem otherwise.
pub fn check_version_name(version: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+');
    if version.is_empty() || version.len() > 128 {
        Err(format!("version {version:?} must be 1-128 characters"))
    } else if version.starts_with('.') || !version.chars().all(allowed) {
        Err(format!(
            "version {version:?} cannot name a file: use letters, digits, '.', '_', '-' and '+', not starting with '.'"
        ))
    } else {
        Ok(())
    }
}

/// `registry_dir/model_name/versions/<version>.wasm`.
pub fn version_path(registry_dir: &Path, model_name: &str, version: &str) -> PathBuf {
    versions_dir(registry_dir, model_name).join(format!("{version}.wasm"))
}

/// `registry_dir/model_name/versions/<version>.json`.
pub fn version_record_path(registry_dir: &Path, model_name: &str, version: &str) -> PathBuf {
    versions_dir(registry_dir, model_name).join(format!("{version}.json"))
}

/// What [`store_version`] writes.
pub struct VersionWrite<'a> {
    pub version: &'a str,
    /// The artifact.
    pub bytes: &'a [u8],
    /// `versions/<version>.json`, written only if the version has no record yet.
    pub record: &'a records::VersionRecord,
    /// The `history.jsonl` line: this run's or event's own account.
    pub history_line: &'a records::HistoryEvent,
    /// Whether the bytes then become the live `model.wasm`.
    pub promote: bool,
}

/// What [`store_version`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// False when `versions/<version>.json` already existed: it was kept as it was.
    pub new_record: bool,
}

/// Stores a version the way train and publish do, each file crash-safely and in this order:
/// `versions/<v>.wasm`, `versions/<v>.json`, the history line, and — when promoting —
/// `model.wasm`. A crash at any point leaves the previous live model in place.
///
/// A version's files, once stored, are never rewritten: version ids derive from content, so a
/// second run or publish of the same bytes finds them in place. An existing record is kept
/// byte for byte — it describes the run that made the version, and this run's outcome is told
/// by its own history line — and an existing artifact must hold exactly these bytes (anything
/// else is refused, since a version must name one artifact). Both are created with
/// [`atomic::link_new`], so of two writers racing to store one version the first record wins.
/// Stale temp files of killed writers are removed first ([`remove_stale_temps_logged`]). On
/// failure, the file that could not be written and why.
pub fn store_version(
    registry_dir: &Path,
    model_name: &str,
    write: &VersionWrite<'_>,
) -> Result<Stored, (PathBuf, std::io::Error)> {
    let at = |path: PathBuf| move |e| (path, e);
    remove_stale_temps_logged(registry_dir, model_name);
    let artifact = version_path(registry_dir, model_name, write.version);
    store_artifact(&artifact, write.bytes).map_err(at(artifact.clone()))?;
    let record = version_record_path(registry_dir, model_name, write.version);
    let pretty = serde_json::to_vec_pretty(write.record).unwrap_or_default();
    let new_record = atomic::link_new(&record, &pretty).map_err(at(record.clone()))?;
    if !new_record && !std::fs::metadata(&record).is_ok_and(|meta| meta.is_file()) {
        return Err((
            record,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists but is not a file; a version record must be a JSON file",
            ),
        ));
    }
    append_history(registry_dir, model_name, write.history_line)
        .map_err(at(history_path(registry_dir, model_name)))?;
    if write.promote {
        install_live(registry_dir, model_name, write.bytes)
            .map_err(at(live_path(registry_dir, model_name)))?;
    }
    Ok(Stored { new_record })
}

/// Makes `path` hold `bytes`: created if absent, left alone if it holds them already, and an
/// error naming the sha256 it does hold otherwise.
fn store_artifact(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let same = |existing: Vec<u8>| {
        if existing == bytes {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "already holds different bytes (sha256 {}, these are {}); a stored version is never replaced",
                    crate::model::sha256_hex(&existing),
                    crate::model::sha256_hex(bytes)
                ),
            ))
        }
    };
    match read_artifact(path) {
        Ok(existing) => same(existing),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if atomic::link_new(path, bytes)? {
                Ok(())
            } else {
                same(read_artifact(path)?)
            }
        }
        Err(e) => Err(e),
    }
}

/// Removes the temp files that writers killed mid-write left in the model's folder and its
/// `versions/` (only names [`AtomicFile`] and [`atomic::link_new`] make, and only once they
/// are [`STALE_TEMP_AGE`] old, so a write in progress is never touched). Returns how many were
/// removed; the first failure is returned, after the folders that could be cleaned were.
pub fn remove_stale_temps(registry_dir: &Path, model_name: &str) -> std::io::Result<usize> {
    let model_dir = registry_dir.join(model_name);
    let in_model_dir = atomic::remove_stale_temps(&model_dir);
    let in_versions = atomic::remove_stale_temps(&versions_dir(registry_dir, model_name));
    Ok(in_model_dir? + in_versions?)
}

/// [`remove_stale_temps`], logging how many files were removed. A failure is logged and
/// otherwise ignored: a leftover only takes space, and must not stop the write or the server
/// that found it.
pub fn remove_stale_temps_logged(registry_dir: &Path, model_name: &str) -> usize {
    let dir = registry_dir.join(model_name);
    match remove_stale_temps(registry_dir, model_name) {
        Ok(0) => {
            tracing::debug!(dir = %dir.display(), "no stale temp files");
            0
        }
        Ok(removed) => {
            tracing::info!(
                removed,
                dir = %dir.display(),
                "removed stale temp files left by interrupted writes"
            );
            removed
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot remove stale temp files: {e}");
            0
        }
    }
}

/// Makes `bytes` the live `model.wasm` crash-safely, keeping an optional `model.wasm.sha256`
/// true: the checksum file is removed first, then `model.wasm` is replaced ([`write_atomic`]),
/// then the checksum is written again with the new digest. A crash at any instant leaves either
/// no checksum file or one that matches `model.wasm`, so a restarted server always finds a
/// complete model it may load (the old one or the new one).
pub fn install_live(registry_dir: &Path, model_name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let checksum = checksum_path(registry_dir, model_name);
    let had_checksum = match std::fs::remove_file(&checksum) {
        Ok(()) => {
            atomic::sync_parent(&checksum)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    write_atomic(&live_path(registry_dir, model_name), bytes)?;
    if had_checksum {
        let line = format!("{}  {LIVE_FILE}\n", crate::model::sha256_hex(bytes));
        write_atomic(&checksum, line.as_bytes())?;
    }
    Ok(())
}

/// File name of the optional checksum beside the live artifact: `model.wasm.sha256`, holding the
/// hex sha256 of the bytes `model.wasm` must have (`sha256sum` output is accepted too).
pub const CHECKSUM_FILE: &str = "model.wasm.sha256";

/// `registry_dir/model_name/model.wasm.sha256`.
pub fn checksum_path(registry_dir: &Path, model_name: &str) -> PathBuf {
    registry_dir.join(model_name).join(CHECKSUM_FILE)
}

/// The sha256 a checksum file holds, lower-case hex; `None` if the file does not exist. The file
/// holds 64 hex digits, optionally followed by white space and a file name (as `sha256sum`
/// writes it); anything else is an `InvalidData` error naming the file.
pub fn read_checksum(path: &Path) -> std::io::Result<Option<String>> {
    let text = match std::fs::read(path) {
        Ok(bytes) if bytes.len() <= 4096 => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is too large to hold a sha256", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let digest = text.split_whitespace().next().unwrap_or("");
    if digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(Some(digest.to_ascii_lowercase()))
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} does not hold a hex sha256", path.display()),
        ))
    }
}

/// The sha256 that `versions/<version>.json` records for `version`, if that record exists and
/// names one (by [`records::normalize_sha256`]: trimmed, lower-case). A version that cannot
/// name a file, a missing or unreadable record, and a record without a `sha256` all give
/// `None`: nothing is recorded to compare with.
pub fn recorded_sha256(registry_dir: &Path, model_name: &str, version: &str) -> Option<String> {
    check_version_name(version).ok()?;
    let path = version_record_path(registry_dir, model_name, version);
    let text = std::fs::read(path).ok()?;
    let record: records::VersionRecord = serde_json::from_slice(&text).ok()?;
    record.sha256()
}

#[cfg(test)]
mod checksum_tests {
    use super::*;

    #[test]
    fn checksum_files_hold_a_digest_alone_or_as_sha256sum_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKSUM_FILE);
        assert_eq!(
            read_checksum(&path).unwrap(),
            None,
            "absent: nothing to check"
        );
        let digest = "AB".repeat(32);
        std::fs::write(&path, format!("{digest}\n")).unwrap();
        assert_eq!(read_checksum(&path).unwrap(), Some("ab".repeat(32)));
        std::fs::write(&path, format!("{digest}  model.wasm\n")).unwrap();
        assert_eq!(read_checksum(&path).unwrap(), Some("ab".repeat(32)));
        for bad in ["", "abc", &"zz".repeat(32)] {
            std::fs::write(&path, bad).unwrap();
            let err = read_checksum(&path).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("model.wasm.sha256"), "{err}");
        }
    }

    #[test]
    fn a_version_record_gives_its_sha256_when_it_has_one() {
        let dir = tempfile::tempdir().unwrap();
        let record = |version: &str, text: &str| {
            let path = version_record_path(dir.path(), "churn", version);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let upper = "AB".repeat(32);
        record(
            "v1",
            &format!(r#"{{"version": "v1", "sha256": "{upper}"}}"#),
        );
        record("v5", r#"{"version": "v5", "sha256": "abc123"}"#);
        record("v2", r#"{"version": "v2"}"#);
        record("v3", "not json");
        assert_eq!(
            recorded_sha256(dir.path(), "churn", "v1").as_deref(),
            Some("ab".repeat(32).as_str())
        );
        // A malformed digest is still what the record says: it matches no artifact.
        assert_eq!(
            recorded_sha256(dir.path(), "churn", "v5").as_deref(),
            Some("abc123")
        );
        assert_eq!(recorded_sha256(dir.path(), "churn", "v2"), None);
        assert_eq!(recorded_sha256(dir.path(), "churn", "v3"), None);
        assert_eq!(recorded_sha256(dir.path(), "churn", "v4"), None);
        assert_eq!(recorded_sha256(dir.path(), "churn", "../v1"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_appends_lines_in_order() {
        let dir = tempfile::tempdir().unwrap();
        append_serialized(dir.path(), "churn", &serde_json::json!({"version": "a"})).unwrap();
        append_serialized(dir.path(), "churn", &serde_json::json!({"version": "b"})).unwrap();
        let history = read_history(dir.path(), "churn").unwrap();
        assert_eq!(
            history
                .iter()
                .map(|h| h["version"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn writers_appending_at_once_lose_no_line_and_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        // Each thread opens the file itself, so the lock is contended as between processes.
        std::thread::scope(|scope| {
            for writer in 0..8 {
                let dir = dir.path();
                scope.spawn(move || {
                    for n in 0..25 {
                        let line = serde_json::json!({"version": format!("w{writer}-{n}"), "pad": "x".repeat(500)});
                        append_serialized(dir, "churn", &line).unwrap();
                    }
                });
            }
        });
        let text = read_history_text(dir.path(), "churn").unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 8 * 25);
        for writer in 0..8 {
            let own: Vec<&str> = lines
                .iter()
                .filter_map(|l| l["version"].as_str())
                .filter(|v| v.starts_with(&format!("w{writer}-")))
                .collect();
            let expected: Vec<String> = (0..25).map(|n| format!("w{writer}-{n}")).collect();
            assert_eq!(own, expected, "each writer's lines, in its order");
        }
    }

    #[test]
    fn an_append_after_a_line_cut_short_starts_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        append_serialized(dir.path(), "churn", &serde_json::json!({"version": "a"})).unwrap();
        let path = history_path(dir.path(), "churn");
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(br#"{"version": "b", "promo"#);
        std::fs::write(&path, text).unwrap();
        append_serialized(dir.path(), "churn", &serde_json::json!({"version": "c"})).unwrap();
        let versions: Vec<String> = read_history(dir.path(), "churn")
            .unwrap()
            .iter()
            .map(|h| h["version"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(versions, ["a", "c"]);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .ends_with("{\"version\":\"c\"}\n")
        );
    }

    #[test]
    fn a_stored_version_keeps_its_record_and_refuses_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let write = |bytes: &[u8], passed: bool| {
            let record: records::VersionRecord =
                serde_json::from_value(serde_json::json!({"version": "v1", "passed": passed}))
                    .unwrap();
            let line: records::HistoryEvent =
                serde_json::from_value(serde_json::json!({"version": "v1", "passed": passed}))
                    .unwrap();
            store_version(
                dir.path(),
                "churn",
                &VersionWrite {
                    version: "v1",
                    bytes,
                    record: &record,
                    history_line: &line,
                    promote: false,
                },
            )
        };
        assert_eq!(write(b"model", true).unwrap(), Stored { new_record: true });
        let record_path = version_record_path(dir.path(), "churn", "v1");
        let record = std::fs::read(&record_path).unwrap();
        assert_eq!(
            write(b"model", false).unwrap(),
            Stored { new_record: false }
        );
        assert_eq!(
            std::fs::read(&record_path).unwrap(),
            record,
            "kept byte for byte"
        );
        let (path, error) = write(b"other", false).unwrap_err();
        assert_eq!(path, version_path(dir.path(), "churn", "v1"));
        assert!(error.to_string().contains("different bytes"), "{error}");
        assert_eq!(
            std::fs::read(version_path(dir.path(), "churn", "v1")).unwrap(),
            b"model"
        );
        let passed: Vec<bool> = read_history(dir.path(), "churn")
            .unwrap()
            .iter()
            .map(|h| h["passed"].as_bool().unwrap())
            .collect();
        assert_eq!(passed, [true, false], "each run has its own line");
    }
}
