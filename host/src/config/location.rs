//! Where the served model's files are: `REGISTRY_DIR/MODEL_NAME/`, or the directory
//! `MODELHOST_MODEL_DIR` names directly (KServe's `--model_dir=/mnt/models`).
//!
//! The registry's functions address a model as a folder in a registry directory, so a model
//! directory given directly is split into its parent (the registry) and its last component (the
//! folder); the model is still served as `MODEL_NAME`, whatever its folder is called.
//! `--model_dir=/mnt/models --model_name=churn` watches `/mnt/models/model.wasm` and answers
//! `/v2/models/churn`; `--model-dir=/data/registry/churn` is `REGISTRY_DIR=/data/registry`.
//!
//! A model directory given directly replaces `REGISTRY_DIR`, and is someone else's (KServe
//! mounts it read-only), so it is never seeded. `REGISTRY_DIR` and `MODELHOST_SEED_DIR` from
//! the environment or the TOML file are overridden by it: the image's environment sets both,
//! and KServe's `--model_dir` (or a `MODELHOST_MODEL_DIR` in the pod's environment) must win
//! over it. Given as flags, or from a higher layer than the model directory, they are what
//! someone asked for on purpose: an error naming both, unless `REGISTRY_DIR` is the model
//! directory's parent anyway.

use std::path::PathBuf;

use super::{ConfigError, DECLARED, FLAG, Settings, Sources};

/// The resolved location of the served model.
pub(super) struct Location {
    pub registry_dir: PathBuf,
    pub folder: String,
    pub model_dir_given: bool,
    pub registry_dir_is_default: bool,
    /// The seed directory, or `None` when none is set or the model directory is given.
    pub seed_dir: Option<PathBuf>,
}

pub(super) fn resolve(sources: &Sources<'_>, s: &Settings) -> Result<Location, ConfigError> {
    let registry = sources.raw(&DECLARED.registry_dir);
    let Some(given) = &s.model_dir else {
        return Ok(Location {
            registry_dir: s.registry_dir.clone(),
            folder: s.model_name.clone(),
            model_dir_given: false,
            registry_dir_is_default: !registry.set,
            seed_dir: s.seed_dir.clone(),
        });
    };
    let model_dir = sources.raw(&DECLARED.model_dir);
    let invalid = |reason: &str| ConfigError::Invalid {
        key: model_dir.source.clone(),
        value: model_dir.value.clone(),
        reason: reason.to_string(),
    };
    let absolute = std::path::absolute(given)
        .map_err(|e| invalid(&format!("cannot make it an absolute path: {e}")))?;
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return Err(invalid(
            "expected the model's directory by its name, not `/` or a path ending in `..`",
        ));
    };
    let folder = name
        .to_str()
        .ok_or_else(|| invalid("the directory's name is not UTF-8"))?
        .to_string();
    let parent = parent.to_path_buf();
    // A flag, or a layer above the model directory's, was set on purpose beside it.
    let on_purpose = |layer: u8| layer == FLAG || layer > model_dir.layer;
    if registry.set && on_purpose(registry.layer) {
        let same = std::path::absolute(&s.registry_dir).is_ok_and(|r| r == parent);
        if !same {
            return Err(ConfigError::Disagree {
                first: model_dir.source.clone(),
                second: registry.source,
                reason: format!(
                    "the model's directory {} is not in the registry {}; set only {}",
                    absolute.display(),
                    s.registry_dir.display(),
                    model_dir.source
                ),
            });
        }
    }
    let seed = sources.raw(&DECLARED.seed_dir);
    if s.seed_dir.is_some() && on_purpose(seed.layer) {
        return Err(ConfigError::Disagree {
            first: model_dir.source.clone(),
            second: seed.source,
            reason: format!(
                "the server never writes the model's directory {}, so it cannot be seeded",
                absolute.display()
            ),
        });
    }
    Ok(Location {
        registry_dir: parent,
        folder,
        model_dir_given: true,
        registry_dir_is_default: false,
        seed_dir: None,
    })
}
