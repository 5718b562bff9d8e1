//! `modelhost inspect FILE`: run every load-time check on an artifact without serving it.
//!
//! [`check_file`] is the one definition of "a file the server would accept"; `publish` and
//! `predict` use it too, so a model is never stored or run on weaker checks than the server's.

use std::path::{Path, PathBuf};

use crate::model::Model;
use crate::registry;
use crate::runtime::Limits;
use crate::runtime::{LoadError, Runtime};

/// Why a file would not be accepted as a model. The message says the cause; it is not also
/// exposed as a source, so printing the chain says it once (see [`crate::error::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file could not be read (or is larger than any artifact may be).
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file was read but fails a load-time check.
    #[error("{} would be refused ({}): {error}", path.display(), error.reason())]
    Refused { path: PathBuf, error: LoadError },
}

/// Reads `path` and loads it exactly as the server would (ABI checks, compile, info, self-test).
/// Returns the bytes and the loaded model.
pub fn check_file(path: &Path, runtime: &Runtime) -> Result<(Vec<u8>, Model), CheckError> {
    let bytes = registry::read_artifact(path).map_err(|error| CheckError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let model =
        Model::load(runtime, &bytes, path.to_path_buf()).map_err(|error| CheckError::Refused {
            path: path.to_path_buf(),
            error,
        })?;
    Ok((bytes, model))
}

/// Checks `path` (see [`check_file`]) and returns a JSON report; an error names the reason the
/// host would refuse it.
pub fn inspect(path: &Path, limits: Limits) -> anyhow::Result<serde_json::Value> {
    let runtime = Runtime::new(limits)?;
    let (_, model) = check_file(path, &runtime)?;
    let info = model.info();
    Ok(serde_json::json!({
        "path": path,
        "sha256": model.sha256,
        "size_bytes": model.size_bytes,
        "abi_version": modelhost_abi::ABI_VERSION,
        "self_test": format!("passed ({} golden pairs)", info.golden.len()),
        "info": info,
    }))
}
