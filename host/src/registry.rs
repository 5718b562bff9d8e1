//! The registry directory: where artifacts live and how they are read.
//!
//! Layout: `REGISTRY_DIR/<MODEL_NAME>/model.wasm` is the live artifact, replaced by atomic
//! rename (or, by hand, copied in place). This module reads files and describes them; it never
//! compiles anything and never touches the active model.

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

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the whole
/// new one: write a temp file in the same directory, fsync it, rename it over `path`, fsync the
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", path.display()),
        )
    })?;
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Appends one JSON line to `history.jsonl` crash-safely (the whole file is rewritten through
/// [`write_atomic`], so a crash never leaves half a line).
pub fn append_history(
    registry_dir: &Path,
    model_name: &str,
    line: &serde_json::Value,
) -> std::io::Result<()> {
    let path = history_path(registry_dir, model_name);
    let mut text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
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
    let path = history_path(registry_dir, model_name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// Makes `versions/<version>.wasm` the live `model.wasm`, atomically.
pub fn promote(registry_dir: &Path, model_name: &str, version: &str) -> std::io::Result<()> {
    let source = versions_dir(registry_dir, model_name).join(format!("{version}.wasm"));
    let bytes = read_artifact(&source)?;
    write_atomic(&live_path(registry_dir, model_name), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m/model.wasm");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second version").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second version");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("m"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["model.wasm"]);
    }

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
