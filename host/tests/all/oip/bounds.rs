//! One bound for the ids a caller gives its predictions: the lab's `request_id` and the v2 `id`,
//! checked over HTTP and declared alike in the OpenAPI document.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{customers, get, infer_inputs, post_json, serving};

/// The bound, in characters.
const MAX_ID_CHARS: usize = 128;

#[tokio::test]
async fn the_v2_id_is_bounded_like_request_id_and_named_in_the_error() {
    let (_registry, _server, url) = serving(&[]).await;
    let infer = format!("{url}/v2/models/churn/infer");
    let predict = format!("{url}/predict");
    let rows = &customers()[..1];
    let v2 = |id: &Value| json!({"id": id, "inputs": infer_inputs(rows)});
    let lab = |id: &Value| {
        let mut customer = rows[0].clone();
        customer["request_id"] = id.clone();
        customer
    };

    // The longest id, in characters that take two bytes each, is accepted and echoed by both.
    let longest = json!("é".repeat(MAX_ID_CHARS));
    let (status, answer) = post_json(&infer, &v2(&longest)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["id"], longest);
    let (status, answer) = post_json(&predict, &lab(&longest)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["request_id"], longest);

    for bad in [json!("x".repeat(MAX_ID_CHARS + 1)), json!("")] {
        let (status, error) = post_json(&infer, &v2(&bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(
            error["error"], "field `id` must be a string of 1-128 characters",
            "v2 errors are {{\"error\": ...}} naming the field"
        );
        let (status, error) = post_json(&predict, &lab(&bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(
            error["error"],
            "field `request_id` must be a string of 1-128 characters"
        );
        assert_eq!(error["detail"][0]["field"], "request_id");
    }

    // The document declares the same bound on both.
    let (_, document) = get(&format!("{url}/openapi.json")).await;
    let schemas = &document["components"]["schemas"];
    for id in [
        &schemas["InferRequest"]["properties"]["id"],
        &schemas["PredictRequest"]["properties"]["request_id"],
        &schemas["BatchRequest"]["properties"]["request_id"],
    ] {
        assert_eq!(id["minLength"], 1, "{id}");
        assert_eq!(id["maxLength"], MAX_ID_CHARS, "{id}");
    }
}
