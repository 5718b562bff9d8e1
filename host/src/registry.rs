//! The registry directory: where artifacts live and how they are read.
//!
//! Layout: `REGISTRY_DIR/<MODEL_NAME>/model.wasm` is the live artifact, replaced by atomic
//! rename (or, by hand, copied in place); `versions/<v>.wasm` + `versions/<v>.json` hold every
//! version ever trained or published, and `history.jsonl` one line per run or event (see
//! [`history`] for reading it). This module reads and writes files and describes them; it never
//! compiles anything and never touches the active model.

mod absence;
mod atomic;
pub mod history;
pub mod seed;

pub use absence::Absence;
pub use atomic::{AtomicFile, write_atomic};

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

/// Appends one JSON line to `history.jsonl` crash-safely (the whole file is rewritten through
/// [`write_atomic`], so a crash never leaves half a line).
pub fn append_history(
    registry_dir: &Path,
    model_name: &str,
    line: &serde_json::Value,
) -> std::io::Result<()> {
    let path = history_path(registry_dir, model_name);
    let mut text = read_history_text(registry_dir, model_name)?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&line.to_string());
    text.push('\n');
    write_atomic(&path, text.as_bytes())
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
    /// `versions/<version>.json`.
    pub record: &'a serde_json::Value,
    /// The `history.jsonl` line.
    pub history_line: &'a serde_json::Value,
    /// False when `versions/<version>.wasm` and its record are already stored.
    pub store_files: bool,
    /// Whether the bytes then become the live `model.wasm`.
    pub promote: bool,
}

/// Stores a version the way train and publish do, each file crash-safely and in this order:
/// `versions/<v>.wasm`, `versions/<v>.json` (both unless already stored), the history line, and
/// — when promoting — `model.wasm`. A crash at any point leaves the previous live model in
/// place. On failure, the file that could not be written and why.
pub fn store_version(
    registry_dir: &Path,
    model_name: &str,
    write: &VersionWrite<'_>,
) -> Result<(), (PathBuf, std::io::Error)> {
    let at = |path: PathBuf| move |e| (path, e);
    if write.store_files {
        let artifact = version_path(registry_dir, model_name, write.version);
        write_atomic(&artifact, write.bytes).map_err(at(artifact.clone()))?;
        let record = version_record_path(registry_dir, model_name, write.version);
        let pretty = serde_json::to_vec_pretty(write.record).unwrap_or_default();
        write_atomic(&record, &pretty).map_err(at(record.clone()))?;
    }
    append_history(registry_dir, model_name, write.history_line)
        .map_err(at(history_path(registry_dir, model_name)))?;
    if write.promote {
        install_live(registry_dir, model_name, write.bytes)
            .map_err(at(live_path(registry_dir, model_name)))?;
    }
    Ok(())
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
/// names one. A version that cannot name a file, a missing or unreadable record, and a record
/// without a `sha256` string all give `None`: nothing is recorded to compare with.
pub fn recorded_sha256(registry_dir: &Path, model_name: &str, version: &str) -> Option<String> {
    check_version_name(version).ok()?;
    let path = version_record_path(registry_dir, model_name, version);
    let text = std::fs::read(path).ok()?;
    let record: serde_json::Value = serde_json::from_slice(&text).ok()?;
    record
        .get("sha256")?
        .as_str()
        .map(|s| s.trim().to_ascii_lowercase())
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
        record("v1", r#"{"version": "v1", "sha256": "ABC123"}"#);
        record("v2", r#"{"version": "v2"}"#);
        record("v3", "not json");
        assert_eq!(
            recorded_sha256(dir.path(), "churn", "v1").as_deref(),
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
        append_history(dir.path(), "churn", &serde_json::json!({"version": "a"})).unwrap();
        append_history(dir.path(), "churn", &serde_json::json!({"version": "b"})).unwrap();
        let history = read_history(dir.path(), "churn").unwrap();
        assert_eq!(
            history
                .iter()
                .map(|h| h["version"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
