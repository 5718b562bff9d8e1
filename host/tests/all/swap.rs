//! Hot swap: real files in a temp registry, real servers, real traffic. Conditions are waited
//! for by polling; the only pauses are those that make a write slow.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

use modelhost::model::sha256_hex;
use modelhost::watch::{INCOMPLETE_QUIET, Outcome, REPORT_QUIET};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{
    base_url, churn_artifact, eventually, example_customer, fixture, live_path, publish,
    serving_version, start_server, start_server_with, temp_registry, wait_for_version,
};

mod support;

use support::{
    LIVE_WITHIN, PATIENCE, Traffic, golden_probability, model_doc, serving_v1, write_slowly,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_atomic_rename_swaps_and_readiness_stays_200() {
    let (registry, server) = serving_v1(&[]).await;
    let traffic = Traffic::start(&server, 2);
    publish(registry.path(), &churn_artifact("v2", 0.5));
    assert!(wait_for_version(&server, "v2", PATIENCE).await);
    let tally = traffic.finish().await;
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    let status = server.active.status();
    assert_eq!((status.swaps, status.rejections), (2, 0));
    assert_eq!(model_doc(&server).await["version"], "v2");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_in_place_write_is_never_loaded_half_way() {
    let (registry, server) = serving_v1(&[]).await;
    let url = base_url(&server);
    let traffic = Traffic::start(&server, 2);
    // Pauses shorter than the settle window, then longer ones: the watcher reads, and fails to
    // load, the truncated file mid-copy; that must neither be reported nor delay the whole file.
    for (version, pause) in [("v2", 20), ("v3", 300)] {
        let bytes = churn_artifact(version, 0.25);
        let last_byte = write_slowly(
            &live_path(registry.path()),
            &bytes,
            8,
            Duration::from_millis(pause),
        )
        .await;
        let live = eventually(LIVE_WITHIN, || async {
            let response = reqwest::Client::new()
                .post(format!("{url}/predict"))
                .json(&example_customer())
                .send()
                .await
                .unwrap();
            let body: Value = response.json().await.unwrap();
            body["model_version"] == version
        })
        .await;
        let waited = last_byte.elapsed();
        assert!(
            live,
            "{version} not answering {waited:?} after its last byte"
        );
        eprintln!("{version}: answering {waited:?} after its last byte");
    }
    let tally = traffic.finish().await;
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    let answered: BTreeSet<&str> = tally.versions.keys().map(String::as_str).collect();
    assert!(
        answered.is_subset(&BTreeSet::from(["v1", "v2", "v3"])),
        "{answered:?}"
    );
    let status = server.active.status();
    assert_eq!(
        status.rejections, 0,
        "a copy in progress was reported: {status:?}"
    );
    assert_eq!(status.swaps, 3, "one load per completed copy");
    assert_eq!(model_doc(&server).await["last_error"], Value::Null);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_candidates_never_displace_the_serving_model() {
    let (registry, server) = serving_v1(&[]).await;
    let url = base_url(&server);
    let good = churn_artifact("v2", 0.5);
    let mut tampered = churn_artifact("v-tampered", 0.5);
    let at = tampered
        .windows(16)
        .position(|w| w == modelhost_abi::params::MAGIC)
        .unwrap()
        + modelhost_abi::params::HEADER_SIZE;
    tampered[at..at + 8].copy_from_slice(&5.0f64.to_le_bytes());
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("truncated", good[..good.len() / 2].to_vec(), "invalid wasm"),
        (
            "garbage",
            b"garbage, not wasm at all".to_vec(),
            "wasm magic number",
        ),
        (
            "abi",
            fixture("import.wat"),
            "wasi_snapshot_preview1::fd_write",
        ),
        ("self-test", tampered, "golden[0]"),
    ];
    let traffic = Traffic::start(&server, 2);
    for (n, (name, bytes, words)) in cases.into_iter().enumerate() {
        publish(registry.path(), &bytes);
        let reported = eventually(PATIENCE, || async {
            let doc = model_doc(&server).await;
            doc["rejections"] == n as u64 + 1
                && doc["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains(words))
        })
        .await;
        let doc = model_doc(&server).await;
        assert!(reported, "{name}: {doc}");
        let last_error = doc["last_error"].as_str().unwrap();
        assert!(
            last_error.contains("churn/model.wasm"),
            "names the file: {last_error}"
        );
        assert_eq!(doc["version"], "v1", "{name} displaced the serving model");
        let ready = reqwest::get(format!("{url}/ready")).await.unwrap();
        assert_eq!(
            ready.status(),
            StatusCode::OK,
            "a refusal flipped readiness"
        );
        // The same bytes are not tried again.
        for _ in 0..3 {
            assert_eq!(server.watcher.check().await, Outcome::Unchanged, "{name}");
        }
        assert_eq!(
            server.active.status().rejections,
            n as u64 + 1,
            "{name} retried"
        );
    }
    // The serving bytes back in place: nothing reloads, and no refusal stands.
    publish(registry.path(), &churn_artifact("v1", 0.0));
    let cleared = eventually(PATIENCE, || async {
        model_doc(&server).await["last_error"] == Value::Null
    })
    .await;
    assert!(cleared, "{}", model_doc(&server).await);
    assert_eq!(server.active.status().swaps, 1);
    publish(registry.path(), &good);
    assert!(wait_for_version(&server, "v2", PATIENCE).await);
    let tally = traffic.finish().await;
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    assert_eq!(
        model_doc(&server).await["last_error"],
        Value::Null,
        "cleared by a load"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checksum_file_holds_back_bytes_that_do_not_match_it() {
    let (registry, server) = serving_v1(&[]).await;
    let checksum = registry.path().join("churn/model.wasm.sha256");
    let traffic = Traffic::start(&server, 2);

    // The checksum first, then a slow copy: loaded once complete, nothing reported.
    let v2 = churn_artifact("v2", 0.5);
    std::fs::write(&checksum, format!("{}  model.wasm\n", sha256_hex(&v2))).unwrap();
    write_slowly(
        &live_path(registry.path()),
        &v2,
        4,
        Duration::from_millis(300),
    )
    .await;
    assert!(wait_for_version(&server, "v2", PATIENCE).await);
    assert_eq!(server.active.status().rejections, 0);

    // A stale checksum holds back a complete new artifact, visibly.
    let v3 = churn_artifact("v3", 0.75);
    publish(registry.path(), &v3);
    let reported = eventually(PATIENCE, || async {
        let doc = model_doc(&server).await;
        doc["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("model.wasm.sha256"))
    })
    .await;
    assert!(reported, "{}", model_doc(&server).await);
    assert_eq!(serving_version(&server).as_deref(), Some("v2"));
    // Correcting the checksum alone releases it.
    std::fs::write(&checksum, sha256_hex(&v3)).unwrap();
    assert!(wait_for_version(&server, "v3", PATIENCE).await);
    // Removing the checksum changes nothing that serves.
    std::fs::remove_file(&checksum).unwrap();
    assert_eq!(server.watcher.check().await, Outcome::Unchanged);
    let tally = traffic.finish().await;
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    assert_eq!(server.active.status().swaps, 3);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_version_record_with_another_sha256_refuses_the_bytes() {
    let (registry, server) = serving_v1(&[]).await;
    let record = |version: &str, sha256: &str| {
        let path = modelhost::registry::version_record_path(registry.path(), "churn", version);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!(r#"{{"version": "{version}", "sha256": "{sha256}"}}"#),
        )
        .unwrap();
    };
    record("v2", &"0".repeat(64));
    publish(registry.path(), &churn_artifact("v2", 0.5));
    let refused = eventually(PATIENCE, || async {
        let doc = model_doc(&server).await;
        doc["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("versions/v2.json"))
    })
    .await;
    assert!(refused, "{}", model_doc(&server).await);
    assert_eq!(serving_version(&server).as_deref(), Some("v1"));

    let v3 = churn_artifact("v3", 0.75);
    record("v3", &sha256_hex(&v3));
    publish(registry.path(), &v3);
    assert!(wait_for_version(&server, "v3", PATIENCE).await);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_deleted_artifact_keeps_serving_and_warns_once() {
    // A current-thread runtime: the watcher logs on this thread, into this subscriber.
    let logs = crate::common::capture_logs();
    let (registry, server) = serving_v1(&[]).await;
    let url = base_url(&server);
    let warnings = || logs.count("live artifact is missing");
    std::fs::remove_file(live_path(registry.path())).unwrap();
    assert!(eventually(PATIENCE, || async { warnings() == 1 }).await);
    for _ in 0..3 {
        assert_eq!(server.watcher.check().await, Outcome::Missing);
    }
    assert_eq!(warnings(), 1, "warned again for the same disappearance");
    let response = reqwest::Client::new()
        .post(format!("{url}/predict"))
        .json(&example_customer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap()["model_version"],
        "v1"
    );
    let ready = reqwest::get(format!("{url}/ready")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(server.active.status().rejections, 0);

    // A new artifact swaps in; deleting it again warns again.
    publish(registry.path(), &churn_artifact("v2", 0.5));
    assert!(wait_for_version(&server, "v2", PATIENCE).await);
    std::fs::remove_file(live_path(registry.path())).unwrap();
    assert!(eventually(PATIENCE, || async { warnings() == 2 }).await);
    assert_eq!(serving_version(&server).as_deref(), Some("v2"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn polling_only_mode_still_swaps() {
    let (registry, server) = serving_v1(&[("watch_events", "false")]).await;
    publish(registry.path(), &churn_artifact("v2", 0.5));
    assert!(wait_for_version(&server, "v2", PATIENCE).await);
    let v3 = churn_artifact("v3", 0.75);
    write_slowly(
        &live_path(registry.path()),
        &v3,
        8,
        Duration::from_millis(20),
    )
    .await;
    assert!(wait_for_version(&server, "v3", PATIENCE).await);
    assert_eq!(server.active.status().rejections, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_swap_long_before_the_poll_even_for_a_folder_created_later() {
    // Polls a minute apart: only events can make these swaps in time.
    let root = tempfile::tempdir().unwrap();
    let registry = root.path().join("registry");
    let server = start_server_with(&registry, &[("poll_interval_ms", "60000")]).await;
    let url = base_url(&server);
    let startup = reqwest::get(format!("{url}/startup")).await.unwrap();
    assert_eq!(startup.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready = reqwest::get(format!("{url}/ready")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    // The training Job creates the folder and the first model after the server started.
    std::fs::create_dir_all(registry.join("churn")).unwrap();
    publish(&registry, &churn_artifact("v1", 0.0));
    assert!(
        wait_for_version(&server, "v1", PATIENCE).await,
        "first model missed"
    );
    let ready = reqwest::get(format!("{url}/ready")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    publish(&registry, &churn_artifact("v2", 0.5));
    assert!(
        wait_for_version(&server, "v2", PATIENCE).await,
        "swap missed"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_registry_both_swap() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let first = start_server(registry.path()).await;
    let second = start_server_with(registry.path(), &[("watch_events", "false")]).await;
    for (version, shift) in [("v1", 0.0), ("v2", 0.5), ("v3", 0.75)] {
        if version != "v1" {
            publish(registry.path(), &churn_artifact(version, shift));
        }
        assert!(
            wait_for_version(&first, version, PATIENCE).await,
            "first: {version}"
        );
        assert!(
            wait_for_version(&second, version, PATIENCE).await,
            "second: {version}"
        );
    }
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_fails_while_versions_change_under_traffic() {
    let (registry, server) = serving_v1(&[]).await;
    let mut published = BTreeMap::from([(
        "v1".to_string(),
        golden_probability(&churn_artifact("v1", 0.0)),
    )]);
    let traffic = Traffic::start(&server, 4);
    for k in 2..=21 {
        let version = format!("v{k}");
        let bytes = churn_artifact(&version, k as f64 * 0.05);
        published.insert(version.clone(), golden_probability(&bytes));
        publish(registry.path(), &bytes);
        assert!(
            wait_for_version(&server, &version, PATIENCE).await,
            "{version}"
        );
    }
    let tally = traffic.finish().await;
    assert!(
        tally.failures.is_empty(),
        "{} failed: {:?}",
        tally.failures.len(),
        tally.failures
    );
    assert!(tally.ok > 0);
    for (version, probabilities) in &tally.versions {
        let expected = published
            .get(version)
            .unwrap_or_else(|| panic!("answered by unpublished {version}"));
        // Each version answered with its own probability, never another's.
        for probability in probabilities {
            let probability: f64 = probability.parse().unwrap();
            assert!(
                (probability - expected).abs() < 5e-7,
                "{version}: {probability}"
            );
        }
    }
    assert!(
        tally.versions.len() >= 10,
        "traffic saw {:?}",
        tally.versions.keys()
    );
    let status = server.active.status();
    assert_eq!((status.swaps, status.rejections), (21, 0));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_copy_paused_mid_write_is_waited_for_and_loads_when_it_completes() {
    // A current-thread runtime: the watcher logs on this thread, into this subscriber.
    let logs = crate::common::capture_logs();
    let (registry, server) = serving_v1(&[]).await;
    let url = base_url(&server);
    let live = live_path(registry.path());
    let bytes = churn_artifact("v2", 0.25);
    let (first, rest) = bytes.split_at(bytes.len() / 2);

    // The copy stalls after half the bytes, for longer than a refusal of whole bytes waits,
    // but not as long as a module cut short is waited for.
    let pause = REPORT_QUIET * 5 / 2;
    assert!(pause * 2 <= INCOMPLETE_QUIET);
    let mut file = std::fs::File::create(&live).unwrap();
    file.write_all(first).unwrap();
    let paused = Instant::now();
    assert!(
        eventually(PATIENCE, || async { logs.count("incomplete") > 0 }).await,
        "the half file was never looked at"
    );
    tokio::time::sleep(pause.saturating_sub(paused.elapsed())).await;
    file.write_all(rest).unwrap();
    drop(file);

    assert!(wait_for_version(&server, "v2", PATIENCE).await);
    assert_eq!(server.active.status().rejections, 0);
    assert_eq!(model_doc(&server).await["last_error"], Value::Null);
    let rejections = "modelhost_model_rejections_total{reason=\"invalid_wasm\"}";
    assert_eq!(crate::hostile::metric(&url, rejections).await, 0.0);
    assert_eq!(logs.count("refused candidate"), 0, "reported as a refusal");

    // A copy that stops for good is refused once it has stayed as it is that long.
    let v3 = churn_artifact("v3", 0.5);
    let stopped = Instant::now();
    std::fs::write(&live, &v3[..v3.len() / 2]).unwrap();
    let refused = eventually(PATIENCE, || async {
        server.active.status().rejections == 1
    })
    .await;
    assert!(refused, "a truncated file that stays is never refused");
    // (Less a little for the coarse clock that stamps mtimes.)
    let waited = stopped.elapsed();
    assert!(
        waited + Duration::from_millis(50) >= INCOMPLETE_QUIET,
        "refused after {waited:?}"
    );
    let doc = model_doc(&server).await;
    assert!(
        doc["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid wasm")),
        "{doc}"
    );
    assert_eq!(doc["version"], "v2");
    assert_eq!(crate::hostile::metric(&url, rejections).await, 1.0);
    assert_eq!(logs.count("refused candidate"), 1);
    server.shutdown().await.unwrap();
}
