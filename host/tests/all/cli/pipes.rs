//! Output to a pipe whose reader went away (`modelhost versions | head -1`): commands end
//! quietly with their own exit status, and a server whose log reader is gone keeps serving.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{churn_artifact, example_customer, temp_registry};

use super::modelhost;

/// The committed default registry at the repository root.
fn committed_registry() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../registry")
}

/// Runs `command` with its standard output a pipe whose read end is closed before the command
/// writes anything, so its first write to stdout fails with EPIPE.
fn with_closed_stdout(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

fn assert_quiet(what: &str, output: &Output, code: i32) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_eq!(output.status.code(), Some(code), "{what}: {stderr}");
    assert_eq!(stderr, "", "{what}: nothing to say about a closed pipe");
}

#[test]
fn commands_end_quietly_when_their_reader_goes_away() {
    let registry = committed_registry();
    for json in [false, true] {
        let mut versions = modelhost();
        versions
            .arg("versions")
            .arg("--registry-dir")
            .arg(&registry);
        if json {
            versions.arg("--json");
        }
        assert_quiet("versions", &with_closed_stdout(versions), 0);

        let mut inspect = modelhost();
        inspect
            .arg("inspect")
            .arg(registry.join("churn/model.wasm"));
        if json {
            inspect.arg("--json");
        }
        assert_quiet("inspect", &with_closed_stdout(inspect), 0);
    }

    let dir = tempfile::tempdir().unwrap();
    let mut train = modelhost();
    train
        .args([
            "train",
            "--synthetic",
            "200",
            "--gate-f1",
            "0",
            "--registry-dir",
        ])
        .arg(dir.path());
    assert_quiet("train", &with_closed_stdout(train), 0);
    assert!(
        dir.path().join("churn/model.wasm").exists(),
        "the run itself completed"
    );

    let model = dir.path().join("scoring.wasm");
    std::fs::write(&model, churn_artifact("v-pipe", 0.0)).unwrap();
    let input = dir.path().join("rows.jsonl");
    std::fs::write(&input, format!("{}\n", example_customer()).repeat(50)).unwrap();
    let output = with_closed_stdout({
        let mut predict = modelhost();
        predict
            .args(["predict", "--model"])
            .arg(&model)
            .arg("--input")
            .arg(&input);
        predict
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("scored 50 of 50 rows"), "{stderr}");
}

/// A full disk is a real failure, unlike a reader going away: one line and exit 1, no panic.
#[cfg(target_os = "linux")]
#[test]
fn a_failing_stdout_is_one_line_and_exit_1() {
    let output = modelhost()
        .arg("versions")
        .arg("--registry-dir")
        .arg(committed_registry())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.starts_with("modelhost: cannot write to standard output: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A `modelhost serve` child on 127.0.0.1:0 with both output streams piped to this test.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `modelhost serve` on `registry` with `env`, and reads its log until the listening
/// line. Returns the child, its standard error (still open) and the lines read so far.
fn serve(
    registry: &Path,
    env: &[(&str, &str)],
) -> (Serve, BufReader<std::process::ChildStderr>, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelhost"))
        .arg("serve")
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("REGISTRY_DIR", registry)
        .env("LOG_DIR", registry.join("logs"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    let child = Serve(child);
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "modelhost serve ended before listening:\n{}",
            lines.join("")
        );
        let listening = line.contains("modelhost listening");
        lines.push(line);
        if listening {
            return (child, stderr, lines);
        }
    }
}

/// `addr` from the JSON listening line.
fn address(lines: &[String]) -> String {
    let line = lines.last().unwrap();
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    format!("http://{}", value["addr"].as_str().unwrap())
}

fn dropped_log_lines(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("modelhost_log_lines_dropped_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no modelhost_log_lines_dropped_total in:\n{metrics}"))
}

#[tokio::test]
async fn serve_keeps_serving_when_its_log_reader_goes_away() {
    let registry = temp_registry(Some(&churn_artifact("v-pipe", 0.0)));
    let (mut child, stderr, lines) = serve(
        registry.path(),
        &[("LOG_FORMAT", "json"), ("LOG_LEVEL", "debug")],
    );
    let base = address(&lines);
    // `serve 2>&1 | head`: the reader is gone, every later log line fails to be written.
    drop(stderr);
    drop(child.0.stdout.take());

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client.get(format!("{base}/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the server exited without its log reader"
        );
        assert!(Instant::now() < deadline, "the model never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        let health = client.get(format!("{base}/health")).send().await.unwrap();
        assert!(health.status().is_success());
        let answer = client
            .post(format!("{base}/predict"))
            .json(&example_customer())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["model_version"], "v-pipe");
    }
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dropped_log_lines(&metrics) > 0, "{metrics}");
    assert!(
        metrics.contains("Log lines lost because standard error could not be written"),
        "{metrics}"
    );
    assert!(child.0.try_wait().unwrap().is_none(), "still running");
}

#[test]
fn text_logs_to_a_pipe_have_no_colour_codes() {
    let registry = temp_registry(Some(&churn_artifact("v-text", 0.0)));
    let (_child, _stderr, lines) = serve(registry.path(), &[("LOG_FORMAT", "text")]);
    let text = lines.concat();
    assert!(text.contains("modelhost listening"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in a pipe: {text:?}");
}
