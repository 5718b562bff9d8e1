//! Route handlers: the lab's `/predict`, the three probes, and `/model` — the default model's —
//! and each served model's `/models/{name}/predict` and `/models/{name}`, and `/models`.

use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};

use super::bodies::{
    Health, ModelDescription, ModelList, ModelUnavailable, Ready, RepositoryEntry, Startup,
};
use super::error::Body;
use super::observe::{RequestId, X_REQUEST_ID};
use super::{AppError, AppState};
use crate::model::Served;
use crate::model::response::{self, PredictResponse};
use crate::model::schema::{BodyError, parse_object, prepare_row};

/// `POST /predict`: one customer in, one prediction out; or `{"instances": [...]}` in,
/// `{"predictions": [...]}` out (see [`batch`](super::batch)).
pub async fn predict(
    State(state): State<AppState>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<Body, AppError>,
) -> Result<Response, AppError> {
    let default = state.default_model().clone();
    predict_with(&state, &default, request_id, &headers, body).await
}

/// `POST /models/{name}/predict`: `/predict` for the served model `name`.
pub async fn predict_named(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<Body, AppError>,
) -> Result<Response, AppError> {
    let served = state.model_named(&model_name(name)?)?;
    predict_with(&state, &served, request_id, &headers, body).await
}

/// The model name a `/models/{name}` route names.
fn model_name(name: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    name.map(|Path(name)| name)
        .map_err(|rejection| AppError::BadRequest(rejection.body_text()))
}

/// `/predict`'s answer from `served`.
async fn predict_with(
    state: &AppState,
    served: &Served,
    request_id: Option<Extension<RequestId>>,
    headers: &HeaderMap,
    body: Result<Body, AppError>,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let Body(body) = body?;
    check_json_content_type(headers)?;
    let object = parse_object(&body).map_err(|error| match error {
        BodyError::Malformed(message) => AppError::BadRequest(message),
        BodyError::NotAnObject(message) => AppError::Unprocessable(message),
        BodyError::NotFinite(errors) => AppError::Validation(errors),
    })?;
    let given = response::request_id(&object).map_err(|error| AppError::Validation(vec![error]))?;
    let request_id = AppState::chosen_request_id(given, request_id);

    let model = AppState::serving_model_of(served)?;
    if object.contains_key("instances") {
        return super::batch::predict_batch(state, served, model, &object, request_id, started)
            .await;
    }
    let prepared = prepare_row(model.info(), &object).map_err(AppError::Validation)?;
    let probabilities = state.call_model(model.clone(), prepared.row).await?;
    let answer = PredictResponse::new(
        &model,
        request_id,
        probabilities[0],
        started.elapsed().as_secs_f64(),
        prepared.features,
    );
    state.record_answer(served, &answer);
    let echoed = HeaderValue::from_str(&answer.request_id).ok();
    let mut response = Json(answer).into_response();
    if let Some(id) = echoed {
        response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    }
    Ok(response)
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "content type must be application/json, got {:?}",
            if content_type.is_empty() {
                "nothing"
            } else {
                content_type
            }
        )))
    }
}

/// `GET /health`: the process answers HTTP. Never depends on the model.
pub async fn health() -> Json<Health> {
    Json(Health::ok())
}

/// `GET /ready`: 200 while the models it must serve are serving (see
/// [`Catalog::not_ready_reason`](crate::model::Catalog::not_ready_reason)), else 503 with the
/// reason.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, AppError> {
    match (state.not_ready_reason(), state.catalog().ready_model()) {
        (None, Some(model)) => Ok(Json(Ready::serving(&model))),
        (reason, _) => Err(AppError::NotReady(
            reason.unwrap_or_else(|| state.not_serving_reason()),
        )),
    }
}

/// `GET /startup`: 503 until the registry exists and a model is serving.
pub async fn startup(State(state): State<AppState>) -> Result<Json<Startup>, AppError> {
    if !state.registry_dir().is_dir() {
        return Err(AppError::Starting(format!(
            "registry directory {} does not exist",
            state.registry_dir().display()
        )));
    }
    let catalog = state.catalog();
    match (catalog.not_ready_reason(), catalog.ready_model()) {
        (None, Some(model)) => Ok(Json(Startup::started(&model))),
        (reason, _) => Err(AppError::Starting(
            reason.unwrap_or_else(|| state.not_serving_reason()),
        )),
    }
}

/// `GET /model`: what is serving, where it came from, its schema and metrics.
pub async fn model(State(state): State<AppState>) -> Result<Json<ModelDescription>, AppError> {
    describe(state.default_model())
}

/// `GET /models/{name}`: `/model` for the served model `name`.
pub async fn model_named(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<ModelDescription>, AppError> {
    let served = state.model_named(&model_name(name)?)?;
    describe(&served)
}

fn describe(served: &Served) -> Result<Json<ModelDescription>, AppError> {
    let status = served.active().status();
    match served.current() {
        Some(model) => Ok(Json(ModelDescription::new(&model, &status))),
        None => Err(AppError::ModelUnavailable(Box::new(ModelUnavailable::new(
            served.not_serving_reason(),
            served.name().to_string(),
            served.live_path().to_path_buf(),
            &status,
        )))),
    }
}

/// `GET /models`: every served model, its version and state, and which is the default.
pub async fn models(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList {
        default: state.model_name().to_string(),
        models: RepositoryEntry::every(state.catalog()),
    })
}

/// Any unknown route.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {}", uri.path()))
}

/// A known route with the wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
