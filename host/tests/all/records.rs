//! Registry records and history lines written by earlier versions of modelhost still read:
//! `tests/fixtures/registry-v1` holds one of each kind, and what `versions` printed for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::{start_server, wait_for_version};
use crate::train::cli;

fn fixture_registry() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry-v1")
}

#[test]
fn versions_prints_the_fixture_registry_as_it_did_when_it_was_written() {
    let registry = fixture_registry();
    for (args, expected) in [
        (&[][..], "versions.txt"),
        (&["--json"][..], "versions.json"),
    ] {
        let mut all = vec!["versions", "--registry-dir", registry.to_str().unwrap()];
        all.extend_from_slice(args);
        let run = cli(&all);
        assert_eq!(run.code, Some(0), "{run:?}");
        let expected = std::fs::read_to_string(registry.join(expected)).unwrap();
        assert_eq!(run.stdout, expected, "versions {args:?}");
    }
}

/// The fixture registry copied into a temp dir (the checkout is never written).
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::common::copy_dir(&fixture_registry(), dir.path());
    dir
}

/// Rewrites `versions/<version>.json` in `registry` with its sha256 in upper case.
fn upper_case_recorded_sha(registry: &Path, version: &str) {
    let path = registry.join(format!("churn/versions/{version}.json"));
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let upper = record["sha256"].as_str().unwrap().to_ascii_uppercase();
    record["sha256"] = Value::String(upper);
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
}

#[test]
fn rollback_takes_an_upper_case_recorded_sha256_as_the_same_digest() {
    let registry = fixture_copy();
    upper_case_recorded_sha(registry.path(), "v976137c5cf1c");
    let run = cli([
        "rollback",
        "--registry-dir",
        registry.path().to_str().unwrap(),
        "--to",
        "v976137c5cf1c",
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("to v976137c5cf1c"), "{run:?}");
    assert_eq!(
        std::fs::read(registry.path().join("churn/model.wasm")).unwrap(),
        std::fs::read(registry.path().join("churn/versions/v976137c5cf1c.wasm")).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_takes_an_upper_case_recorded_sha256_as_the_same_digest() {
    let registry = fixture_copy();
    upper_case_recorded_sha(registry.path(), "v96865bb2574e");
    let server = start_server(registry.path()).await;
    assert!(
        wait_for_version(&server, "v96865bb2574e", Duration::from_secs(20)).await,
        "the live model with an upper-case recorded sha256 was not served: {:?}",
        server.active.status()
    );
    server.shutdown().await.unwrap();
}

#[test]
fn every_fixture_line_and_record_parses_and_writes_back_byte_for_byte() {
    use modelhost::registry::records::{HistoryEvent, VersionRecord};
    let churn = fixture_registry().join("churn");
    let history = std::fs::read_to_string(churn.join("history.jsonl")).unwrap();
    let mut kinds = Vec::new();
    for (i, line) in history.lines().enumerate() {
        let event: HistoryEvent =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        kinds.push(event.name().to_string());
        let written = serde_json::to_string(&event).unwrap();
        if i == 0 {
            // Written before events were named: read as a training run, written with its name.
            assert!(!line.contains("\"event\""), "{line}");
            assert_eq!(written, line.replacen('{', r#"{"event":"train","#, 1));
        } else {
            assert_eq!(written, line, "line {}", i + 1);
        }
        assert_eq!(event.sha256().map(|s| s.len()), Some(64), "line {}", i + 1);
    }
    assert_eq!(
        kinds,
        [
            "train", "seed", "train", "train", "train", "publish", "rollback"
        ]
    );
    let mut records = 0;
    for entry in std::fs::read_dir(churn.join("versions")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read(&path).unwrap();
        let record: VersionRecord =
            serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            serde_json::to_vec_pretty(&record).unwrap(),
            text,
            "{}",
            path.display()
        );
        assert!(record.sha256().is_some(), "{}", path.display());
        records += 1;
    }
    assert_eq!(records, 4);
}
