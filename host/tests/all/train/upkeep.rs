//! `rollback`, `versions` and `publish` on real registries, and what an interrupted publish
//! leaves behind.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use modelhost::model::{Model, sha256_hex};
use modelhost::registry;
use modelhost::runtime::{Limits, Runtime};
use serde_json::{Value, json};

use super::{
    cli, finish, history, live, modelhost, snapshot, train_passing, train_refused, version_file,
};
use crate::common::{churn_artifact, fixture};

fn registry_args<'a>(command: &'a str, registry: &'a Path) -> Vec<&'a OsStr> {
    vec![
        OsStr::new(command),
        OsStr::new("--registry-dir"),
        registry.as_os_str(),
    ]
}

fn rollback(registry: &Path, to: Option<&str>) -> super::Run {
    let mut args = registry_args("rollback", registry);
    if let Some(to) = to {
        args.extend([OsStr::new("--to"), OsStr::new(to)]);
    }
    cli(args)
}

pub(super) fn versions_json(registry: &Path) -> Value {
    let mut args = registry_args("versions", registry);
    args.push(OsStr::new("--json"));
    let run = cli(args);
    assert_eq!(run.code, Some(0), "{run:?}");
    run.json()
}

pub(super) fn publish(registry: &Path, file: &Path, model_name: &str) -> super::Run {
    let mut args = registry_args("publish", registry);
    args.extend([
        file.as_os_str(),
        OsStr::new("--model-name"),
        OsStr::new(model_name),
    ]);
    cli(args)
}

pub(super) fn live_bytes(registry: &Path) -> Vec<u8> {
    std::fs::read(live(registry)).unwrap()
}

pub(super) fn version_bytes(registry: &Path, version: &str) -> Vec<u8> {
    std::fs::read(version_file(registry, version)).unwrap()
}

/// Loads the live model as the server would.
pub(super) fn load_live(registry: &Path) -> Model {
    let runtime = Runtime::new(Limits::default()).unwrap();
    Model::load(&runtime, &live_bytes(registry), live(registry)).unwrap()
}

/// The one row `versions --json` marks live.
fn live_row(listing: &Value) -> Value {
    let rows: Vec<&Value> = listing["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["live"] == true)
        .collect();
    assert_eq!(rows.len(), 1, "{listing:#}");
    rows[0].clone()
}

#[test]
fn rollback_returns_to_the_previous_promoted_version_then_further_back() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path();
    let v1 = train_passing(registry, 1);
    let v3 = train_passing(registry, 3);
    let refused = train_refused(registry, 2);
    let v4 = train_passing(registry, 4);

    let run = rollback(registry, None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains(&format!("from {v4} to {v3}")),
        "{run:?}"
    );
    assert!(
        live_bytes(registry) == version_bytes(registry, &v3),
        "refused runs are skipped"
    );
    let last = history(registry).pop().unwrap();
    assert_eq!(last["event"], "rollback");
    assert_eq!(last["version"], v3.as_str());
    assert_eq!(last["from"], v4.as_str());
    assert_eq!(
        last["sha256"],
        sha256_hex(&version_bytes(registry, &v3)).as_str()
    );

    // A second rollback walks further back instead of toggling.
    let run = rollback(registry, None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(live_bytes(registry) == version_bytes(registry, &v1));
    load_live(registry);

    let before = snapshot(registry);
    let run = rollback(registry, None);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("no version was live before `{v1}`")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&refused),
        "lists the known versions: {run:?}"
    );
    assert!(snapshot(registry) == before);

    let listing = versions_json(registry);
    assert_eq!(listing["live"]["version"], v1.as_str());
    let row = live_row(&listing);
    assert_eq!(row["event"], "rollback");
    assert_eq!(row["line"], 6);
    assert_eq!(listing["history"].as_array().unwrap().len(), 6);
}

