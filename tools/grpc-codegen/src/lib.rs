//! Generates the Rust code of modelhost's gRPC service from its `.proto`.
//!
//! `host/src/http/grpc/inference.rs` is committed, so a build of the server compiles no proto
//! compiler; `tests/generated.rs` regenerates it with [`generate`] and compares.

use std::path::{Path, PathBuf};

/// The host crate's directory.
pub fn host_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host")
}

/// The committed generated file.
pub fn committed_path() -> PathBuf {
    host_dir().join("src/http/grpc/inference.rs")
}

/// What `host/proto/inference.proto` generates: the messages, the server and a client (the
/// tests' client brings its own connection, and the server is axum's, so no transport).
pub fn generate() -> Result<String, String> {
    let proto_dir = host_dir().join("proto");
    let descriptors = protox::compile(["inference.proto"], [&proto_dir])
        .map_err(|e| format!("{}: {e}", proto_dir.join("inference.proto").display()))?;
    let out = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .out_dir(out.path())
        .compile_fds(descriptors)
        .map_err(|e| format!("code generation: {e}"))?;
    let file = out.path().join("inference.rs");
    std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))
}
