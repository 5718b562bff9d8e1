//! Error and help messages through the real binary: each cause said once, messages that name
//! the setting at fault, `predict`'s error lines in the HTTP 422 shape.

use std::path::Path;

use crate::common::{churn_artifact, example_customer, fixture};

use super::modelhost;

/// Runs `modelhost args...`; (exit status, stdout, stderr).
fn run(args: &[&str], file: &Path) -> (Option<i32>, String, String) {
    let output = modelhost().args(args).arg(file).output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn assert_said_once(stderr: &str, cause: &str) {
    assert_eq!(
        stderr.matches(cause).count(),
        1,
        "`{cause}` should appear exactly once in: {stderr}"
    );
}

#[test]
fn inspect_says_the_cause_of_a_non_wasm_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.wasm");
    std::fs::write(&file, "these are not wasm bytes").unwrap();
    let (code, _, stderr) = run(&["inspect"], &file);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("would be refused (not_wasm)"), "{stderr}");
    assert_said_once(&stderr, "not a wasm core module");
    assert_said_once(
        &stderr,
        "the file does not start with the wasm magic number",
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn inspect_says_the_cause_of_a_missing_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nonexistent.wasm");
    let (code, _, stderr) = run(&["inspect"], &file);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read {}", file.display())),
        "{stderr}"
    );
    assert_said_once(&stderr, "No such file or directory");
}

#[test]
fn a_self_test_refusal_says_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();

    // The self-test's predict call fails.
    let nan = dir.path().join("nan.wasm");
    std::fs::write(&nan, fixture("hostile/predict_nan.wat")).unwrap();
    let (code, _, stderr) = run(&["inspect"], &nan);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("would be refused (bad_output)"), "{stderr}");
    assert_said_once(&stderr, "self-test failed");
    assert_said_once(&stderr, "returned NaN for row 0");

    // The self-test's answers do not match the golden pairs.
    let mut bytes = churn_artifact("v-tampered", 0.0);
    let at = bytes
        .windows(16)
        .position(|w| w == modelhost_abi::params::MAGIC)
        .unwrap()
        + modelhost_abi::params::HEADER_SIZE;
    bytes[at..at + 8].copy_from_slice(&5.0f64.to_le_bytes());
    let tampered = dir.path().join("tampered.wasm");
    std::fs::write(&tampered, &bytes).unwrap();
    let (code, _, stderr) = run(&["inspect"], &tampered);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("would be refused (self_test)"), "{stderr}");
    assert_said_once(&stderr, "self-test failed");
    assert_said_once(&stderr, "golden[0]");

    // The same refusal from `publish`, which checks with the same code.
    let registry = tempfile::tempdir().unwrap();
    let output = modelhost()
        .arg("publish")
        .arg(&nan)
        .arg("--registry-dir")
        .arg(registry.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(65), "{stderr}");
    assert_said_once(&stderr, "self-test failed");
    assert_said_once(&stderr, "returned NaN for row 0");

    // A failing `info()` call: three levels (file, load step, call) and each said once.
    let looping = dir.path().join("info_loop.wasm");
    std::fs::write(&looping, fixture("hostile/info_loop.wat")).unwrap();
    let (code, _, stderr) = run(&["inspect"], &looping);
    assert_eq!(code, Some(1), "{stderr}");
    assert_said_once(&stderr, "info() failed");
    assert_said_once(&stderr, "ms time limit");
}

#[test]
fn train_on_zero_rows_says_too_few_rows_and_names_the_flag() {
    let registry = tempfile::tempdir().unwrap();
    let output = modelhost()
        .args(["train", "--synthetic", "0", "--registry-dir"])
        .arg(registry.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(65), "{stderr}");
    assert!(stderr.contains("--synthetic 0"), "{stderr}");
    assert!(stderr.contains("too few"), "{stderr}");
    assert!(!stderr.contains("one class"), "{stderr}");
    assert!(
        !registry.path().join("churn").exists(),
        "nothing is written"
    );
}

#[test]
fn subcommand_help_names_the_environment_variables_without_a_value() {
    for command in ["versions", "rollback", "publish", "train", "drift"] {
        let output = modelhost()
            .args([command, "--help"])
            .env_remove("REGISTRY_DIR")
            .env_remove("MODEL_NAME")
            .output()
            .unwrap();
        assert!(output.status.success(), "{command}");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains("[env: REGISTRY_DIR]"), "{command}: {help}");
        assert!(help.contains("[env: MODEL_NAME]"), "{command}: {help}");
        assert!(!help.contains("[env: REGISTRY_DIR="), "{command}: {help}");
        assert!(!help.contains("[env: MODEL_NAME="), "{command}: {help}");
    }
}

#[test]
fn predict_error_lines_use_the_http_names_and_count_rows_right() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.wasm");
    std::fs::write(&model, churn_artifact("v-messages", 0.0)).unwrap();
    let mut bad = example_customer();
    bad["tenure_months"] = serde_json::json!(-3);
    let input = dir.path().join("rows.jsonl");
    std::fs::write(&input, format!("{}\n{bad}\n", example_customer())).unwrap();

    let output = modelhost()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(65), "{stderr}");
    assert!(stderr.contains("scored 1 of 2 rows"), "{stderr}");
    assert!(
        stderr.contains("; 1 invalid row (an error line):"),
        "{stderr}"
    );
    assert!(!stderr.contains("invalid rows"), "{stderr}");

    let stdout = String::from_utf8(output.stdout).unwrap();
    let line: serde_json::Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    let field = &line["fields"][0];
    assert_eq!(
        field["loc"],
        serde_json::json!([2, "tenure_months"]),
        "{line}"
    );
    assert_eq!(field["field"], "tenure_months", "{line}");
    assert_eq!(field["type"], "range", "{line}");
    assert!(
        field["msg"].as_str().unwrap().contains("tenure_months"),
        "{line}"
    );
    assert!(
        field.get("kind").is_none() && field.get("message").is_none(),
        "{line}"
    );
}
