//! Arbitrary and mutated protobuf into `ModelInfer` on the port's service (gRPC framing,
//! tonic's decoder, the conversion to feature columns and the schema check): every answer is a
//! gRPC status with a message, a valid request still scores, and nothing panics.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use modelhost::http::app_with_grpc;
use modelhost::http::grpc::inference::ModelInferRequest;
use proptest::prelude::*;
use tower::ServiceExt;

use super::{cases, serving_state, tokio_runtime};
use crate::grpc::{customers, infer_request};

/// The port's service over a churn model, and the runtime to drive it.
fn service() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static SERVICE: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    SERVICE.get_or_init(|| (tokio_runtime(), app_with_grpc(serving_state(), 1 << 16)))
}

/// `message` framed as one gRPC message (uncompressed, 4-byte big-endian length).
fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = vec![0];
    framed.extend((message.len() as u32).to_be_bytes());
    framed.extend(message);
    framed
}

/// The call's gRPC status code and message, from the headers or the trailers.
fn call(body: Vec<u8>) -> (i32, String, Vec<u8>) {
    let (executor, service) = service();
    let request = Request::post("/inference.GRPCInferenceService/ModelInfer")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Body::from(body))
        .unwrap();
    executor.block_on(async {
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200, "gRPC answers travel as HTTP 200");
        let headers = response.headers().clone();
        let collected = response.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let field = |name: &str| {
            headers
                .get(name)
                .or_else(|| trailers.get(name))
                .map(|v| v.to_str().unwrap().to_string())
        };
        let code = field("grpc-status")
            .expect("every answer carries grpc-status")
            .parse()
            .unwrap();
        (
            code,
            field("grpc-message").unwrap_or_default(),
            collected.to_bytes().to_vec(),
        )
    })
}

/// A valid request's bytes, `rows` rows, typed or raw.
fn valid(rows: usize, raw: bool) -> Vec<u8> {
    prost::Message::encode_to_vec(&infer_request(&customers(rows), raw))
}

/// Codes a hostile request may get: OK, INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED,
/// and INTERNAL for bytes that are not protobuf at all (the gRPC convention tonic follows).
const EXPECTED: [i32; 5] = [0, 3, 5, 8, 13];

proptest! {
    #![proptest_config(cases(96))]

    #[test]
    fn fuzz_grpc_infer_answers_a_status_for_any_bytes(
        message in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            // A valid request with bytes flipped, cut or inserted.
            (1usize..4, any::<bool>(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6))
                .prop_map(|(rows, raw, edits)| {
                    let mut bytes = valid(rows, raw);
                    for (at, byte, kind) in edits {
                        if bytes.is_empty() { break; }
                        let i = at.index(bytes.len());
                        match kind {
                            0 => bytes[i] = byte,
                            1 => bytes.truncate(i),
                            _ => bytes.insert(i, byte),
                        }
                    }
                    bytes
                }),
        ],
    ) {
        let (code, text, _) = call(frame(&message));
        prop_assert!(EXPECTED.contains(&code), "code {} {:?}", code, text);
        if code != 0 {
            prop_assert!(!text.is_empty(), "code {} without a message", code);
        }
        if code == 13 {
            prop_assert!(text.contains("decode"), "INTERNAL only for undecodable bytes: {:?}", text);
        }
    }

    #[test]
    fn fuzz_grpc_infer_decoded_requests_are_judged_not_crashed(
        rows in 1usize..4,
        raw in any::<bool>(),
        shape in prop::collection::vec(prop_oneof![Just(-1i64), 0i64..5, Just(i64::MAX), Just(1i64 << 40)], 0..3),
        datatype in prop::sample::select(vec!["INT64", "FP64", "BYTES", "INT8", "UINT64", "FP32", "BOOL", "FP16", "nope", ""]),
        input in 0usize..5,
    ) {
        let mut request: ModelInferRequest = infer_request(&customers(rows), raw);
        request.inputs[input].shape = shape;
        request.inputs[input].datatype = datatype.to_string();
        let (code, text, _) = call(frame(&prost::Message::encode_to_vec(&request)));
        prop_assert!([0, 3].contains(&code), "code {} {:?}", code, text);
    }
}

#[test]
fn a_valid_request_scores_and_a_stream_of_garbage_is_refused() {
    let (code, text, body) = call(frame(&valid(2, true)));
    assert_eq!((code, text.as_str()), (0, ""));
    assert!(body.len() > 5, "a response message");
    // Not a gRPC frame at all: a short header.
    let (code, text, _) = call(vec![0, 0]);
    assert_ne!(code, 0, "{text}");
    // A frame that declares more than it holds.
    let mut short = frame(&valid(1, false));
    short.truncate(short.len() - 3);
    let (code, text, _) = call(short);
    assert_ne!(code, 0, "{text}");
    // Declared far over the limit.
    let mut huge = vec![0];
    huge.extend(u32::MAX.to_be_bytes());
    let (code, text, _) = call(huge);
    assert_eq!(code, 8, "{text}");
    assert!(text.contains("MODELHOST_MAX_BODY_BYTES"), "{text}");
}
