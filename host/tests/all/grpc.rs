//! The Open Inference Protocol over gRPC on the HTTP port, driven by the generated tonic client
//! over a real HTTP/2 connection (h2c with prior knowledge, as gRPC clients connect).

mod infer;
mod limits;

use std::collections::HashMap;

use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use modelhost::http::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use modelhost::http::grpc::inference::model_infer_request::InferInputTensor;
use modelhost::http::grpc::inference::{InferTensorContents, ModelInferRequest};
use modelhost::serve::Server;
use serde_json::Value;

pub type Client = GrpcInferenceServiceClient<HttpClient<HttpConnector, tonic::body::Body>>;

/// An HTTP/2-only (h2c prior knowledge) HTTP client.
pub fn http2() -> HttpClient<HttpConnector, tonic::body::Body> {
    HttpClient::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// The inference client for `server`.
pub fn client(server: &Server) -> Client {
    let origin = format!("http://{}", server.addr).parse().unwrap();
    GrpcInferenceServiceClient::with_origin(http2(), origin)
}

/// One feature's column.
pub enum Column {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Text(Vec<String>),
}

/// The churn features for `rows` customers, as columns: (name, datatype, values).
pub fn churn_columns(rows: &[Value]) -> Vec<(&'static str, &'static str, Column)> {
    let int = |key: &str| Column::Int(rows.iter().map(|r| r[key].as_i64().unwrap()).collect());
    let text = |key: &str| {
        Column::Text(
            rows.iter()
                .map(|r| r[key].as_str().unwrap().to_string())
                .collect(),
        )
    };
    vec![
        ("tenure_months", "INT64", int("tenure_months")),
        ("num_complaints", "INT64", int("num_complaints")),
        (
            "avg_session_minutes",
            "FP64",
            Column::Float(
                rows.iter()
                    .map(|r| r["avg_session_minutes"].as_f64().unwrap())
                    .collect(),
            ),
        ),
        ("plan_type", "BYTES", text("plan_type")),
        ("region", "BYTES", text("region")),
    ]
}

/// A `ModelInfer` request for `rows`, typed contents or raw.
pub fn infer_request(rows: &[Value], raw: bool) -> ModelInferRequest {
    let mut request = ModelInferRequest {
        model_name: "churn".to_string(),
        ..ModelInferRequest::default()
    };
    for (name, datatype, column) in churn_columns(rows) {
        let mut contents = InferTensorContents::default();
        let mut bytes = Vec::new();
        match column {
            Column::Int(values) if raw => {
                bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            Column::Int(values) => contents.int64_contents = values,
            Column::Float(values) if raw => {
                bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
            }
            Column::Float(values) => contents.fp64_contents = values,
            Column::Text(values) if raw => {
                for value in values {
                    bytes.extend((value.len() as u32).to_le_bytes());
                    bytes.extend(value.as_bytes());
                }
            }
            Column::Text(values) => {
                contents.bytes_contents = values.iter().map(|v| v.as_bytes().to_vec()).collect();
            }
        }
        request.inputs.push(InferInputTensor {
            name: name.to_string(),
            datatype: datatype.to_string(),
            shape: vec![rows.len() as i64],
            parameters: HashMap::new(),
            contents: (!raw).then_some(contents),
        });
        if raw {
            request.raw_input_contents.push(bytes);
        }
    }
    request
}

/// The lab's example customer and a spread of others, `n` in all.
pub fn customers(n: usize) -> Vec<Value> {
    let plans = ["basic", "premium", " Premium ", "gold"];
    let regions = ["NA", "eu", "AF", "AS", "Mars"];
    let mut rows = vec![crate::common::example_customer()];
    for i in 1..n {
        rows.push(serde_json::json!({
            "tenure_months": (i * 7) % 200,
            "num_complaints": i % 50,
            "avg_session_minutes": ((i as f64) * 13.37) % 500.0,
            "plan_type": plans[i % plans.len()],
            "region": regions[i % regions.len()],
        }));
    }
    rows
}
