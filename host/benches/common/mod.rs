//! Helpers shared by the benches: the committed default model and its parameter block.

use std::path::PathBuf;

/// The committed default model's bytes.
pub fn default_model_bytes() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../registry/churn/model.wasm");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The parameter block inside an artifact built from the kernel template.
pub fn param_block(bytes: &[u8]) -> &[u8] {
    let at = bytes
        .windows(16)
        .position(|w| w == modelhost_abi::params::MAGIC)
        .expect("artifact holds a parameter block");
    &bytes[at..at + modelhost_abi::params::BLOCK_SIZE]
}
