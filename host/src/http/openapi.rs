//! The OpenAPI 3 document of every route (`GET /openapi.json`) and the interactive docs that
//! render it (`GET /docs`).
//!
//! The document is generated from the code by `utoipa`: route descriptions in [`paths`], the lab
//! API's bodies in [`schemas`], and the v2 types straight from [`oip`](super::oip). It is built
//! once, on first use. `/docs` is a page that loads the Scalar viewer from a CDN in the reader's
//! browser with the document embedded, so the server ships no JavaScript and needs no network.

mod paths;
mod schemas;

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_scalar::Scalar;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "modelhost",
        description = "Serves machine-learning models compiled to WebAssembly: the churn lab's \
            API, the Open Inference Protocol v2 (KServe, Triton and MLServer clients), probes \
            and monitoring.",
    ),
    paths(
        paths::predict,
        paths::model,
        paths::health,
        paths::ready,
        paths::startup,
        paths::metrics,
        paths::drift,
        paths::v2_server_metadata,
        paths::v2_live,
        paths::v2_ready,
        paths::v2_model_metadata,
        paths::v2_model_version_metadata,
        paths::v2_model_ready,
        paths::v2_model_version_ready,
        paths::v2_infer,
        paths::v2_version_infer,
        paths::openapi_json,
        paths::docs,
    ),
    components(schemas(
        schemas::PredictRequest,
        schemas::BatchRequest,
        schemas::PredictResponse,
        schemas::BatchResponse,
    )),
    modifiers(&MonitoringToken),
)]
struct ApiDoc;

/// Declares the bearer token that `/metrics` and `/monitoring/*` require when
/// `MONITORING_TOKEN` or `MONITORING_TOKEN_FILE` is set.
struct MonitoringToken;

impl Modify for MonitoringToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "monitoring_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`MONITORING_TOKEN` or the content of `MONITORING_TOKEN_FILE`; only required when one is set"
                            .to_string(),
                    ))
                    .build(),
            ),
        );
    }
}

/// The `/docs` page: Scalar's template with this API's title and a pointer to the raw
/// document for readers whose browser cannot load the viewer.
const PAGE: &str = r#"<!doctype html>
<html>
<head>
    <title>modelhost API</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1"/>
</head>
<body>
<noscript>The interactive docs need JavaScript; the document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<script id="api-reference" type="application/json">
$spec
</script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
</body>
</html>
"#;

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);
static DOCS_PAGE: LazyLock<String> =
    LazyLock::new(|| Scalar::new(DOCUMENT.clone()).custom_html(PAGE).to_html());

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    DOCUMENT.clone()
}

/// The document as served, serialised once.
static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string(&*DOCUMENT).expect("the OpenAPI document serialises to JSON")
});

/// `GET /openapi.json`.
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_JSON.as_str(),
    )
}

/// `GET /docs`.
pub async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE.as_str())
}
