//! Metadata, readiness and inference over gRPC answer what the REST routes answer, to the last
//! bit, and count and log like them; errors are statuses carrying the REST messages.

use std::collections::HashMap;
use std::time::Duration;

use modelhost::http::grpc::inference::infer_parameter::ParameterChoice;
use modelhost::http::grpc::inference::model_infer_request::InferRequestedOutputTensor;
use modelhost::http::grpc::inference::{
    InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse,
    ModelMetadataRequest, ModelReadyRequest, RepositoryIndexRequest, ServerLiveRequest,
    ServerMetadataRequest, ServerReadyRequest,
};
use serde_json::{Value, json};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{client, customers, http2, infer_request};
use crate::common::{churn_artifact, publish, start_server, temp_registry, wait_for_version};
use crate::hostile::metric;
use crate::oip::{get, infer_inputs, post_json, serving};

type Health = HealthClient<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic::body::Body,
    >,
>;

const PATIENCE: Duration = Duration::from_secs(10);

/// The version [`crate::oip::serving`] serves.
const VERSION: &str = "v-oip";

async fn get_json(url: &str) -> Value {
    let (status, body) = get(url).await;
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

async fn post_ok(url: &str, body: &Value) -> Value {
    let (status, body) = post_json(url, body).await;
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

/// An answer's (probabilities, predictions), raw or typed.
fn outputs(answer: &ModelInferResponse) -> (Vec<f64>, Vec<i64>) {
    let names: Vec<&str> = answer.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["probability", "prediction"]);
    if answer.raw_output_contents.is_empty() {
        let contents = |i: usize| answer.outputs[i].contents.clone().unwrap();
        return (contents(0).fp64_contents, contents(1).int64_contents);
    }
    let raw = &answer.raw_output_contents;
    (
        raw[0]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        raw[1]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
    )
}

#[tokio::test]
async fn metadata_and_readiness_are_the_rest_answers() {
    let (_registry, server, url) = serving(&[]).await;
    let mut grpc = client(&server);

    assert!(
        grpc.server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        grpc.server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let ready = |name: &str, version: &str| ModelReadyRequest {
        name: name.to_string(),
        version: version.to_string(),
    };
    assert!(
        grpc.model_ready(ready("churn", ""))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    assert!(
        grpc.model_ready(ready("churn", VERSION))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let err = grpc.model_ready(ready("churn", "v9")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.message(),
        "model `churn` has no version `v9`; version `v-oip` is serving"
    );

    let server_metadata = grpc
        .server_metadata(ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    let rest = get_json(&format!("{url}/v2")).await;
    assert_eq!(server_metadata.name, rest["name"]);
    assert_eq!(server_metadata.version, rest["version"]);
    assert_eq!(json!(server_metadata.extensions), rest["extensions"]);

    let metadata = grpc
        .model_metadata(ModelMetadataRequest {
            name: "churn".to_string(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let rest = get_json(&format!("{url}/v2/models/churn")).await;
    let tensors = |tensors: &[modelhost::http::grpc::inference::model_metadata_response::TensorMetadata]| {
        json!(tensors
            .iter()
            .map(|t| json!({"name": t.name, "datatype": t.datatype, "shape": t.shape}))
            .collect::<Vec<_>>())
    };
    assert_eq!(metadata.name, rest["name"]);
    assert_eq!(json!(metadata.versions), rest["versions"]);
    assert_eq!(metadata.platform, rest["platform"]);
    assert_eq!(tensors(&metadata.inputs), rest["inputs"]);
    assert_eq!(tensors(&metadata.outputs), rest["outputs"]);
    let err = grpc
        .model_metadata(ModelMetadataRequest {
            name: "other".to_string(),
            version: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.message(),
        "unknown model `other`: this server serves `churn`"
    );

    let index = grpc
        .repository_index(RepositoryIndexRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(index.models.len(), 1);
    let model = &index.models[0];
    assert_eq!(
        (&*model.name, &*model.version, &*model.state, &*model.reason),
        ("churn", VERSION, "READY", "")
    );
}

/// Typed and raw inputs, 1 and 1000 rows: the same numbers as REST's v2 infer (bit for bit)
/// and `/predict` (to its 6 decimals).
#[tokio::test]
async fn typed_and_raw_contents_score_like_rest_for_1_and_1000_rows() {
    let (_registry, server, url) = serving(&[]).await;
    let mut grpc = client(&server);
    for n in [1, 1000] {
        let rows = customers(n);
        let rest = post_ok(
            &format!("{url}/v2/models/churn/infer"),
            &json!({"inputs": infer_inputs(&rows)}),
        )
        .await;
        let lab = post_ok(&format!("{url}/predict"), &json!({"instances": rows})).await;
        for raw in [false, true] {
            let mut request = infer_request(&rows, raw);
            request.id = format!("grpc-{n}-{raw}");
            let answer = grpc.model_infer(request).await.unwrap().into_inner();
            assert_eq!(answer.id, format!("grpc-{n}-{raw}"));
            assert_eq!(answer.model_name, "churn");
            assert_eq!(answer.model_version, VERSION);
            // Raw outputs unless asked otherwise, as Triton answers gRPC.
            assert_eq!(answer.raw_output_contents.len(), 2);
            for output in &answer.outputs {
                assert_eq!(output.shape, [n as i64]);
            }
            let (probabilities, predictions) = outputs(&answer);
            assert_eq!(
                json!(probabilities),
                rest["outputs"][0]["data"],
                "n={n} raw={raw}"
            );
            assert_eq!(
                json!(predictions),
                rest["outputs"][1]["data"],
                "n={n} raw={raw}"
            );
            for (i, lab) in lab["predictions"].as_array().unwrap().iter().enumerate() {
                let probability = lab["probability"].as_f64().unwrap();
                assert!((probabilities[i] - probability).abs() <= 5e-7, "row {i}");
                assert_eq!(
                    predictions[i],
                    lab["prediction"].as_i64().unwrap(),
                    "row {i}"
                );
            }
        }
    }
}

#[tokio::test]
async fn outputs_are_typed_contents_when_the_request_says_so() {
    let (_registry, server, _url) = serving(&[]).await;
    let mut grpc = client(&server);
    let rows = customers(3);
    let flag = |b: bool| InferParameter {
        parameter_choice: Some(ParameterChoice::BoolParam(b)),
    };
    let mut request = infer_request(&rows, false);
    request
        .parameters
        .insert("binary_data_output".to_string(), flag(false));
    let typed = grpc.model_infer(request).await.unwrap().into_inner();
    assert!(typed.raw_output_contents.is_empty());
    let raw = grpc
        .model_infer(infer_request(&rows, false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outputs(&typed), outputs(&raw));

    // One output asked for, by name.
    let mut request = infer_request(&rows, true);
    request.outputs = vec![InferRequestedOutputTensor {
        name: "prediction".to_string(),
        parameters: HashMap::from([("binary_data".to_string(), flag(false))]),
    }];
    let answer = grpc.model_infer(request).await.unwrap().into_inner();
    assert_eq!(answer.outputs.len(), 1);
    assert_eq!(answer.outputs[0].name, "prediction");
    assert_eq!(
        answer.outputs[0].contents.as_ref().unwrap().int64_contents,
        outputs(&raw).1
    );
}

#[tokio::test]
async fn grpc_calls_are_logged_and_counted_like_rest() {
    let (registry, server, url) = serving(&[]).await;
    let mut grpc = client(&server);
    let mut request = infer_request(&customers(2), true);
    request.id = "grpc-7".to_string();
    grpc.model_infer(request).await.unwrap();
    let err = grpc
        .model_infer(ModelInferRequest {
            model_name: "nope".to_string(),
            ..ModelInferRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    for (sample, value) in [
        (
            r#"modelhost_http_requests_total{route="/inference.GRPCInferenceService/ModelInfer",method="POST",status="200"}"#,
            1.0,
        ),
        (
            r#"modelhost_http_requests_total{route="/inference.GRPCInferenceService/ModelInfer",method="POST",status="404"}"#,
            1.0,
        ),
        (r#"modelhost_predictions_total{version="v-oip"}"#, 2.0),
    ] {
        assert_eq!(metric(&url, sample).await, value, "{sample}");
    }
    server.shutdown().await.unwrap();
    let log = std::fs::read_to_string(registry.path().join("logs/predictions.log")).unwrap();
    let ids: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["request_id"].clone())
        .collect();
    assert_eq!(ids, [json!("grpc-7/0"), json!("grpc-7/1")]);
}

#[tokio::test]
async fn bad_inputs_are_invalid_argument_with_the_rest_message() {
    let (_registry, server, _url) = serving(&[]).await;
    let mut grpc = client(&server);
    let rows = customers(3);
    let invalid = async |grpc: &mut super::Client, request: ModelInferRequest| {
        let err = grpc.model_infer(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        err.message().to_string()
    };

    let mut out_of_range = rows.clone();
    out_of_range[1]["tenure_months"] = json!(201);
    let message = invalid(&mut grpc, infer_request(&out_of_range, false)).await;
    assert!(message.starts_with("row 1: "), "{message}");
    assert!(message.contains("tenure_months"), "{message}");

    let mut missing = infer_request(&rows, false);
    missing.inputs.pop();
    let message = invalid(&mut grpc, missing).await;
    assert!(message.starts_with("missing input `region`"), "{message}");

    let mut wrong_type = infer_request(&rows, false);
    wrong_type.inputs[3].datatype = "FP64".to_string();
    let message = invalid(&mut grpc, wrong_type).await;
    assert_eq!(
        message,
        "input `plan_type` must have datatype BYTES, got FP64"
    );

    let mut wrong_field = infer_request(&rows, false);
    wrong_field.inputs[0].contents = Some(InferTensorContents {
        fp64_contents: vec![1.0, 2.0, 3.0],
        ..InferTensorContents::default()
    });
    let message = invalid(&mut grpc, wrong_field).await;
    assert_eq!(
        message,
        "input `tenure_months` has datatype INT64, whose elements go in `int64_contents`, but holds `fp64_contents`"
    );

    // A huge declared shape with three elements: refused by the count, nothing allocated.
    let mut huge = infer_request(&rows, true);
    huge.inputs[0].shape = vec![1 << 40];
    let message = invalid(&mut grpc, huge).await;
    assert_eq!(
        message,
        "input `tenure_months` has shape [1099511627776] but 3 elements"
    );

    let mut short_raw = infer_request(&rows, true);
    short_raw.raw_input_contents[2].truncate(20);
    let message = invalid(&mut grpc, short_raw).await;
    assert!(message.contains("`avg_session_minutes`"), "{message}");
    assert!(message.contains("20 bytes"), "{message}");

    let mut raw_count = infer_request(&rows, true);
    raw_count.raw_input_contents.pop();
    let message = invalid(&mut grpc, raw_count).await;
    assert!(
        message.starts_with("raw_input_contents holds 4 entries for 5 inputs"),
        "{message}"
    );

    let mut both = infer_request(&rows, true);
    both.inputs[0].contents = infer_request(&rows, false).inputs[0].contents.clone();
    let message = invalid(&mut grpc, both).await;
    assert!(message.contains("both `contents` and"), "{message}");

    let mut not_utf8 = infer_request(&rows, false);
    not_utf8.inputs[3].contents.as_mut().unwrap().bytes_contents[0] = vec![0xff];
    let message = invalid(&mut grpc, not_utf8).await;
    assert_eq!(message, "input `plan_type` element 0 is not valid UTF-8");

    let mut long_id = infer_request(&rows, false);
    long_id.id = "x".repeat(129);
    let message = invalid(&mut grpc, long_id).await;
    assert!(message.contains("`id`"), "{message}");

    // Still serving.
    assert!(
        grpc.server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    grpc.model_infer(infer_request(&rows, false)).await.unwrap();
}

#[tokio::test]
async fn readiness_and_health_follow_the_model() {
    let registry = temp_registry(None);
    let server = start_server(registry.path()).await;
    let origin: tonic::codegen::http::Uri = format!("http://{}", server.addr).parse().unwrap();
    let mut health = HealthClient::with_origin(http2(), origin);
    let mut grpc = client(&server);
    let check = |service: &str| HealthCheckRequest {
        service: service.to_string(),
    };
    let status = async |health: &mut Health, service: &str| {
        health
            .check(check(service))
            .await
            .map(|r| r.into_inner().status)
    };

    assert_eq!(
        status(&mut health, "").await.unwrap(),
        ServingStatus::NotServing as i32
    );
    assert!(
        !grpc
            .server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let err = grpc
        .model_infer(infer_request(&customers(1), false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().starts_with("no model is serving yet"),
        "{err:?}"
    );
    let ready = ModelReadyRequest {
        name: "churn".to_string(),
        version: String::new(),
    };
    assert!(
        !grpc
            .model_ready(ready.clone())
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let index = grpc
        .repository_index(RepositoryIndexRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(index.models[0].state, "UNAVAILABLE");
    assert!(
        index.models[0]
            .reason
            .starts_with("no model is serving yet")
    );
    let mut watch = health.watch(check("")).await.unwrap().into_inner();
    let mut next = async || {
        tokio::time::timeout(PATIENCE, watch.message())
            .await
            .expect("Watch answers within the patience")
            .unwrap()
            .unwrap()
            .status
    };
    assert_eq!(next().await, ServingStatus::NotServing as i32);

    publish(registry.path(), &churn_artifact("v1", 0.0));
    assert_eq!(
        next().await,
        ServingStatus::Serving as i32,
        "Watch sends the change"
    );
    assert!(wait_for_version(&server, "v1", PATIENCE).await);
    for service in ["", "inference.GRPCInferenceService"] {
        assert_eq!(
            status(&mut health, service).await.unwrap(),
            ServingStatus::Serving as i32
        );
    }
    let err = status(&mut health, "other.Service").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(grpc.model_ready(ready).await.unwrap().into_inner().ready);

    // Not serving from the moment a shutdown begins, like /ready.
    server.state.start_draining();
    assert_eq!(
        status(&mut health, "").await.unwrap(),
        ServingStatus::NotServing as i32
    );
}

/// The port speaks h2c to REST as well (what `appProtocol: kubernetes.io/h2c` declares), and
/// HTTP/1.1 as before; a gRPC call is told apart by its content type only.
#[tokio::test]
async fn rest_answers_over_h2c_and_http1_on_the_same_port() {
    let (_registry, _server, url) = serving(&[]).await;
    let request = tonic::codegen::http::Request::get(format!("{url}/ready"))
        .body(tonic::body::Body::empty())
        .unwrap();
    let response = http2().request(request).await.unwrap();
    assert_eq!(response.version(), tonic::codegen::http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let response = reqwest::get(format!("{url}/ready")).await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);
}
