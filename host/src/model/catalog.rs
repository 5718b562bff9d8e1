//! The served models: one [`Served`] unit per model — its name, its slot, the path of its live
//! artifact and its live drift window — and the [`Catalog`] of them.
//!
//! The default model (`MODEL_NAME`) is always in the catalog, and the HTTP state keeps its unit
//! at hand, so `/predict` reaches its slot without a lookup. The others (`MODEL_NAMES`) are in
//! an `ArcSwap`ped map: a per-model route takes a snapshot of the map without a lock, and the
//! registry watcher, its only writer, adds a model directory that appears (with `*`) or removes
//! one whose removal has settled. A model named by `MODEL_NAME` or `MODEL_NAMES` is pinned:
//! it is never removed, so a missing file or folder never unloads it.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{ActiveModel, Model};
use crate::config::ModelSelection;
use crate::telemetry::drift::DriftWindow;

/// One served model: what is per model in the server, instantiated once for each.
pub struct Served {
    name: String,
    /// Its folder in the registry: `name`, unless [`Served::in_folder`] says otherwise.
    folder: String,
    active: Arc<ActiveModel>,
    live_path: PathBuf,
    drift: DriftWindow,
}

impl Served {
    /// `name`'s unit over the slot `active`, serving `registry_dir/name/model.wasm`, with a
    /// live drift window of `drift_window` predictions.
    pub fn new(
        name: &str,
        active: Arc<ActiveModel>,
        registry_dir: &Path,
        drift_window: usize,
    ) -> Self {
        Self::in_folder(name, name, active, registry_dir, drift_window)
    }

    /// [`Served::new`], serving `registry_dir/folder/model.wasm` under `name` (a model
    /// directory given directly: see [`crate::config::Config::model_folder`]).
    pub fn in_folder(
        name: &str,
        folder: &str,
        active: Arc<ActiveModel>,
        registry_dir: &Path,
        drift_window: usize,
    ) -> Self {
        Served {
            name: name.to_string(),
            folder: folder.to_string(),
            active,
            live_path: crate::registry::live_path(registry_dir, folder),
            drift: DriftWindow::new(drift_window),
        }
    }

    /// The model's folder in the registry.
    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// The model's name in every route (and its folder, unless [`Served::in_folder`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its slot.
    pub fn active(&self) -> &Arc<ActiveModel> {
        &self.active
    }

    /// The model it serves, if one has loaded.
    pub fn current(&self) -> Option<Arc<Model>> {
        self.active.current()
    }

    /// `REGISTRY_DIR/<name>/model.wasm`.
    pub fn live_path(&self) -> &Path {
        &self.live_path
    }

    /// The last predictions' features, for its live drift report.
    pub fn drift(&self) -> &DriftWindow {
        &self.drift
    }

    /// Why nothing serves for this model, for 503 bodies.
    pub fn not_serving_reason(&self) -> String {
        let status = self.active.status();
        match (status.last_error, status.waiting) {
            (Some(error), _) => {
                format!("no model is serving: the last candidate was refused: {error}")
            }
            (None, Some(waiting)) => format!("no model is serving yet: {waiting}"),
            (None, None) => format!(
                "no model is serving yet: waiting for {}",
                self.live_path.display()
            ),
        }
    }
}

/// Every served model, the default among them.
pub struct Catalog {
    default: Arc<Served>,
    /// The models `/ready` waits for, the default first; with `*`, only the default is listed
    /// and readiness asks for any model to serve.
    listed: Vec<String>,
    every_directory: bool,
    /// Whether `MODEL_NAMES` was set: then telemetry names each model (see
    /// [`Catalog::names_each_model`]).
    several: bool,
    models: ArcSwap<BTreeMap<String, Arc<Served>>>,
    registry_dir: PathBuf,
    drift_window: usize,
}

impl Catalog {
    /// `default` and, per `selection`, the models listed (with `*`, the directories come later,
    /// from the watcher, through [`Catalog::insert`]).
    pub fn new(
        default: Arc<Served>,
        selection: &ModelSelection,
        registry_dir: &Path,
        drift_window: usize,
    ) -> Self {
        let several = *selection != ModelSelection::Listed(Vec::new());
        let mut listed = vec![default.name().to_string()];
        let mut models = BTreeMap::from([(default.name().to_string(), default.clone())]);
        let every_directory = match selection {
            ModelSelection::EveryDirectory => true,
            ModelSelection::Listed(names) => {
                for name in names {
                    if let Entry::Vacant(slot) = models.entry(name.clone()) {
                        slot.insert(Arc::new(Served::new(
                            name,
                            Arc::new(ActiveModel::new()),
                            registry_dir,
                            drift_window,
                        )));
                        listed.push(name.clone());
                    }
                }
                false
            }
        };
        Catalog {
            default,
            listed,
            every_directory,
            several,
            models: ArcSwap::from_pointee(models),
            registry_dir: registry_dir.to_path_buf(),
            drift_window,
        }
    }

