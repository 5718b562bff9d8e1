//! Schemas of the lab API's bodies, for the OpenAPI document.
//!
//! The handlers build these bodies as JSON (their fields follow the serving model's schema), so
//! the types here describe them rather than produce them; a test compares their properties with
//! real responses. The probes' and `/model`'s bodies (`http::bodies`) and the v2 types need no
//! such mirror: the handlers serialise them directly. A mirror of a Rust type the server does
//! build is named after it with `Schema` appended, and keeps the type's own name in the
//! document (`as`), so that one name never stands for two types.

use modelhost_abi::info::{FeatureKind, FeatureSpec};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::model::schema::MAX_CATEGORY_CHARS;

/// One row, as the lab's `POST /predict` takes it: `request_id` and one field per feature of
/// the serving model (`GET /model` lists them). The compiled-in document has only `request_id`;
/// `/openapi.json` adds the serving model's features (see `live`). The example is the lab's
/// customer, for the default churn model.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[schema(example = json!({
    "request_id": "req-001", "tenure_months": 6, "num_complaints": 3,
    "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"
}))]
pub struct PredictRequest {
    /// Echoed in the answer; a UUID (or the `X-Request-Id` header) when absent.
    #[schema(min_length = 1, max_length = 128)]
    request_id: Option<String>,
}

/// Many customers in one request, scored in one model call.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[schema(example = json!({
    "request_id": "batch-7",
    "instances": [
        {"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"},
        {"request_id": "cust-42", "tenure_months": 48, "num_complaints": 0, "avg_session_minutes": 40, "plan_type": "premium", "region": "EU"}
    ]
}))]
pub struct BatchRequest {
    /// Rows without their own `request_id` are named `<request_id>/<row>`.
    #[schema(min_length = 1, max_length = 128)]
    request_id: Option<String>,
    /// 1 to `max_batch_rows` customers.
    #[schema(min_items = 1)]
    instances: Vec<PredictRequest>,
}

/// One customer, or a batch under `instances`.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[serde(untagged)]
pub enum PredictBody {
    One(PredictRequest),
    Batch(BatchRequest),
}

/// The lab's answer for one customer, fields in the lab's order.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[schema(example = json!({
    "request_id": "req-001", "model_version": "v2eea169a56b4", "prediction": 1,
    "probability": 0.920064, "latency_ms": 0.349,
    "features": {"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"},
    "ts": 1795644213
}))]
#[schema(as = PredictResponse)]
pub struct PredictResponseSchema {
    request_id: String,
    model_version: String,
    /// 1 when `probability` reaches the model's tuned threshold.
    #[schema(minimum = 0, maximum = 1)]
    prediction: u8,
    /// Rounded to 6 decimals.
    probability: f64,
    /// Time spent answering, to 3 decimals (for a batch, the whole batch's).
    latency_ms: f64,
    /// The normalised inputs.
    #[schema(value_type = Object)]
    features: Map<String, Value>,
    /// Epoch seconds.
    ts: u64,
}

/// One answer per customer, in request order.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
pub struct BatchResponse {
    predictions: Vec<PredictResponseSchema>,
}

/// The lab's answer for one customer, or for a batch.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[serde(untagged)]
pub enum PredictAnswer {
    One(PredictResponseSchema),
    Batch(BatchResponse),
}

/// Every error: what went wrong, naming the field, value or file at fault.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[schema(example = json!({"error": "unknown model `fraud`: this server serves `churn`"}))]
pub struct ErrorBody {
    error: String,
}

/// A failed validation: every problem, in the shape FastAPI clients parse; or a body that is
/// JSON but not an object.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[schema(example = json!({
    "error": "row 1: field `tenure_months` must be between 0 and 200, got 201",
    "detail": [{
        "loc": ["body", "instances", 1, "tenure_months"], "row": 1, "field": "tenure_months",
        "type": "range", "msg": "field `tenure_months` must be between 0 and 200, got 201"
    }]
}))]
pub struct ValidationError {
    error: String,
    /// Absent when the body as a whole is at fault (JSON, but not an object).
    detail: Option<Vec<ValidationProblem>>,
}

/// One problem with one field.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
pub struct ValidationProblem {
    /// Where: `["body", field]`, or `["body", "instances", row, field]` in a batch.
    loc: Vec<LocPart>,
    /// The row of a batch.
    row: Option<usize>,
    field: Option<String>,
    /// `missing`, `type`, `range` or `not_finite`.
    #[schema(rename = "type")]
    kind: String,
    msg: String,
}

/// One step of a `loc` path: a name, or the index of a batch row.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[serde(untagged)]
pub enum LocPart {
    Name(String),
    Index(usize),
}

