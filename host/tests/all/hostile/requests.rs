//! Hostile requests: each gets the right status and a JSON error naming the problem.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{PATIENCE, predict};
use crate::common::{
    base_url, churn_artifact, example_customer, start_server_with, temp_registry, wait_for_version,
};

pub(super) async fn serving(
    settings: &[(&'static str, &str)],
) -> (tempfile::TempDir, modelhost::serve::Server) {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server_with(registry.path(), settings).await;
    assert!(wait_for_version(&server, "v1", PATIENCE).await);
    (registry, server)
}

async fn post_raw(url: &str, content_type: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/predict"))
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: not a JSON body ({e}): {text:?}"));
    (status, body)
}

/// Sends `head` (and whatever body bytes follow it) on a fresh connection, then reads the
/// response until the server closes the connection. Returns the status code and the body.
pub(super) async fn raw_exchange(server: &modelhost::serve::Server, bytes: &[u8]) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("the server never closed the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    (status, body)
}

#[tokio::test]
async fn oversized_bodies_are_413_whether_announced_or_streamed() {
    let (_registry, server) = serving(&[]).await;
    let url = base_url(&server);
    let mut customer = example_customer();
    customer["padding"] = json!("x".repeat(2 << 20));
    let (status, body) = post_raw(
        &url,
        Some("application/json"),
        serde_json::to_vec(&customer).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("too large"),
        "{body}"
    );

    // No Content-Length: a chunked body that only turns out too large on the way.
    let chunk = format!("{:x}\r\n{}\r\n", 64 << 10, "y".repeat(64 << 10));
    let mut request = String::from(
        "POST /predict HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    );
    for _ in 0..17 {
        request.push_str(&chunk);
    }
    request.push_str("0\r\n\r\n");
    let (status, body) = raw_exchange(&server, request.as_bytes()).await;
    assert_eq!(status, 413, "{body}");

    let (status, _) = predict(&url, &example_customer()).await;
    assert_eq!(status, StatusCode::OK, "still serving");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_413_names_the_limit_and_its_setting_on_every_route_that_reads_a_body() {
    let (_registry, server) = serving(&[("max_body_bytes", "2048")]).await;
    let url = base_url(&server);
    let expected = "request body is too large: it exceeds the 2048-byte limit that \
                    MODELHOST_MAX_BODY_BYTES sets";
    let mut customer = example_customer();
    customer["padding"] = json!("x".repeat(4096));
    let batch = json!({ "instances": vec![example_customer(); 40] });
    let n = 1000;
    let infer = json!({"inputs": [
        {"name": "tenure_months", "shape": [n], "datatype": "INT64", "data": vec![6; n]},
        {"name": "num_complaints", "shape": [n], "datatype": "INT64", "data": vec![3; n]},
        {"name": "avg_session_minutes", "shape": [n], "datatype": "FP64", "data": vec![12.5; n]},
        {"name": "plan_type", "shape": [n], "datatype": "BYTES", "data": vec!["basic"; n]},
        {"name": "region", "shape": [n], "datatype": "BYTES", "data": vec!["AF"; n]},
    ]});
    let client = reqwest::Client::new();
    for (route, body) in [
        ("/predict", &customer),
        ("/predict", &batch),
        ("/v2/models/churn/infer", &infer),
        ("/v2/models/churn/versions/v1/infer", &infer),
    ] {
        let response = client
            .post(format!("{url}{route}"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{route}: {text}");
        let answer: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{route}: {e}: {text}"));
        assert_eq!(answer, json!({ "error": expected }), "{route}");
    }

    // Streamed without Content-Length, the body only turns out too large on the way.
    let chunk = "y".repeat(1024);
    let mut request = String::from(
        "POST /v2/models/churn/infer HTTP/1.1\r\nhost: test\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\
         connection: close\r\n\r\n",
    );
    for _ in 0..4 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let (status, answer) = raw_exchange(&server, request.as_bytes()).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer, json!({ "error": expected }));
    server.shutdown().await.unwrap();
}

/// The lab's example customer as JSON text with one field's value replaced by `raw` text.
fn customer_with(field: &str, raw: &str) -> Vec<u8> {
    let text = serde_json::to_string(&example_customer()).unwrap();
    let value = example_customer()[field].to_string();
    let text = text.replacen(
        &format!("\"{field}\":{value}"),
        &format!("\"{field}\":{raw}"),
        1,
    );
    assert!(text.contains(raw), "{text}");
    text.into_bytes()
}

/// A body, its content type, and the status and words its answer must have.
struct BadBody {
    name: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
    words: &'static str,
}

/// A JSON body that must be refused with `status` and `words`.
fn bad_json(name: &'static str, body: Vec<u8>, status: StatusCode, words: &'static str) -> BadBody {
    BadBody {
        name,
        content_type: Some("application/json"),
        body,
        status,
        words,
    }
}

fn bad_bodies() -> Vec<BadBody> {
    let good = serde_json::to_vec(&example_customer()).unwrap();
    let unsupported = |name, content_type, body| BadBody {
        name,
        content_type,
        body,
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        words: "content type must be application/json",
    };
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(500), "]".repeat(500));
    let long = format!("\"{}\"", "p".repeat(300));
    let (bad, unprocessable) = (StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY);
    vec![
        unsupported("no content type", None, good.clone()),
        unsupported("text/plain", Some("text/plain"), good.clone()),
        unsupported(
            "a form",
            Some("application/x-www-form-urlencoded"),
            b"a=1".to_vec(),
        ),
        bad_json(
            "empty",
            Vec::new(),
            bad,
            "malformed JSON: EOF while parsing",
        ),
        bad_json("truncated", good[..20].to_vec(), bad, "malformed JSON"),
        bad_json(
            "not UTF-8",
            b"{\"region\": \"\xff\xfe\"}".to_vec(),
            bad,
            "malformed JSON",
        ),
        bad_json(
            "NaN literal",
            customer_with("tenure_months", "NaN"),
            bad,
            "malformed JSON",
        ),
        bad_json(
            "nested too deep",
            deep.into_bytes(),
            bad,
            "recursion limit exceeded",
        ),
        bad_json(
            "null",
            b"null".to_vec(),
            unprocessable,
            "JSON object, got null",
        ),
        bad_json(
            "an array",
            b"[1, 2]".to_vec(),
            unprocessable,
            "JSON object, got an array",
        ),
        bad_json(
            "1e999",
            customer_with("tenure_months", "1e999"),
            unprocessable,
            "field `tenure_months` must be a finite number, got 1e999",
        ),
        bad_json(
            "-1e999",
            customer_with("avg_session_minutes", "-1e999"),
            unprocessable,
            "field `avg_session_minutes` must be a finite number",
        ),
        bad_json(
            "1e300",
            customer_with("tenure_months", "1e300"),
            unprocessable,
            "`tenure_months` must be between 0 and 200",
        ),
        bad_json(
            "a string for a number",
            customer_with("tenure_months", "\"6\""),
            unprocessable,
            "`tenure_months` must be an integer, got a string",
        ),
        bad_json(
            "a boolean",
            customer_with("num_complaints", "true"),
            unprocessable,
            "`num_complaints` must be an integer, got a boolean",
        ),
        bad_json(
            "an object for a category",
            customer_with("region", "{\"a\":1}"),
            unprocessable,
            "`region` must be a string, got an object",
        ),
        bad_json(
            "a long category",
            customer_with("plan_type", &long),
            unprocessable,
            "`plan_type` is longer than 256 characters",
        ),
        bad_json(
            "a number for request_id",
            customer_with("request_id", "5"),
            unprocessable,
            "request_id",
        ),
        bad_json(
            "{}",
            b"{}".to_vec(),
            unprocessable,
            "`tenure_months` is required",
        ),
    ]
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_get_json_errors_naming_the_problem() {
    let (_registry, server) = serving(&[]).await;
    let url = base_url(&server);
    for case in bad_bodies() {
        let (status, answer) = post_raw(&url, case.content_type, case.body).await;
        assert_eq!(status, case.status, "{}: {answer}", case.name);
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(case.words),
            "{}: {error:?} lacks {:?}",
            case.name,
            case.words
        );
    }
    let json_type = Some("application/json");
    let (status, body) = post_raw(&url, json_type, customer_with("tenure_months", "1e999")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "tenure_months"]));
    assert_eq!(body["detail"][0]["type"], "not_finite");
    let (status, body) = post_raw(&url, json_type, b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["detail"].as_array().unwrap().len(),
        5,
        "every field named"
    );

    let good = serde_json::to_vec(&example_customer()).unwrap();
    let (status, body) = post_raw(&url, Some("application/json; charset=utf-8"), good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_json_errors() {
    let (_registry, server) = serving(&[]).await;
    let url = base_url(&server);
    let client = reqwest::Client::new();
    let cases = [
        (
            reqwest::Method::GET,
            "/nope",
            StatusCode::NOT_FOUND,
            "no route for /nope",
        ),
        (
            reqwest::Method::POST,
            "/predict/extra",
            StatusCode::NOT_FOUND,
            "/predict/extra",
        ),
        (
            reqwest::Method::GET,
            "/%2e%2e/etc/passwd",
            StatusCode::NOT_FOUND,
            "no route",
        ),
        (
            reqwest::Method::GET,
            "/predict",
            StatusCode::METHOD_NOT_ALLOWED,
            "GET is not allowed on /predict",
        ),
        (
            reqwest::Method::PUT,
            "/health",
            StatusCode::METHOD_NOT_ALLOWED,
            "PUT is not allowed on /health",
        ),
        (
            reqwest::Method::DELETE,
            "/model",
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE",
        ),
        (
            reqwest::Method::POST,
            "/ready",
            StatusCode::METHOD_NOT_ALLOWED,
            "POST",
        ),
    ];
    for (method, path, expected, words) in cases {
        let response = client
            .request(method.clone(), format!("{url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap_or_default().contains(words),
            "{method} {path}: {body}"
        );
    }
    server.shutdown().await.unwrap();
}
