//! Many models in one server (`MODEL_NAMES`), over real sockets: several models in a temp
//! registry swapping independently under load, one model's bad artifact refused while another
//! swaps, the per-model routes and their 404, readiness, `*` following the registry's folders,
//! and metrics, drift and the prediction log per model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use modelhost::serve::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    base_url, capture_logs, churn_artifact, eventually, example_customer, metric, metrics_text,
    start_server_with, temp_registry,
};
use crate::oip::{customers, get, infer_inputs, post_json};
use crate::ops::LAB_ORDER;

const PATIENCE: Duration = Duration::from_secs(15);

/// Writes `bytes` as `registry/name/model.wasm` by atomic rename, as `modelhost train` does.
fn publish_model(registry: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(registry.join(name)).unwrap();
    modelhost::registry::write_atomic(&modelhost::registry::live_path(registry, name), bytes)
        .unwrap();
}

/// The version `GET /models/{name}` reports, if it answers 200.
async fn version_of(url: &str, name: &str) -> Option<String> {
    let (status, body) = get(&format!("{url}/models/{name}")).await;
    (status == StatusCode::OK).then(|| body["version"].as_str().unwrap().to_string())
}

async fn wait_for(url: &str, name: &str, version: &str) -> bool {
    eventually(PATIENCE, || async {
        version_of(url, name).await.as_deref() == Some(version)
    })
    .await
}

