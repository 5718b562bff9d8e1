//! Hostile artifacts: modules that loop, recurse, trap, bomb their memory, hand back absurd
//! pointers or non-probabilities, carry a giant or malformed info document, import things, run a
//! start function; precompiled engine code, a native binary, an empty file. Each is refused with
//! a named reason by the loader, by the watcher (logged, counted by reason, shown in
//! `GET /model`) and by `modelhost inspect`, while the serving model keeps answering. A model
//! that misbehaves only for some inputs fails only those requests. Fixtures are in
//! `tests/fixtures/hostile/`.

mod limits;
mod requests;
mod selective;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use modelhost::model::Model;
use modelhost::runtime::{Limits, LoadError, Runtime};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{
    base_url, capture_logs, churn_artifact, eventually, example_customer, fixture, live_path,
    start_server_with, temp_registry, wait_for_version,
};

const PATIENCE: Duration = Duration::from_secs(10);

/// A hostile fixture's bytes: `.wat` files are assembled, anything else is read as is.
pub fn hostile(name: &str) -> Vec<u8> {
    if name.ends_with(".wat") {
        return fixture(&format!("hostile/{name}"));
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An artifact the host must refuse, the reason label it must give, and words the message must
/// contain.
struct Refused {
    name: &'static str,
    bytes: Vec<u8>,
    reason: &'static str,
    words: &'static str,
}

/// Every artifact that must never serve.
fn refused_artifacts() -> Vec<Refused> {
    let file = |name: &'static str, reason: &'static str, words: &'static str| Refused {
        name,
        bytes: hostile(name),
        reason,
        words,
    };
    vec![
        file("predict_loop.wat", "timeout", "ms time limit"),
        file("info_loop.wat", "timeout", "ms time limit"),
        file("predict_recursion.wat", "trap", "call stack exhausted"),
        file(
            "predict_trap.wat",
            "trap",
            "`unreachable` instruction executed",
        ),
        file("data_out_of_bounds.wat", "trap", "out of bounds"),
        file("predict_nan.wat", "bad_output", "returned NaN for row 0"),
        file("predict_status.wat", "status", "status 3"),
        file(
            "alloc_out_of_bounds.wat",
            "out_of_bounds",
            "alloc() returned an out-of-bounds region: 8 bytes at 0xfffffff0",
        ),
        file(
            "alloc_overlap.wat",
            "out_of_bounds",
            "overlapping the input rows",
        ),
        file(
            "info_giant.wat",
            "info",
            "info document: 4294967295 bytes, above the 1048576-byte limit",
        ),
        file(
            "info_malformed.wat",
            "info",
            "info document: not valid JSON",
        ),
        file(
            "info_invalid.wat",
            "info",
            "info.threshold 7 is outside [0, 1]",
        ),
        file("huge_memory.wat", "memory", "declares 4294967296 bytes"),
        file("huge_table.wat", "table", "100000000 elements"),
        file("start_loop.wat", "start_function", "start function"),
        file("import_env.wat", "import", "`env::abort`"),
        file("import_memory.wat", "import", "`env::memory`"),
        Refused {
            name: "import.wat (WASI)",
            bytes: fixture("import.wat"),
            reason: "import",
            words: "`wasi_snapshot_preview1::fd_write`",
        },
        file("native.elf", "not_wasm", "an ELF file"),
        file("empty.wasm", "empty", "empty file"),
        Refused {
            name: "precompiled engine code",
            bytes: precompiled(),
            reason: "not_wasm",
            words: "an ELF file",
        },
    ]
}

/// A good artifact compiled ahead of time by wasmtime itself (a `.cwasm`): native code the
/// host must never load, however it is named.
fn precompiled() -> Vec<u8> {
    wasmtime::Engine::default()
        .precompile_module(&churn_artifact("v-precompiled", 0.0))
        .unwrap()
}

pub(super) fn load(runtime: &Runtime, bytes: &[u8]) -> Result<Model, LoadError> {
    Model::load(runtime, bytes, "hostile.wasm".into())
}

#[test]
fn every_hostile_artifact_is_refused_by_the_loader_with_its_reason() {
    let runtime = Runtime::new(Limits::default()).unwrap();
    for case in refused_artifacts() {
        let started = Instant::now();
        let error = load(&runtime, &case.bytes).expect_err(case.name);
        let message = error.to_string();
        eprintln!("{} → {}: {message}", case.name, error.reason());
        assert_eq!(error.reason(), case.reason, "{}: {message}", case.name);
        assert!(
            message.contains(case.words),
            "{}: {message:?} lacks {:?}",
            case.name,
            case.words
        );
        if case.reason == "timeout" {
            assert!(
                message.contains("exceeded the 50 ms time limit"),
                "{message}"
            );
        }
        // Loops are cut at the time limit; nothing hangs the loader.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} took {:?}",
            case.name,
            started.elapsed()
        );
    }
    // The runtime is unharmed: a good artifact still loads and predicts.
    let model = load(&runtime, &churn_artifact("v-after", 0.0)).unwrap();
    assert_eq!(model.predict(&[6.0, 3.0, 12.5, 0.0, 0.0]).unwrap().len(), 1);
}

