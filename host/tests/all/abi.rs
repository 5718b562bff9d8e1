//! ABI refusals: each fixture is refused with an error naming its problem.

use modelhost::model::Model;
use modelhost::runtime::{Limits, LoadError, Runtime};

use crate::common::{churn_artifact, fixture};

fn load(bytes: &[u8]) -> Result<Model, LoadError> {
    let runtime = Runtime::new(Limits::default()).unwrap();
    Model::load(&runtime, bytes, "fixture.wasm".into())
}

fn refusal(bytes: &[u8]) -> (String, &'static str) {
    let err = load(bytes).expect_err("the fixture must be refused");
    (err.to_string(), err.reason())
}

#[test]
fn a_built_artifact_loads_and_passes_its_self_test() {
    let model = load(&churn_artifact("v-test", 0.0)).unwrap();
    assert_eq!(model.version(), "v-test");
    assert_eq!(model.info().features.len(), 5);
    assert_eq!(model.info().golden.len(), 3);
}

#[test]
fn imports_are_refused_by_name() {
    let (message, reason) = refusal(&fixture("import.wat"));
    assert_eq!(reason, "import");
    assert!(
        message.contains("wasi_snapshot_preview1::fd_write"),
        "{message}"
    );
}

#[test]
fn a_start_function_is_refused() {
    let (message, reason) = refusal(&fixture("start.wat"));
    assert_eq!(reason, "start_function");
    assert!(message.contains("start function"), "{message}");
}

#[test]
fn a_missing_export_is_named() {
    let (message, reason) = refusal(&fixture("missing_export.wat"));
    assert_eq!(reason, "exports");
    assert_eq!(message, "missing export `predict`");
    let (message, _) = refusal(&fixture("no_memory.wat"));
    assert!(message.contains("memory"), "{message}");
}

#[test]
fn a_wrong_signature_is_described() {
    let (message, reason) = refusal(&fixture("wrong_signature.wat"));
    assert_eq!(reason, "exports");
    assert!(
        message.contains("export `predict` is func(f64, f64) -> f64"),
        "{message}"
    );
    assert!(
        message.contains("expected func(i32, i32, i32, i32) -> i32"),
        "{message}"
    );
}

#[test]
fn an_unknown_abi_version_is_refused() {
    let (message, reason) = refusal(&fixture("abi_version_2.wat"));
    assert_eq!(reason, "abi_version");
    assert!(message.contains("returned 2"), "{message}");
}

#[test]
fn an_out_of_bounds_info_pointer_is_caught() {
    let (message, reason) = refusal(&fixture("info_out_of_bounds.wat"));
    assert_eq!(reason, "info");
    assert!(message.contains("4096 bytes at 0xffff0000"), "{message}");
}

#[test]
fn non_wasm_files_are_refused_before_compiling() {
    let (message, reason) = refusal(b"");
    assert_eq!(reason, "empty");
    assert!(message.contains("empty file"));
    let (message, reason) = refusal(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    assert_eq!(reason, "not_wasm");
    assert!(message.contains("ELF"), "{message}");
    let (_, reason) = refusal(b"not wasm at all");
    assert_eq!(reason, "not_wasm");
    // A component (layer 1) is not a core module.
    let (message, _) = refusal(b"\0asm\x0d\0\x01\0");
    assert!(message.contains("core module"), "{message}");
}

#[test]
fn a_truncated_artifact_is_invalid() {
    let bytes = churn_artifact("v-test", 0.0);
    let (_, reason) = refusal(&bytes[..bytes.len() / 2]);
    assert_eq!(reason, "invalid_wasm");
}

#[test]
fn a_tampered_golden_pair_fails_the_self_test() {
    let mut bytes = churn_artifact("v-test", 0.0);
    // Corrupt one parameter: the embedded golden probabilities no longer match.
    let at = bytes
        .windows(16)
        .position(|w| w == modelhost_abi::params::MAGIC)
        .unwrap()
        + modelhost_abi::params::HEADER_SIZE;
    bytes[at..at + 8].copy_from_slice(&5.0f64.to_le_bytes());
    let (message, reason) = refusal(&bytes);
    assert_eq!(reason, "self_test");
    assert!(message.contains("golden[0]"), "{message}");
}
