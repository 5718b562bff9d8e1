//! The Open Inference Protocol v2 over REST, the API KServe, Triton and MLServer clients speak:
//! server metadata and health, model metadata and readiness, and inference.
//!
//! Every served model (`MODEL_NAME` and `MODEL_NAMES`) answers under its name, and its one
//! version is the one serving: any other name (the 404 names the served ones) or version is a
//! 404. `POST /v2/repository/index` lists the served models (the repository extension). Its inputs are the schema's features, one tensor each — `INT64` for
//! integers, `FP64` for numbers, `BYTES` for categories — with shape `[-1]` (the first dimension
//! is the batch). Its outputs are `probability` (`FP64`) and `prediction` (`INT64`, 1 when the
//! probability reaches the model's threshold). Inference validates every row with the schema
//! `/predict` uses, scores the batch in one wasm call, and records every row like `/predict`.
//!
//! Triton's binary tensor extension is understood both ways: inputs may carry
//! `binary_data_size` with their bytes after the JSON header (`Inference-Header-Content-Length`),
//! and outputs are sent as bytes when the request asks (`binary_data_output`, or `binary_data`
//! on a requested output). Errors are `{"error": "..."}`: 400 for a bad request, 404 for an
//! unknown model or version, 413 for a batch over `max_batch_rows`, 503 while nothing serves.

pub(super) mod tensor;

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use modelhost_abi::info::FeatureKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use self::tensor::Datatype;
use super::batch::{RowError, Scored, check_batch_limit, score_rows, summary};
use super::bodies::RepositoryEntry;
use super::error::Body;
use super::observe::RequestId;
use super::{AppError, AppState};
use crate::model::response;
use crate::model::schema::prepare_row;
use crate::model::{Model, Served};

/// How this server names its model format in model metadata.
pub const PLATFORM: &str = "modelhost-wasm";
/// The output holding each row's probability.
pub const OUTPUT_PROBABILITY: &str = "probability";
/// The output holding each row's 0/1 decision.
pub const OUTPUT_PREDICTION: &str = "prediction";
/// Protocol extensions this server implements.
pub const EXTENSIONS: &[&str] = &["binary_tensor_data"];

/// Length of the JSON part of a body that carries binary tensors after it.
static HEADER_CONTENT_LENGTH: HeaderName =
    HeaderName::from_static("inference-header-content-length");

/// `GET /v2`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"name": "modelhost", "version": "0.1.0", "extensions": ["binary_tensor_data"]}))]
pub struct ServerMetadata {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

/// An input or output of a model: its name, element type and shape (`-1`: any size).
#[derive(Debug, Serialize, ToSchema)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{name}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "name": "churn", "versions": ["v2eea169a56b4"], "platform": "modelhost-wasm",
    "inputs": [
        {"name": "tenure_months", "datatype": "INT64", "shape": [-1]},
        {"name": "num_complaints", "datatype": "INT64", "shape": [-1]},
        {"name": "avg_session_minutes", "datatype": "FP64", "shape": [-1]},
        {"name": "plan_type", "datatype": "BYTES", "shape": [-1]},
        {"name": "region", "datatype": "BYTES", "shape": [-1]}
    ],
    "outputs": [
        {"name": "probability", "datatype": "FP64", "shape": [-1]},
        {"name": "prediction", "datatype": "INT64", "shape": [-1]}
    ]
}))]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// The model a route names: `/v2/models/{name}` or `/v2/models/{name}/versions/{version}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ModelRef {
    /// A served model's name (`MODEL_NAME` or one of `MODEL_NAMES`).
    pub name: String,
    /// The model's version id, as `/model` and `model_version` report it.
    pub version: Option<String>,
}