#[test]
fn an_oversized_file_is_refused_before_it_is_read_whole() {
    let runtime = Runtime::new(Limits::default()).unwrap();
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.resize(modelhost::runtime::MAX_ARTIFACT_BYTES + 1, 0);
    let error = load(&runtime, &bytes).unwrap_err();
    assert_eq!(error.reason(), "too_large", "{error}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.wasm");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(64 << 20).unwrap();
    let error = modelhost::commands::inspect::check_file(&path, &runtime).unwrap_err();
    assert!(
        error.to_string().contains("larger than 33554432 bytes"),
        "{error}"
    );
}

#[test]
fn inspect_names_the_reason_for_every_hostile_artifact() {
    let dir = tempfile::tempdir().unwrap();
    for case in refused_artifacts() {
        let path = dir.path().join("model.wasm");
        std::fs::write(&path, &case.bytes).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_modelhost"))
            .arg("inspect")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{}: {stderr}", case.name);
        assert!(
            stderr.contains(&format!("would be refused ({})", case.reason))
                && stderr.contains(case.words),
            "{}: {stderr}",
            case.name
        );
    }
}

/// Installs `bytes` as the live artifact by atomic rename, with a modification time in the past
/// (as `cp -p` or an unpacked archive leave it), so the watcher may report a refusal at once
/// instead of waiting for the file to stay quiet.
fn publish_settled(registry: &Path, bytes: &[u8]) {
    let live = live_path(registry);
    let staged = live.with_extension("staged");
    std::fs::write(&staged, bytes).unwrap();
    let old = SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&staged)
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::fs::rename(&staged, &live).unwrap();
}

async fn model_doc(url: &str) -> Value {
    reqwest::get(format!("{url}/model"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(super) use crate::common::metric;

pub(super) async fn predict(url: &str, body: &Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{url}/predict"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_watcher_refuses_every_hostile_candidate_and_keeps_serving() {
    let logs = capture_logs();
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server_with(registry.path(), &[]).await;
    assert!(wait_for_version(&server, "v1", PATIENCE).await);
    let url = base_url(&server);
    let mut by_reason: BTreeMap<&str, f64> = BTreeMap::new();
    let cases = refused_artifacts();
    for (n, case) in cases.iter().enumerate() {
        publish_settled(registry.path(), &case.bytes);
        let reported = eventually(PATIENCE, || async {
            server.active.status().rejections == n as u64 + 1
        })
        .await;
        assert!(reported, "{}: never reported", case.name);
        let doc = model_doc(&url).await;
        let last_error = doc["last_error"].as_str().unwrap_or_default();
        assert!(
            last_error.contains("churn/model.wasm") && last_error.contains(case.words),
            "{}: {last_error}",
            case.name
        );
        assert_eq!(doc["version"], "v1", "{} displaced the model", case.name);
        *by_reason.entry(case.reason).or_default() += 1.0;
        let sample = format!(
            "modelhost_model_rejections_total{{reason=\"{}\"}}",
            case.reason
        );
        assert_eq!(
            metric(&url, &sample).await,
            by_reason[case.reason],
            "{}: {sample}",
            case.name
        );
        let logged = cases[..=n].iter().filter(|c| c.words == case.words).count();
        assert_eq!(
            logs.count(case.words),
            logged,
            "{}: the refusal is logged once",
            case.name
        );
        let (status, body) = predict(&url, &example_customer()).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", case.name);
        assert_eq!(body["model_version"], "v1");
        let ready = reqwest::get(format!("{url}/ready")).await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "{}", case.name);
    }
    assert_eq!(
        logs.count("refused candidate, still serving the loaded model"),
        cases.len()
    );
    assert_eq!(
        server.active.status().swaps,
        1,
        "nothing hostile was installed"
    );
    server.shutdown().await.unwrap();
}
