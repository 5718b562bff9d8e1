//! The OpenAPI 3 document of every route (`GET /openapi.json`) and the interactive docs that
//! render it (`GET /docs`).
//!
//! The document is generated from the code by `utoipa`: route descriptions in [`paths`], the lab
//! API's bodies in [`schemas`], and the v2 types straight from [`oip`](super::oip). It is built
//! once, on first use; `/openapi.json` then fits it to the serving model ([`live`]): the request
//! bodies list that model's features, and examples not written for it are made from its own
//! golden rows. That version is built once per model and kept until another one serves. `/docs` renders it with Redoc, whose standalone bundle is vendored in
//! `host/assets/docs/` (fetched from npm at a pinned version by `fetch.sh`, with its licences)
//! and embedded in the binary: the page loads only this server's own `/docs/redoc-<version>.js`
//! and `/openapi.json`, so it works without network and can send a Content-Security-Policy that
//! names no external origin ([`page_csp`]).

mod live;
mod paths;
pub(in crate::http) mod schemas;

use std::sync::{Arc, LazyLock, Mutex};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::state::AppState;

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
        paths::models,
        paths::model_named,
        paths::predict_named,
        paths::health,
        paths::ready,
        paths::startup,
        paths::metrics,
        paths::drift,
        paths::history,
        paths::events,
        paths::v2_server_metadata,
        paths::v2_live,
        paths::v2_ready,
        paths::v2_repository_index,
        paths::v2_model_metadata,
        paths::v2_model_version_metadata,
        paths::v2_model_ready,
        paths::v2_model_version_ready,
        paths::v2_infer,
        paths::v2_version_infer,
        paths::openapi_json,
        paths::docs,
        paths::docs_viewer,
        paths::console,
        paths::console_script,
        paths::console_style,
    ),
    components(schemas(
        schemas::PredictRequest,
        schemas::BatchRequest,
        schemas::PredictResponseSchema,
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

/// The `/docs` page: Redoc renders `/openapi.json` into the `<redoc>` element (the standalone
/// bundle finds it by itself, so the page needs no inline script), and readers without
/// JavaScript get a pointer to the raw document.
const PAGE: &str = r#"<!doctype html>
<html>
<head>
    <title>modelhost API</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1"/>
</head>
<body>
<noscript>The interactive docs need JavaScript; the document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<redoc spec-url="/openapi.json"></redoc>
<script src="/docs/redoc-2.5.4.js"></script>
</body>
</html>
"#;

/// Redoc's standalone bundle, as `host/assets/docs/fetch.sh` fetched it.
const VIEWER: &str = include_str!("../../assets/docs/redoc.standalone.js");

/// The Content-Security-Policy of the pages this server sends: everything from this origin
/// only, so an injected reference to another origin is never loaded. Redoc needs two
/// allowances, neither naming another origin: `style-src 'unsafe-inline'`, because its styles
/// are `<style>` elements it writes at run time (styled-components), and `worker-src blob:`,
/// because its search index runs in a worker built from a blob. Images may be `data:` URIs
/// (its icons). Its footer logo, on Redocly's CDN, is blocked and is not missed.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
    worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// `page` as an HTML answer with [`PAGE_CSP`] and `X-Content-Type-Options: nosniff`; every
/// HTML page the server serves goes through it.
pub fn page_csp(page: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        Html(page),
    )
        .into_response()
}

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    DOCUMENT.clone()
}

/// The compiled-in document as JSON, serialised once: served while no model serves, and the
/// base every model's document is made from.
static DOCUMENT_JSON: LazyLock<(serde_json::Value, Arc<str>)> = LazyLock::new(|| {
    let mut value =
        serde_json::to_value(&*DOCUMENT).expect("the OpenAPI document serialises to JSON");
    live::mirror_predict_examples(&mut value);
    let text = value.to_string().into();
    (value, text)
});

/// The last model's document, by model name and artifact sha256.
static LIVE: Mutex<Option<(String, Arc<str>)>> = Mutex::new(None);

/// `GET /openapi.json`: the document for the serving model (see [`live`]).
pub async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    let text = match state.serving_model() {
        Ok(model) => live_document(model, state.model_name().to_string()).await,
        Err(_) => DOCUMENT_JSON.1.clone(),
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        text.to_string(),
    )
}

/// The serving model's document, built once per model: its examples take one model call,
/// which runs off the async executor like a self-test.
async fn live_document(model: Arc<crate::model::Model>, model_name: String) -> Arc<str> {
    let key = format!("{model_name}\n{}", model.sha256);
    let cached = LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some((cached_key, text)) = cached
        && cached_key == key
    {
        return text;
    }
    let built = tokio::task::spawn_blocking(move || {
        let rows = live::example_rows(&model);
        let document = live::for_model(DOCUMENT_JSON.0.clone(), &model, &model_name, &rows);
        Arc::<str>::from(document.to_string())
    })
    .await;
    match built {
        Ok(text) => {
            *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, text.clone()));
            text
        }
        // Building cannot panic on a model that passed its checks; if it did, the compiled-in
        // document still describes every route.
        Err(_) => DOCUMENT_JSON.1.clone(),
    }
}

/// `GET /docs`.
pub async fn docs() -> Response {
    page_csp(PAGE)
}

/// `GET /docs/redoc-<version>.js`: the viewer `/docs` loads. Its path names its version, so its
/// bytes under that path never change and browsers may keep it for a year without asking.
pub async fn viewer() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        VIEWER,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version `fetch.sh` fetched; the viewer's path names it.
    const VIEWER_VERSION: &str = include_str!("../../assets/docs/redoc.VERSION");

    #[test]
    fn the_page_loads_the_vendored_viewer_by_its_version() {
        let path = format!("/docs/redoc-{}.js", VIEWER_VERSION.trim());
        assert!(PAGE.contains(&format!("src=\"{path}\"")), "{PAGE}");
        let router = include_str!("mod.rs");
        assert!(
            router.contains(&format!(".route(\"{path}\"")),
            "the router serves {path}"
        );
        assert!(
            VIEWER.contains(&format!("\"{}\"", VIEWER_VERSION.trim())),
            "the bundle is the version its path names"
        );
    }
}
