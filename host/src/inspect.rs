//! `modelhost inspect FILE`: run every load-time check on an artifact without serving it.

use std::path::Path;

use anyhow::Context;

use crate::model::Model;
use crate::registry;
use crate::runtime::{Limits, Runtime};

/// Loads `path` exactly as the server would (ABI checks, compile, info, self-test) and returns
/// a JSON report; an error names the reason the host would refuse it.
pub fn inspect(path: &Path, limits: Limits) -> anyhow::Result<serde_json::Value> {
    let bytes =
        registry::read_artifact(path).with_context(|| format!("cannot read {}", path.display()))?;
    let runtime = Runtime::new(limits)?;
    let model = Model::load(&runtime, &bytes, path.to_path_buf()).map_err(|e| {
        anyhow::anyhow!("{} would be refused ({}): {e}", path.display(), e.reason())
    })?;
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
