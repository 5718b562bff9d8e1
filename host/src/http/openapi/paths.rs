//! One description per route, for the OpenAPI document.
//!
//! The functions are never called: each carries a route's `#[utoipa::path]` description, while
//! its handler lives in `handlers`, `monitoring`, `oip` or here in `openapi`. Keeping the
//! descriptions together lets the whole public API be read in one file; a test checks that
//! every route the router declares is described here and that every description is routed.

#![allow(dead_code)]

use super::schemas::{
    DriftReportSchema, ErrorBody, Live, ModelReady, PredictAnswer, PredictBody, ReadyFlag,
    ValidationError,
};
use crate::http::bodies::{
    Health, ModelDescription, ModelList, Ready, RecentEvents, RepositoryEntry, Startup,
    VersionHistory,
};
use crate::http::oip::{
    InferRequest, InferResponse, ModelMetadata, RepositoryIndexRequest, ServerMetadata,
};

const LAB: &str = "lab API";
const PROBES: &str = "probes";
const MONITORING: &str = "monitoring";
const OIP: &str = "Open Inference Protocol v2";
const DOCS: &str = "documentation";

#[utoipa::path(
    post, path = "/predict", tag = LAB,
    summary = "Predict churn for one customer, or a batch",
    description = "One customer in, the lab's answer out. With `instances`, up to \
        `max_batch_rows` customers are validated together, scored in one model call and \
        answered as `predictions`, in order; one invalid row fails the batch, and the error \
        names every row and field at fault.",
    request_body(content = PredictBody, examples(
        ("one customer" = (value = json!({
            "request_id": "req-001", "tenure_months": 6, "num_complaints": 3,
            "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"
        }))),
        ("a batch" = (value = json!({
            "request_id": "batch-7",
            "instances": [
                {"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"},
                {"tenure_months": 48, "num_complaints": 0, "avg_session_minutes": 40, "plan_type": "premium", "region": "EU"}
            ]
        })))
    )),
    responses(
        (status = 200, description = "The answer, or one answer per row", body = PredictAnswer, examples(
            ("one customer" = (value = json!({
                "request_id": "req-001", "model_version": "v2eea169a56b4", "prediction": 1,
                "probability": 0.920064, "latency_ms": 0.349,
                "features": {"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"},
                "ts": 1795644213
            }))),
            ("a batch" = (value = json!({"predictions": [
                {"request_id": "batch-7/0", "model_version": "v2eea169a56b4", "prediction": 1, "probability": 0.920064, "latency_ms": 0.412,
                 "features": {"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"}, "ts": 1795644213},
                {"request_id": "batch-7/1", "model_version": "v2eea169a56b4", "prediction": 0, "probability": 0.215316, "latency_ms": 0.412,
                 "features": {"tenure_months": 48, "num_complaints": 0, "avg_session_minutes": 40.0, "plan_type": "premium", "region": "EU"}, "ts": 1795644213}
            ]})))
        )),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over `max_body_bytes`, or more rows than `max_batch_rows`", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is missing, of the wrong type or out of range, or the body is not a JSON object", body = ValidationError),
        (status = 503, description = "No model is serving", body = ErrorBody),
    )
)]
fn predict() {}

#[utoipa::path(
    get, path = "/health", tag = PROBES,
    summary = "Liveness: the process answers HTTP",
    responses((status = 200, body = Health))
)]
fn health() {}

#[utoipa::path(
    get, path = "/ready", tag = PROBES,
    summary = "Readiness: a model is serving",
    responses(
        (status = 200, body = Ready),
        (status = 503, description = "No model serves yet, or shutting down", body = Ready,
            example = json!({"status": "not ready", "reason": "shutting down"})),
    )
)]
fn ready() {}

#[utoipa::path(
    get, path = "/startup", tag = PROBES,
    summary = "Startup: the registry exists and a model is serving",
    responses(
        (status = 200, body = Startup),
        (status = 503, body = Startup, example = json!({
            "status": "starting", "reason": "registry directory ./registry does not exist"
        })),
    )
)]
fn startup() {}

