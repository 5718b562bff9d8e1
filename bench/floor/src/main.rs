//! The floor for `POST /predict`: the least a server on modelhost's stack can do to answer the
//! lab's request, so modelhost's throughput and latency can be stated as a fraction of it.
//!
//! Same stack as modelhost (axum over hyper's HTTP/1, a multi-threaded tokio runtime sized by
//! `TOKIO_WORKER_THREADS`, serde_json), the same request checks (types, ranges, trimmed and
//! case-folded categories) and the same response fields in the same order, from the same
//! parameters: the committed artifact's parameter block, scored by the `modelhost-logreg`
//! kernel compiled natively, in the handler. Nothing else: no wasm sandbox, call threads,
//! prediction log, metrics, tracing, request ids, body limits or middleware. A missing
//! `request_id` is answered as `floor`, as the floor draws no random ids.
//!
//! Usage: `modelhost-floor ARTIFACT.wasm` with `HOST` and `PORT` (default 127.0.0.1:8000).
//! Routes: `POST /predict`, `GET /ready`, `GET /health`.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use modelhost_abi::info::{FeatureKind, ModelInfo};
use modelhost_abi::params::{BLOCK_SIZE, MAGIC, ParamView};
use serde_json::{Map, Number, Value};

struct Floor {
    params: ParamView<'static>,
    info: ModelInfo,
}

/// The lab's answer, fields in the lab's order (as modelhost's `PredictResponse`).
#[derive(serde::Serialize)]
struct Answer {
    request_id: String,
    model_version: String,
    prediction: u8,
    probability: f64,
    latency_ms: f64,
    features: Map<String, Value>,
    ts: u64,
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// One feature's column value and its echoed, normalised form.
fn prepare(name: &str, kind: &FeatureKind, value: &Value) -> Result<(f64, Value), String> {
    let number = |value: &Value| {
        value
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("field `{name}` must be a finite number"))
    };
    let in_range = |x: f64, min: f64, max: f64| {
        if (min..=max).contains(&x) {
            Ok(x)
        } else {
            Err(format!(
                "field `{name}` must be between {min} and {max}, got {x}"
            ))
        }
    };
    match kind {
        FeatureKind::Integer { min, max } => {
            let x = in_range(number(value)?, *min, *max)?;
            if x.fract() != 0.0 {
                return Err(format!("field `{name}` must be an integer, got {x}"));
            }
            Ok((x, Value::Number(Number::from(x as i64))))
        }
        FeatureKind::Number { min, max } => {
            let x = in_range(number(value)?, *min, *max)?;
            Ok((x, Number::from_f64(x).map_or(Value::Null, Value::Number)))
        }
        FeatureKind::Categorical { vocabulary, case } => {
            let raw = value
                .as_str()
                .ok_or_else(|| format!("field `{name}` must be a string"))?;
            let word = case.apply(raw);
            let index = vocabulary
                .iter()
                .position(|v| *v == word)
                .map_or(modelhost_abi::UNKNOWN_CATEGORY, |i| i as f64);
            Ok((index, Value::String(word)))
        }
    }
}

async fn predict(State(floor): State<Arc<Floor>>, body: Bytes) -> Response {
    let started = Instant::now();
    let object: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(object) => object,
        Err(e) => return bad_request(format!("request body must be a JSON object: {e}")),
    };
    let mut row = Vec::with_capacity(floor.info.features.len());
    let mut features = Map::with_capacity(floor.info.features.len());
    for spec in &floor.info.features {
        let Some(value) = object.get(&spec.name).filter(|v| !v.is_null()) else {
            return bad_request(format!("field `{}` is required", spec.name));
        };
        match prepare(&spec.name, &spec.kind, value) {
            Ok((x, echoed)) => {
                row.push(x);
                features.insert(spec.name.clone(), echoed);
            }
            Err(message) => return bad_request(message),
        }
    }
    let request_id = match object.get("request_id") {
        Some(Value::String(id)) => id.clone(),
        _ => "floor".to_string(),
    };
    let mut probability = [0.0];
    let code = modelhost_logreg::predict_rows(&floor.params, &row, row.len(), &mut probability);
    if code != modelhost_abi::status::OK {
        return (StatusCode::INTERNAL_SERVER_ERROR, "kernel failed").into_response();
    }
    let probability = probability[0];
    Json(Answer {
        request_id,
        model_version: floor.info.version.clone(),
        prediction: u8::from(probability >= floor.info.threshold),
        probability: round_to(probability, 6),
        latency_ms: round_to(started.elapsed().as_secs_f64() * 1000.0, 3),
        features,
        ts: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    })
    .into_response()
}

fn load(path: &str) -> Result<Floor, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let at = bytes
        .windows(MAGIC.len())
        .position(|w| w == MAGIC)
        .ok_or_else(|| {
            format!("{path}: no parameter block (not built from the kernel template)")
        })?;
    let block = bytes
        .get(at..at + BLOCK_SIZE)
        .ok_or_else(|| format!("{path}: parameter block cut short"))?;
    let block: &'static [u8] = Box::leak(block.to_vec().into_boxed_slice());
    let params = ParamView::parse(block).map_err(|e| format!("{path}: parameter block: {e:?}"))?;
    let info: ModelInfo =
        serde_json::from_slice(params.info()).map_err(|e| format!("{path}: info document: {e}"))?;
    Ok(Floor { params, info })
}

#[tokio::main]
async fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: modelhost-floor ARTIFACT.wasm (HOST, PORT from the environment)");
        std::process::exit(64);
    };
    let floor = load(&path).unwrap_or_else(|e| {
        eprintln!("modelhost-floor: {e}");
        std::process::exit(1);
    });
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let app = Router::new()
        .route("/predict", post(predict))
        .route("/ready", get(|| async { "ready" }))
        .route("/health", get(|| async { "ok" }))
        .with_state(Arc::new(floor));
    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}"))
        .await
        .unwrap_or_else(|e| {
            eprintln!("modelhost-floor: cannot listen on {host}:{port}: {e}");
            std::process::exit(1);
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            term.recv().await;
        })
        .await
        .expect("server");
}