/// A registry with `churn` at `v1` and `fraud` at `f1`, and a server of both once they serve.
async fn churn_and_fraud(settings: &[(&'static str, &str)]) -> (tempfile::TempDir, Server, String) {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    publish_model(registry.path(), "fraud", &churn_artifact("f1", 1.0));
    let mut all = vec![("model_names", "fraud")];
    all.extend_from_slice(settings);
    let server = start_server_with(registry.path(), &all).await;
    let url = base_url(&server);
    assert!(wait_for(&url, "churn", "v1").await, "churn never served");
    assert!(wait_for(&url, "fraud", "f1").await, "fraud never served");
    (registry, server, url)
}

/// What one load saw: the answers, the versions that gave them, the failures.
type Answered = (u64, BTreeSet<String>, Vec<String>);

/// Requests sent without pause on one predict route until stopped: the answers' versions, and
/// every failure.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Answered>>,
}

impl Load {
    fn start(url: &str, path: &str, connections: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..connections)
            .map(|_| {
                let (stop, target) = (stop.clone(), format!("{url}{path}"));
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let (mut ok, mut versions, mut failures) = (0, BTreeSet::new(), Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        let response = client.post(&target).json(&example_customer()).send().await;
                        match response {
                            Ok(response) if response.status() == StatusCode::OK => {
                                let body: Value = response.json().await.unwrap();
                                versions
                                    .insert(body["model_version"].as_str().unwrap().to_string());
                                ok += 1;
                            }
                            Ok(response) => {
                                let status = response.status();
                                let text = response.text().await.unwrap_or_default();
                                failures.push(format!("{target} {status}: {text}"));
                            }
                            Err(e) => failures.push(format!("{target}: {e}")),
                        }
                    }
                    (ok, versions, failures)
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops; the answers, the versions that answered and the failures.
    async fn finish(self) -> Answered {
        self.stop.store(true, Ordering::Relaxed);
        let (mut ok, mut versions, mut failures) = (0, BTreeSet::new(), Vec::new());
        for task in self.tasks {
            let (n, seen, failed) = task.await.unwrap();
            ok += n;
            versions.extend(seen);
            failures.extend(failed);
        }
        (ok, versions, failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn models_swap_independently_under_load_with_no_failed_request() {
    let (registry, server, url) = churn_and_fraud(&[]).await;
    let churn = Load::start(&url, "/predict", 2);
    let fraud = Load::start(&url, "/models/fraud/predict", 2);
    for k in 2..=4 {
        let version = format!("v{k}");
        publish_model(
            registry.path(),
            "churn",
            &churn_artifact(&version, k as f64 * 0.1),
        );
        assert!(wait_for(&url, "churn", &version).await, "{version}");
        let fraud_before = format!("f{}", k - 1);
        assert_eq!(
            version_of(&url, "fraud").await.as_deref(),
            Some(fraud_before.as_str())
        );
        let version = format!("f{k}");
        publish_model(
            registry.path(),
            "fraud",
            &churn_artifact(&version, 1.0 + k as f64 * 0.1),
        );
        assert!(wait_for(&url, "fraud", &version).await, "{version}");
        assert_eq!(
            version_of(&url, "churn").await.as_deref(),
            Some(format!("v{k}").as_str())
        );
    }
    let (churn_ok, churn_versions, churn_failures) = churn.finish().await;
    let (fraud_ok, fraud_versions, fraud_failures) = fraud.finish().await;
    assert!(churn_failures.is_empty(), "{churn_failures:?}");
    assert!(fraud_failures.is_empty(), "{fraud_failures:?}");
    assert!(churn_ok > 0 && fraud_ok > 0, "{churn_ok} {fraud_ok}");
    // Each route was answered by its own model's versions only.
    assert!(
        churn_versions.iter().all(|v| v.starts_with('v')),
        "{churn_versions:?}"
    );
    assert!(
        fraud_versions.iter().all(|v| v.starts_with('f')),
        "{fraud_versions:?}"
    );
    let swaps = |name: &str| server.catalog.get(name).unwrap().active().status().swaps;
    assert_eq!((swaps("churn"), swaps("fraud")), (4, 4));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_models_bad_artifact_is_refused_while_the_other_swaps() {
    let (registry, server, url) = churn_and_fraud(&[]).await;
    let fraud = Load::start(&url, "/models/fraud/predict", 2);
    publish_model(registry.path(), "fraud", b"not a wasm module");
    publish_model(registry.path(), "churn", &churn_artifact("v2", 0.3));
    assert!(wait_for(&url, "churn", "v2").await);
    let refused = eventually(PATIENCE, || async {
        let (_, body) = get(&format!("{url}/models/fraud")).await;
        body["last_error"].is_string()
    })
    .await;
    assert!(refused, "the bad fraud artifact was never refused");
    let (ok, versions, failures) = fraud.finish().await;
    assert!(failures.is_empty(), "{failures:?}");
    assert!(ok > 0);
    assert_eq!(
        versions,
        BTreeSet::from(["f1".to_string()]),
        "fraud kept serving f1"
    );
    let (_, fraud_doc) = get(&format!("{url}/models/fraud")).await;
    assert_eq!(fraud_doc["version"], "f1");
    let (_, churn_doc) = get(&format!("{url}/model")).await;
    assert_eq!(churn_doc["version"], "v2");
    assert!(churn_doc["last_error"].is_null(), "{churn_doc}");
    assert_eq!(
        server
            .catalog
            .get("churn")
            .unwrap()
            .active()
            .status()
            .rejections,
        0
    );
    assert_eq!(
        server
            .catalog
            .get("fraud")
            .unwrap()
            .active()
            .status()
            .rejections,
        1
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_served_model_has_its_routes_and_an_unknown_one_is_a_404_naming_them() {
    let (_registry, _server, url) = churn_and_fraud(&[]).await;
    let (status, list) = get(&format!("{url}/models")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list,
        json!({"default": "churn", "models": [
            {"name": "churn", "version": "v1", "state": "READY", "reason": ""},
            {"name": "fraud", "version": "f1", "state": "READY", "reason": ""},
        ]})
    );

    // /models/{name}/predict has /predict's contract, answered by that model.
    let (status, default) = post_json(&format!("{url}/predict"), &example_customer()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, named) =
        post_json(&format!("{url}/models/churn/predict"), &example_customer()).await;
    assert_eq!(status, StatusCode::OK);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&default), keys(&named));
    assert_eq!(default["probability"], named["probability"]);
    let (status, fraud) =
        post_json(&format!("{url}/models/fraud/predict"), &example_customer()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fraud["model_version"], "f1");
    assert_ne!(fraud["probability"], default["probability"]);
    let batch = json!({"instances": customers()});
    let (status, answers) = post_json(&format!("{url}/models/fraud/predict"), &batch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answers["predictions"].as_array().unwrap().len(),
        customers().len()
    );
    let (status, invalid) = post_json(
        &format!("{url}/models/fraud/predict"),
        &json!({"tenure_months": 999, "num_complaints": 3, "avg_session_minutes": 1, "plan_type": "basic", "region": "AF"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{invalid}");

    // The v2 routes, per model.
    let (status, metadata) = get(&format!("{url}/v2/models/fraud")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&metadata["name"], &metadata["versions"]),
        (&json!("fraud"), &json!(["f1"]))
    );
    let (status, ready) = get(&format!("{url}/v2/models/fraud/versions/f1/ready")).await;
    assert_eq!((status, &ready["ready"]), (StatusCode::OK, &json!(true)));
    let (status, inferred) = post_json(
        &format!("{url}/v2/models/fraud/infer"),
        &json!({"inputs": infer_inputs(&customers()[..1])}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{inferred}");
    assert_eq!(
        (&inferred["model_name"], &inferred["model_version"]),
        (&json!("fraud"), &json!("f1"))
    );
    let (status, index) = post_json(&format!("{url}/v2/repository/index"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(index, list["models"]);
    let empty = reqwest::Client::new()
        .post(format!("{url}/v2/repository/index"))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::OK);
    assert_eq!(empty.json::<Value>().await.unwrap(), list["models"]);
    let (status, index) = post_json(&format!("{url}/v2/repository/index"), &json!(null)).await;
    assert_eq!(status, StatusCode::OK, "JSON null is {{}}: {index}");
    assert_eq!(index, list["models"]);
    for bad in [json!({"ready": "yes"}), json!([]), json!(true)] {
        let (status, error) = post_json(&format!("{url}/v2/repository/index"), &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {error}");
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid repository index request"),
            "{error}"
        );
    }

    // An unknown model is a 404 that names the served ones, on every route that names one.
    for (method, path) in [
        ("POST", "/models/nope/predict"),
        ("GET", "/models/nope"),
        ("GET", "/v2/models/nope"),
        ("GET", "/v2/models/nope/ready"),
        ("POST", "/v2/models/nope/infer"),
    ] {
        let request = match method {
            "POST" => reqwest::Client::new()
                .post(format!("{url}{path}"))
                .json(&example_customer()),
            _ => reqwest::Client::new().get(format!("{url}{path}")),
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"], "unknown model `nope`: this server serves `churn`, `fraud`",
            "{path}"
        );
    }
}

/// `/ready`'s reason, once it answers 503.
async fn not_ready_because(url: &str) -> String {
    let (status, ready) = get(&format!("{url}/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    ready["reason"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn ready_waits_for_every_listed_model_and_each_has_its_own_readiness() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server_with(registry.path(), &[("model_names", "fraud,upsell")]).await;
    let url = base_url(&server);
    assert!(wait_for(&url, "churn", "v1").await);
    let reason = not_ready_because(&url).await;
    assert!(
        reason.starts_with("model `fraud`: no model is serving yet"),
        "{reason}"
    );
    let (status, _) = get(&format!("{url}/v2/models/churn/ready")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, fraud) = get(&format!("{url}/v2/models/fraud/ready")).await;
    assert_eq!(
        (status, &fraud["ready"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!(false))
    );
    // The default model answers meanwhile.
    let (status, _) = post_json(&format!("{url}/predict"), &example_customer()).await;
    assert_eq!(status, StatusCode::OK);

    publish_model(registry.path(), "fraud", &churn_artifact("f1", 1.0));
    assert!(wait_for(&url, "fraud", "f1").await);
    let reason = not_ready_because(&url).await;
    assert!(reason.starts_with("model `upsell`"), "{reason}");
    publish_model(registry.path(), "upsell", &churn_artifact("u1", 2.0));
    let ready = eventually(PATIENCE, || async {
        get(&format!("{url}/ready")).await.0 == StatusCode::OK
    })
    .await;
    assert!(ready, "ready once every listed model serves");
    let (_, ready) = get(&format!("{url}/ready")).await;
    assert_eq!(ready["version"], "v1", "the probes show the default model");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_directory_serves_a_folder_that_appears_and_unloads_one_removed_for_the_settle_window()
 {
    let logs = capture_logs();
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server_with(registry.path(), &[("model_names", "*")]).await;
    let url = base_url(&server);
    assert!(wait_for(&url, "churn", "v1").await);
    // The log directory inside this registry holds no model.wasm: not a model.
    assert!(version_of(&url, "logs").await.is_none());

    publish_model(registry.path(), "upsell", &churn_artifact("u1", 2.0));
    assert!(
        wait_for(&url, "upsell", "u1").await,
        "a new folder is served"
    );
    let (status, answer) =
        post_json(&format!("{url}/models/upsell/predict"), &example_customer()).await;
    assert_eq!(
        (status, &answer["model_version"]),
        (StatusCode::OK, &json!("u1"))
    );

    // A missing file never unloads a model: the folder stays served while only its file goes,
    // until the folder itself has been gone for the settle window.
    std::fs::remove_file(registry.path().join("upsell/model.wasm")).unwrap();
    let warned = eventually(PATIENCE, || async {
        logs.count("live artifact is missing; still serving the loaded model") > 0
    })
    .await;
    assert!(warned, "the missing file was noticed");
    assert_eq!(version_of(&url, "upsell").await.as_deref(), Some("u1"));
    let removed_at = Instant::now();
    std::fs::remove_dir_all(registry.path().join("upsell")).unwrap();
    let unloaded = eventually(PATIENCE, || async {
        get(&format!("{url}/models/upsell")).await.0 == StatusCode::NOT_FOUND
    })
    .await;
    assert!(unloaded, "a removed folder is unloaded");
    assert!(
        removed_at.elapsed() >= modelhost::watch::SETTLE,
        "unloaded before its removal had been stable for the settle window"
    );
    assert_eq!(
        metric(&url, r#"modelhost_models_unloaded_total{model="upsell"}"#).await,
        1.0
    );
    let (status, list) = get(&format!("{url}/models")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["models"].as_array().unwrap().len(), 1, "{list}");
    // The default model is never unloaded, and still answers.
    let (status, _) = post_json(&format!("{url}/predict"), &example_customer()).await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_drift_and_the_prediction_log_are_per_model() {
    let (registry, server, url) = churn_and_fraud(&[]).await;
    post_json(&format!("{url}/predict"), &example_customer()).await;
    for _ in 0..2 {
        post_json(&format!("{url}/models/fraud/predict"), &example_customer()).await;
    }
    for (series, value) in [
        (
            r#"modelhost_predictions_total{model="churn",version="v1"}"#,
            1.0,
        ),
        (
            r#"modelhost_predictions_total{model="fraud",version="f1"}"#,
            2.0,
        ),
        (r#"modelhost_model_swaps_total{model="fraud"}"#, 1.0),
        (r#"modelhost_drift_window_predictions{model="fraud"}"#, 2.0),
        (r#"modelhost_drift_window_predictions{model="churn"}"#, 1.0),
    ] {
        assert_eq!(metric(&url, series).await, value, "{series}");
    }
    let text = metrics_text(&url).await;
    for series in [
        r#"modelhost_model_rejections_total{model="fraud",reason="not_wasm"} 0"#,
        r#"modelhost_model_info{model="fraud",name="churn",version="f1","#,
        r#"modelhost_model_info{model="churn",name="churn",version="v1","#,
    ] {
        assert!(
            text.lines().any(|line| line.starts_with(series)),
            "{series} in {text}"
        );
    }
    let (status, drift) = get(&format!("{url}/monitoring/drift?model=fraud")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&drift["model_version"], &drift["n_predictions"]),
        (&json!("f1"), &json!(2))
    );
    let (_, drift) = get(&format!("{url}/monitoring/drift")).await;
    assert_eq!(
        (&drift["model_version"], &drift["n_predictions"]),
        (&json!("v1"), &json!(1))
    );
    let (status, _) = get(&format!("{url}/monitoring/drift?model=nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.shutdown().await.unwrap();

    // Each line is the answer, then the model that gave it, last.
    let log_path = registry.path().join("logs/predictions.log");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Map<String, Value>> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let models: Vec<&str> = lines.iter().map(|l| l["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["churn", "fraud", "fraud"]);
    let fields: Vec<&str> = lines[0].keys().map(String::as_str).collect();
    assert_eq!(fields, [&LAB_ORDER[..], &["model"]].concat());

    // The offline drift check reads only the named model's lines.
    let drift_of = |model: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_modelhost"))
            .args(["drift", "--json", "--model", model])
            .arg("--registry-dir")
            .arg(registry.path())
            .arg("--log")
            .arg(&log_path)
            .output()
            .unwrap();
        assert!(
            matches!(output.status.code(), Some(0 | 3)),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        (
            report["model_version"].clone(),
            report["n_predictions"].clone(),
        )
    };
    assert_eq!(drift_of("fraud"), (json!("f1"), json!(2)));
    assert_eq!(drift_of("churn"), (json!("v1"), json!(1)));
}

#[test]
fn a_bad_model_names_list_is_refused_naming_the_setting() {
    let env = |_: &str| None;
    for (value, words) in [
        ("churn,,fraud", "entry 2"),
        ("churn,../etc", "entry 2"),
        ("fraud,fraud", "listed twice"),
    ] {
        let flags: modelhost::config::Flags =
            [("model_names", value.to_string())].into_iter().collect();
        let error = modelhost::config::resolve(None, &env, &flags)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("invalid --model-names="), "{error}");
        assert!(error.contains(words), "{value}: {error}");
    }
    let served: BTreeMap<&str, modelhost::config::ModelSelection> = [
        ("*", modelhost::config::ModelSelection::EveryDirectory),
        (
            " fraud , upsell ",
            modelhost::config::ModelSelection::Listed(vec!["fraud".into(), "upsell".into()]),
        ),
    ]
    .into_iter()
    .collect();
    for (value, selection) in served {
        let flags: modelhost::config::Flags =
            [("model_names", value.to_string())].into_iter().collect();
        let config = modelhost::config::resolve(None, &env, &flags).unwrap();
        assert_eq!(config.model_names, selection);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_that_loops_to_its_time_limit_on_every_call_does_not_starve_another() {
    use std::sync::atomic::AtomicU64;
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    // `selective.wat` passes its self-test and loops on every call whose first row has
    // `tenure_months` 199.
    publish_model(
        registry.path(),
        "slow",
        &crate::common::fixture("hostile/selective.wat"),
    );
    let server = start_server_with(
        registry.path(),
        &[("model_names", "slow"), ("wasm_timeout_ms", "200")],
    )
    .await;
    let url = base_url(&server);
    assert!(wait_for(&url, "churn", "v1").await);
    assert!(wait_for(&url, "slow", "v-selective").await);

    let stop = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicU64::new(0));
    let mut looping = Vec::new();
    for _ in 0..2 {
        let (stop, timed_out, url) = (stop.clone(), timed_out.clone(), url.clone());
        looping.push(tokio::spawn(async move {
            let mut customer = example_customer();
            customer["tenure_months"] = json!(199);
            let mut other = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, body) =
                    post_json(&format!("{url}/models/slow/predict"), &customer).await;
                if status == StatusCode::GATEWAY_TIMEOUT {
                    timed_out.fetch_add(1, Ordering::Relaxed);
                } else {
                    other.push(format!("{status}: {body}"));
                }
            }
            other
        }));
    }
    let looping_started =
        eventually(PATIENCE, || async { timed_out.load(Ordering::Relaxed) > 0 }).await;
    assert!(
        looping_started,
        "the looping model never reached its time limit"
    );
    // While the other model keeps looping, every request to this one is answered.
    for _ in 0..40 {
        let (status, body) = post_json(&format!("{url}/predict"), &example_customer()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["model_version"], "v1");
    }
    let during = timed_out.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for task in looping {
        let other = task.await.unwrap();
        assert!(
            other.is_empty(),
            "the looping model answered otherwise: {other:?}"
        );
    }
    assert!(
        during >= 2,
        "the looping model kept looping meanwhile ({during} calls)"
    );
    server.shutdown().await.unwrap();
}
