//! One [`Watcher`] per served model, and with `MODEL_NAMES=*` the registry's folders followed as
//! they come and go.
//!
//! Each model has its own watcher task, with its own poll, events, settle window, checks and
//! refusals, so one model's bad artifact never touches another's slot. With `*`, the registry
//! root is listed every poll interval: a folder (named as `MODEL_NAME` must be) that holds a
//! `model.wasm` is served from then on; a served folder that is gone (the folder, not only its
//! `model.wasm`: a missing file never unloads a model) is unloaded once it has stayed gone over
//! the settle window ([`SETTLE`]), logged and counted (`modelhost_models_unloaded_total`). A model
//! named by `MODEL_NAME` or `MODEL_NAMES` is never unloaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{LOADS_AT_ONCE, SETTLE, Schedule, Watcher};
use crate::config::MAX_MODELS;
use crate::config::kinds::{Kind, ModelName};
use crate::model::{Catalog, Served};
use crate::registry::LIVE_FILE;
use crate::runtime::Runtime;
use crate::telemetry::metrics::Metrics;

/// The watchers of every served model.
pub struct Fleet {
    runtime: Arc<Runtime>,
    catalog: Arc<Catalog>,
    registry_dir: PathBuf,
    metrics: Arc<Metrics>,
    loads: Arc<tokio::sync::Semaphore>,
    default_watcher: Arc<Watcher>,
}

/// A running watcher and how to stop it.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Fleet {
    /// Watchers for `catalog`'s models in `registry_dir`, counting in `metrics`.
    pub fn new(
        runtime: Arc<Runtime>,
        catalog: Arc<Catalog>,
        registry_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> Self {
        let loads = Arc::new(tokio::sync::Semaphore::new(LOADS_AT_ONCE));
        let default_watcher = Arc::new(watcher_of(
            &runtime,
            catalog.default_model(),
            registry_dir,
            &metrics,
            &loads,
        ));
        Fleet {
            runtime,
            catalog,
            registry_dir: registry_dir.to_path_buf(),
            metrics,
            loads,
            default_watcher,
        }
    }

    /// The default model's watcher.
    pub fn default_watcher(&self) -> &Arc<Watcher> {
        &self.default_watcher
    }

    /// Runs every model's watcher (and with `*`, follows the registry's folders) until `stop`
    /// says true; then stops and joins the watchers.
    pub async fn run(self, schedule: Schedule, stop: watch::Receiver<bool>) {
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        for (name, served) in self.catalog.served().iter() {
            let watcher = if Arc::ptr_eq(served, self.catalog.default_model()) {
                self.default_watcher.clone()
            } else {
                Arc::new(watcher_of(
                    &self.runtime,
                    served,
                    &self.registry_dir,
                    &self.metrics,
                    &self.loads,
                ))
            };
            running.insert(name.clone(), spawn(watcher, schedule, stop.clone()));
        }
        if self.catalog.every_directory() {
            self.follow_directories(&mut running, schedule, stop).await;
        } else {
            stopped(stop).await;
        }
        for watcher in running.into_values() {
            let _ = watcher.stop.send(true);
            let _ = watcher.task.await;
        }
    }

    /// Lists the registry every poll interval (every settle window while a removal is
    /// pending), starting a watcher for each new model folder and unloading each removed one.
    async fn follow_directories(
        &self,
        running: &mut BTreeMap<String, Running>,
        schedule: Schedule,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut gone_since: BTreeMap<String, Instant> = BTreeMap::new();
        let mut over_capacity_warned = false;
        loop {
            let registry_dir = self.registry_dir.clone();
            let found = tokio::task::spawn_blocking(move || model_folders(&registry_dir))
                .await
                .unwrap_or_default();
            for name in &found {
                gone_since.remove(name);
                if running.contains_key(name) {
                    continue;
                }
                if self.catalog.len() >= MAX_MODELS {
                    if !over_capacity_warned {
                        over_capacity_warned = true;
                        tracing::warn!(
                            model = %name,
                            registry = %self.registry_dir.display(),
                            "already serving {MAX_MODELS} models, the most one server serves; \
                             not serving more"
                        );
                    }
                    continue;
                }
                let Some(served) = self.catalog.insert(name) else {
                    continue;
                };
                tracing::info!(model = %name, "model folder found in the registry; serving it");
                let watcher = Arc::new(watcher_of(
                    &self.runtime,
                    &served,
                    &self.registry_dir,
                    &self.metrics,
                    &self.loads,
                ));
                running.insert(name.clone(), spawn(watcher, schedule, stop.clone()));
            }
            let now = Instant::now();
            let vanished: Vec<String> = running
                .keys()
                .filter(|name| !self.catalog.is_pinned(name))
                .filter(|name| !self.registry_dir.join(name.as_str()).is_dir())
                .cloned()
                .collect();
            for name in vanished {
                let since = *gone_since.entry(name.clone()).or_insert(now);
                if now.duration_since(since) < SETTLE {
                    continue;
                }
                gone_since.remove(&name);
                if let Some(watcher) = running.remove(&name) {
                    let _ = watcher.stop.send(true);
                    let _ = watcher.task.await;
                }
                let version = self
                    .catalog
                    .remove(&name)
                    .and_then(|served| served.current())
                    .map(|model| model.version().to_string());
                self.metrics.model_unloaded(&name);
                tracing::warn!(
                    model = %name,
                    version = version.as_deref(),
                    "model folder removed from the registry; no longer serving it"
                );
            }
            let wait = if gone_since.is_empty() {
                schedule.poll_interval
            } else {
                schedule.poll_interval.min(SETTLE)
            };
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn watcher_of(
    runtime: &Arc<Runtime>,
    served: &Served,
    registry_dir: &Path,
    metrics: &Arc<Metrics>,
    loads: &Arc<tokio::sync::Semaphore>,
) -> Watcher {
    Watcher::new(
        runtime.clone(),
        served.active().clone(),
        registry_dir,
        served.folder(),
    )
    .with_metrics(metrics.clone())
    .with_load_slots(loads.clone())
}

/// Starts `watcher` until the fleet stops or its own stop is sent.
fn spawn(watcher: Arc<Watcher>, schedule: Schedule, fleet: watch::Receiver<bool>) -> Running {
    let (stop, own) = watch::channel(false);
    let task = tokio::spawn(async move {
        let either = async move {
            tokio::select! {
                _ = stopped(fleet) => {}
                _ = stopped(own) => {}
            }
        };
        watcher.run(schedule, either).await;
    });
    Running { stop, task }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The registry's model folders: directories named as a model may be that hold a
/// `model.wasm`. At most [`MAX_MODELS`] times four entries are looked at, so a registry
/// root full of other things costs a bounded listing.
fn model_folders(registry_dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(registry_dir) else {
        return BTreeSet::new();
    };
    entries
        .take(MAX_MODELS * 4)
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| ModelName::parse(name).is_ok())
        .filter(|name| registry_dir.join(name).join(LIVE_FILE).is_file())
        .collect()
}
