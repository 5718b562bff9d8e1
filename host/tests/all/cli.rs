//! The real binary: exit codes and messages for configuration errors and `inspect`; error and
//! help messages (`messages`); output to a pipe whose reader went away (`pipes`).

use std::process::Command;

use crate::common::{churn_artifact, fixture};

mod messages;
mod pipes;

fn modelhost() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modelhost"))
}

#[test]
fn bad_configuration_exits_64_with_one_line() {
    let output = modelhost().env("PORT", "not-a-port").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("invalid PORT=\"not-a-port\""), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("modelhost.toml");
    std::fs::write(&file, "colour = \"blue\"\n").unwrap();
    let output = modelhost()
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown key `colour`"));

    let output = modelhost().arg("--no-such-flag").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
}

#[test]
fn help_lists_every_setting_with_its_env_and_default() {
    let output = modelhost().arg("serve").arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for setting in modelhost::config::SETTINGS {
        assert!(
            help.contains(&format!("--{}", setting.key.replace('_', "-"))),
            "{help}"
        );
        assert!(help.contains(&format!("[env: {}]", setting.env)), "{help}");
    }
    assert!(help.contains("[default: 8000]"));
}

#[test]
fn inspect_accepts_a_good_artifact_and_names_the_reason_for_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.wasm");
    std::fs::write(&good, churn_artifact("v-inspect", 0.0)).unwrap();
    let output = modelhost().arg("inspect").arg(&good).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("v-inspect") && stdout.contains("passed (3 golden pairs)"),
        "{stdout}"
    );

    let output = modelhost()
        .args(["inspect", "--json"])
        .arg(&good)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["info"]["version"], "v-inspect");

    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, fixture("import.wat")).unwrap();
    let output = modelhost().arg("inspect").arg(&bad).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("would be refused (import)"), "{stderr}");
    assert!(
        stderr.contains("wasi_snapshot_preview1::fd_write"),
        "{stderr}"
    );
}

/// A token file that cannot be used, or a token set twice, stops `serve` with 64 and one line
/// naming the file or both settings, never the token.
#[test]
fn a_bad_monitoring_token_file_exits_64_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-token");
    let output = modelhost()
        .env_clear()
        .env("MONITORING_TOKEN_FILE", &missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "invalid MONITORING_TOKEN_FILE: {}: cannot read it",
            missing.display()
        )),
        "{stderr}"
    );

    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let output = modelhost()
        .env_clear()
        .arg("serve")
        .arg("--monitoring-token-file")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "invalid --monitoring-token-file: {}: is empty",
            empty.display()
        )),
        "{stderr}"
    );

    let token = dir.path().join("token");
    std::fs::write(&token, "s3cr3t-in-file\n").unwrap();
    let output = modelhost()
        .env_clear()
        .env("MONITORING_TOKEN", "s3cr3t-in-env")
        .env("MONITORING_TOKEN_FILE", &token)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("MONITORING_TOKEN and MONITORING_TOKEN_FILE are both set"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
}
