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
