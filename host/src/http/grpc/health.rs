//! `grpc.health.v1.Health` (tonic-health's service definition) answered from readiness: SERVING
//! exactly while `/ready` is 200 — a model serves and the server is not shutting down — so a
//! Kubernetes `grpc` probe means what the HTTP readiness probe means.
//!
//! The status is read from [`AppState`] on every call rather than pushed into tonic-health's
//! `HealthReporter`, so it can never lag a swap or the start of a shutdown. `Watch` re-reads it
//! every [`WATCH_INTERVAL`] and sends each change.

use std::time::Duration;

use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::inference::grpc_inference_service_server::SERVICE_NAME;
use crate::http::AppState;

/// How often a `Watch` stream re-reads readiness.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The health service over the handlers' shared state.
pub fn server(state: AppState) -> HealthServer<Readiness> {
    HealthServer::new(Readiness { state })
}

pub struct Readiness {
    state: AppState,
}

/// The status of `service`: the server as a whole (`""`) and the inference service are ready
/// together; any other name is unknown.
fn status_of(state: &AppState, service: &str) -> Option<ServingStatus> {
    if !service.is_empty() && service != SERVICE_NAME {
        return None;
    }
    Some(if state.not_ready_reason().is_none() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    })
}

fn answer(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status.into(),
    }
}

#[tonic::async_trait]
impl Health for Readiness {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        match status_of(&self.state, &service) {
            Some(status) => Ok(Response::new(answer(status))),
            None => Err(Status::not_found(format!(
                "unknown service `{service}`: this server reports \"\" and `{SERVICE_NAME}`"
            ))),
        }
    }

    type WatchStream = ReceiverStream<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let state = self.state.clone();
        let (send, receive) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let now = status_of(&state, &service).unwrap_or(ServingStatus::ServiceUnknown);
                if last != Some(now) {
                    if send.send(Ok(answer(now))).await.is_err() {
                        return;
                    }
                    last = Some(now);
                }
                tokio::select! {
                    () = send.closed() => return,
                    () = tokio::time::sleep(WATCH_INTERVAL) => {}
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receive)))
    }
}