/// `POST /v2/models/{name}/infer`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "req-001",
    "inputs": [
        {"name": "tenure_months", "shape": [1], "datatype": "INT64", "data": [6]},
        {"name": "num_complaints", "shape": [1], "datatype": "INT64", "data": [3]},
        {"name": "avg_session_minutes", "shape": [1], "datatype": "FP64", "data": [12.5]},
        {"name": "plan_type", "shape": [1], "datatype": "BYTES", "data": ["basic"]},
        {"name": "region", "shape": [1], "datatype": "BYTES", "data": ["AF"]}
    ]
}))]
pub struct InferRequest {
    /// Echoed in the response; the prediction log names each row `<id>/<row>`.
    #[schema(min_length = 1, max_length = 128)]
    pub id: Option<String>,
    /// `binary_data_output: true` asks for every output as bytes.
    #[schema(value_type = Option<InferParameters>)]
    pub parameters: Option<Map<String, Value>>,
    /// One tensor per feature of the model.
    #[schema(schema_with = super::openapi::schemas::infer_inputs)]
    pub inputs: Vec<InferInput>,
    /// The outputs wanted; all of them when absent.
    pub outputs: Option<Vec<RequestedOutput>>,
}

/// One input tensor.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InferInput {
    pub name: String,
    /// `[n]` or `[n, 1]` for n rows.
    pub shape: Vec<i64>,
    pub datatype: String,
    /// `binary_data_size`: the tensor's bytes follow the JSON header instead of `data`.
    pub parameters: Option<Map<String, Value>>,
    /// The elements, row-major, flat or nested.
    #[schema(value_type = Option<Vec<Object>>)]
    pub data: Option<Value>,
}

/// An inference request's parameters, as far as this server reads them; others are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct InferParameters {
    /// `true` asks for every output as bytes after the JSON header.
    binary_data_output: Option<bool>,
}

/// One output a request asks for.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestedOutput {
    #[schema(value_type = OutputName)]
    pub name: String,
    /// `binary_data: true` asks for this output as bytes.
    #[schema(value_type = Option<OutputParameters>)]
    pub parameters: Option<Map<String, Value>>,
}

/// The outputs a request may ask for.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum OutputName {
    Probability,
    Prediction,
}

/// An output's parameters, as far as this server reads them; `classification` is refused.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OutputParameters {
    /// `true` asks for this output as bytes after the JSON header.
    binary_data: Option<bool>,
}

/// The answer to an inference request.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "model_name": "churn", "model_version": "v2eea169a56b4", "id": "req-001",
    "outputs": [
        {"name": "probability", "datatype": "FP64", "shape": [1], "data": [0.9200635852203166]},
        {"name": "prediction", "datatype": "INT64", "shape": [1], "data": [1]}
    ]
}))]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outputs: Vec<InferOutput>,
}

/// One output tensor: `data`, or `parameters.binary_data_size` bytes after the JSON header.
#[derive(Debug, Serialize, ToSchema)]
pub struct InferOutput {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<f64>>)]
    pub data: Option<Value>,
}

/// `GET /v2`: the server's name, version and protocol extensions.
pub async fn server_metadata() -> Json<ServerMetadata> {
    Json(ServerMetadata::of_this_server())
}

impl ServerMetadata {
    /// This server's name, version and extensions, whichever protocol asks.
    pub(super) fn of_this_server() -> Self {
        ServerMetadata {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            extensions: EXTENSIONS.iter().map(|e| e.to_string()).collect(),
        }
    }
}

/// `GET /v2/health/live`: the process answers HTTP, like `/health`.
pub async fn server_live() -> Json<Value> {
    Json(json!({ "live": true }))
}

/// `GET /v2/health/ready`: 200 while a model serves and the server is not shutting down, like
/// `/ready`; otherwise 503 (clients read any status but 200 as "not ready").
pub async fn server_ready(State(state): State<AppState>) -> Response {
    let Some(reason) = state.not_ready_reason() else {
        return Json(json!({ "ready": true })).into_response();
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "ready": false, "reason": reason })),
    )
        .into_response()
}

/// `GET /v2/models/{name}[/versions/{version}]`: the inputs and outputs.
pub async fn model_metadata(
    State(state): State<AppState>,
    model_ref: Result<Path<ModelRef>, PathRejection>,
) -> Result<Json<ModelMetadata>, AppError> {
    let (served, model) = serving(&state, &path(model_ref)?)?;
    Ok(Json(ModelMetadata::of(&served, &model)))
}