/// `GET /monitoring/drift`: recent inputs against the training statistics.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[schema(example = json!({
    "model_name": "churn", "model_version": "v2eea169a56b4", "n_predictions": 200, "window": 200,
    "thresholds": {"z": 2.5, "psi": 0.2},
    "numeric": {"tenure_months": {"n": 200, "mean_recent": 31.2, "mean_train": 29.8, "std_train": 16.9, "z": 0.08, "alert": false}},
    "categorical": {"region": {"n": 200, "recent": {"AF": 0.3, "EU": 0.7}, "train": {"AF": 0.25, "AS": 0.2, "EU": 0.3, "NA": 0.25}, "psi": 1.9, "alert": true}},
    "alerts": ["region"], "drift": true
}))]
#[schema(as = DriftReport)]
pub struct DriftReportSchema {
    model_name: String,
    model_version: String,
    n_predictions: usize,
    window: usize,
    #[schema(value_type = Object)]
    thresholds: Value,
    /// Per numeric feature: z = |mean_recent − mean_train| / std_train.
    #[schema(value_type = Object)]
    numeric: Value,
    /// Per categorical feature: the population stability index of recent against training.
    #[schema(value_type = Object)]
    categorical: Value,
    alerts: Vec<String>,
    drift: bool,
}

/// `GET /v2/health/live`.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[schema(example = json!({"live": true}))]
pub struct Live {
    live: bool,
}

/// `GET /v2/health/ready`.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[schema(example = json!({"ready": true}))]
pub struct ReadyFlag {
    ready: bool,
    reason: Option<String>,
}

/// `GET /v2/models/{name}/ready`.
#[expect(dead_code, reason = "describes a body for the document; never built")]
#[derive(ToSchema)]
#[schema(example = json!({"name": "churn", "version": "v2eea169a56b4", "ready": true}))]
pub struct ModelReady {
    name: String,
    version: Option<String>,
    ready: bool,
    reason: Option<String>,
}

/// Numeric datatypes an `INT64` or `FP64` feature takes (v2 infer).
const NUMERIC_DATATYPES: [&str; 10] = [
    "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP32", "FP64",
];

/// The v2 `inputs` before a model serves: tensors of any name (`/openapi.json` replaces them
/// with the serving model's, [`infer_inputs_for`]).
pub fn infer_inputs() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    infer_inputs_for(&[])
}

/// The v2 `inputs` of a model, as `/v2/models/{name}` lists them: exactly one tensor per
/// feature, each with its element type and range (those of the `/predict` body). utoipa has
/// no `contains`, so "every feature is there" is written as raw JSON Schema in the array's
/// extensions; with `maxItems` equal to the number of features it also rules out duplicates.
/// What JSON Schema cannot say is that a tensor's `shape` matches its element count and that
/// every input has the same number of rows: the server answers 400 when they do not. With no
/// features (no model serves yet) any tensor name is described.
pub fn infer_inputs_for(
    features: &[FeatureSpec],
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use serde_json::json;
    let tensor = |name: Value, element: Value, datatypes: Vec<&str>| {
        json!({
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": name,
                "shape": {
                    "type": "array",
                    "description": "`[n]` or `[n, 1]` for n rows",
                    "prefixItems": [{"type": "integer", "minimum": 0}],
                    "items": {"type": "integer", "enum": [1]},
                    "minItems": 1
                },
                "datatype": {"type": "string", "enum": datatypes},
                "parameters": {
                    "type": ["object", "null"],
                    "description": "`binary_data_size`: the tensor's bytes follow the \
                        JSON header instead of `data`",
                    "properties": {"binary_data_size": {"type": ["integer", "null"], "minimum": 0}}
                },
                "data": {
                    "type": ["array", "null"],
                    "description": "The elements, row-major, flat or nested",
                    "items": {"anyOf": [element, {"type": "array"}]}
                }
            }
        })
    };
    if features.is_empty() {
        let mut any = NUMERIC_DATATYPES.to_vec();
        any.push("BYTES");
        let array = json!({
            "type": "array",
            "description": "One tensor per feature of the serving model, in any order",
            "items": tensor(json!({"type": "string"}), json!({}), any),
        });
        return utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Array(
            serde_json::from_value(array).expect("the inputs schema is an array schema"),
        ));
    }
    let tensors: Vec<Value> = features
        .iter()
        .map(|feature| {
            let (element, datatypes) = match &feature.kind {
                FeatureKind::Categorical { .. } => (
                    json!({"type": "string", "maxLength": MAX_CATEGORY_CHARS}),
                    vec!["BYTES"],
                ),
                _ => {
                    let mut element = super::live::feature_schema(feature);
                    if let Some(element) = element.as_object_mut() {
                        element.remove("format");
                    }
                    (element, NUMERIC_DATATYPES.to_vec())
                }
            };
            tensor(
                json!({"type": "string", "enum": [feature.name]}),
                element,
                datatypes,
            )
        })
        .collect();
    let contains: Vec<Value> = features
        .iter()
        .map(|feature| {
            json!({"contains": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"enum": [feature.name]}}
            }})
        })
        .collect();
    let array = json!({
        "type": "array",
        "description": "One tensor per feature of the serving model, in any order",
        "items": {"oneOf": tensors},
        "minItems": features.len(),
        "maxItems": features.len(),
    });
    let mut array: utoipa::openapi::schema::Array =
        serde_json::from_value(array).expect("the inputs schema is an array schema");
    array.extensions = Some(utoipa::openapi::extensions::Extensions::from_iter([(
        "allOf",
        Value::Array(contains),
    )]));
    utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Array(array))
}
