//! The edge's time limits: a request not completed in time gets 408, and a full house answers
//! 503 with `Retry-After` instead of queueing without bound.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::predict;
use super::requests::{raw_exchange, serving};
use super::selective::{customer_with_tenure, serving_selective};
use crate::common::{base_url, eventually, example_customer};

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
    let client = reqwest::Client::new();
    // The looping request and a probe race for the one slot: if a probe wins, the looping
    // request is the one refused, and the round is played again.
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 5, "the looping request never got the slot");
        let looping = {
            let url = url.clone();
            tokio::spawn(async move { predict(&url, &customer_with_tenure(199)).await })
        };
        let mut refused = None;
        while refused.is_none() && !looping.is_finished() {
            let response = client
                .post(format!("{url}/predict"))
                .json(&example_customer())
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                let retry_after = response.headers().get("retry-after").cloned();
                let body: Value = response.json().await.unwrap();
                refused = Some((retry_after, body));
            }
        }
        let (status, looped) = looping.await.unwrap();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            continue;
        }
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{looped}");
        let (retry_after, body) =
            refused.expect("no request was refused while the only slot was busy");
        assert_eq!(retry_after.unwrap(), "1", "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("every model slot is busy"),
            "{body}"
        );
        break;
    }
    // The 504 is sent at the deadline; the slot frees when the interrupted call has unwound on
    // its thread, which on a busy machine can be a moment later.
    let freed = eventually(Duration::from_secs(10), || async {
        predict(&url, &example_customer()).await.0 == StatusCode::OK
    })
    .await;
    assert!(
        freed,
        "the slot is free again once the looping call has ended"
    );
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