impl ModelMetadata {
    /// The serving model's inputs (one per feature) and outputs, whichever protocol asks.
    pub(super) fn of(served: &Served, model: &Model) -> Self {
        let info = model.info();
        let tensor = |name: &str, datatype: &str| TensorMetadata {
            name: name.to_string(),
            datatype: datatype.to_string(),
            shape: vec![-1],
        };
        ModelMetadata {
            name: served.name().to_string(),
            versions: vec![model.version().to_string()],
            platform: PLATFORM.to_string(),
            inputs: info
                .features
                .iter()
                .map(|f| tensor(&f.name, datatype_of(&f.kind)))
                .collect(),
            outputs: vec![
                tensor(OUTPUT_PROBABILITY, "FP64"),
                tensor(OUTPUT_PREDICTION, "INT64"),
            ],
        }
    }
}

/// `GET /v2/models/{name}[/versions/{version}]/ready`: 200 while it serves, 503 before.
pub async fn model_ready(
    State(state): State<AppState>,
    model_ref: Result<Path<ModelRef>, PathRejection>,
) -> Result<Response, AppError> {
    let model_ref = path(model_ref)?;
    match serving(&state, &model_ref) {
        Ok((_, model)) => Ok(Json(json!({
            "name": model_ref.name,
            "version": model.version(),
            "ready": true,
        }))
        .into_response()),
        Err(AppError::NoModel(reason)) => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "name": model_ref.name, "ready": false, "reason": reason })),
        )
            .into_response()),
        Err(other) => Err(other),
    }
}

/// `POST /v2/models/{name}[/versions/{version}]/infer`.
pub async fn infer(
    State(state): State<AppState>,
    model_ref: Result<Path<ModelRef>, PathRejection>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<Body, AppError>,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let model_ref = path(model_ref)?;
    let Body(body) = body?;
    let (served, model) = serving(&state, &model_ref)?;
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && encoding.as_bytes() != b"identity"
    {
        return Err(AppError::UnsupportedMediaType(format!(
            "content encoding {:?} is not supported; send the body uncompressed",
            String::from_utf8_lossy(encoding.as_bytes())
        )));
    }
    let (header_part, mut binary) = split_body(&headers, &body)?;
    let request: InferRequest = serde_json::from_slice(header_part)
        .map_err(|e| AppError::BadRequest(format!("invalid inference request: {e}")))?;
    // Echoed and written to every row's prediction-log line: bounded like `request_id`.
    if let Some(id) = &request.id
        && !response::is_valid_id(id)
    {
        return Err(AppError::BadRequest(response::id_bound("id")));
    }
    let wanted = wanted_outputs(&request)?;

    let columns = feature_columns(&model, &request.inputs, |_, input, datatype| {
        json_input_values(input, datatype, &mut binary)
    })
    .map_err(AppError::BadRequest)?;
    if !binary.is_empty() {
        return Err(AppError::BadRequest(format!(
            "{} bytes of binary data follow the inputs that no input claims",
            binary.len()
        )));
    }
    let base_id = AppState::chosen_request_id(request.id.clone(), request_id);
    let scored = score_columns(&state, &served, &model, columns, &base_id, started).await?;
    let n_rows = scored.probabilities.len();
    let predictions = predictions(&scored);
    let mut outputs = Vec::with_capacity(wanted.len());
    let mut tail = Vec::new();
    for output in &wanted {
        let probability = output.name == OUTPUT_PROBABILITY;
        let datatype = if probability { "FP64" } else { "INT64" };
        // Only the form the client asked for is built: JSON data, or bytes after the JSON.
        let (parameters, data) = if output.binary {
            let bytes = if probability {
                tensor::fp64_bytes(&scored.probabilities)
            } else {
                tensor::int64_bytes(&predictions)
            };
            let mut size = Map::new();
            size.insert("binary_data_size".to_string(), json!(bytes.len()));
            tail.extend(bytes);
            (Some(size), None)
        } else if probability {
            (None, Some(json!(scored.probabilities)))
        } else {
            (None, Some(json!(predictions)))
        };
        outputs.push(InferOutput {
            name: output.name.to_string(),
            datatype: datatype.to_string(),
            shape: vec![n_rows],
            parameters,
            data,
        });
    }
    let answer = InferResponse {
        model_name: model_ref.name,
        model_version: model.version().to_string(),
        id: request.id,
        outputs,
    };
    if wanted.iter().all(|o| !o.binary) {
        return Ok(Json(answer).into_response());
    }
    let mut body = serde_json::to_vec(&answer)
        .map_err(|e| AppError::Internal(format!("cannot serialise an inference response: {e}")))?;
    let json_len = HeaderValue::from(body.len());
    body.extend(tail);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (HEADER_CONTENT_LENGTH.clone(), json_len),
        ],
        body,
    )
        .into_response())
}

