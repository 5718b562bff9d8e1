//! `inference.GRPCInferenceService`: each method is the REST route of the same name, answered
//! from the same [`AppState`] methods and `oip` functions, with the protocol's messages.

use std::collections::HashMap;
use std::time::Instant;

use axum::Extension;
use tonic::{Request, Response, Status};

use super::contents::input_columns;
use super::inference::grpc_inference_service_server::GrpcInferenceService;
use super::inference::infer_parameter::ParameterChoice;
use super::inference::model_infer_response::InferOutputTensor;
use super::inference::model_metadata_response::TensorMetadata;
use super::inference::repository_index_response::ModelIndex;
use super::inference::{
    InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse,
    ModelMetadataRequest, ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse,
    RepositoryIndexRequest, RepositoryIndexResponse, ServerLiveRequest, ServerLiveResponse,
    ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
};
use super::status;
use crate::http::observe::{RequestId, X_REQUEST_ID, is_sane_id};
use crate::http::oip::tensor;
use crate::http::oip::{
    self, ModelMetadata, ModelRef, OUTPUT_PROBABILITY, OutputRequest, ServerMetadata,
};
use crate::http::{AppError, AppState};
use crate::model::response;

type Answer<T> = Result<Response<T>, Status>;

/// The inference service over the handlers' shared state.
pub struct Inference {
    state: AppState,
}

impl Inference {
    pub fn new(state: AppState) -> Self {
        Inference { state }
    }
}

/// The model a request names; an empty version is whichever serves.
fn model_ref(name: &str, version: &str) -> ModelRef {
    ModelRef {
        name: name.to_string(),
        version: (!version.is_empty()).then(|| version.to_string()),
    }
}

/// A boolean parameter (`binary_data_output`, `binary_data`), if given.
fn flag(parameters: &HashMap<String, InferParameter>, key: &str) -> Result<Option<bool>, AppError> {
    match parameters
        .get(key)
        .and_then(|p| p.parameter_choice.as_ref())
    {
        None => Ok(None),
        Some(ParameterChoice::BoolParam(b)) => Ok(Some(*b)),
        Some(other) => Err(AppError::BadRequest(format!(
            "parameter `{key}` must be true or false, got {other:?}"
        ))),
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Inference {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> Answer<ServerLiveResponse> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, _: Request<ServerReadyRequest>) -> Answer<ServerReadyResponse> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.state.not_ready_reason().is_none(),
        }))
    }

    async fn model_ready(&self, request: Request<ModelReadyRequest>) -> Answer<ModelReadyResponse> {
        let request = request.into_inner();
        match oip::serving(&self.state, &model_ref(&request.name, &request.version)) {
            Ok(_) => Ok(Response::new(ModelReadyResponse { ready: true })),
            Err(AppError::NoModel(_)) => Ok(Response::new(ModelReadyResponse { ready: false })),
            Err(other) => Err(status(other)),
        }
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Answer<ServerMetadataResponse> {
        let ServerMetadata {
            name,
            version,
            extensions,
        } = ServerMetadata::of_this_server();
        Ok(Response::new(ServerMetadataResponse {
            name,
            version,
            extensions,
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Answer<ModelMetadataResponse> {
        let request = request.into_inner();
        let (served, model) =
            oip::serving(&self.state, &model_ref(&request.name, &request.version))
                .map_err(status)?;
        let metadata = ModelMetadata::of(&served, &model);
        let tensors = |tensors: Vec<oip::TensorMetadata>| {
            tensors
                .into_iter()
                .map(|t| TensorMetadata {
                    name: t.name,
                    datatype: t.datatype,
                    shape: t.shape,
                })
                .collect()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: metadata.name,
            versions: metadata.versions,
            platform: metadata.platform,
            inputs: tensors(metadata.inputs),
            outputs: tensors(metadata.outputs),
        }))
    }

    async fn model_infer(&self, request: Request<ModelInferRequest>) -> Answer<ModelInferResponse> {
        let started = Instant::now();
        let caller_id = request
            .metadata()
            .get(X_REQUEST_ID.as_str())
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane_id(v))
            .map(|v| Extension(RequestId(v.to_string())));
        infer(&self.state, request.into_inner(), caller_id, started)
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn repository_index(
        &self,
        request: Request<RepositoryIndexRequest>,
    ) -> Answer<RepositoryIndexResponse> {
        let request = request.into_inner();
        if !request.repository_name.is_empty() {
            return Err(Status::not_found(format!(
                "unknown repository `{}`: this server has one, named by an empty repository_name",
                request.repository_name
            )));
        }
        let models = oip::repository_entries(&self.state, request.ready)
            .into_iter()
            .map(|entry| ModelIndex {
                name: entry.name,
                version: entry.version,
                state: entry.state.to_string(),
                reason: entry.reason,
            })
            .collect();
        Ok(Response::new(RepositoryIndexResponse { models }))
    }
}

/// `ModelInfer`: decoded into feature columns, then the REST route's own path.
async fn infer(
    state: &AppState,
    request: ModelInferRequest,
    caller_id: Option<Extension<RequestId>>,
    started: Instant,
) -> Result<ModelInferResponse, AppError> {
    let (served, model) = oip::serving(
        state,
        &model_ref(&request.model_name, &request.model_version),
    )?;
    let id = (!request.id.is_empty()).then(|| request.id.clone());
    if let Some(id) = &id
        && !response::is_valid_id(id)
    {
        return Err(AppError::BadRequest(response::id_bound("id")));
    }
    // Triton answers gRPC with raw outputs, and its client reads them; typed contents when the
    // request says `binary_data_output: false` (or `binary_data: false` on every output).
    let binary_default = flag(&request.parameters, "binary_data_output")?.unwrap_or(true);
    let wanted = oip::choose_outputs(
        request.outputs.iter().map(|output| OutputRequest {
            name: &output.name,
            classification: output.parameters.contains_key("classification"),
            binary: flag(&output.parameters, "binary_data"),
        }),
        binary_default,
    )?;
    let columns = input_columns(&model, &request).map_err(AppError::BadRequest)?;
    let base_id = AppState::chosen_request_id(id.clone(), caller_id);
    let scored = oip::score_columns(state, &served, &model, columns, &base_id, started).await?;
    let predictions = oip::predictions(&scored);
    let n_rows = i64::try_from(scored.probabilities.len()).unwrap_or(i64::MAX);
    // Raw outputs index alongside `outputs`, so the answer is all raw or all typed.
    let raw = wanted.iter().any(|w| w.binary);
    let mut outputs = Vec::with_capacity(wanted.len());
    let mut raw_output_contents = Vec::new();
    for output in &wanted {
        let probability = output.name == OUTPUT_PROBABILITY;
        let contents = if raw {
            raw_output_contents.push(if probability {
                tensor::fp64_bytes(&scored.probabilities)
            } else {
                tensor::int64_bytes(&predictions)
            });
            None
        } else if probability {
            Some(InferTensorContents {
                fp64_contents: scored.probabilities.clone(),
                ..InferTensorContents::default()
            })
        } else {
            Some(InferTensorContents {
                int64_contents: predictions.clone(),
                ..InferTensorContents::default()
            })
        };
        outputs.push(InferOutputTensor {
            name: output.name.to_string(),
            datatype: if probability { "FP64" } else { "INT64" }.to_string(),
            shape: vec![n_rows],
            parameters: HashMap::new(),
            contents,
        });
    }
    Ok(ModelInferResponse {
        model_name: request.model_name,
        model_version: model.version().to_string(),
        id: id.unwrap_or_default(),
        parameters: HashMap::new(),
        outputs,
        raw_output_contents,
    })
}
