//! The committed gRPC code is what the committed `.proto` generates.
//! `UPDATE_GENERATED=1 cargo test --manifest-path tools/grpc-codegen/Cargo.toml` rewrites it.

use modelhost_grpc_codegen::{committed_path, generate};

#[test]
fn the_committed_code_is_what_the_proto_generates() {
    let generated = generate().unwrap();
    let committed = committed_path();
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
