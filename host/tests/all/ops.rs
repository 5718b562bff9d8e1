//! Operations: the prediction log, `/metrics`, the monitoring token, `/monitoring/drift`,
//! `modelhost drift`, request ids, and graceful shutdown of the real binary.

mod process;

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;
use process::{ServeProcess, ready_within};

/// The lab's prediction-log fields, in the lab's order.
pub const LAB_ORDER: [&str; 7] = [
    "request_id",
    "model_version",
    "prediction",
    "probability",
    "latency_ms",
    "features",
    "ts",
];

/// The call threads start with the server, not on the first request, and shutdown joins them.
#[tokio::test]
async fn the_model_call_threads_start_with_the_server_and_shutdown_joins_them() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server(registry.path()).await;
    let executor = server.executor.clone();
    let threads = modelhost::model::executor::call_threads();
    assert_eq!(executor.running_threads(), threads, "before any request");
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let response = reqwest::Client::new()
        .post(format!("{}/predict", base_url(&server)))
        .json(&customer(0))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.shutdown().await.unwrap();
    assert_eq!(
        executor.running_threads(),
        0,
        "every call thread was joined"
    );
}

/// Keys of a JSON object line in the order they appear in the text.
fn key_order(line: &str) -> Vec<String> {
    // serde_json's `preserve_order` is not enabled, so read the top-level keys by hand: every
    // `"key":` at nesting depth 1.
    let mut keys = Vec::new();
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = None;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    if depth == 1 && bytes.get(i + 1) == Some(&b':') {
                        keys.push(line[start.unwrap()..i].to_string());
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                start = Some(i + 1);
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            _ => {}
        }
    }
    keys
}

fn customer(i: usize) -> Value {
    let region = ["NA", "EU", "AF", "AS"][i % 4];
    json!({
        "request_id": format!("load-{i}"),
        "tenure_months": i % 60,
        "num_complaints": i % 5,
        "avg_session_minutes": 10.0 + (i % 50) as f64,
        "plan_type": if i.is_multiple_of(3) { "premium" } else { "basic" },
        "region": region,
    })
}