#[test]
fn rollback_to_a_named_version_and_to_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path();
    let v1 = train_passing(registry, 1);
    let v2 = train_passing(registry, 2);
    let refused = train_refused(registry, 5);

    // A refused version can be named explicitly.
    let run = rollback(registry, Some(&refused));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(live_bytes(registry) == version_bytes(registry, &refused));
    assert_eq!(history(registry).pop().unwrap()["named"], true);

    let before = snapshot(registry);
    let run = rollback(registry, Some("v-nope"));
    assert_eq!(run.code, Some(64), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("unknown version `v-nope`"), "{run:?}");
    for known in [&v1, &v2, &refused] {
        assert!(run.stderr.contains(known.as_str()), "{run:?}");
    }
    assert!(
        snapshot(registry) == before,
        "an unknown version changed the registry"
    );

    // The live version again: nothing to do, nothing written.
    let run = rollback(registry, Some(&refused));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("already live"), "{run:?}");
    assert!(snapshot(registry) == before);

    // REGISTRY_DIR and MODEL_NAME work like the flags.
    let run = finish(
        modelhost()
            .args(["rollback", "--to", &v1])
            .env("REGISTRY_DIR", registry)
            .env("MODEL_NAME", "churn"),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(live_bytes(registry) == version_bytes(registry, &v1));

    // A version file that no longer matches its recorded sha256 is not promoted.
    std::fs::write(
        version_file(registry, &v2),
        churn_artifact("v-imposter", 0.0),
    )
    .unwrap();
    let before = snapshot(registry);
    let run = rollback(registry, Some(&v2));
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("does not match its recorded sha256"),
        "{run:?}"
    );
    assert!(snapshot(registry) == before);
}

#[test]
fn versions_lists_the_history_with_metrics_and_marks_the_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path();
    let v1 = train_passing(registry, 1);
    let refused = train_refused(registry, 2);
    let run = cli(registry_args("versions", registry));
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].contains(&format!("live {v1}")), "{}", run.stdout);
    assert!(
        lines[1].contains("F1") && lines[1].contains("ROC_AUC"),
        "{}",
        run.stdout
    );
    assert!(lines[2].starts_with(&format!("* {v1}")), "{}", run.stdout);
    assert!(lines[2].contains("passed"), "{}", run.stdout);
    assert!(
        lines[3].starts_with(&format!("  {refused}")),
        "{}",
        run.stdout
    );
    assert!(lines[3].contains("refused"), "{}", run.stdout);

    let listing = versions_json(registry);
    let rows = listing["history"].as_array().unwrap();
    assert_eq!(rows[1]["gate_passed"], false);
    assert_eq!(rows[1]["promoted"], false);
    assert!(rows[0]["f1"].is_f64() && rows[0]["roc_auc"].is_f64());

    // A hand-copied model.wasm is not mistaken for a recorded version.
    registry::write_atomic(&live(registry), &churn_artifact("v-hand", 0.0)).unwrap();
    let listing = versions_json(registry);
    assert_eq!(listing["live"]["state"], "unrecorded");
    assert!(
        listing["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["live"] == false)
    );
    let run = rollback(registry, None);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("matches no recorded version"),
        "{run:?}"
    );

    let run = run_versions_of(registry, "no-such-model");
    assert_eq!(run.code, Some(64), "{run:?}");
    assert!(run.stderr.contains("no-such-model"), "{run:?}");
}

fn run_versions_of(registry: &Path, model_name: &str) -> super::Run {
    let mut args = registry_args("versions", registry);
    args.extend([OsStr::new("--model-name"), OsStr::new(model_name)]);
    cli(args)
}

#[test]
fn publish_checks_stores_and_promotes_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let trained = train_passing(&registry, 1);
    let file = dir.path().join("incoming.wasm");
    let bytes = churn_artifact("v-external", 0.0);
    std::fs::write(&file, &bytes).unwrap();

    let run = publish(&registry, &file, "churn");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains(&format!("replacing {trained}")),
        "{run:?}"
    );
    assert!(live_bytes(&registry) == bytes);
    assert!(version_bytes(&registry, "v-external") == bytes);
    assert_eq!(load_live(&registry).version(), "v-external");
    let record = registry::version_record_path(&registry, "churn", "v-external");
    let record: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    assert_eq!(record["sha256"], sha256_hex(&bytes).as_str());
    assert_eq!(
        record["source"]["file"],
        json!(std::path::absolute(&file).unwrap())
    );
    assert!(record["published_at"].is_string());
    assert_eq!(
        record["metrics"]["f1"], 0.72,
        "metrics come from the model's info"
    );
    let last = history(&registry).pop().unwrap();
    assert_eq!(
        (&last["event"], &last["version"], &last["promoted"]),
        (&json!("publish"), &json!("v-external"), &json!(true))
    );

    let listing = versions_json(&registry);
    assert_eq!(listing["live"]["version"], "v-external");
    let row = live_row(&listing);
    assert_eq!(
        (&row["event"], &row["f1"]),
        (&json!("publish"), &json!(0.72))
    );

    // Rollback undoes a publish like any promotion; publishing again re-promotes.
    assert_eq!(rollback(&registry, None).code, Some(0));
    assert!(live_bytes(&registry) == version_bytes(&registry, &trained));
    let run = publish(&registry, &file, "churn");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(live_bytes(&registry) == bytes);
    // Once live, publishing the same bytes writes nothing.
    let before = snapshot(&registry);
    let run = publish(&registry, &file, "churn");
    assert!(
        run.code == Some(0) && run.stdout.contains("already live"),
        "{run:?}"
    );
    assert!(snapshot(&registry) == before);
}