/// The protocol datatype of a feature.
pub fn datatype_of(kind: &FeatureKind) -> &'static str {
    match kind {
        FeatureKind::Integer { .. } => "INT64",
        FeatureKind::Number { .. } => "FP64",
        FeatureKind::Categorical { .. } => "BYTES",
    }
}

fn path(model_ref: Result<Path<ModelRef>, PathRejection>) -> Result<ModelRef, AppError> {
    model_ref
        .map(|Path(model_ref)| model_ref)
        .map_err(|rejection| AppError::BadRequest(rejection.body_text()))
}

/// The served model `model_ref` names and its serving model: 404 for another name (naming the
/// served ones) or version, 503 while nothing serves.
pub(super) fn serving(
    state: &AppState,
    model_ref: &ModelRef,
) -> Result<(Arc<Served>, Arc<Model>), AppError> {
    let served = state.model_named(&model_ref.name)?;
    let model = AppState::serving_model_of(&served)?;
    if let Some(version) = &model_ref.version
        && version != model.version()
    {
        return Err(AppError::NotFound(format!(
            "model `{}` has no version `{version}`; version `{}` is serving",
            served.name(),
            model.version()
        )));
    }
    Ok((served, model))
}

/// `POST /v2/repository/index`'s body: `{}`, or `{"ready": true}` for the ready models only.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"ready": true}))]
pub struct RepositoryIndexRequest {
    /// Only the models that serve.
    #[serde(default)]
    pub ready: bool,
}

/// `POST /v2/repository/index` (the repository extension Triton's and KServe's clients call):
/// every served model with its version, state and reason. An empty body is `{}`.
pub async fn repository_index(
    State(state): State<AppState>,
    body: Result<Body, AppError>,
) -> Result<Json<Vec<RepositoryEntry>>, AppError> {
    let Body(body) = body?;
    // No body, and JSON `null`, are `{}` (the document declares the body optional).
    let request: RepositoryIndexRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RepositoryIndexRequest::default()
    } else {
        let invalid =
            |e: String| AppError::BadRequest(format!("invalid repository index request: {e}"));
        // Through a `Value`, because a derived struct would also take a JSON array.
        match serde_json::from_slice::<serde_json::Value>(&body)
            .map_err(|e| invalid(e.to_string()))?
        {
            serde_json::Value::Null => RepositoryIndexRequest::default(),
            object @ serde_json::Value::Object(_) => {
                serde_json::from_value(object).map_err(|e| invalid(e.to_string()))?
            }
            _ => return Err(invalid("the body must be a JSON object".to_string())),
        }
    };
    Ok(Json(repository_entries(&state, request.ready)))
}

/// The repository index, whichever protocol asks: every served model, or only the ready ones.
pub(super) fn repository_entries(state: &AppState, ready_only: bool) -> Vec<RepositoryEntry> {
    let mut entries = RepositoryEntry::every(state.catalog());
    if ready_only {
        entries.retain(RepositoryEntry::is_ready);
    }
    entries
}

/// The JSON header and the binary tensors after it.
fn split_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), AppError> {
    let Some(value) = headers.get(&HEADER_CONTENT_LENGTH) else {
        return Ok((body, &[]));
    };
    let json_len = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            AppError::BadRequest(
                "header Inference-Header-Content-Length must be a byte count".to_string(),
            )
        })?;
    if json_len > body.len() {
        return Err(AppError::BadRequest(format!(
            "header Inference-Header-Content-Length is {json_len} but the body holds {} bytes",
            body.len()
        )));
    }
    Ok(body.split_at(json_len))
}

/// One output to send, and whether as bytes.
pub(super) struct Wanted {
    pub name: &'static str,
    pub binary: bool,
}

/// One output a request names, as either protocol carries it: its name, whether it asks for
/// the classification extension, and its own choice of bytes (an error for a malformed one).
pub(super) struct OutputRequest<'a> {
    pub name: &'a str,
    pub classification: bool,
    pub binary: Result<Option<bool>, AppError>,
}