fn log_lines(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("predictions.log")
        })
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `request_id` of each log line.
fn request_ids(lines: &[String]) -> HashSet<String> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["request_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn each_answer_is_one_log_line_with_the_lab_fields_in_the_lab_order() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let logs = tempfile::tempdir().unwrap();
    let server = start_server_with(
        registry.path(),
        &[("log_dir", logs.path().to_str().unwrap())],
    )
    .await;
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let client = reqwest::Client::new();
    let url = format!("{}/predict", base_url(&server));
    let mut answers = Vec::new();
    for i in 0..20 {
        let response = client.post(&url).json(&customer(i)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        answers.push(response.text().await.unwrap());
    }
    // A refused request is not a prediction and is not logged.
    let refused = client
        .post(&url)
        .json(&json!({"tenure_months": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    server.shutdown().await.unwrap();

    let lines = log_lines(logs.path());
    assert_eq!(lines.len(), 20, "one line per answered prediction");
    for (line, answer) in lines.iter().zip(&answers) {
        assert_eq!(key_order(line), LAB_ORDER);
        let logged: Value = serde_json::from_str(line).unwrap();
        let answered: Value = serde_json::from_str(answer).unwrap();
        assert_eq!(logged, answered, "the log line is the answer");
    }
    let ids: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["request_id"].to_string())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("\"load-{i}\"")).collect();
    assert_eq!(ids, expected, "sequential requests are logged in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_line_is_lost_across_rotation_under_concurrent_load() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let logs = tempfile::tempdir().unwrap();
    let server = start_server_with(
        registry.path(),
        &[
            ("log_dir", logs.path().to_str().unwrap()),
            ("log_max_mib", "1"),
            ("log_keep", "100"),
        ],
    )
    .await;
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let url = format!("{}/predict", base_url(&server));
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..700 {
                    let n = t * 700 + i;
                    let response = client.post(&url).json(&customer(n)).send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                    ids.push(format!("load-{n}"));
                }
                ids
            })
        })
        .collect();
    let mut answered = HashSet::new();
    for task in tasks {
        answered.extend(task.await.unwrap());
    }
    let metrics = reqwest::get(format!("{}/metrics", base_url(&server)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.shutdown().await.unwrap();

    let lines = log_lines(logs.path());
    let files = std::fs::read_dir(logs.path()).unwrap().count();
    assert!(files >= 2, "5600 lines of ~300 bytes rotate at 1 MiB");
    assert_eq!(lines.len(), answered.len());
    assert_eq!(request_ids(&lines), answered);
    assert!(metrics.contains("modelhost_prediction_log_lines_dropped_total 0"));
}

#[tokio::test]
async fn every_known_reason_and_the_serving_version_are_on_metrics_at_0_from_start_up() {
    use modelhost::runtime::{CallError, LoadError};

    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server(registry.path()).await;
    let url = format!("{}/metrics", base_url(&server));
    let scrape = || async { reqwest::get(&url).await.unwrap().text().await.unwrap() };
    let text = scrape().await;
    let call_reasons: Vec<_> = CallError::reasons().collect();
    let load_reasons: Vec<_> = LoadError::reasons().collect();
    for (labels, known) in [
        (&call_reasons, ["timeout", "trap", "bad_output"].as_slice()),
        (
            &load_reasons,
            ["not_wasm", "import", "self_test", "timeout"].as_slice(),
        ),
    ] {
        for reason in known {
            assert!(labels.contains(reason), "{reason} missing from {labels:?}");
        }
    }
    for (family, reasons) in [
        ("modelhost_wasm_call_errors_total", &call_reasons),
        ("modelhost_model_rejections_total", &load_reasons),
    ] {
        for reason in reasons {
            let sample = format!("{family}{{reason=\"{reason}\"}} 0");
            assert!(
                text.lines().any(|line| line == sample),
                "missing {sample} in\n{text}"
            );
        }
    }
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let text = scrape().await;
    assert!(
        text.lines()
            .any(|line| line == r#"modelhost_predictions_total{version="v1"} 0"#),
        "{text}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_predictions_and_the_serving_model() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server(registry.path()).await;
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let base = base_url(&server);
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let response = client
            .post(format!("{base}/predict"))
            .json(&example_customer())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let _ = client.get(format!("{base}/no/such/route")).send().await;
    std::fs::write(live_path(registry.path()), b"garbage").unwrap();
    let model_url = format!("{base}/model");
    assert!(
        eventually(Duration::from_secs(10), || async {
            let model: Value = reqwest::get(&model_url)
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            !model["last_error"].is_null()
        })
        .await
    );
    let response = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"modelhost_http_requests_total{route="/predict",method="POST",status="200"} 3"#,
        r#"modelhost_http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
        r#"modelhost_predictions_total{version="v1"} 3"#,
        r#"modelhost_wasm_call_duration_seconds_count 3"#,
        r#"modelhost_model_swaps_total 1"#,
        r#"modelhost_model_rejections_total{reason="not_wasm"} 1"#,
        r#"modelhost_prediction_log_lines_written_total 3"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    let sha = server.active.current().unwrap().sha256.clone();
    assert!(text.contains(&format!(
        r#"modelhost_model_info{{name="churn",version="v1",sha256="{sha}"}} 1"#
    )));
    assert!(text.contains("modelhost_http_request_duration_seconds_bucket"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_monitoring_token_guards_metrics_and_drift() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let token = "s3cret-Token-value";
    let server = start_server_with(registry.path(), &[("monitoring_token", token)]).await;
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let base = base_url(&server);
    let client = reqwest::Client::new();
    for path in ["/metrics", "/monitoring/drift"] {
        let url = format!("{base}{path}");
        let none = client.get(&url).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let body = none.text().await.unwrap();
        assert!(!body.contains(token));
        for wrong in [
            "Bearer wrong".to_string(),
            format!("Bearer {token}x"),
            format!("Basic {token}"),
            token.to_string(),
        ] {
            let response = client
                .get(&url)
                .header("authorization", wrong)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        let ok = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK, "{path}");
        assert!(!ok.text().await.unwrap().contains(token));
    }
    // The other routes never ask for it.
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.shutdown().await.unwrap();

    // Without a token the monitoring routes are open.
    let open = start_server(registry.path()).await;
    let response = reqwest::get(format!("{}/metrics", base_url(&open)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    open.shutdown().await.unwrap();
}

/// The real binary given only `MONITORING_TOKEN_FILE` (a file ending in a newline, as `echo`
/// writes it): the file's token, without the newline, guards the monitoring routes, and neither
/// the token nor the "open" warning reaches the log.
#[tokio::test]
async fn a_server_given_only_the_token_file_requires_its_token() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let logs = tempfile::tempdir().unwrap();
    let token = "from-a-file-9c1e";
    let secret = tempfile::tempdir().unwrap();
    let token_file = secret.path().join("MONITORING_TOKEN");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let mut server = ServeProcess::start(&[
        ("REGISTRY_DIR", registry.path().to_str().unwrap()),
        ("LOG_DIR", logs.path().to_str().unwrap()),
        ("MONITORING_TOKEN_FILE", token_file.to_str().unwrap()),
        ("LOG_LEVEL", "trace"),
        ("MODELHOST_SHUTDOWN_DELAY_MS", "0"),
    ]);
    let base = server.wait_for_address(Duration::from_secs(20));
    let client = reqwest::Client::new();
    // The drift report needs a serving model.
    assert!(ready_within(&client, &base, Duration::from_secs(20)).await);
    for path in ["/metrics", "/monitoring/drift"] {
        let url = format!("{base}{path}");
        let none = client.get(&url).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{path}");
        let wrong = client.get(&url).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        let ok = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK, "{path}");
    }
    server.terminate();
    assert!(server.wait(Duration::from_secs(20)).success());
    let stderr = server.stderr();
    assert!(!stderr.contains(token), "the token was logged:\n{stderr}");
    assert!(!stderr.contains("endpoints will be open"), "{stderr}");
}

#[tokio::test]
async fn the_bearer_scheme_name_is_case_insensitive() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let token = "s3cret-Token-value";
    let server = start_server_with(registry.path(), &[("monitoring_token", token)]).await;
    let url = format!("{}/metrics", base_url(&server));
    let client = reqwest::Client::new();
    let status = |authorization: String| {
        let request = client.get(&url).header("authorization", authorization);
        async move { request.send().await.unwrap().status() }
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(
            status(format!("{scheme} {token}")).await,
            StatusCode::OK,
            "{scheme}"
        );
    }
    for wrong in [
        format!("bearer{token}"),
        format!("bearers {token}"),
        format!("basic {token}"),
        "bearer".to_string(),
    ] {
        assert_eq!(
            status(wrong.clone()).await,
            StatusCode::UNAUTHORIZED,
            "{wrong}"
        );
    }
    server.shutdown().await.unwrap();
}

/// Two customers whose figures against [`churn_info`]'s training statistics were worked out by
/// hand: tenure mean 80 ⇒ z = |80 − 30| / 17 = 2.941 (alert); complaints mean 1.5 ⇒ z = 0.3 / 1.1
/// = 0.273; minutes mean 35 ⇒ z = 0; plan 50/50 vs 72/28 ⇒ PSI = −0.22·ln(0.5/0.72) +
/// 0.22·ln(0.5/0.28) = 0.2078 (alert); region AF/EU 50/50, AS and NA absent (floored at 1e-4)
/// ⇒ PSI = 3.7501 (alert).
fn drifted_customers() -> [Value; 2] {
    [
        json!({"tenure_months": 70, "num_complaints": 1, "avg_session_minutes": 30.0,
               "plan_type": "basic", "region": "AF"}),
        json!({"tenure_months": 90, "num_complaints": 2, "avg_session_minutes": 40.0,
               "plan_type": "premium", "region": "EU"}),
    ]
}

fn check_hand_computed(report: &Value) {
    let close = |value: &Value, expected: f64| {
        let x = value.as_f64().unwrap();
        assert!((x - expected).abs() < 1e-4, "{x} vs {expected}");
    };
    close(&report["numeric"]["tenure_months"]["z"], 2.941_176);
    close(&report["numeric"]["tenure_months"]["mean_recent"], 80.0);
    close(&report["numeric"]["num_complaints"]["z"], 0.272_727);
    close(&report["numeric"]["avg_session_minutes"]["z"], 0.0);
    close(&report["categorical"]["plan_type"]["psi"], 0.207_782);
    close(&report["categorical"]["region"]["psi"], 3.750_101);
    assert_eq!(report["numeric"]["tenure_months"]["alert"], true);
    assert_eq!(report["numeric"]["num_complaints"]["alert"], false);
    assert_eq!(report["categorical"]["plan_type"]["alert"], true);
    let mut alerts: Vec<&str> = report["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    alerts.sort();
    assert_eq!(alerts, ["plan_type", "region", "tenure_months"]);
    assert_eq!(report["drift"], true);
    assert_eq!(report["n_predictions"], 2);
}

#[tokio::test]
async fn live_drift_matches_a_hand_computed_example() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let logs = tempfile::tempdir().unwrap();
    let server = start_server_with(
        registry.path(),
        &[
            ("drift_window", "2"),
            ("log_dir", logs.path().to_str().unwrap()),
        ],
    )
    .await;
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let base = base_url(&server);
    let client = reqwest::Client::new();
    // An older prediction the window of 2 forgets.
    for body in std::iter::once(example_customer()).chain(drifted_customers()) {
        let response = client
            .post(format!("{base}/predict"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let report: Value = client
        .get(format!("{base}/monitoring/drift"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    check_hand_computed(&report);
    assert_eq!(report["window"], 2);
    assert_eq!(report["model_version"], "v1");
    // Thresholds can be raised per request.
    let relaxed: Value = client
        .get(format!(
            "{base}/monitoring/drift?z_threshold=3&psi_threshold=5"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(relaxed["drift"], false);
    let bad = client
        .get(format!("{base}/monitoring/drift?z_threshold=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    server.shutdown().await.unwrap();

    // The offline command over the log the server wrote gives the same figures.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_modelhost"))
        .args(["drift", "--json", "--window", "2", "--log"])
        .arg(logs.path())
        .arg("--registry-dir")
        .arg(registry.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "drift found ⇒ exit 3");
    let offline: Value = serde_json::from_slice(&output.stdout).unwrap();
    check_hand_computed(&offline);

    // No drift ⇒ exit 0; the human report names each feature.
    let calm = std::process::Command::new(env!("CARGO_BIN_EXE_modelhost"))
        .args([
            "drift",
            "--window",
            "2",
            "--z-threshold",
            "10",
            "--psi-threshold",
            "10",
        ])
        .arg("--log")
        .arg(logs.path().join("predictions.log"))
        .arg("--model")
        .arg(live_path(registry.path()))
        .output()
        .unwrap();
    assert_eq!(calm.status.code(), Some(0));
    let text = String::from_utf8(calm.stdout).unwrap();
    assert!(
        text.contains("tenure_months") && text.contains("no drift"),
        "{text}"
    );
}

#[test]
fn offline_drift_merges_replica_logs_by_time_and_refuses_missing_logs() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let logs = tempfile::tempdir().unwrap();
    let line = |ts: u64, tenure: u32| {
        format!(
            r#"{{"request_id":"r","model_version":"v1","prediction":0,"probability":0.1,"latency_ms":0.1,"features":{{"tenure_months":{tenure},"num_complaints":1,"avg_session_minutes":35.0,"plan_type":"basic","region":"NA"}},"ts":{ts}}}"#
        )
    };
    for (pod, lines) in [
        ("churn-api-a", vec![line(1, 0), line(3, 0), line(5, 30)]),
        ("churn-api-b", vec![line(2, 0), line(4, 30), line(6, 30)]),
    ] {
        std::fs::create_dir_all(logs.path().join(pod)).unwrap();
        std::fs::write(
            logs.path().join(pod).join("predictions.log"),
            lines.join("\n") + "\n",
        )
        .unwrap();
    }
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_modelhost"))
            .arg("drift")
            .args(args)
            .arg("--registry-dir")
            .arg(registry.path())
            .output()
            .unwrap()
    };
    // The last 3 by time are ts 4, 5, 6: all tenure 30 ⇒ z = 0 whichever file they came from.
    let output = run(&[
        "--json",
        "--window",
        "3",
        "--log",
        logs.path().to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["log_files"].as_array().unwrap().len(), 2);
    assert_eq!(report["numeric"]["tenure_months"]["mean_recent"], 30.0);
    assert_eq!(report["n_predictions"], 3);

    let missing = run(&["--log", "/nonexistent/predictions.log"]);
    assert_eq!(missing.status.code(), Some(65));
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/predictions.log"), "{stderr}");
}

#[tokio::test]
async fn request_ids_are_echoed_and_the_body_id_wins() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server(registry.path()).await;
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let base = base_url(&server);
    let client = reqwest::Client::new();

    let health = client
        .get(format!("{base}/health"))
        .header("x-request-id", "trace-abc")
        .send()
        .await
        .unwrap();
    assert_eq!(health.headers()["x-request-id"], "trace-abc");

    let generated = client.get(format!("{base}/health")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    // The body's request_id is the prediction's id; the header follows it.
    let response = client
        .post(format!("{base}/predict"))
        .header("x-request-id", "from-header")
        .json(&example_customer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-001");
    let mut body = example_customer();
    body.as_object_mut().unwrap().remove("request_id");
    let response = client
        .post(format!("{base}/predict"))
        .header("x-request-id", "from-header")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "from-header");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["request_id"], "from-header");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_flight_requests_flushes_the_log_and_exits_zero() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let logs = tempfile::tempdir().unwrap();
    let token = "never-log-this-7f3a";
    let mut server = ServeProcess::start(&[
        ("REGISTRY_DIR", registry.path().to_str().unwrap()),
        ("LOG_DIR", logs.path().to_str().unwrap()),
        ("MONITORING_TOKEN", token),
        ("LOG_LEVEL", "trace"),
        ("MODELHOST_SHUTDOWN_DELAY_MS", "500"),
    ]);
    let base = server.wait_for_address(Duration::from_secs(20));
    let client = reqwest::Client::new();
    assert!(ready_within(&client, &base, Duration::from_secs(20)).await);
    // Monitoring requests with a wrong and the right token: neither may put it in a log.
    for auth in [format!("Bearer {token}"), "Bearer wrong".to_string()] {
        let _ = client
            .get(format!("{base}/metrics"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
    }

    // Several clients keep posting until the server stops answering.
    let url = format!("{base}/predict");
    let clients: Vec<_> = (0..6)
        .map(|t| {
            let client = reqwest::Client::new();
            let url = url.clone();
            tokio::spawn(async move {
                let mut ok = Vec::new();
                for i in 0.. {
                    let id = format!("drain-{t}-{i}");
                    let mut body = customer(i);
                    body["request_id"] = json!(id);
                    match client.post(&url).json(&body).send().await {
                        Ok(response) => {
                            assert_eq!(response.status(), StatusCode::OK, "{id}");
                            let answer: Value = response.json().await.unwrap();
                            assert_eq!(answer["request_id"], json!(id));
                            ok.push(id);
                        }
                        // Refused once the listener closed (or the connection went with it).
                        Err(_) => break,
                    }
                }
                ok
            })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(20), || async {
            std::fs::read_to_string(logs.path().join("predictions.log"))
                .is_ok_and(|t| t.lines().count() >= 200)
        })
        .await,
        "traffic is flowing"
    );
    server.terminate();
    // Not ready first, while the listener still answers.
    let ready = format!("{base}/ready");
    assert!(
        eventually(Duration::from_secs(5), || async {
            matches!(client.get(&ready).send().await,
                     Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE)
        })
        .await,
        "/ready reports 503 during the shutdown delay"
    );
    let status = server.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "exit status");
    let mut answered = HashSet::new();
    for task in clients {
        answered.extend(task.await.unwrap());
    }
    let logged = request_ids(&log_lines(logs.path()));
    assert!(answered.len() >= 200);
    assert_eq!(logged, answered, "every answered prediction is in the log");

    let stderr = server.stderr();
    assert!(stderr.contains("shutdown signal received"), "{stderr}");
    assert!(!stderr.contains(token), "the token reached the log");
}

#[tokio::test]
async fn monitoring_answers_are_never_cached() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let token = "cache-test-token";
    let server = start_server_with(registry.path(), &[("monitoring_token", token)]).await;
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let base = base_url(&server);
    let client = reqwest::Client::new();
    for path in ["/metrics", "/monitoring/drift"] {
        let url = format!("{base}{path}");
        let ok = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK, "{path}");
        assert_eq!(ok.headers()["cache-control"], "no-store", "{path}");
        let refused = client.get(&url).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(refused.headers()["cache-control"], "no-store", "{path}");
    }
    // Answers that are not monitoring keep their caching to the client.
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert!(health.headers().get("cache-control").is_none());
    server.shutdown().await.unwrap();
}
