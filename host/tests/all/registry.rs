//! Registry writes as the binary and the server make them: a version's record is never
//! rewritten, concurrent writers append whole history lines under the history lock, and stale
//! temp files of killed writers are removed on the next write and at server start.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use modelhost::registry::{self, STALE_TEMP_AGE};
use serde_json::Value;

use crate::common::{churn_artifact, eventually, start_server, temp_registry};
use crate::train::{cli, modelhost, train};

/// The repository's `registry/` directory, copied into `to` (the checkout is never written).
fn copy_default_registry(to: &Path) {
    crate::common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../registry"),
        to,
    );
}

fn versions_json(registry: &Path) -> Value {
    let run = cli([
        OsStr::new("versions"),
        OsStr::new("--registry-dir"),
        registry.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    run.json()
}

#[test]
fn a_refused_run_of_the_live_bytes_keeps_their_record_and_tells_its_own_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    copy_default_registry(&registry);
    let live_version = versions_json(&registry)["live"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let record_path = registry::version_record_path(&registry, "churn", &live_version);
    let record_before = std::fs::read(&record_path).unwrap();
    let live_before = std::fs::read(registry::live_path(&registry, "churn")).unwrap();
    let lines_before = registry::read_history(&registry, "churn").unwrap().len();

    // The default model's own recipe, with a gate it cannot pass: the same bytes, refused.
    let run = train(
        &registry,
        &["--synthetic", "1200", "--seed", "42", "--gate-f1", "0.99"],
    );
    assert_eq!(run.code, Some(4), "{run:?}");
    let outcome = run.json();
    assert_eq!(outcome["version"], live_version.as_str(), "same bytes");
    assert_eq!(outcome["promoted"], false);
    assert_eq!(outcome["gate"]["passed"], false);
    assert_eq!(outcome["already_recorded"], true);

    assert!(
        std::fs::read(&record_path).unwrap() == record_before,
        "the live version's record was rewritten"
    );
    assert!(std::fs::read(registry::live_path(&registry, "churn")).unwrap() == live_before);
    let history = registry::read_history(&registry, "churn").unwrap();
    assert_eq!(history.len(), lines_before + 1, "one line for the run");
    let last = history.last().unwrap();
    assert_eq!(last["event"], "train");
    assert_eq!(last["version"], live_version.as_str());
    assert_eq!(last["passed"], false);
    assert_eq!(last["promoted"], false);
    assert_eq!(last["gate"]["f1_min"], 0.99);

    // `versions` tells both runs as they were: the promoted one live, the refused one not.
    let listing = versions_json(&registry);
    assert_eq!(listing["live"]["version"], live_version.as_str());
    let rows = listing["history"].as_array().unwrap();
    let live_rows: Vec<&Value> = rows.iter().filter(|r| r["live"] == true).collect();
    assert_eq!(live_rows.len(), 1, "{listing:#}");
    assert_eq!(live_rows[0]["gate_passed"], true, "{listing:#}");
    assert_eq!(live_rows[0]["promoted"], true, "{listing:#}");
    let refused = rows.last().unwrap();
    assert_eq!(refused["live"], false, "{listing:#}");
    assert_eq!(refused["gate_passed"], false, "{listing:#}");
    assert_eq!(refused["promoted"], false, "{listing:#}");

    // People are told too; and again, the record stays as it was.
    let human = cli([
        OsStr::new("train"),
        OsStr::new("--registry-dir"),
        registry.as_os_str(),
        OsStr::new("--gate-f1"),
        OsStr::new("0.99"),
    ]);
    assert_eq!(human.code, Some(4), "{human:?}");
    assert!(human.stdout.contains("already recorded"), "{human:?}");
    assert!(human.stdout.contains("live model unchanged"), "{human:?}");
    assert!(std::fs::read(&record_path).unwrap() == record_before);
}

/// Waits for `child`; its exit status and both outputs.
fn output(child: Child) -> String {
    let output = child.wait_with_output().unwrap();
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn concurrent_publishes_append_one_whole_line_each_under_the_history_lock() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    std::fs::create_dir_all(registry.join("churn")).unwrap();
    let history = registry::history_path(&registry, "churn");
    // Another writer holds the lock, so every publisher reaches its append while it is held:
    // none may write, and once it is released all of them contend for it at once.
    let holder = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&history)
        .unwrap();
    holder.lock().unwrap();

    let versions: Vec<String> = (0..6).map(|i| format!("v-concurrent-{i}")).collect();
    let mut children: Vec<Child> = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let file = dir.path().join(format!("{version}.wasm"));
        std::fs::write(&file, churn_artifact(version, 0.05 * i as f64)).unwrap();
        let mut child = modelhost()
            .args(["publish", "--registry-dir"])
            .arg(&registry)
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A publisher writes its version record right before its history line. One publisher
        // at a time gets there, so they do not compete for the CPU during their self-tests.
        let record = registry::version_record_path(&registry, "churn", version);
        let started = Instant::now();
        while !record.is_file() {
            if child.try_wait().unwrap().is_some() {
                panic!(
                    "{version} finished while the history was locked: {}",
                    output(child)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{version} never wrote its record"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        children.push(child);
    }
    // They all wait for the lock.
    for (version, child) in versions.iter().zip(&mut children) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{version} finished while the history was locked"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&history).unwrap(),
        "",
        "a line was appended while another writer held the lock"
    );
    holder.unlock().unwrap();
    drop(holder);

    for (version, child) in versions.iter().zip(children) {
        let report = output(child);
        assert!(report.starts_with("exit status: 0"), "{version}: {report}");
    }
    let text = std::fs::read_to_string(&history).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    assert_eq!(lines.len(), versions.len(), "{text}");
    assert!(
        lines.iter().all(|line| line["event"] == "publish"),
        "{text}"
    );
    let published: BTreeSet<&str> = lines
        .iter()
        .map(|line| line["version"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = versions.iter().map(String::as_str).collect();
    assert_eq!(published, expected);
}

/// Files planted in a model folder: temp files as killed writers leave them, old and fresh,
/// and files that only look like them.
struct Planted {
    stale: Vec<PathBuf>,
    kept: Vec<PathBuf>,
}

fn plant(registry: &Path) -> Planted {
    let model_dir = registry.join("churn");
    let versions = registry::versions_dir(registry, "churn");
    std::fs::create_dir_all(&versions).unwrap();
    let long_ago = SystemTime::now() - STALE_TEMP_AGE - Duration::from_secs(60);
    let make = |path: PathBuf, modified: SystemTime| {
        std::fs::write(&path, b"half a file").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        path
    };
    let now = SystemTime::now();
    Planted {
        stale: vec![
            make(model_dir.join(".model.wasm.tmp-41-0123456789ab"), long_ago),
            make(
                model_dir.join(".history.jsonl.tmp-1-a1b2c3d4e5f6"),
                long_ago,
            ),
            make(versions.join(".v1.wasm.tmp-7-fedcba987654"), long_ago),
            make(versions.join(".v1.json.tmp-7-00000000000f"), long_ago),
        ],
        kept: vec![
            // Another writer's, in progress.
            make(model_dir.join(".model.wasm.tmp-42-0123456789ac"), now),
            make(versions.join(".v2.wasm.tmp-8-abcdefabcdef"), now),
            // Not names modelhost makes.
            make(model_dir.join(".model.wasm.tmp-notours"), long_ago),
            make(model_dir.join(".keep"), long_ago),
            make(versions.join("notes.tmp-1-0123456789ab"), long_ago),
            make(versions.join(".v3.wasm.tmp-9-0123456789AB"), long_ago),
        ],
    }
}

fn check_swept(planted: &Planted) {
    for path in &planted.stale {
        assert!(!path.exists(), "{} was left", path.display());
    }
    for path in &planted.kept {
        assert!(path.exists(), "{} was removed", path.display());
    }
}

#[test]
fn a_registry_write_removes_stale_temp_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let planted = plant(&registry);
    let incoming = dir.path().join("v1.wasm");
    std::fs::write(&incoming, churn_artifact("v1", 0.0)).unwrap();
    let run = cli([
        OsStr::new("publish"),
        OsStr::new("--registry-dir"),
        registry.as_os_str(),
        incoming.as_os_str(),
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    check_swept(&planted);

    // A refused training run writes the registry too.
    let planted = plant(&registry);
    let run = train(
        &registry,
        &["--synthetic", "300", "--seed", "5", "--gate-f1", "0.99"],
    );
    assert_eq!(run.code, Some(4), "{run:?}");
    check_swept(&planted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_start_removes_stale_temp_files_and_nothing_else() {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let planted = plant(registry.path());
    let server = start_server(registry.path()).await;
    let swept = eventually(Duration::from_secs(10), || async {
        planted.stale.iter().all(|path| !path.exists())
    })
    .await;
    assert!(swept, "stale temp files left at start");
    check_swept(&planted);
    server.shutdown().await.unwrap();
}