fn wanted_outputs(request: &InferRequest) -> Result<Vec<Wanted>, AppError> {
    let flag =
        |parameters: Option<&Map<String, Value>>, key: &str| -> Result<Option<bool>, AppError> {
            match parameters.and_then(|p| p.get(key)) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(other) => Err(AppError::BadRequest(format!(
                    "parameter `{key}` must be true or false, got {other}"
                ))),
            }
        };
    let binary_default = flag(request.parameters.as_ref(), "binary_data_output")?.unwrap_or(false);
    let requested = request.outputs.as_deref().unwrap_or_default();
    choose_outputs(
        requested.iter().map(|output| OutputRequest {
            name: &output.name,
            classification: output
                .parameters
                .as_ref()
                .is_some_and(|p| p.contains_key("classification")),
            binary: flag(output.parameters.as_ref(), "binary_data"),
        }),
        binary_default,
    )
}

/// The outputs to send: every output when none is named, else the named ones, each once.
pub(super) fn choose_outputs<'a>(
    requested: impl ExactSizeIterator<Item = OutputRequest<'a>>,
    binary_default: bool,
) -> Result<Vec<Wanted>, AppError> {
    if requested.len() == 0 {
        return Ok([OUTPUT_PROBABILITY, OUTPUT_PREDICTION]
            .into_iter()
            .map(|name| Wanted {
                name,
                binary: binary_default,
            })
            .collect());
    }
    let mut wanted: Vec<Wanted> = Vec::with_capacity(requested.len());
    for output in requested {
        let name = match output.name {
            OUTPUT_PROBABILITY => OUTPUT_PROBABILITY,
            OUTPUT_PREDICTION => OUTPUT_PREDICTION,
            other => {
                return Err(AppError::BadRequest(format!(
                    "unknown output `{other}`: the model's outputs are `{OUTPUT_PROBABILITY}` and `{OUTPUT_PREDICTION}`"
                )));
            }
        };
        if wanted.iter().any(|w| w.name == name) {
            return Err(AppError::BadRequest(format!(
                "output `{name}` is requested twice"
            )));
        }
        if output.classification {
            return Err(AppError::BadRequest(format!(
                "output `{name}`: the classification extension is not supported"
            )));
        }
        let binary = output.binary?.unwrap_or(binary_default);
        wanted.push(Wanted { name, binary });
    }
    Ok(wanted)
}

/// An input tensor's header, as either protocol carries it.
pub(super) trait InputHeader {
    fn name(&self) -> &str;
    fn datatype(&self) -> &str;
    fn shape(&self) -> &[i64];
}

/// Implements [`InputHeader`] for an input type with `name`, `datatype` and `shape` fields.
macro_rules! input_header {
    ($input:ty) => {
        impl $crate::http::oip::InputHeader for $input {
            fn name(&self) -> &str {
                &self.name
            }
            fn datatype(&self) -> &str {
                &self.datatype
            }
            fn shape(&self) -> &[i64] {
                &self.shape
            }
        }
    };
}
pub(super) use input_header;

input_header!(InferInput);

