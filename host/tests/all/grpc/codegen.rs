//! The committed gRPC code is what the committed `.proto` generates.
//!
//! `host/src/http/grpc/inference.rs` is generated from `host/proto/inference.proto` by protox (a
//! protobuf compiler in Rust, so no `protoc` binary) and tonic-prost-build. It is committed so a
//! build compiles no proto compiler; this test regenerates it and compares.
//! `UPDATE_GENERATED=1 cargo test -p modelhost --test all grpc::codegen` rewrites it.

use std::path::Path;

#[test]
fn the_committed_code_is_what_the_proto_generates() {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = host.join("src/http/grpc/inference.rs");
    let descriptors = protox::compile(["inference.proto"], [host.join("proto")])
        .expect("host/proto/inference.proto compiles");
    let out = tempfile::tempdir().unwrap();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The server is axum's and the tests' client brings its own connection.
        .build_transport(false)
        .out_dir(out.path())
        .compile_fds(descriptors)
        .expect("code generation succeeds");
    let generated = std::fs::read_to_string(out.path().join("inference.rs")).unwrap();
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::write(&committed, &generated).unwrap();
    }
    let current = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        current == generated,
        "{} is not what host/proto/inference.proto generates; \
         rerun with UPDATE_GENERATED=1 to rewrite it",
        committed.display()
    );
}