#[utoipa::path(
    get, path = "/model", tag = LAB,
    summary = "The serving model: version, sha256, schema, threshold, metrics",
    responses(
        (status = 200, body = ModelDescription),
        (status = 503, description = "No model is serving", body = ErrorBody),
    )
)]
fn model() {}

#[utoipa::path(
    get, path = "/models", tag = LAB,
    summary = "Every served model: name, version and state; and the default model",
    responses((status = 200, body = ModelList))
)]
fn models() {}

#[utoipa::path(
    get, path = "/models/{name}", tag = LAB,
    summary = "`/model` for one served model",
    params(("name" = String, Path, description = "A served model's name (`MODEL_NAME` or one of `MODEL_NAMES`)", example = "churn")),
    responses(
        (status = 200, body = ModelDescription),
        (status = 404, description = "Unknown model; the error names the served ones", body = ErrorBody),
        (status = 503, description = "No model is serving", body = ErrorBody),
    )
)]
fn model_named() {}

#[utoipa::path(
    post, path = "/models/{name}/predict", tag = LAB,
    summary = "`/predict` for one served model",
    description = "The same contract as `/predict` (one row, or `instances`), validated against         the named model's own schema (the body documented here is the default model's).",
    params(("name" = String, Path, description = "A served model's name (`MODEL_NAME` or one of `MODEL_NAMES`)", example = "churn")),
    request_body(content = PredictBody),
    responses(
        (status = 200, description = "The answer, or one answer per row", body = PredictAnswer),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown model; the error names the served ones", body = ErrorBody),
        (status = 413, description = "Body over `max_body_bytes`, or more rows than `max_batch_rows`", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is missing, of the wrong type or out of range, or the body is not a JSON object", body = ValidationError),
        (status = 503, description = "No model is serving", body = ErrorBody),
    )
)]
fn predict_named() {}

#[utoipa::path(
    get, path = "/metrics", tag = MONITORING,
    summary = "Prometheus metrics (OpenMetrics text)",
    security(("monitoring_token" = [])),
    responses(
        (status = 200, content_type = "application/openmetrics-text", body = String,
            example = "# TYPE modelhost_predictions counter\n"),
        (status = 401, description = "`MONITORING_TOKEN` or `MONITORING_TOKEN_FILE` is set and the bearer token is missing or wrong", body = ErrorBody),
    )
)]
fn metrics() {}

#[utoipa::path(
    get, path = "/monitoring/drift", tag = MONITORING,
    summary = "Drift of recent inputs against the training statistics",
    security(("monitoring_token" = [])),
    params(
        ("model" = Option<String>, Query,
            description = "A served model's name (default: the default model, `MODEL_NAME`)"),
        ("z_threshold" = Option<f64>, Query, exclusive_minimum = 0,
            description = "Overrides `drift_z_threshold`; a positive number"),
        ("psi_threshold" = Option<f64>, Query, exclusive_minimum = 0,
            description = "Overrides `drift_psi_threshold`; a positive number"),
    ),
    responses(
        (status = 200, body = DriftReportSchema),
        (status = 400, description = "A threshold is not a positive number", body = ErrorBody),
        (status = 401, description = "`MONITORING_TOKEN` or `MONITORING_TOKEN_FILE` is set and the bearer token is missing or wrong", body = ErrorBody),
        (status = 404, description = "`model` names no served model", body = ErrorBody),
        (status = 503, description = "No model is serving", body = ErrorBody),
    )
)]
fn drift() {}

#[utoipa::path(
    get, path = "/monitoring/history", tag = MONITORING,
    summary = "The model's version history: every train, publish, rollback and seed, with F1 and ROC AUC",
    description = "Read from the registry's `history.jsonl` at each request: the newest 1000 \
        lines, and the version `model.wasm` holds (`live`, by its sha256).",
    security(("monitoring_token" = [])),
    responses(
        (status = 200, body = VersionHistory),
        (status = 401, description = "`MONITORING_TOKEN` or `MONITORING_TOKEN_FILE` is set and the bearer token is missing or wrong", body = ErrorBody),
        (status = 500, description = "The registry could not be read, or its `history.jsonl` is over 32 MiB (the log names the file)", body = ErrorBody),
    )
)]
fn history() {}

