//! What interrupted publishes leave behind: the live model must always be one complete,
//! loadable model, and a retried publish must succeed.

use std::path::{Path, PathBuf};

use modelhost::model::sha256_hex;
use modelhost::registry;
use serde_json::json;

use super::upkeep::{live_bytes, load_live, publish, versions_json};
use super::{history, live, modelhost, snapshot, train_passing, version_file};
use crate::common::churn_artifact;

/// The files a publish writes, in its order, with their complete contents.
fn publish_steps(registry: &Path, bytes: &[u8], version: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let record = json!({"event": "publish", "model_name": "churn", "version": version,
        "sha256": sha256_hex(bytes), "promoted": true});
    let history_path = registry::history_path(registry, "churn");
    let mut history = std::fs::read(&history_path).unwrap();
    history.extend(format!("{record}\n").bytes());
    vec![
        (version_file(registry, version), bytes.to_vec()),
        (
            registry::version_record_path(registry, "churn", version),
            serde_json::to_vec_pretty(&record).unwrap(),
        ),
        (history_path, history),
        (live(registry), bytes.to_vec()),
    ]
}

/// Simulated: a kill can stop a publish only between two system calls, so we rebuild every
/// on-disk state one can leave, given that each file goes through a temp file, fsync and
/// rename: the steps before the interrupted one complete, and the interrupted one as a partial
/// temp file (`.<name>.tmp-<pid>`) that was never renamed. In each, the old model must still be
/// live, complete and loadable, and a retried publish must succeed.
#[test]
fn a_publish_interrupted_at_any_step_leaves_the_old_model_live() {
    let new = churn_artifact("v-new", 0.3);
    for interrupted in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry");
        let old_version = train_passing(&registry, 1);
        let old = live_bytes(&registry);
        let steps = publish_steps(&registry, &new, "v-new");
        for (path, contents) in &steps[..interrupted] {
            registry::write_atomic(path, contents).unwrap();
        }
        let (path, contents) = &steps[interrupted];
        let name = path.file_name().unwrap().to_str().unwrap();
        let temp = path.with_file_name(format!(".{name}.tmp-99999"));
        std::fs::create_dir_all(temp.parent().unwrap()).unwrap();
        std::fs::write(&temp, &contents[..contents.len() / 2]).unwrap();

        let step = format!("interrupted at step {interrupted}");
        assert!(live_bytes(&registry) == old, "{step}: live model changed");
        assert_eq!(load_live(&registry).version(), old_version, "{step}");
        let listing = versions_json(&registry);
        assert_eq!(listing["live"]["version"], old_version.as_str(), "{step}");

        let incoming = dir.path().join("new.wasm");
        std::fs::write(&incoming, &new).unwrap();
        let run = publish(&registry, &incoming, "churn");
        assert_eq!(run.code, Some(0), "{step}: retry: {run:?}");
        assert!(live_bytes(&registry) == new, "{step}");
        assert_eq!(load_live(&registry).version(), "v-new", "{step}");
    }
}

/// Real: a publish whose second write fails (its `versions/<v>.json` path is taken by a
/// directory) stops with an error after writing `versions/<v>.wasm`; the old model stays live.
#[test]
fn a_publish_failing_midway_leaves_the_old_model_live() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let old_version = train_passing(&registry, 1);
    let old = live_bytes(&registry);
    let history_before = history(&registry);
    std::fs::create_dir_all(registry::version_record_path(&registry, "churn", "v-new")).unwrap();
    let incoming = dir.path().join("new.wasm");
    std::fs::write(&incoming, churn_artifact("v-new", 0.3)).unwrap();

    let run = publish(&registry, &incoming, "churn");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("v-new.json"), "{run:?}");
    assert!(
        version_file(&registry, "v-new").is_file(),
        "the first step did run"
    );
    assert!(live_bytes(&registry) == old);
    assert_eq!(load_live(&registry).version(), old_version);
    assert_eq!(history(&registry), history_before);
    let leftovers: Vec<_> = snapshot(&registry)
        .into_keys()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
}

/// Real: publishes killed with SIGKILL as soon as their first file appears. Where each one
/// stopped is up to the scheduler, so this checks the invariant, not a particular step: the
/// live model is always one complete, loadable model, the old one or the new one.
#[test]
fn a_killed_publish_never_leaves_a_partial_live_model() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    train_passing(&registry, 1);
    for attempt in 0..3 {
        let old = live_bytes(&registry);
        let version = format!("v-killed-{attempt}");
        let new = churn_artifact(&version, 0.1 * attempt as f64);
        let incoming = dir.path().join(format!("{version}.wasm"));
        std::fs::write(&incoming, &new).unwrap();
        let mut child = modelhost()
            .args(["publish", "--registry-dir"])
            .arg(&registry)
            .arg(&incoming)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let versions = registry::versions_dir(&registry, "churn");
        let started = std::time::Instant::now();
        while !has_entry_for(&versions, &version) && child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed().as_secs() < 60,
                "publish never wrote anything"
            );
            std::thread::yield_now();
        }
        let _ = child.kill();
        child.wait().unwrap();
        let live_now = live_bytes(&registry);
        assert!(
            live_now == old || live_now == new,
            "attempt {attempt}: partial model.wasm"
        );
        load_live(&registry);
        let listing = versions_json(&registry);
        assert!(listing["live"]["version"].is_string(), "{listing:#}");
    }
}

/// Whether `dir` holds `<version>.wasm` or a temp file on its way to it.
fn has_entry_for(dir: &Path, version: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|listing| {
        listing
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(version))
    })
}
