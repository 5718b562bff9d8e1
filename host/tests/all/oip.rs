//! The standard protocols over real sockets: Open Inference Protocol v2 routes and their
//! errors, batches on the lab's `/predict`, and the OpenAPI document.

mod batch;
mod bounds;
pub mod openapi;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    base_url, churn_artifact, eventually, start_server, start_server_with, temp_registry,
};

const VERSION: &str = "v-oip";

pub async fn get(url: &str) -> (StatusCode, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

pub async fn post_json(url: &str, body: &Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

/// A server on a registry holding a churn model (version [`VERSION`]), once it serves.
pub async fn serving(
    settings: &[(&'static str, &str)],
) -> (tempfile::TempDir, modelhost::serve::Server, String) {
    let registry = temp_registry(Some(&churn_artifact(VERSION, 0.0)));
    let server = start_server_with(registry.path(), settings).await;
    let url = base_url(&server);
    let ready = eventually(Duration::from_secs(10), || async {
        get(&format!("{url}/ready")).await.0 == StatusCode::OK
    })
    .await;
    assert!(ready, "server never became ready");
    (registry, server, url)
}

/// Customers covering both plans, every region, an unknown region and untrimmed case.
pub fn customers() -> Vec<Value> {
    vec![
        json!({"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"}),
        json!({"tenure_months": 48, "num_complaints": 0, "avg_session_minutes": 40.0, "plan_type": "premium", "region": "EU"}),
        json!({"tenure_months": 12, "num_complaints": 1, "avg_session_minutes": 30.25, "plan_type": " Basic ", "region": "mars"}),
        json!({"tenure_months": 0, "num_complaints": 50, "avg_session_minutes": 500.0, "plan_type": "premium", "region": "na"}),
        json!({"tenure_months": 200, "num_complaints": 2, "avg_session_minutes": 0.0, "plan_type": "basic", "region": "AS"}),
    ]
}

/// The v2 inputs for `rows`, one flat tensor per feature.
pub fn infer_inputs(rows: &[Value]) -> Value {
    let column = |name: &str| -> Vec<Value> { rows.iter().map(|r| r[name].clone()).collect() };
    let n = rows.len();
    json!([
        {"name": "tenure_months", "shape": [n], "datatype": "INT64", "data": column("tenure_months")},
        {"name": "num_complaints", "shape": [n], "datatype": "INT64", "data": column("num_complaints")},
        {"name": "avg_session_minutes", "shape": [n], "datatype": "FP64", "data": column("avg_session_minutes")},
        {"name": "plan_type", "shape": [n], "datatype": "BYTES", "data": column("plan_type")},
        {"name": "region", "shape": [n], "datatype": "BYTES", "data": column("region")},
    ])
}

/// `/predict`'s answer for each row, one request each.
async fn lab_answers(url: &str, rows: &[Value]) -> Vec<Value> {
    let mut answers = Vec::new();
    for row in rows {
        let (status, answer) = post_json(&format!("{url}/predict"), row).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answers.push(answer);
    }
    answers
}

/// Probabilities and predictions of a v2 answer equal `/predict`'s (to its 6 decimals).
fn assert_same_as_lab(outputs: &Value, lab: &[Value]) {
    let output = |name: &str| -> &Value {
        outputs
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no output {name}: {outputs}"))
    };
    let probability = output("probability");
    let prediction = output("prediction");
    assert_eq!(probability["datatype"], "FP64");
    assert_eq!(prediction["datatype"], "INT64");
    assert_eq!(probability["shape"], json!([lab.len()]));
    for (i, answer) in lab.iter().enumerate() {
        let p = probability["data"][i].as_f64().unwrap();
        let expected = answer["probability"].as_f64().unwrap();
        assert!(
            (p - expected).abs() <= 5e-7,
            "row {i}: {p} against {expected}"
        );
        assert_eq!(prediction["data"][i], answer["prediction"], "row {i}");
    }
}

/// Predictions the live drift window has seen, which every answered row feeds.
async fn answered(url: &str) -> u64 {
    let (status, report) = get(&format!("{url}/monitoring/drift")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report["n_predictions"].as_u64().unwrap()
}

#[tokio::test]
async fn server_metadata_and_health() {
    let (_registry, server, url) = serving(&[]).await;
    let (status, metadata) = get(&format!("{url}/v2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metadata["name"], "modelhost");
    assert_eq!(metadata["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(metadata["extensions"], json!(["binary_tensor_data"]));
    assert_eq!(
        get(&format!("{url}/v2/health/live")).await,
        (StatusCode::OK, json!({"live": true}))
    );
    assert_eq!(
        get(&format!("{url}/v2/health/ready")).await,
        (StatusCode::OK, json!({"ready": true}))
    );

    server.state.start_draining();
    let (status, body) = get(&format!("{url}/v2/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, json!({"ready": false, "reason": "shutting down"}));
    assert_eq!(
        get(&format!("{url}/v2/health/live")).await.0,
        StatusCode::OK,
        "live while draining"
    );
}

#[tokio::test]
async fn without_a_model_the_server_is_live_but_nothing_is_ready() {
    let registry = temp_registry(None);
    let server = start_server(registry.path()).await;
    let url = base_url(&server);
    assert_eq!(
        get(&format!("{url}/v2/health/live")).await.0,
        StatusCode::OK
    );
    let (status, body) = get(&format!("{url}/v2/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    assert!(
        body["reason"].as_str().unwrap().contains("model.wasm"),
        "{body}"
    );
    let (status, body) = get(&format!("{url}/v2/models/churn/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    assert_eq!(body["name"], "churn");
    let (status, body) = get(&format!("{url}/v2/models/churn")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"].as_str().unwrap().contains("no model"),
        "{body}"
    );
    let (status, body) = post_json(
        &format!("{url}/v2/models/churn/infer"),
        &json!({"inputs": infer_inputs(&customers())}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        get(&format!("{url}/v2/models/fraud/ready")).await.0,
        StatusCode::NOT_FOUND,
        "an unknown model is unknown whether or not one serves"
    );
}

#[tokio::test]
async fn model_metadata_describes_the_schema_as_tensors() {
    let (_registry, _server, url) = serving(&[]).await;
    let expected = json!({
        "name": "churn",
        "versions": [VERSION],
        "platform": "modelhost-wasm",
        "inputs": [
            {"name": "tenure_months", "datatype": "INT64", "shape": [-1]},
            {"name": "num_complaints", "datatype": "INT64", "shape": [-1]},
            {"name": "avg_session_minutes", "datatype": "FP64", "shape": [-1]},
            {"name": "plan_type", "datatype": "BYTES", "shape": [-1]},
            {"name": "region", "datatype": "BYTES", "shape": [-1]}
        ],
        "outputs": [
            {"name": "probability", "datatype": "FP64", "shape": [-1]},
            {"name": "prediction", "datatype": "INT64", "shape": [-1]}
        ]
    });
    assert_eq!(
        get(&format!("{url}/v2/models/churn")).await,
        (StatusCode::OK, expected.clone())
    );
    assert_eq!(
        get(&format!("{url}/v2/models/churn/versions/{VERSION}")).await,
        (StatusCode::OK, expected)
    );

    let (status, body) = get(&format!("{url}/v2/models/fraud")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "unknown model `fraud`: this server serves `churn`"})
    );
    let (status, body) = get(&format!("{url}/v2/models/churn/versions/v-old")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "model `churn` has no version `v-old`; version `v-oip` is serving"})
    );
}

#[tokio::test]
async fn model_readiness_by_name_and_version() {
    let (_registry, _server, url) = serving(&[]).await;
    assert_eq!(
        get(&format!("{url}/v2/models/churn/ready")).await,
        (
            StatusCode::OK,
            json!({"name": "churn", "version": VERSION, "ready": true})
        )
    );
    assert_eq!(
        get(&format!("{url}/v2/models/churn/versions/{VERSION}/ready"))
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = get(&format!("{url}/v2/models/churn/versions/v-old/ready")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().unwrap().contains("`v-old`"),
        "{body}"
    );
    let (status, body) = get(&format!("{url}/v2/models/fraud/ready")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().unwrap().contains("`fraud`"),
        "{body}"
    );
}

#[tokio::test]
async fn infer_answers_the_same_numbers_as_predict_and_records_every_row() {
    let (_registry, _server, url) = serving(&[]).await;
    let rows = customers();
    let lab = lab_answers(&url, &rows).await;
    let before = answered(&url).await;

    let (status, answer) = post_json(
        &format!("{url}/v2/models/churn/infer"),
        &json!({"id": "batch-1", "inputs": infer_inputs(&rows)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["model_name"], "churn");
    assert_eq!(answer["model_version"], VERSION);
    assert_eq!(answer["id"], "batch-1");
    assert_same_as_lab(&answer["outputs"], &lab);
    assert_eq!(
        answered(&url).await,
        before + rows.len() as u64,
        "one recorded answer per row"
    );

    // Nested data, `[n, 1]` shapes, the version route, outputs asked for by name and in another
    // order, and no id (none is echoed).
    let mut inputs = infer_inputs(&rows);
    for input in inputs.as_array_mut().unwrap() {
        let nested: Vec<Value> = input["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| json!([v]))
            .collect();
        input["data"] = json!(nested);
        input["shape"] = json!([rows.len(), 1]);
    }
    let (status, answer) = post_json(
        &format!("{url}/v2/models/churn/versions/{VERSION}/infer"),
        &json!({"inputs": inputs, "outputs": [{"name": "prediction"}, {"name": "probability"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.get("id").is_none(), "{answer}");
    assert_eq!(answer["outputs"][0]["name"], "prediction");
    assert_same_as_lab(&answer["outputs"], &lab);

    let (status, answer) = post_json(
        &format!("{url}/v2/models/churn/infer"),
        &json!({"inputs": infer_inputs(&rows), "outputs": [{"name": "probability"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outputs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn infer_logs_each_row_under_the_request_id() {
    let (registry, server, url) = serving(&[]).await;
    let (status, _) = post_json(
        &format!("{url}/v2/models/churn/infer"),
        &json!({"id": "logged-7", "inputs": infer_inputs(&customers()[..2])}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await.unwrap();
    let log = std::fs::read_to_string(registry.path().join("logs/predictions.log")).unwrap();
    let ids: Vec<String> = log
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["request_id"].to_string())
        .collect();
    assert_eq!(ids, ["\"logged-7/0\"", "\"logged-7/1\""]);
}

/// Triton's binary tensor extension: a JSON header, then each input's bytes.
#[tokio::test]
async fn infer_reads_and_writes_binary_tensors() {
    let (_registry, _server, url) = serving(&[]).await;
    let rows = customers();
    let lab = lab_answers(&url, &rows).await;
    let mut header_inputs = Vec::new();
    let mut tail = Vec::new();
    for (name, datatype) in [
        ("tenure_months", "INT64"),
        ("num_complaints", "INT64"),
        ("avg_session_minutes", "FP64"),
        ("plan_type", "BYTES"),
        ("region", "BYTES"),
    ] {
        let mut bytes = Vec::new();
        for row in &rows {
            match datatype {
                "INT64" => bytes.extend(row[name].as_i64().unwrap().to_le_bytes()),
                "FP64" => bytes.extend(row[name].as_f64().unwrap().to_le_bytes()),
                _ => {
                    let text = row[name].as_str().unwrap();
                    bytes.extend((text.len() as u32).to_le_bytes());
                    bytes.extend(text.as_bytes());
                }
            }
        }
        header_inputs.push(json!({
            "name": name, "shape": [rows.len()], "datatype": datatype,
            "parameters": {"binary_data_size": bytes.len()}
        }));
        tail.extend(bytes);
    }
    let header = serde_json::to_vec(&json!({
        "id": "bin", "inputs": header_inputs, "parameters": {"binary_data_output": true},
        "outputs": [{"name": "probability"}, {"name": "prediction", "parameters": {"binary_data": false}}]
    }))
    .unwrap();
    let mut body = header.clone();
    body.extend(&tail);
    let response = reqwest::Client::new()
        .post(format!("{url}/v2/models/churn/infer"))
        .header("Inference-Header-Content-Length", header.len())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let json_len: usize = response.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = response.bytes().await.unwrap();
    let (header, binary) = bytes.split_at(json_len);
    let header: Value = serde_json::from_slice(header).unwrap();
    let probability = &header["outputs"][0];
    assert_eq!(probability["name"], "probability");
    assert_eq!(
        probability["parameters"]["binary_data_size"],
        rows.len() * 8
    );
    assert!(probability.get("data").is_none(), "{header}");
    assert_eq!(binary.len(), rows.len() * 8);
    let probabilities: Vec<f64> = binary
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    // The JSON prediction output beside the binary probabilities.
    let mut outputs = header["outputs"].clone();
    outputs[0]["data"] = json!(probabilities);
    assert_same_as_lab(&outputs, &lab);

    // A header length past the end of the body is refused.
    let response = reqwest::Client::new()
        .post(format!("{url}/v2/models/churn/infer"))
        .header("Inference-Header-Content-Length", "100000")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Inference-Header-Content-Length is 100000"),
        "{body}"
    );
}

#[tokio::test]
async fn infer_errors_name_the_input_and_row() {
    let (_registry, _server, url) = serving(&[("max_batch_rows", "3")]).await;
    let rows = customers();
    let infer = format!("{url}/v2/models/churn/infer");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut inputs = infer_inputs(&rows[..2]);
        change(&mut inputs);
        json!({ "inputs": inputs })
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|inputs| {
                inputs.as_array_mut().unwrap().pop();
            }),
            "missing input `region`: the model's inputs are tenure_months (INT64)",
        ),
        (
            with(&|inputs| inputs[0]["name"] = json!("tenure")),
            "unknown input `tenure`",
        ),
        (
            with(&|inputs| inputs[3]["datatype"] = json!("INT64")),
            "input `plan_type` must have datatype BYTES, got INT64",
        ),
        (
            with(&|inputs| inputs[2]["datatype"] = json!("FP16")),
            "input `avg_session_minutes`: datatype FP16 is not supported",
        ),
        (
            with(&|inputs| inputs[0]["data"] = json!([6, 7.5])),
            "input `tenure_months` element 1: expected an integer for its datatype, got 7.5",
        ),
        (
            with(&|inputs| inputs[1]["shape"] = json!([3])),
            "input `num_complaints` has shape [3] but 2 elements",
        ),
        (
            with(&|inputs| inputs[1]["shape"] = json!([1, 2])),
            "input `num_complaints` has shape [1, 2]",
        ),
        (
            with(&|inputs| {
                inputs[4]["data"] = json!(["AF"]);
                inputs[4]["shape"] = json!([1]);
            }),
            "input `region` has 1 rows but input `tenure_months` has 2",
        ),
        (
            with(&|inputs| inputs[0]["data"] = json!([6, 201])),
            "row 1: field `tenure_months` must be between 0 and 200, got 201",
        ),
        (
            with(&|inputs| {
                inputs[2]
                    .as_object_mut()
                    .unwrap()
                    .remove("data")
                    .map(drop)
                    .unwrap()
            }),
            "input `avg_session_minutes` has neither `data` nor `binary_data_size`",
        ),
        (
            json!({"inputs": infer_inputs(&rows[..1]), "outputs": [{"name": "score"}]}),
            "unknown output `score`",
        ),
        (json!({"outputs": []}), "missing field `inputs`"),
    ];
    for (body, expected) in cases {
        let (status, answer) = post_json(&infer, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }

    let response = reqwest::Client::new()
        .post(&infer)
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
            .starts_with("invalid inference request"),
        "{body}"
    );

    let (status, answer) = post_json(&infer, &json!({"inputs": infer_inputs(&rows[..4])})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer["error"],
        "the request holds 4 rows; at most 3 are allowed per request (max_batch_rows)"
    );

    for path in ["fraud/infer", "churn/versions/v-old/infer"] {
        let (status, answer) = post_json(
            &format!("{url}/v2/models/{path}"),
            &json!({"inputs": infer_inputs(&rows[..1])}),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
        assert!(answer["error"].is_string());
    }
}