#[utoipa::path(
    get, path = "/monitoring/events", tag = MONITORING,
    summary = "This server's recent swaps and refused candidates, with the reasons",
    security(("monitoring_token" = [])),
    responses(
        (status = 200, body = RecentEvents),
        (status = 401, description = "`MONITORING_TOKEN` or `MONITORING_TOKEN_FILE` is set and the bearer token is missing or wrong", body = ErrorBody),
    )
)]
fn events() {}

#[utoipa::path(
    get, path = "/openapi.json", tag = DOCS,
    summary = "This document",
    responses((status = 200, content_type = "application/json", body = Object))
)]
fn openapi_json() {}

#[utoipa::path(
    get, path = "/docs", tag = DOCS,
    summary = "Interactive documentation of this API",
    responses((status = 200, content_type = "text/html", body = String))
)]
fn docs() {}

#[utoipa::path(
    get, path = "/docs/redoc-2.5.4.js", tag = DOCS,
    summary = "The documentation viewer `/docs` loads (Redoc, vendored)",
    responses((status = 200, content_type = "text/javascript", body = String))
)]
fn docs_viewer() {}

#[utoipa::path(
    get, path = "/", tag = DOCS,
    summary = "The console: the serving model, its history, live traffic, drift, a prediction form",
    description = "An HTML page with no data in it: its script reads `/model` and, with the \
        monitoring token when one is set, the monitoring routes.",
    responses((status = 200, content_type = "text/html", body = String))
)]
fn console() {}

#[utoipa::path(
    get, path = "/console.js", tag = DOCS,
    summary = "The console's script (`?v=<digest>`: cached for a year)",
    responses((status = 200, content_type = "text/javascript", body = String))
)]
fn console_script() {}

#[utoipa::path(
    get, path = "/console.css", tag = DOCS,
    summary = "The console's style sheet (`?v=<digest>`: cached for a year)",
    responses((status = 200, content_type = "text/css", body = String))
)]
fn console_style() {}

#[utoipa::path(
    get, path = "/v2", tag = OIP,
    summary = "Server metadata",
    responses((status = 200, body = ServerMetadata))
)]
fn v2_server_metadata() {}

#[utoipa::path(
    get, path = "/v2/health/live", tag = OIP,
    summary = "Server liveness, like `/health`",
    responses((status = 200, body = Live))
)]
fn v2_live() {}

#[utoipa::path(
    get, path = "/v2/health/ready", tag = OIP,
    summary = "Server readiness, like `/ready`",
    responses(
        (status = 200, body = ReadyFlag),
        (status = 503, description = "No model serves yet, or shutting down", body = ReadyFlag,
            example = json!({"ready": false, "reason": "shutting down"})),
    )
)]
fn v2_ready() {}

#[utoipa::path(
    post, path = "/v2/repository/index", tag = OIP,
    summary = "Repository index: every served model with its version, state and reason",
    description = "The repository extension Triton's and KServe's clients call. `{\"ready\": true}` \
        lists only the models that serve; no body (or `null`) is `{}`.",
    request_body = Option<RepositoryIndexRequest>,
    responses(
        (status = 200, body = Vec<RepositoryEntry>, example = json!([
            {"name": "churn", "version": "v2eea169a56b4", "state": "READY", "reason": ""}
        ])),
        (status = 400, description = "Not a repository index request", body = ErrorBody),
    )
)]
fn v2_repository_index() {}

#[utoipa::path(
    get, path = "/v2/models/{name}", tag = OIP,
    summary = "Model metadata: one input per feature, and the outputs",
    params(("name" = String, Path, description = "A served model's name (`MODEL_NAME` or one of `MODEL_NAMES`)", example = "churn")),
    responses(
        (status = 200, body = ModelMetadata),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 503, description = "No model is serving", body = ErrorBody),
    )
)]
fn v2_model_metadata() {}

