//! Support for the hot-swap tests: concurrent traffic that tallies every answer, slow writes,
//! and small probes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use modelhost::model::Model;
use modelhost::runtime::{Limits, Runtime};
use modelhost::serve::Server;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{
    base_url, churn_artifact, example_customer, start_server_with, temp_registry, wait_for_version,
};

/// How soon after its last byte a complete artifact must answer. The design target is 1 s; the
/// margin absorbs a debug build sharing two cores with the rest of the suite.
pub const LIVE_WITHIN: Duration = Duration::from_secs(2);
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What the traffic saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub failures: Vec<String>,
    /// Responses per version, with the probabilities each version answered.
    pub versions: BTreeMap<String, BTreeSet<String>>,
}

/// `connections` clients posting `/predict` (and probing `/ready`) in a loop until finished.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Traffic {
    pub fn start(server: &Server, connections: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let url = base_url(server);
        let tasks = (0..connections)
            .map(|_| {
                let (stop, url) = (stop.clone(), url.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut tally = Tally::default();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let response = client
                            .post(format!("{url}/predict"))
                            .json(&example_customer())
                            .send()
                            .await;
                        let response = match response {
                            Ok(response) => response,
                            Err(e) => {
                                tally.failures.push(format!("/predict: {e}"));
                                continue;
                            }
                        };
                        let status = response.status();
                        let body: Value = response.json().await.unwrap_or_default();
                        if status != StatusCode::OK {
                            tally.failures.push(format!("/predict {status}: {body}"));
                            continue;
                        }
                        tally.ok += 1;
                        let version = body["model_version"].as_str().unwrap().to_string();
                        let probability = body["probability"].to_string();
                        tally
                            .versions
                            .entry(version)
                            .or_default()
                            .insert(probability);
                        if i.is_multiple_of(4) {
                            let ready = client.get(format!("{url}/ready")).send().await;
                            match ready.map(|r| r.status()) {
                                Ok(StatusCode::OK) => {}
                                other => tally.failures.push(format!("/ready: {other:?}")),
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        Traffic { stop, tasks }
    }

    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for task in self.tasks {
            let tally = task.await.unwrap();
            all.ok += tally.ok;
            all.failures.extend(tally.failures);
            for (version, probabilities) in tally.versions {
                all.versions
                    .entry(version)
                    .or_default()
                    .extend(probabilities);
            }
        }
        all
    }
}

/// A registry serving `v1` and a server that has loaded it.
pub async fn serving_v1(settings: &[(&'static str, &str)]) -> (tempfile::TempDir, Server) {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server_with(registry.path(), settings).await;
    assert!(
        wait_for_version(&server, "v1", PATIENCE).await,
        "v1 never served"
    );
    (registry, server)
}

/// Rewrites `path` in place (same inode, truncated first) in `chunks` writes `pause` apart, as
/// `kubectl cp` does; returns when the last byte is written.
pub async fn write_slowly(path: &Path, bytes: &[u8], chunks: usize, pause: Duration) -> Instant {
    let mut file = std::fs::File::create(path).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(chunks)) {
        tokio::time::sleep(pause).await;
        file.write_all(chunk).unwrap();
    }
    drop(file);
    Instant::now()
}

/// The `/model` document.
pub async fn model_doc(server: &Server) -> Value {
    let response = reqwest::get(format!("{}/model", base_url(server)))
        .await
        .unwrap();
    response.json().await.unwrap()
}

/// The probability each version's golden pair 0 (the example customer) must answer.
pub fn golden_probability(bytes: &[u8]) -> f64 {
    let runtime = Runtime::new(Limits::default()).unwrap();
    let model = Model::load(&runtime, bytes, "golden.wasm".into()).unwrap();
    model.info().golden[0].probability
}
