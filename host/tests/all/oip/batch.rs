//! `POST /predict` with `{"instances": [...]}`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{answered, customers, lab_answers, post_json, serving};

#[tokio::test]
async fn a_batch_answers_each_row_like_a_single_request() {
    let (_registry, _server, url) = serving(&[]).await;
    let rows = customers();
    let lab = lab_answers(&url, &rows).await;
    let before = answered(&url).await;

    let mut instances = rows.clone();
    instances[1]["request_id"] = json!("cust-42");
    let response = reqwest::Client::new()
        .post(format!("{url}/predict"))
        .json(&json!({"request_id": "batch-7", "instances": instances}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "batch-7");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), rows.len());
    for (i, (got, single)) in predictions.iter().zip(&lab).enumerate() {
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        let lab_keys: Vec<&String> = single.as_object().unwrap().keys().collect();
        assert_eq!(keys, lab_keys, "the lab's fields in the lab's order");
        for field in ["model_version", "prediction", "probability", "features"] {
            assert_eq!(got[field], single[field], "row {i} {field}");
        }
    }
    assert_eq!(predictions[0]["request_id"], "batch-7/0");
    assert_eq!(predictions[1]["request_id"], "cust-42");
    assert_eq!(predictions[2]["request_id"], "batch-7/2");
    assert_eq!(predictions[2]["features"]["region"], "MARS");
    assert_eq!(answered(&url).await, before + rows.len() as u64);

    // Without a batch id, rows are named after the request's id.
    let response = reqwest::Client::new()
        .post(format!("{url}/predict"))
        .header("x-request-id", "from-header")
        .json(&json!({"instances": &rows[..1]}))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["predictions"][0]["request_id"], "from-header/0");
}

#[tokio::test]
async fn a_batch_is_one_model_call() {
    let (_registry, server, url) = serving(&[]).await;
    let calls = || {
        let text = server.state.metrics().encode();
        text.lines()
            .find(|l| l.starts_with("modelhost_wasm_call_duration_seconds_count"))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let before = calls();
    let rows: Vec<Value> = customers().into_iter().cycle().take(250).collect();
    let (status, answer) = post_json(&format!("{url}/predict"), &json!({"instances": rows})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 250);
    assert_eq!(calls(), before + 1, "250 rows, one wasm call");
}

#[tokio::test]
async fn validation_errors_name_the_row_and_the_field() {
    let (_registry, _server, url) = serving(&[]).await;
    let mut rows = customers();
    rows[1]["tenure_months"] = json!(201);
    rows[3].as_object_mut().unwrap().remove("region");
    rows[4] = json!("not a customer");
    let before = super::answered(&url).await;
    let (status, answer) = post_json(&format!("{url}/predict"), &json!({"instances": rows})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer["error"],
        "row 1: field `tenure_months` must be between 0 and 200, got 201; \
         row 3: field `region` is required; row 4: must be a JSON object, got a string"
    );
    assert_eq!(
        answer["detail"][0],
        json!({
            "loc": ["body", "instances", 1, "tenure_months"], "row": 1, "field": "tenure_months",
            "type": "range", "msg": "field `tenure_months` must be between 0 and 200, got 201"
        })
    );
    assert_eq!(
        answer["detail"][1]["loc"],
        json!(["body", "instances", 3, "region"])
    );
    assert_eq!(answer["detail"][2]["loc"], json!(["body", "instances", 4]));
    assert_eq!(answer["detail"][2]["field"], Value::Null);
    assert_eq!(
        super::answered(&url).await,
        before,
        "nothing of a failed batch is answered"
    );

    let mut rows = customers();
    rows[2]["request_id"] = json!(7);
    let (status, answer) = post_json(&format!("{url}/predict"), &json!({"instances": rows})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer["detail"][0]["loc"],
        json!(["body", "instances", 2, "request_id"])
    );

    for (body, message) in [
        (
            json!({"instances": {"tenure_months": 6}}),
            "field `instances` must be an array of objects, got an object",
        ),
        (
            json!({"instances": []}),
            "field `instances` must hold at least one row",
        ),
    ] {
        let (status, answer) = post_json(&format!("{url}/predict"), &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"], message);
        assert_eq!(answer["detail"][0]["loc"], json!(["body", "instances"]));
    }
}

#[tokio::test]
async fn a_batch_over_max_batch_rows_is_refused_with_the_limit() {
    let (_registry, _server, url) = serving(&[("max_batch_rows", "4")]).await;
    let rows = customers();
    assert_eq!(rows.len(), 5);
    let (status, answer) = post_json(&format!("{url}/predict"), &json!({"instances": rows})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer,
        json!({"error": "field `instances` holds 5 rows; at most 4 are allowed per request (max_batch_rows)"})
    );
    let (status, answer) =
        post_json(&format!("{url}/predict"), &json!({"instances": &rows[..4]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = post_json(&format!("{url}/predict"), &rows[0]).await;
    assert_eq!(status, StatusCode::OK, "single requests are unchanged");
    assert_eq!(answer["prediction"], json!(1));
}
