//! A model that passes its self-test and misbehaves only for some inputs (`selective.wat`):
//! only the request that triggers the behaviour fails, with a clear 5xx, and every other
//! request keeps succeeding.

use std::time::{Duration, Instant};

use modelhost::runtime::{Limits, Runtime};
use modelhost::serve::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{PATIENCE, hostile, load, metric, predict};
use crate::common::{
    base_url, example_customer, start_server_with, temp_registry, wait_for_version,
};

/// A server on a registry holding `selective.wat`, which passes its self-test and misbehaves
/// for chosen `tenure_months` values.
pub(super) async fn serving_selective(
    settings: &[(&'static str, &str)],
) -> (tempfile::TempDir, Server) {
    let registry = temp_registry(Some(&hostile("selective.wat")));
    let server = start_server_with(registry.path(), settings).await;
    assert!(
        wait_for_version(&server, "v-selective", PATIENCE).await,
        "selective.wat never served: {:?}",
        server.active.status().last_error
    );
    (registry, server)
}

pub(super) fn customer_with_tenure(tenure: u32) -> Value {
    let mut customer = example_customer();
    customer["tenure_months"] = json!(tenure);
    customer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_on_some_inputs_fails_that_request_at_the_time_limit_and_no_other() {
    // A 1 s time limit makes the looping call long enough to overlap the others.
    let (_registry, server) = serving_selective(&[("wasm_timeout_ms", "1000")]).await;
    let url = base_url(&server);
    // Requests queued at the same moment share one call (see model/executor.rs). On a loaded
    // machine the first ordinary request can be queued before a call thread took the looping
    // one, share its call and come back only after it: that round shows nothing about the
    // others, so it is played again (at most five rounds). Only answers that came back while
    // the loop was still running count.
    let mut rounds = 0;
    let mut timeouts = 0;
    let mut answered_meanwhile = 0;
    while answered_meanwhile < 3 && rounds < 5 {
        rounds += 1;
        let looping = {
            let url = url.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = predict(&url, &customer_with_tenure(199)).await;
                (answer, started.elapsed())
            })
        };
        answered_meanwhile = 0;
        while !looping.is_finished() {
            let (status, body) = predict(&url, &example_customer()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["probability"], 0.25);
            if !looping.is_finished() {
                answered_meanwhile += 1;
            }
        }
        let ((status, body), took) = looping.await.unwrap();
        if status == StatusCode::OK && body["probability"] == 0.25 {
            // The fixture looks only at a call's first row: queued just behind an ordinary
            // request, the looping row was the second row of their shared call, which did not
            // loop. That round shows nothing; it is played again.
            answered_meanwhile = 0;
            continue;
        }
        timeouts += 1;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert_eq!(
            body["error"], "model call failed: exceeded the 1000 ms time limit",
            "{body}"
        );
        // At least the limit; and interrupted rather than left to run: a call shared with an
        // ordinary request fails as a group and is retried alone (twice the limit), and on a
        // loaded machine the threads wait for a CPU, so the upper bound is generous.
        assert!(
            took >= Duration::from_millis(1000) && took < Duration::from_secs(15),
            "interrupted after {took:?}"
        );
    }
    assert!(
        answered_meanwhile >= 3,
        "only {answered_meanwhile} requests answered during the loop, in each of {rounds} rounds"
    );
    assert_eq!(
        metric(&url, "modelhost_wasm_call_errors_total{reason=\"timeout\"}").await,
        timeouts as f64
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_guest_failure_fails_only_its_own_request() {
    let (_registry, server) = serving_selective(&[]).await;
    let url = base_url(&server);
    let cases = [
        (198, "trap", "call stack exhausted"),
        (197, "trap", "unreachable"),
        (191, "trap", "out of bounds memory access"),
        (196, "bad_output", "returned NaN for row 0"),
        (195, "bad_output", "returned inf for row 0"),
        (194, "bad_output", "returned 1.5 for row 0"),
        (193, "status", "predict returned status 3"),
    ];
    for (tenure, reason, words) in cases {
        let (status, body) = predict(&url, &customer_with_tenure(tenure)).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{tenure}: {body}"
        );
        let error = body["error"].as_str().unwrap();
        assert!(
            error.starts_with("model call failed: ") && error.contains(words),
            "{tenure} ({reason}): {error}"
        );
        assert!(body.get("probability").is_none(), "never a prediction");
        let (status, body) = predict(&url, &example_customer()).await;
        assert_eq!(status, StatusCode::OK, "after {tenure}: {body}");
        assert_eq!(body["probability"], 0.25);
    }
    for (reason, count) in [("trap", 3.0), ("bad_output", 3.0), ("status", 1.0)] {
        let sample = format!("modelhost_wasm_call_errors_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&url, &sample).await, count, "{sample}");
    }
    // A memory.grow bomb is capped at the memory limit (64 MiB = 1024 pages); the guest sees
    // its grow refused and answers normally.
    let (status, body) = predict(&url, &customer_with_tenure(192)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["probability"], 1024.0 / 65536.0);
    let health = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.shutdown().await.unwrap();
}

#[test]
fn a_memory_grow_bomb_stops_at_the_configured_limit() {
    for mib in [8usize, 64] {
        let runtime = Runtime::new(Limits {
            memory_bytes: mib << 20,
            ..Limits::default()
        })
        .unwrap();
        let model = load(&runtime, &hostile("selective.wat")).unwrap();
        let bombed = model.predict(&[192.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        let pages = (mib << 20) / 65536;
        assert_eq!(bombed, [pages as f64 / 65536.0], "{mib} MiB");
        // The next call gets a fresh instance with the module's own memory.
        assert_eq!(model.predict(&[6.0, 0.0, 0.0, 0.0, 0.0]).unwrap(), [0.25]);
    }
}

#[test]
fn a_guest_outliving_its_runtime_still_stops_at_its_time_limit() {
    // The epoch ticker is what interrupts a loop; a model (kept by a request or a call thread)
    // that outlives the runtime which loaded it must keep its time limit, not loop forever.
    let runtime = Runtime::new(Limits {
        timeout: Duration::from_millis(100),
        ..Limits::default()
    })
    .unwrap();
    let model = load(&runtime, &hostile("selective.wat")).unwrap();
    drop(runtime);
    let looped = model.predict(&[199.0, 0.0, 0.0, 0.0, 0.0]).unwrap_err();
    assert_eq!(looped.reason(), "timeout", "{looped}");
    assert_eq!(model.predict(&[6.0, 0.0, 0.0, 0.0, 0.0]).unwrap(), [0.25]);
}
