//! `modelhost train` and the registry commands around it, through the real binary on real temp
//! registries: data checks, determinism, the committed default, the gate, history; rollback,
//! versions and publish in [`upkeep`]; interrupted publishes in [`crash`]; model specs in [`spec`]; batch scoring in
//! [`batch`].

mod batch;
mod crash;
mod spec;
mod upkeep;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The binary, with the registry environment variables cleared so a developer's shell cannot
/// steer a test.
pub fn modelhost() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modelhost"));
    command.env_remove("REGISTRY_DIR").env_remove("MODEL_NAME");
    command
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The standard output parsed as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Runs the binary with `args`.
pub fn cli<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    finish(modelhost().args(args))
}

/// Runs a prepared command.
pub fn finish(command: &mut Command) -> Run {
    let output = command.output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// `modelhost train --registry-dir REGISTRY --json EXTRA...`.
pub fn train(registry: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec![
        "train".as_ref(),
        "--registry-dir".as_ref(),
        registry.as_os_str(),
        "--json".as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    cli(args)
}

/// Trains on synthetic data with `seed` and a gate every model passes; returns the version.
pub fn train_passing(registry: &Path, seed: u64) -> String {
    let run = train(
        registry,
        &[
            "--synthetic",
            "600",
            "--seed",
            &seed.to_string(),
            "--gate-f1",
            "0",
        ],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    run.json()["version"].as_str().unwrap().to_string()
}

/// Trains on synthetic data with `seed` and a gate no model passes; returns the version.
pub fn train_refused(registry: &Path, seed: u64) -> String {
    let run = train(
        registry,
        &[
            "--synthetic",
            "600",
            "--seed",
            &seed.to_string(),
            "--gate-f1",
            "0.99",
        ],
    );
    assert_eq!(run.code, Some(4), "{run:?}");
    run.json()["version"].as_str().unwrap().to_string()
}

/// Every file under `dir` with its bytes (empty if `dir` does not exist).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in listing {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// `registry/churn/model.wasm`.
pub fn live(registry: &Path) -> PathBuf {
    modelhost::registry::live_path(registry, "churn")
}

/// `registry/churn/versions/<version>.wasm`.
pub fn version_file(registry: &Path, version: &str) -> PathBuf {
    modelhost::registry::version_path(registry, "churn", version)
}

/// The history lines of `registry/churn`.
pub fn history(registry: &Path) -> Vec<Value> {
    modelhost::registry::read_history(registry, "churn").unwrap()
}

/// A churn CSV of the lab's generator: header and rows as text, for tests to damage.
fn churn_csv(n_rows: usize, seed: u64) -> (Vec<String>, Vec<Vec<String>>) {
    let data = modelhost_train::synthetic_churn(n_rows, seed);
    let mut bytes = Vec::new();
    modelhost_train::write_csv_to(&data, "churn", &mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect());
    (lines.next().unwrap(), lines.collect())
}

fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) {
    let mut text = header.join(",") + "\n";
    for row in rows {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

type Damage = fn(&mut Vec<String>, &mut Vec<Vec<String>>);

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

fn drop_column(header: &mut Vec<String>, rows: &mut [Vec<String>], name: &str) {
    let index = column(header, name);
    header.remove(index);
    for row in rows {
        row.remove(index);
    }
}

#[test]
fn every_data_check_failure_exits_65_naming_the_column_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    train_passing(&registry, 1);
    let before = snapshot(&registry);
    let (header, rows) = churn_csv(400, 11);

    // The undamaged file trains, so each failure below is the damage's doing.
    let good = dir.path().join("good.csv");
    write_csv(&good, &header, &rows);
    let run = train(
        &dir.path().join("other"),
        &["--data", good.to_str().unwrap()],
    );
    assert!(matches!(run.code, Some(0 | 4)), "{run:?}");

    let cases: [(&str, Damage, &[&str]); 6] = [
        (
            "missing feature column",
            |h, r| drop_column(h, r, "region"),
            &["`region`", "missing"],
        ),
        (
            "missing target column",
            |h, r| drop_column(h, r, "churn"),
            &["`churn`", "missing"],
        ),
        (
            "more than 5% nulls",
            |h, r| {
                let i = column(h, "tenure_months");
                // 21 of 400 rows is 5.25 %.
                r.iter_mut().take(21).for_each(|row| row[i].clear());
            },
            &["`tenure_months`", "5.25% null"],
        ),
        (
            "non-numeric value in a numeric column",
            |h, r| {
                let i = column(h, "avg_session_minutes");
                r[2][i] = "lots".to_string();
            },
            &["`avg_session_minutes`", "row 3", "\"lots\""],
        ),
        (
            "non-0/1 target",
            |h, r| {
                let i = column(h, "churn");
                r[4][i] = "2".to_string();
            },
            &["`churn`", "row 5", "\"2\""],
        ),
        (
            "yes/no target",
            |h, r| {
                let i = column(h, "churn");
                r[0][i] = "yes".to_string();
            },
            &["`churn`", "row 1", "\"yes\""],
        ),
    ];
    for (name, damage, expected) in cases {
        let (mut header, mut rows) = (header.clone(), rows.clone());
        damage(&mut header, &mut rows);
        let path = dir.path().join("bad.csv");
        write_csv(&path, &header, &rows);
        for target in [&registry, &dir.path().join("fresh")] {
            let run = train(target, &["--data", path.to_str().unwrap()]);
            assert_eq!(run.code, Some(65), "{name}: {run:?}");
            assert_eq!(run.stderr.lines().count(), 1, "{name}: {run:?}");
            assert!(run.stderr.contains("data check failed"), "{name}: {run:?}");
            for word in expected {
                assert!(run.stderr.contains(word), "{name}: {word}: {run:?}");
            }
            assert!(run.stdout.is_empty(), "{name}: {run:?}");
        }
        assert!(
            snapshot(&registry) == before,
            "{name}: the registry changed"
        );
        assert!(
            !dir.path().join("fresh").exists(),
            "{name}: created a registry"
        );
    }
}

#[test]
fn training_twice_gives_byte_identical_artifacts_and_the_same_version() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first = train_passing(&a, 9);
    let second = train_passing(&b, 9);
    assert_eq!(first, second);
    let bytes = std::fs::read(live(&a)).unwrap();
    assert!(bytes == std::fs::read(live(&b)).unwrap());
    assert!(bytes == std::fs::read(version_file(&a, &first)).unwrap());
    assert_ne!(train_passing(&a, 10), first, "another seed, another model");

    // From a CSV file too, and a third run into the same registry changes nothing but history.
    let (header, rows) = churn_csv(500, 4);
    let csv = dir.path().join("data.csv");
    write_csv(&csv, &header, &rows);
    let args = ["--data", csv.to_str().unwrap(), "--gate-f1", "0"];
    let (one, two) = (train(&a, &args), train(&b, &args));
    assert_eq!(one.json()["version"], two.json()["version"]);
    assert_eq!(one.json()["sha256"], two.json()["sha256"]);
    assert!(std::fs::read(live(&a)).unwrap() == std::fs::read(live(&b)).unwrap());
}

#[test]
fn the_committed_default_model_is_regenerated_byte_for_byte() {
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/../registry/churn/model.wasm");
    let committed = std::fs::read(committed).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = train(dir.path(), &["--synthetic", "1200", "--seed", "42"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let fresh = std::fs::read(live(dir.path())).unwrap();
    let sha = modelhost::model::sha256_hex;
    assert_eq!(
        sha(&fresh),
        sha(&committed),
        "registry/churn/model.wasm is stale: regenerate it with \
         `modelhost train --registry-dir registry --synthetic 1200 --seed 42`"
    );
    let version = run.json()["version"].as_str().unwrap().to_string();
    let committed_version = concat!(env!("CARGO_MANIFEST_DIR"), "/../registry");
    assert!(version_file(Path::new(committed_version), &version).is_file());
}

#[test]
fn the_gate_promotes_a_passing_model_and_records_a_refused_one_without_promoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path();
    let run = train(registry, &["--synthetic", "1200", "--seed", "42"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let passed = run.json();
    assert_eq!(passed["promoted"], true);
    assert_eq!(passed["gate"]["passed"], true);
    let first = passed["version"].as_str().unwrap();
    let live_bytes = std::fs::read(live(registry)).unwrap();
    assert!(live_bytes == std::fs::read(version_file(registry, first)).unwrap());

    let run = train(
        registry,
        &["--synthetic", "1200", "--seed", "7", "--gate-f1", "0.99"],
    );
    assert_eq!(run.code, Some(4), "{run:?}");
    let refused = run.json();
    assert_eq!(refused["promoted"], false);
    assert_eq!(refused["gate"]["passed"], false);
    let second = refused["version"].as_str().unwrap();
    assert!(version_file(registry, second).is_file());
    let record = modelhost::registry::version_record_path(registry, "churn", second);
    let record: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    assert_eq!(record["promoted"], false);
    assert_eq!(record["gate"]["f1_min"], 0.99);
    assert!(
        std::fs::read(live(registry)).unwrap() == live_bytes,
        "live model changed"
    );
    assert_eq!(history(registry).len(), 2);

    // The human summary says so too.
    let human = run_human_refusal(registry);
    assert!(human.contains("gate refused"), "{human}");

    // Refused into an empty registry: recorded, nothing live.
    let empty = dir.path().join("empty");
    train_refused(&empty, 3);
    assert!(!live(&empty).exists());
    assert_eq!(history(&empty).len(), 1);
}

fn run_human_refusal(registry: &Path) -> String {
    let run = cli([
        OsStr::new("train"),
        OsStr::new("--registry-dir"),
        registry.as_os_str(),
        OsStr::new("--gate-f1"),
        OsStr::new("0.99"),
    ]);
    assert_eq!(run.code, Some(4), "{run:?}");
    run.stdout
}

#[test]
fn history_gets_one_line_per_run_promoted_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path();
    let a = train_passing(registry, 1);
    let b = train_refused(registry, 2);
    let again = train_passing(registry, 1);
    assert_eq!(a, again);
    let lines = history(registry);
    let field = |key: &str| lines.iter().map(|l| l[key].clone()).collect::<Vec<_>>();
    assert_eq!(field("event"), ["train", "train", "train"]);
    assert_eq!(field("version"), [a.as_str(), b.as_str(), a.as_str()]);
    assert_eq!(field("promoted"), [true, false, true]);
    for line in &lines {
        for key in ["sha256", "trained_at", "seed", "metrics", "gate", "data"] {
            assert!(!line[key].is_null(), "{key} missing in {line}");
        }
        assert!(line["metrics"]["f1"].is_f64());
    }
    // The history file is whole lines only.
    let text = std::fs::read_to_string(modelhost::registry::history_path(registry, "churn"));
    assert!(text.unwrap().ends_with('\n'));
}

#[test]
fn every_registry_subcommand_documents_exit_status_and_environment() {
    for command in ["train", "rollback", "versions", "publish", "predict"] {
        let run = cli([command, "--help"]);
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(
            run.stdout.contains("Exit status"),
            "{command}: {}",
            run.stdout
        );
        if command != "predict" {
            assert!(run.stdout.contains("[env: REGISTRY_DIR]"), "{command}");
            assert!(run.stdout.contains("[env: MODEL_NAME]"), "{command}");
        }
    }
}
