//! Hostile requests: each gets the right status and a JSON error naming the problem, the time
//! limits hold, and a full house answers 503 with `Retry-After` instead of queueing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{PATIENCE, customer_with_tenure, predict, serving_selective};
use crate::common::{
    base_url, churn_artifact, eventually, example_customer, start_server_with, temp_registry,
    wait_for_version,
};

async fn serving(
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
async fn raw_exchange(server: &modelhost::serve::Server, bytes: &[u8]) -> (u16, Value) {
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
async fn malformed_and_mistyped_bodies_get_json_errors_naming_the_problem() {
    let (_registry, server) = serving(&[]).await;
    let url = base_url(&server);
    let customer = |field: &str, raw: &str| {
        let mut text = serde_json::to_string(&example_customer()).unwrap();
        let value = example_customer()[field].to_string();
        text = text.replacen(
            &format!("\"{field}\":{value}"),
            &format!("\"{field}\":{raw}"),
            1,
        );
        assert!(text.contains(raw), "{text}");
        text.into_bytes()
    };
    let json_type = Some("application/json");
    let good = serde_json::to_vec(&example_customer()).unwrap();
    let cases: Vec<(&str, Option<&str>, Vec<u8>, StatusCode, &str)> = vec![
        (
            "no content type",
            None,
            good.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "got \"nothing\"",
        ),
        (
            "text/plain",
            Some("text/plain"),
            good.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
        (
            "form",
            Some("application/x-www-form-urlencoded"),
            b"a=1".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
        (
            "empty body",
            json_type,
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "malformed JSON: EOF",
        ),
        (
            "truncated",
            json_type,
            good[..20].to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "not UTF-8",
            json_type,
            b"{\"region\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "NaN literal",
            json_type,
            customer("tenure_months", "NaN"),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "nested too deep",
            json_type,
            format!("{{\"a\":{}1{}}}", "[".repeat(500), "]".repeat(500)).into_bytes(),
            StatusCode::BAD_REQUEST,
            "recursion limit",
        ),
        (
            "null",
            json_type,
            b"null".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "JSON object, got null",
        ),
        (
            "array",
            json_type,
            b"[1, 2]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "JSON object, got an array",
        ),
        (
            "1e999",
            json_type,
            customer("tenure_months", "1e999"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "field `tenure_months` must be a finite number, got 1e999",
        ),
        (
            "-1e999",
            json_type,
            customer("avg_session_minutes", "-1e999"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "field `avg_session_minutes` must be a finite number",
        ),
        (
            "huge",
            json_type,
            customer("tenure_months", "1e300"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`tenure_months` must be between 0 and 200",
        ),
        (
            "string for a number",
            json_type,
            customer("tenure_months", "\"6\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`tenure_months` must be an integer, got a string",
        ),
        (
            "boolean",
            json_type,
            customer("num_complaints", "true"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`num_complaints` must be an integer, got a boolean",
        ),
        (
            "object for a category",
            json_type,
            customer("region", "{\"a\":1}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`region` must be a string, got an object",
        ),
        (
            "long category",
            json_type,
            customer("plan_type", &format!("\"{}\"", "p".repeat(300))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`plan_type` is longer than 256 bytes",
        ),
        (
            "request_id number",
            json_type,
            customer("request_id", "5"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request_id",
        ),
        (
            "empty object",
            json_type,
            b"{}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`tenure_months` is required",
        ),
    ];
    for (name, content_type, body, expected, words) in cases {
        let (status, answer) = post_raw(&url, content_type, body).await;
        assert_eq!(status, expected, "{name}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(words), "{name}: {error:?} lacks {words:?}");
    }
    let (status, body) = post_raw(&url, json_type, customer("tenure_months", "1e999")).await;
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

#[tokio::test]
async fn a_request_not_completed_in_time_is_answered_408() {
    let (_registry, server) = serving(&[("request_timeout_ms", "300")]).await;
    // Headers announce 200 bytes; 10 arrive, then the client stalls.
    let started = Instant::now();
    let (status, body) = raw_exchange(
        &server,
        b"POST /predict HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
          content-length: 200\r\nconnection: close\r\n\r\n{\"tenure_",
    )
    .await;
    assert_eq!(status, 408, "{body}");
    assert_eq!(
        body["error"],
        "request not completed within the 300 ms request timeout"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = predict(&base_url(&server), &example_customer()).await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_house_answers_503_with_retry_after_instead_of_queueing() {
    // One model slot, no waiting for it, and a looping input that holds it for a second.
    let (_registry, server) = serving_selective(&[
        ("max_concurrency", "1"),
        ("queue_timeout_ms", "0"),
        ("wasm_timeout_ms", "1000"),
    ])
    .await;
    let url = base_url(&server);
    let looping = {
        let url = url.clone();
        tokio::spawn(async move { predict(&url, &customer_with_tenure(199)).await })
    };
    let client = reqwest::Client::new();
    let refused = eventually(PATIENCE, || async {
        let response = client
            .post(format!("{url}/predict"))
            .json(&example_customer())
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::SERVICE_UNAVAILABLE {
            return false;
        }
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(retry_after.unwrap(), "1", "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("every model slot is busy"),
            "{body}"
        );
        true
    })
    .await;
    assert!(
        refused,
        "no request was refused while the only slot was busy"
    );
    let (status, _) = looping.await.unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let (status, body) = predict(&url, &example_customer()).await;
    assert_eq!(status, StatusCode::OK, "the slot is free again: {body}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_queue_waits_for_a_slot_when_it_frees_in_time() {
    let (_registry, server) = serving_selective(&[
        ("max_concurrency", "1"),
        ("queue_timeout_ms", "5000"),
        ("wasm_timeout_ms", "300"),
    ])
    .await;
    let url = base_url(&server);
    let requests: Vec<_> = [199, 6, 7, 199, 8]
        .into_iter()
        .map(|tenure| {
            let url = url.clone();
            tokio::spawn(
                async move { (tenure, predict(&url, &customer_with_tenure(tenure)).await) },
            )
        })
        .collect();
    for request in requests {
        let (tenure, (status, body)) = request.await.unwrap();
        let expected = if tenure == 199 {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{tenure}: {body}");
    }
    server.shutdown().await.unwrap();
}