#[test]
fn publish_refuses_a_bad_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    train_passing(&registry, 1);
    let file = |name: &str, bytes: &[u8]| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let cases: Vec<(PathBuf, &str, &[&str])> = vec![
        (
            file(
                "garbage.wasm",
                b"\x00asm\x01\x00\x00\x00 then garbage bytes",
            ),
            "churn",
            &["garbage.wasm", "would be refused (invalid_wasm)"],
        ),
        (
            file("text.wasm", b"this is not wasm at all"),
            "churn",
            &["would be refused (not_wasm)"],
        ),
        (
            file("import.wasm", &fixture("import.wat")),
            "churn",
            &[
                "would be refused (import)",
                "wasi_snapshot_preview1::fd_write",
            ],
        ),
        (
            file("named.wasm", &churn_artifact("v-named", 0.0)),
            "fraud",
            &["named `churn`, not `fraud`"],
        ),
        (
            file("escape.wasm", &churn_artifact("../escape", 0.0)),
            "churn",
            &["\"../escape\" cannot name a file"],
        ),
        (
            dir.path().join("absent.wasm"),
            "churn",
            &["cannot read", "absent.wasm"],
        ),
    ];
    let before = snapshot(&registry);
    for (path, model_name, expected) in &cases {
        let run = publish(&registry, path, model_name);
        assert_eq!(run.code, Some(65), "{path:?}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
        for word in *expected {
            assert!(run.stderr.contains(word), "{word}: {run:?}");
        }
        assert!(
            snapshot(&registry) == before,
            "{path:?} changed the registry"
        );
    }
    assert!(!registry.join("fraud").exists());
    assert!(!dir.path().join("registry/churn/escape.wasm").exists());

    // A different model under a version that already exists is refused too.
    let first = file("first.wasm", &churn_artifact("v-taken", 0.0));
    assert_eq!(publish(&registry, &first, "churn").code, Some(0));
    let before = snapshot(&registry);
    let clash = file("clash.wasm", &churn_artifact("v-taken", 0.5));
    let run = publish(&registry, &clash, "churn");
    assert_eq!(run.code, Some(65), "{run:?}");
    assert!(run.stderr.contains("`v-taken` already exists"), "{run:?}");
    assert!(snapshot(&registry) == before);
}

/// An operator's `model.wasm.sha256` (which servers hold `model.wasm` to) is kept true by every
/// promotion, so a promoted model is never held back by a stale checksum.
#[test]
fn promotions_keep_a_checksum_file_true() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let v1 = train_passing(&registry, 1);
    let checksum = registry::checksum_path(&registry, "churn");
    let matches = |registry: &Path| {
        let recorded = registry::read_checksum(&checksum).unwrap().unwrap();
        recorded == sha256_hex(&live_bytes(registry))
    };
    std::fs::write(
        &checksum,
        format!("{}\n", sha256_hex(&live_bytes(&registry))),
    )
    .unwrap();

    train_passing(&registry, 2);
    assert!(matches(&registry), "after train");
    let file = dir.path().join("incoming.wasm");
    std::fs::write(&file, churn_artifact("v-external", 0.0)).unwrap();
    assert_eq!(publish(&registry, &file, "churn").code, Some(0));
    assert!(matches(&registry), "after publish");
    assert_eq!(rollback(&registry, Some(&v1)).code, Some(0));
    assert!(matches(&registry), "after rollback");
    assert!(live_bytes(&registry) == version_bytes(&registry, &v1));
}