    /// A catalog of the one default model.
    pub fn single(default: Arc<Served>, registry_dir: &Path) -> Self {
        let window = default.drift().capacity();
        Catalog::new(
            default,
            &ModelSelection::Listed(Vec::new()),
            registry_dir,
            window,
        )
    }

    /// The registry the models are served from.
    pub fn registry_dir(&self) -> &Path {
        &self.registry_dir
    }

    /// The default model (`MODEL_NAME`).
    pub fn default_model(&self) -> &Arc<Served> {
        &self.default
    }

    /// The served model named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Served>> {
        self.models.load().get(name).cloned()
    }

    /// Every served model, by name.
    pub fn served(&self) -> Arc<BTreeMap<String, Arc<Served>>> {
        self.models.load_full()
    }

    /// How many models are served.
    pub fn len(&self) -> usize {
        self.models.load().len()
    }

    /// Whether only the default is served (never empty: the default always is).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether the server was asked for more than the default model (`MODEL_NAMES` is set):
    /// then metrics label each series with its model and each prediction-log line names its
    /// model. Otherwise both stay exactly what a server of one model has always written.
    pub fn names_each_model(&self) -> bool {
        self.several
    }

    /// Whether every model directory of the registry is served (`MODEL_NAMES=*`).
    pub fn every_directory(&self) -> bool {
        self.every_directory
    }

    /// Whether the configuration names `name`, so that it is never removed.
    pub fn is_pinned(&self, name: &str) -> bool {
        self.listed.iter().any(|listed| listed == name)
    }

    /// Serves `name` too, with an empty slot; `None` if it is served already.
    pub fn insert(&self, name: &str) -> Option<Arc<Served>> {
        if self.models.load().contains_key(name) {
            return None;
        }
        let unit = Arc::new(Served::new(
            name,
            Arc::new(ActiveModel::new()),
            &self.registry_dir,
            self.drift_window,
        ));
        self.models.rcu(|models| {
            let mut models = BTreeMap::clone(models);
            models
                .entry(name.to_string())
                .or_insert_with(|| unit.clone());
            models
        });
        Some(unit)
    }

    /// Stops serving `name`, unless the configuration names it; the unit removed.
    pub fn remove(&self, name: &str) -> Option<Arc<Served>> {
        if self.is_pinned(name) {
            return None;
        }
        let removed = self.get(name)?;
        self.models.rcu(|models| {
            let mut models = BTreeMap::clone(models);
            models.remove(name);
            models
        });
        Some(removed)
    }

    /// Why the server is not ready, or `None` when it is: every listed model must serve, or
    /// with `*`, at least one model.
    pub fn not_ready_reason(&self) -> Option<String> {
        let models = self.models.load();
        if self.every_directory {
            if models.values().any(|m| m.current().is_some()) {
                return None;
            }
            if models.len() == 1 {
                return Some(self.default.not_serving_reason());
            }
            return Some(format!(
                "no model is serving yet among the {} served ({})",
                models.len(),
                names(&models)
            ));
        }
        for name in &self.listed {
            let Some(served) = models.get(name) else {
                continue;
            };
            if served.current().is_none() {
                let reason = served.not_serving_reason();
                return Some(if Arc::ptr_eq(served, &self.default) {
                    reason
                } else {
                    format!("model `{name}`: {reason}")
                });
            }
        }
        None
    }

    /// The model the probes show while ready: the default, or with `*` the first that serves.
    pub fn ready_model(&self) -> Option<Arc<Model>> {
        self.default.current().or_else(|| {
            self.models
                .load()
                .values()
                .find_map(|served| served.current())
        })
    }

    /// The served models' names, comma-separated, for messages.
    pub fn names(&self) -> String {
        names(&self.models.load())
    }
}

fn names(models: &BTreeMap<String, Arc<Served>>) -> String {
    models
        .keys()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(selection: ModelSelection) -> Catalog {
        let dir = Path::new("/registry");
        let default = Arc::new(Served::new("churn", Arc::new(ActiveModel::new()), dir, 10));
        Catalog::new(default, &selection, dir, 10)
    }

    #[test]
    fn listed_models_are_pinned_and_found_ones_come_and_go() {
        let listed = catalog(ModelSelection::Listed(vec!["fraud".into(), "churn".into()]));
        assert_eq!(listed.names(), "`churn`, `fraud`");
        assert!(listed.remove("fraud").is_none(), "a listed model stays");
        assert!(listed.remove("churn").is_none(), "the default stays");
        let reason = listed.not_ready_reason().unwrap();
        assert!(reason.starts_with("no model is serving yet"), "{reason}");

        let all = catalog(ModelSelection::EveryDirectory);
        assert!(all.insert("upsell").is_some());
        assert!(all.insert("upsell").is_none(), "once");
        assert_eq!(all.len(), 2);
        assert!(all.get("upsell").is_some());
        assert!(all.remove("upsell").is_some());
        assert!(all.get("upsell").is_none());
        assert!(all.remove("churn").is_none(), "the default stays");
    }
}
