//! Shared test helpers: a churn-shaped artifact built with known parameters, temp registries,
//! and a server started on 127.0.0.1:0.

use std::path::{Path, PathBuf};
use std::time::Duration;

use modelhost::artifact::build_artifact;
use modelhost::config::{self, Config, Flags};
use modelhost::serve::{self, Server};
use modelhost_abi::info::{GoldenValue, ModelInfo};
use modelhost_abi::params::FittedFeature;
use serde_json::json;

/// The churn schema with the lab's ranges and vocabularies.
pub fn churn_info(version: &str) -> ModelInfo {
    serde_json::from_value(json!({
        "name": "churn",
        "version": version,
        "task": "binary-classification",
        "features": [
            {"name": "tenure_months", "kind": "integer", "min": 0, "max": 200},
            {"name": "num_complaints", "kind": "integer", "min": 0, "max": 50},
            {"name": "avg_session_minutes", "kind": "number", "min": 0, "max": 500},
            {"name": "plan_type", "kind": "categorical", "vocabulary": ["basic", "premium"], "case": "lower"},
            {"name": "region", "kind": "categorical", "vocabulary": ["AF", "AS", "EU", "NA"], "case": "upper"}
        ],
        "outputs": ["probability"],
        "threshold": 0.5,
        "training": {
            "n_rows": 900,
            "numeric": {
                "tenure_months": {"mean": 30.0, "std": 17.0},
                "num_complaints": {"mean": 1.2, "std": 1.1},
                "avg_session_minutes": {"mean": 35.0, "std": 12.0}
            },
            "categorical": {
                "plan_type": {"basic": 0.72, "premium": 0.28},
                "region": {"AF": 0.25, "AS": 0.2, "EU": 0.3, "NA": 0.25}
            }
        },
        "metrics": {"f1": 0.72},
        "golden": []
    }))
    .unwrap()
}

/// Fitted parameters for [`churn_info`]: `shift` moves the intercept, so different shifts give
/// different versions with visibly different probabilities.
pub fn churn_params(shift: f64) -> (f64, Vec<FittedFeature>) {
    (
        0.2 + shift,
        vec![
            FittedFeature::Numeric {
                mean: 30.0,
                scale: 17.0,
                coef: -0.5,
            },
            FittedFeature::Numeric {
                mean: 1.2,
                scale: 1.1,
                coef: 0.7,
            },
            FittedFeature::Numeric {
                mean: 35.0,
                scale: 12.0,
                coef: -0.25,
            },
            FittedFeature::Categorical {
                coefs: vec![0.1, -0.1],
            },
            FittedFeature::Categorical {
                coefs: vec![0.05, 0.0, -0.03, 0.01],
            },
        ],
    )
}

/// Golden inputs covering both plans, every region and an unknown one.
pub fn golden_inputs() -> Vec<Vec<GoldenValue>> {
    let n = GoldenValue::Number;
    let c = |s: &str| GoldenValue::Category(s.to_string());
    vec![
        vec![n(6.0), n(3.0), n(12.5), c("basic"), c("AF")],
        vec![n(48.0), n(0.0), n(40.0), c("premium"), c("EU")],
        vec![n(12.0), n(1.0), n(30.0), c("Basic "), c("mars")],
    ]
}

/// A valid churn artifact.
pub fn churn_artifact(version: &str, shift: f64) -> Vec<u8> {
    let (intercept, features) = churn_params(shift);
    build_artifact(&churn_info(version), intercept, &features, &golden_inputs()).unwrap()
}

/// Copies the directory tree `from` into `to` (created as needed): how tests work on a copy of
/// a committed registry, never on the checkout's own files.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A temp registry holding `churn/model.wasm` if `artifact` is given.
pub fn temp_registry(artifact: Option<&[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("churn")).unwrap();
    if let Some(bytes) = artifact {
        std::fs::write(dir.path().join("churn/model.wasm"), bytes).unwrap();
    }
    dir
}

/// A config serving `registry` on 127.0.0.1:0 with a fast poll.
pub fn test_config(registry: &Path) -> Config {
    test_config_with(registry, &[])
}

/// Starts a server on `registry`.
pub async fn start_server(registry: &Path) -> Server {
    serve::start(&test_config(registry)).await.unwrap()
}

/// `http://addr`.
pub fn base_url(server: &Server) -> String {
    format!("http://{}", server.addr)
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lab's example customer.
pub fn example_customer() -> serde_json::Value {
    json!({
        "request_id": "req-001",
        "tenure_months": 6,
        "num_complaints": 3,
        "avg_session_minutes": 12.5,
        "plan_type": "basic",
        "region": "AF"
    })
}

/// Path of a `.wat` fixture, compiled to wasm bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A config like [`test_config`] with some settings overridden, by key.
pub fn test_config_with(registry: &Path, settings: &[(&'static str, &str)]) -> Config {
    let mut flags: Flags = [
        ("registry_dir", registry.display().to_string()),
        ("host", "127.0.0.1".to_string()),
        ("port", "0".to_string()),
        ("poll_interval_ms", "100".to_string()),
        ("log_dir", registry.join("logs").display().to_string()),
        ("shutdown_delay_ms", "0".to_string()),
        // Tests share two cores with other tests: a 50 ms wall-clock limit can be hit by a call
        // that was merely descheduled. Tests of the limit set their own.
        ("wasm_timeout_ms", "1000".to_string()),
    ]
    .into_iter()
    .collect();
    for (key, value) in settings {
        flags.insert(*key, value.to_string());
    }
    config::resolve(None, &|_| None, &flags).unwrap()
}

/// Starts a server on `registry` with some settings overridden.
pub async fn start_server_with(registry: &Path, settings: &[(&'static str, &str)]) -> Server {
    serve::start(&test_config_with(registry, settings))
        .await
        .unwrap()
}

/// `registry/churn/model.wasm`.
pub fn live_path(registry: &Path) -> PathBuf {
    modelhost::registry::live_path(registry, "churn")
}

/// Publishes `bytes` as the live artifact by atomic rename, as `modelhost train` does.
pub fn publish(registry: &Path, bytes: &[u8]) {
    modelhost::registry::write_atomic(&live_path(registry), bytes).unwrap();
}

/// The version the server's slot is serving.
pub fn serving_version(server: &Server) -> Option<String> {
    server.active.current().map(|m| m.version().to_string())
}

/// Waits until `server` serves `version`.
pub async fn wait_for_version(server: &Server, version: &str, timeout: Duration) -> bool {
    eventually(timeout, || async {
        serving_version(server).as_deref() == Some(version)
    })
    .await
}

/// Log lines captured on the current thread (see [`capture_logs`]).
pub struct Logs {
    lines: LogBuffer,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    /// How many captured lines contain `words`.
    pub fn count(&self, words: &str) -> usize {
        let bytes = self.lines.0.lock().unwrap();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| line.contains(words))
            .count()
    }
}

#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the log lines emitted on this thread (warn and above) until the result is dropped.
/// On a current-thread tokio runtime that includes every task the test spawns.
pub fn capture_logs() -> Logs {
    let lines = LogBuffer::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    Logs {
        lines,
        _guard: tracing::subscriber::set_default(subscriber),
    }
}

/// The value of one sample in the `/metrics` exposition of the server at `url`, e.g.
/// `modelhost_model_rejections_total{reason="timeout"}`; 0 when it is absent.
pub async fn metric(url: &str, sample: &str) -> f64 {
    metrics_text(url)
        .await
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The `/metrics` exposition of the server at `url`.
pub async fn metrics_text(url: &str) -> String {
    reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