#[utoipa::path(
    get, path = "/v2/models/{name}/versions/{version}", tag = OIP,
    summary = "Model metadata of one version",
    params(
        ("name" = String, Path, description = "A served model's name (`MODEL_NAME` or one of `MODEL_NAMES`)", example = "churn"),
        ("version" = String, Path, description = "The serving version", example = "v2eea169a56b4"),
    ),
    responses(
        (status = 200, body = ModelMetadata),
        (status = 404, description = "Unknown model, or not the serving version", body = ErrorBody),
        (status = 503, description = "No model is serving", body = ErrorBody),
    )
)]
fn v2_model_version_metadata() {}

#[utoipa::path(
    get, path = "/v2/models/{name}/ready", tag = OIP,
    summary = "Model readiness",
    params(("name" = String, Path, description = "A served model's name (`MODEL_NAME` or one of `MODEL_NAMES`)", example = "churn")),
    responses(
        (status = 200, body = ModelReady),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 503, description = "No model serves yet", body = ModelReady),
    )
)]
fn v2_model_ready() {}

#[utoipa::path(
    get, path = "/v2/models/{name}/versions/{version}/ready", tag = OIP,
    summary = "Readiness of one model version",
    params(
        ("name" = String, Path, description = "A served model's name (`MODEL_NAME` or one of `MODEL_NAMES`)", example = "churn"),
        ("version" = String, Path, description = "The serving version", example = "v2eea169a56b4"),
    ),
    responses(
        (status = 200, body = ModelReady),
        (status = 404, description = "Unknown model, or not the serving version", body = ErrorBody),
        (status = 503, description = "No model serves yet", body = ModelReady),
    )
)]
fn v2_model_version_ready() {}

#[utoipa::path(
    post, path = "/v2/models/{name}/infer", tag = OIP,
    summary = "Inference: named input tensors in, probability and prediction out",
    description = "One tensor per feature, the batch along the first dimension, `data` flat or \
        nested. Answers `probability` (FP64) and `prediction` (INT64). With the binary tensor \
        extension, inputs may carry `binary_data_size` and their bytes after the JSON header \
        (`Inference-Header-Content-Length`), and outputs come as bytes when asked for.",
    params(("name" = String, Path, description = "A served model's name (`MODEL_NAME` or one of `MODEL_NAMES`)", example = "churn")),
    request_body = InferRequest,
    responses(
        (status = 200, description = "The outputs as JSON; with binary outputs asked for, the JSON \
            header then the bytes (`Inference-Header-Content-Length` gives the header's length)",
            content(
                (InferResponse = "application/json"),
                (Vec<u8> = "application/octet-stream"),
            ),
            headers(("Inference-Header-Content-Length" = u64, description = "Length of the JSON header of a binary answer"))),
        (status = 400, description = "A missing, unknown or invalid input; the error names it and the row", body = ErrorBody,
            example = json!({"error": "row 0: field `tenure_months` must be between 0 and 200, got 201"})),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "More rows than `max_batch_rows`, or a body over `max_body_bytes`", body = ErrorBody),
        (status = 503, description = "No model is serving", body = ErrorBody),
    )
)]
fn v2_infer() {}

#[utoipa::path(
    post, path = "/v2/models/{name}/versions/{version}/infer", tag = OIP,
    summary = "Inference with one model version",
    params(
        ("name" = String, Path, description = "A served model's name (`MODEL_NAME` or one of `MODEL_NAMES`)", example = "churn"),
        ("version" = String, Path, description = "The serving version", example = "v2eea169a56b4"),
    ),
    request_body = InferRequest,
    responses(
        (status = 200, description = "As for `/v2/models/{name}/infer`",
            content(
                (InferResponse = "application/json"),
                (Vec<u8> = "application/octet-stream"),
            ),
            headers(("Inference-Header-Content-Length" = u64, description = "Length of the JSON header of a binary answer"))),
        (status = 400, description = "A missing, unknown or invalid input", body = ErrorBody),
        (status = 404, description = "Unknown model, or not the serving version", body = ErrorBody),
        (status = 413, description = "More rows than `max_batch_rows`", body = ErrorBody),
        (status = 503, description = "No model is serving", body = ErrorBody),
    )
)]
fn v2_version_infer() {}
