//! The edge's limits over gRPC: the body limit and the row limit (RESOURCE_EXHAUSTED), the
//! caller's deadline and the model's time limit (DEADLINE_EXCEEDED), a failing model
//! (INTERNAL) — each a clear status, and the server keeps serving.

use std::time::Duration;

use modelhost::http::grpc::inference::ModelInferRequest;
use modelhost::serve::Server;
use serde_json::json;
use tonic::Code;

use super::{client, customers, infer_request};
use crate::common::{churn_artifact, start_server_with, temp_registry, wait_for_version};
use crate::hostile::hostile;

const PATIENCE: Duration = Duration::from_secs(10);

async fn serving(
    artifact: &[u8],
    version: &str,
    settings: &[(&'static str, &str)],
) -> (tempfile::TempDir, Server) {
    let registry = temp_registry(Some(artifact));
    let server = start_server_with(registry.path(), settings).await;
    assert!(
        wait_for_version(&server, version, PATIENCE).await,
        "{version} never served: {:?}",
        server.active.status().last_error
    );
    (registry, server)
}

#[tokio::test]
async fn over_the_row_or_body_limit_is_resource_exhausted() {
    let settings = [("max_batch_rows", "10"), ("max_body_bytes", "4096")];
    let (_registry, server) = serving(&churn_artifact("v1", 0.0), "v1", &settings).await;
    let mut grpc = client(&server);

    let err = grpc
        .model_infer(infer_request(&customers(11), false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(
        err.message(),
        "the request holds 11 rows; at most 10 are allowed per request (max_batch_rows)"
    );

    // A message over the limit (refused from its declared length), and one within it whose
    // frame (5 bytes more) runs over (refused as the body passes the limit): the same answer.
    let with_size = |size: usize| {
        (100..size)
            .map(|id_len| {
                let mut request = infer_request(&customers(1), false);
                request.id = "x".repeat(id_len);
                request
            })
            .find(|request| prost::Message::encoded_len(request) == size)
            .unwrap()
    };
    for size in [5000, 4094] {
        let err = grpc.model_infer(with_size(size)).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{size} bytes: {err:?}");
        assert_eq!(
            err.message(),
            "request body is too large: it exceeds the 4096-byte limit that MODELHOST_MAX_BODY_BYTES sets",
            "{size} bytes"
        );
    }
    grpc.model_infer(infer_request(&customers(10), true))
        .await
        .unwrap();
}

/// One customer whose `tenure_months` makes `selective.wat` misbehave (199 loops, 197 traps).
fn tenure(months: u32) -> ModelInferRequest {
    let mut rows = customers(1);
    rows[0]["tenure_months"] = json!(months);
    infer_request(&rows, false)
}

/// The status of a call that must fail with `code`.
async fn refused(
    server: &Server,
    request: tonic::Request<ModelInferRequest>,
    code: Code,
) -> String {
    let err = client(server).model_infer(request).await.unwrap_err();
    assert_eq!(err.code(), code, "{err:?}");
    err.message().to_string()
}

#[tokio::test]
async fn a_slow_model_meets_the_callers_deadline_or_its_own_time_limit() {
    let selective = hostile("selective.wat");

    // The caller's grpc-timeout, shorter than the model's time limit.
    let (_registry, server) =
        serving(&selective, "v-selective", &[("wasm_timeout_ms", "3000")]).await;
    let mut request = tonic::Request::new(tenure(199));
    request.set_timeout(Duration::from_millis(200));
    assert_eq!(
        refused(&server, request, Code::DeadlineExceeded).await,
        "request not completed within the 200 ms grpc-timeout"
    );
    server.shutdown().await.unwrap();

    // The model's own time limit (REST's 504), and a trap (REST's 500).
    let (_registry, server) =
        serving(&selective, "v-selective", &[("wasm_timeout_ms", "300")]).await;
    let request = tonic::Request::new(tenure(199));
    assert_eq!(
        refused(&server, request, Code::DeadlineExceeded).await,
        "model call failed: exceeded the 300 ms time limit"
    );
    let message = refused(&server, tonic::Request::new(tenure(197)), Code::Internal).await;
    assert!(message.starts_with("model call failed: "), "{message}");
    let answer = client(&server)
        .model_infer(tenure(6))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model_version, "v-selective");
}

/// The request timeout bounds a gRPC call as it bounds a REST request.
#[tokio::test]
async fn the_request_timeout_bounds_a_call_without_a_deadline() {
    let settings = [("wasm_timeout_ms", "3000"), ("request_timeout_ms", "200")];
    let (_registry, server) = serving(&hostile("selective.wat"), "v-selective", &settings).await;
    assert_eq!(
        refused(
            &server,
            tonic::Request::new(tenure(199)),
            Code::DeadlineExceeded
        )
        .await,
        "request not completed within the 200 ms request timeout"
    );
}