/// One column of values per feature, in schema order, all of the same length: each input is
/// matched to its feature and its datatype and shape checked, then `read` gives its elements
/// (called with the input's position among `inputs`, once its header is known to be sound).
/// Both protocols decode through here, so their inputs are judged by the same rules and words.
pub(super) fn feature_columns<I: InputHeader>(
    model: &Model,
    inputs: &[I],
    mut read: impl FnMut(usize, &I, Datatype) -> Result<Vec<Value>, String>,
) -> Result<Vec<Vec<Value>>, String> {
    let features = &model.info().features;
    let expected = || {
        features
            .iter()
            .map(|f| format!("{} ({})", f.name, datatype_of(&f.kind)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut columns: Vec<Option<Vec<Value>>> = vec![None; features.len()];
    let mut batch: Option<(String, usize)> = None;
    for (position, input) in inputs.iter().enumerate() {
        let name = input.name();
        let Some(index) = features.iter().position(|f| f.name == name) else {
            return Err(format!(
                "unknown input `{name}`: the model's inputs are {}",
                expected()
            ));
        };
        if columns[index].is_some() {
            return Err(format!("input `{name}` is given twice"));
        }
        let datatype =
            Datatype::parse(input.datatype()).map_err(|e| format!("input `{name}`: {e}"))?;
        let categorical = matches!(features[index].kind, FeatureKind::Categorical { .. });
        if categorical == datatype.is_numeric() {
            return Err(format!(
                "input `{name}` must have datatype {}, got {}",
                if categorical {
                    "BYTES"
                } else {
                    "INT64 or FP64"
                },
                input.datatype()
            ));
        }
        // Only checked here, never allocated from: the elements decide what is allocated.
        let n_rows = tensor::batch_size(name, input.shape())?;
        let values = read(position, input, datatype)?;
        if values.len() != n_rows {
            return Err(format!(
                "input `{name}` has shape {:?} but {} elements",
                input.shape(),
                values.len()
            ));
        }
        match &batch {
            Some((first, rows)) if *rows != n_rows => {
                return Err(format!(
                    "input `{name}` has {n_rows} rows but input `{first}` has {rows}"
                ));
            }
            Some(_) => {}
            None => batch = Some((name.to_string(), n_rows)),
        }
        columns[index] = Some(values);
    }
    features
        .iter()
        .zip(columns)
        .map(|(feature, column)| {
            column.ok_or_else(|| {
                format!(
                    "missing input `{}`: the model's inputs are {}",
                    feature.name,
                    expected()
                )
            })
        })
        .collect()
}

/// A JSON input's elements: its `data`, or its `binary_data_size` bytes taken from the front of
/// `binary`.
fn json_input_values(
    input: &InferInput,
    datatype: Datatype,
    binary: &mut &[u8],
) -> Result<Vec<Value>, String> {
    let name = input.name.as_str();
    match tensor::binary_data_size(name, input.parameters.as_ref())? {
        Some(size) => {
            if input.data.is_some() {
                return Err(format!(
                    "input `{name}` has both `data` and `binary_data_size`"
                ));
            }
            if size > binary.len() {
                return Err(format!(
                    "input `{name}` claims {size} bytes of binary data but {} remain",
                    binary.len()
                ));
            }
            let (bytes, rest) = binary.split_at(size);
            *binary = rest;
            tensor::from_binary(name, datatype, bytes)
        }
        None => {
            let data = input.data.as_ref().ok_or_else(|| {
                format!("input `{name}` has neither `data` nor `binary_data_size`")
            })?;
            tensor::from_json(name, datatype, data)
        }
    }
}

/// Everything after decoding, for both protocols: the feature columns become rows, each checked
/// by the schema `/predict` uses (400 naming every row and field at fault), the batch is bounded
/// by `max_batch_rows` (413), scored in one model call, and every row recorded as `<id>/<row>`.
pub(super) async fn score_columns(
    state: &AppState,
    served: &Served,
    model: &Arc<Model>,
    mut columns: Vec<Vec<Value>>,
    base_id: &str,
    started: Instant,
) -> Result<Scored, AppError> {
    let n_rows = columns.first().map_or(0, Vec::len);
    if n_rows == 0 {
        return Err(AppError::BadRequest("the inputs hold no rows".to_string()));
    }
    check_batch_limit(state, "the request", n_rows)?;
    let info = model.info();
    let mut rows = Vec::with_capacity(n_rows);
    let mut problems = Vec::new();
    for row in 0..n_rows {
        let object: Map<String, Value> = info
            .features
            .iter()
            .zip(columns.iter_mut())
            // Each cell is used once: moved out, not copied.
            .map(|(feature, column)| (feature.name.clone(), std::mem::take(&mut column[row])))
            .collect();
        match prepare_row(info, &object) {
            Ok(prepared) => rows.push((format!("{base_id}/{row}"), prepared)),
            Err(errors) => problems.extend(errors.into_iter().map(|e| RowError::field(row, e))),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::BadRequest(summary(&problems)));
    }
    score_rows(state, served, model, rows, started).await
}

/// Each scored row's 0/1 decision, the `prediction` output.
pub(super) fn predictions(scored: &Scored) -> Vec<i64> {
    scored
        .answers
        .iter()
        .map(|a| i64::from(a.prediction))
        .collect()
}
