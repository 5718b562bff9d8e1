//! Every endpoint over a real socket, with and without a model.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    base_url, churn_artifact, eventually, example_customer, live_path, serving_version,
    start_server, start_server_with, temp_registry,
};
use crate::oip::{get, post_json};

/// Starts a server on a registry holding a churn model and waits until it serves.
async fn serving() -> (tempfile::TempDir, modelhost::serve::Server, String) {
    let registry = temp_registry(Some(&churn_artifact("v-http", 0.0)));
    let server = start_server(registry.path()).await;
    let url = base_url(&server);
    let ready = eventually(Duration::from_secs(10), || async {
        get(&format!("{url}/ready")).await.0 == StatusCode::OK
    })
    .await;
    assert!(ready, "server never became ready");
    (registry, server, url)
}

#[tokio::test]
async fn predict_answers_the_lab_format_in_the_lab_order() {
    let (_registry, server, url) = serving().await;
    let response = reqwest::Client::new()
        .post(format!("{url}/predict"))
        .json(&example_customer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&text)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [
            "request_id",
            "model_version",
            "prediction",
            "probability",
            "latency_ms",
            "features",
            "ts"
        ]
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["request_id"], "req-001");
    assert_eq!(body["model_version"], "v-http");
    let golden = server.active.current().unwrap().info().golden[0].probability;
    let probability = body["probability"].as_f64().unwrap();
    assert!(
        (probability - golden).abs() < 5e-7,
        "{probability} vs golden {golden}"
    );
    assert_eq!(body["prediction"], u8::from(golden >= 0.5));
    assert!(body["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(body["ts"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(
        body["features"].to_string(),
        r#"{"tenure_months":6,"num_complaints":3,"avg_session_minutes":12.5,"plan_type":"basic","region":"AF"}"#
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn categories_are_normalised_and_unknown_ones_accepted() {
    let (_registry, server, url) = serving().await;
    let mut customer = example_customer();
    customer["plan_type"] = json!("  PREMIUM ");
    customer["region"] = json!("oc");
    customer.as_object_mut().unwrap().remove("request_id");
    let (status, body) = post_json(&format!("{url}/predict"), &customer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["features"]["plan_type"], "premium");
    assert_eq!(body["features"]["region"], "OC");
    let generated = body["request_id"].as_str().unwrap();
    assert_eq!(generated.len(), 36, "a generated uuid: {generated}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn validation_errors_are_422_naming_the_field() {
    let (_registry, server, url) = serving().await;
    let cases = [
        ("tenure_months", json!(201), "range", "between 0 and 200"),
        ("tenure_months", json!(-1), "range", "between 0 and 200"),
        ("num_complaints", json!(2.5), "type", "must be an integer"),
        (
            "avg_session_minutes",
            json!("long"),
            "type",
            "must be a number",
        ),
        (
            "avg_session_minutes",
            json!(500.5),
            "range",
            "between 0 and 500",
        ),
        ("plan_type", json!(7), "type", "must be a string"),
        ("region", Value::Null, "missing", "is required"),
    ];
    for (field, value, kind, words) in cases {
        let mut customer = example_customer();
        customer[field] = value.clone();
        let (status, body) = post_json(&format!("{url}/predict"), &customer).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}: {body}"
        );
        let detail = &body["detail"][0];
        assert_eq!(detail["field"], field, "{body}");
        assert_eq!(detail["loc"], json!(["body", field]));
        assert_eq!(detail["type"], kind, "{body}");
        assert!(body["error"].as_str().unwrap().contains(words), "{body}");
    }
    let mut customer = example_customer();
    customer.as_object_mut().unwrap().remove("tenure_months");
    let (status, body) = post_json(&format!("{url}/predict"), &customer).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("`tenure_months` is required")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let (_registry, server, url) = serving().await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{url}/predict"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON"),
        "{body}"
    );

    let response = client
        .post(format!("{url}/predict"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (status, body) = post_json(&format!("{url}/predict"), &json!([1, 2])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("JSON object"));

    let (status, body) = get(&format!("{url}/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("/nope"));

    let (status, body) = get(&format!("{url}/predict")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].as_str().unwrap().contains("GET"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn probes_and_model_while_serving() {
    let (registry, server, url) = serving().await;
    let (status, body) = get(&format!("{url}/health")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = get(&format!("{url}/ready")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["model"].as_str(), body["version"].as_str()),
        (Some("churn"), Some("v-http"))
    );
    let (status, _) = get(&format!("{url}/startup")).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = get(&format!("{url}/model")).await;
    assert_eq!(status, StatusCode::OK);
    let bytes = std::fs::read(registry.path().join("churn/model.wasm")).unwrap();
    assert_eq!(body["sha256"], modelhost::model::sha256_hex(&bytes));
    assert_eq!(body["version"], "v-http");
    assert_eq!(body["name"], "churn");
    assert_eq!(body["schema"].as_array().unwrap().len(), 5);
    assert_eq!(body["schema"][3]["vocabulary"], json!(["basic", "premium"]));
    assert_eq!(body["metrics"]["f1"], 0.72);
    assert!(body["loaded_at"].as_str().unwrap().ends_with('Z'));
    assert!(body["path"].as_str().unwrap().ends_with("churn/model.wasm"));
    assert_eq!(body["last_error"], Value::Null);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_model_probes_wait_and_predict_is_503() {
    let registry = temp_registry(None);
    let server = start_server(registry.path()).await;
    let url = base_url(&server);
    let (status, _) = get(&format!("{url}/health")).await;
    assert_eq!(status, StatusCode::OK, "health never depends on the model");
    let (status, body) = get(&format!("{url}/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["reason"].as_str().unwrap().contains("model.wasm"),
        "{body}"
    );
    let (status, _) = get(&format!("{url}/startup")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = post_json(&format!("{url}/predict"), &example_customer()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no model is serving"),
        "{body}"
    );
    let (status, body) = get(&format!("{url}/model")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["name"], "churn");

    // The training Job writes the first model later: startup and ready turn 200.
    std::fs::write(
        registry.path().join("churn/model.wasm"),
        churn_artifact("v-late", 0.0),
    )
    .unwrap();
    let started = eventually(Duration::from_secs(10), || async {
        get(&format!("{url}/startup")).await.0 == StatusCode::OK
    })
    .await;
    assert!(started, "startup never turned 200 after the model arrived");
    let (status, body) = post_json(&format!("{url}/predict"), &example_customer()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["model_version"], "v-late");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn startup_waits_for_the_registry_directory() {
    let parent = tempfile::tempdir().unwrap();
    let registry = parent.path().join("not-yet");
    let server = start_server(&registry).await;
    let url = base_url(&server);
    let (status, body) = get(&format!("{url}/startup")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["reason"].as_str().unwrap().contains("does not exist"),
        "{body}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_artifact_is_reported_and_not_served() {
    let registry = temp_registry(Some(b"garbage, not wasm"));
    let server = start_server(registry.path()).await;
    let url = base_url(&server);
    let refused = eventually(Duration::from_secs(10), || async {
        let (_, body) = get(&format!("{url}/model")).await;
        body["last_error"].as_str().is_some()
    })
    .await;
    assert!(refused);
    let (status, body) = get(&format!("{url}/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("wasm magic number"),
        "{body}"
    );
    server.shutdown().await.unwrap();
}

/// Status, the headers that matter and the exact body bytes of a GET or POST.
async fn raw(request: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// A JSON string literal, as the server writes it.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

#[tokio::test]
async fn probe_model_and_error_bodies_are_byte_for_byte_the_documented_shapes() {
    let client = reqwest::Client::new();

    // Serving: the probes and /model, fields in their documented order.
    let registry = temp_registry(Some(&churn_artifact("v-bytes", 0.0)));
    let server = start_server_with(registry.path(), &[("monitoring_token", "sekrit")]).await;
    let url = base_url(&server);
    let ready = eventually(Duration::from_secs(10), || async {
        get(&format!("{url}/ready")).await.0 == StatusCode::OK
    })
    .await;
    assert!(ready, "server never became ready");
    let version = serving_version(&server).unwrap();
    let (status, _, body) = raw(client.get(format!("{url}/health"))).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"ok"}"#)
    );
    let (status, _, body) = raw(client.get(format!("{url}/ready"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        format!(r#"{{"status":"ready","model":"churn","version":"{version}"}}"#)
    );
    let (status, _, body) = raw(client.get(format!("{url}/startup"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        format!(r#"{{"status":"started","version":"{version}"}}"#)
    );
    let (status, _, body) = raw(client.get(format!("{url}/model"))).await;
    assert_eq!(status, StatusCode::OK);
    let model: serde_json::Map<String, Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(
        model.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "name",
            "version",
            "sha256",
            "loaded_at",
            "path",
            "size_bytes",
            "task",
            "threshold",
            "schema",
            "outputs",
            "metrics",
            "training",
            "last_error",
            "last_error_at",
            "swaps",
            "rejections",
        ]
    );
    assert!(
        body.contains(r#","last_error":null,"last_error_at":null,"swaps":1,"rejections":0}"#),
        "{body}"
    );

    // A wrong token: 401 with the challenge, never cached.
    let (status, headers, body) =
        raw(client.get(format!("{url}/metrics")).bearer_auth("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        body,
        r#"{"error":"missing or wrong bearer token for monitoring endpoints"}"#
    );

    // A batch with bad rows: 422 naming each row, `field` null where the row itself is at fault.
    let batch = json!({"instances": [
        {"tenure_months": 999, "num_complaints": 1, "avg_session_minutes": 1,
         "plan_type": "basic", "region": "EU"},
        5,
        {"request_id": ""},
    ]});
    let (status, _, body) = raw(client.post(format!("{url}/predict")).json(&batch)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        concat!(
            r#"{"error":"row 0: field `tenure_months` must be between 0 and 200, got 999; row 1: must be a JSON object, got a number; row 2: field `request_id` must be a string of 1-128 characters","#,
            r#""detail":[{"loc":["body","instances",0,"tenure_months"],"row":0,"field":"tenure_months","type":"range","msg":"field `tenure_months` must be between 0 and 200, got 999"},"#,
            r#"{"loc":["body","instances",1],"row":1,"field":null,"type":"type","msg":"must be a JSON object, got a number"},"#,
            r#"{"loc":["body","instances",2,"request_id"],"row":2,"field":"request_id","type":"type","msg":"field `request_id` must be a string of 1-128 characters"}]}"#,
        )
    );

    // Nothing serving: every 503 says why, in its route's shape.
    let empty = temp_registry(None);
    let server = start_server(empty.path()).await;
    let url = base_url(&server);
    let (status, _, body) = raw(client.get(format!("{url}/ready"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let reason = get(&format!("{url}/ready")).await.1["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.starts_with("no model is serving yet: "), "{reason}");
    assert_eq!(
        body,
        format!(r#"{{"status":"not ready","reason":{}}}"#, quoted(&reason))
    );
    let (status, _, body) = raw(client.get(format!("{url}/startup"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        format!(r#"{{"status":"starting","reason":{}}}"#, quoted(&reason))
    );
    let (status, _, body) = raw(client.get(format!("{url}/model"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        format!(
            r#"{{"error":{},"name":"churn","path":{},"last_error":null,"last_error_at":null,"rejections":0}}"#,
            quoted(&reason),
            quoted(&live_path(empty.path()).display().to_string()),
        )
    );
    let (status, headers, body) = raw(client
        .post(format!("{url}/predict"))
        .json(&example_customer()))
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(body, format!(r#"{{"error":{}}}"#, quoted(&reason)));

    // No registry at all: /startup names the directory.
    let missing = empty.path().join("missing");
    let server = start_server(&missing).await;
    let url = base_url(&server);
    let (status, _, body) = raw(client.get(format!("{url}/startup"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        format!(
            r#"{{"status":"starting","reason":{}}}"#,
            quoted(&format!(
                "registry directory {} does not exist",
                missing.display()
            ))
        )
    );
}
