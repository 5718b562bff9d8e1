//! Starting the real binary the way a new user does: default settings from a subdirectory of a
//! checkout, a mistyped `MODEL_NAME`, and stopping it with Ctrl-C.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{copy_dir, eventually};
use crate::k8s::repo_root;
use crate::k8s_e2e::Process;

/// A checkout-shaped temp directory: `registry/` (a copy of the committed one) and `host/src/`.
fn checkout() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("registry"), &root.path().join("registry"));
    std::fs::create_dir_all(root.path().join("host/src")).unwrap();
    root
}

/// Default settings but a free loopback port, JSON logs (the test reads the address from
/// them) and the prediction log in `logs`.
fn default_env(logs: &Path) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("HOST".to_string(), "127.0.0.1".to_string()),
        ("PORT".to_string(), "0".to_string()),
        ("LOG_FORMAT".to_string(), "json".to_string()),
        ("LOG_DIR".to_string(), logs.display().to_string()),
    ])
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_settings_in_a_subdirectory_serve_the_checkouts_registry() {
    let root = checkout();
    let logs = tempfile::tempdir().unwrap();
    let mut server = Process::spawn_in(
        &["serve".to_string()],
        &default_env(logs.path()),
        Some(&root.path().join("host/src")),
    );
    let base = server.address(Duration::from_secs(30));
    let ready = eventually(Duration::from_secs(30), || async {
        get(&base, "/ready").await.0 == 200
    })
    .await;
    assert!(ready, "not ready:\n{}", server.output());
    let (_, body) = get(&base, "/ready").await;
    assert_eq!(body["model"], "churn");
    assert!(
        server
            .output()
            .contains(&root.path().join("registry").display().to_string()),
        "the log names the registry it found:\n{}",
        server.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_model_name_says_what_the_registry_holds() {
    let root = checkout();
    let logs = tempfile::tempdir().unwrap();
    let mut env = default_env(logs.path());
    env.insert("MODEL_NAME".to_string(), "chrun".to_string());
    let mut server = Process::spawn_in(&["serve".to_string()], &env, Some(root.path()));
    let base = server.address(Duration::from_secs(30));
    let expected = "no model at ./registry/chrun/model.wasm: \
                    the registry ./registry holds churn (MODEL_NAME selects one)";
    let named = eventually(Duration::from_secs(30), || async {
        let (status, body) = get(&base, "/ready").await;
        status == 503
            && body["reason"]
                .as_str()
                .is_some_and(|r| r.contains(expected))
    })
    .await;
    assert!(named, "/ready: {:?}", get(&base, "/ready").await);
    let lines: Vec<String> = server
        .output()
        .lines()
        .filter(|line| line.contains(expected))
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one startup line says it:\n{}",
        server.output()
    );

    // Nor does a registry that is not there wait in silence.
    let mut env = default_env(logs.path());
    env.insert(
        "REGISTRY_DIR".to_string(),
        "/nonexistent/registry".to_string(),
    );
    let mut server = Process::spawn_in(&["serve".to_string()], &env, Some(root.path()));
    let base = server.address(Duration::from_secs(30));
    let named = eventually(Duration::from_secs(30), || async {
        let (_, body) = get(&base, "/ready").await;
        body["reason"].as_str().is_some_and(|r| {
            r.contains("the registry directory /nonexistent/registry does not exist")
        })
    })
    .await;
    assert!(named, "/ready: {:?}", get(&base, "/ready").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_at_once_and_a_second_one_exits_during_the_graceful_stop() {
    let root = checkout();
    let logs = tempfile::tempdir().unwrap();
    let mut env = default_env(logs.path());
    // A shutdown delay far longer than the waits below: only skipping it can pass.
    env.insert(
        "MODELHOST_SHUTDOWN_DELAY_MS".to_string(),
        "600000".to_string(),
    );

    let mut server = Process::spawn_in(&["serve".to_string()], &env, Some(root.path()));
    let base = server.address(Duration::from_secs(30));
    assert_eq!(get(&base, "/health").await.0, 200);
    server.signal("INT");
    let status = server.wait(Duration::from_secs(60));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "Ctrl-C skips the shutdown delay:\n{}",
        server.output()
    );

    // SIGTERM waits out the delay (not ready meanwhile); an interrupt then ends it at once.
    let mut server = Process::spawn_in(&["serve".to_string()], &env, Some(root.path()));
    let base = server.address(Duration::from_secs(30));
    // Ready first, so the 503 below is the stop's and not the model still loading.
    let ready = eventually(Duration::from_secs(30), || async {
        get(&base, "/ready").await.0 == 200
    })
    .await;
    assert!(ready, "{}", server.output());
    server.signal("TERM");
    let draining = eventually(Duration::from_secs(30), || async {
        get(&base, "/ready").await.0 == 503
    })
    .await;
    assert!(draining, "{}", server.output());
    server.signal("INT");
    let status = server.wait(Duration::from_secs(60));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(130),
        "{}",
        server.output()
    );
}
