//! Why a registry has no live artifact for a model: what was looked at, and what is there
//! instead, so that a typo in `MODEL_NAME` or `REGISTRY_DIR` says so rather than waiting in
//! silence.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{LIVE_FILE, live_path};

/// How many model names a description lists before it says "and N more".
const LISTED: usize = 20;

/// A model's missing live artifact, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absence {
    /// The live artifact looked for: `registry_dir/model_name/model.wasm`.
    pub looked_at: PathBuf,
    /// The registry directory.
    pub registry_dir: PathBuf,
    /// Whether the registry directory exists.
    pub registry_exists: bool,
    /// The models the registry does hold (folders with a live artifact), sorted.
    pub models: Vec<String>,
}

impl Absence {
    /// Looks at `registry_dir` (a directory listing; nothing is read).
    pub fn survey(registry_dir: &Path, model_name: &str) -> Absence {
        let mut models: Vec<String> = std::fs::read_dir(registry_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().join(LIVE_FILE).is_file())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        models.sort();
        Absence {
            looked_at: live_path(registry_dir, model_name),
            registry_dir: registry_dir.to_path_buf(),
            registry_exists: registry_dir.is_dir(),
            models,
        }
    }
}

impl fmt::Display for Absence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no model at {}: ", self.looked_at.display())?;
        if !self.registry_exists {
            return write!(
                f,
                "the registry directory {} does not exist (set REGISTRY_DIR)",
                self.registry_dir.display()
            );
        }
        if self.models.is_empty() {
            return write!(
                f,
                "the registry {} holds no model yet",
                self.registry_dir.display()
            );
        }
        let listed = self.models.iter().take(LISTED).cloned().collect::<Vec<_>>();
        write!(
            f,
            "the registry {} holds {}",
            self.registry_dir.display(),
            listed.join(", ")
        )?;
        if self.models.len() > LISTED {
            write!(f, " and {} more", self.models.len() - LISTED)?;
        }
        write!(f, " (MODEL_NAME selects one)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_path_whether_the_registry_exists_and_what_it_holds() {
        let registry = tempfile::tempdir().unwrap();
        let missing = registry.path().join("nope");
        let text = Absence::survey(&missing, "churn").to_string();
        assert!(text.contains(&missing.join("churn/model.wasm").display().to_string()));
        assert!(text.contains("does not exist"), "{text}");

        let text = Absence::survey(registry.path(), "churn").to_string();
        assert!(text.contains("holds no model yet"), "{text}");

        for name in ["fraud", "churn"] {
            std::fs::create_dir_all(registry.path().join(name)).unwrap();
            std::fs::write(registry.path().join(name).join(LIVE_FILE), b"x").unwrap();
        }
        // A folder without a live artifact is not a model.
        std::fs::create_dir_all(registry.path().join("empty")).unwrap();
        let absence = Absence::survey(registry.path(), "chrun");
        assert_eq!(absence.models, ["churn", "fraud"]);
        let text = absence.to_string();
        assert!(text.contains("chrun/model.wasm"), "{text}");
        assert!(
            text.contains("holds churn, fraud (MODEL_NAME selects one)"),
            "{text}"
        );
    }
}
