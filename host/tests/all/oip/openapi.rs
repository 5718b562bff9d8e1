//! `/openapi.json` covers every route the router declares, every documented operation is
//! routed, the documented bodies match real ones, every documented example is what the default
//! model answers, the document declares what the server refuses, and `/docs` loads only the
//! viewer the binary carries, under a Content-Security-Policy naming no other origin.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{VERSION, get, post_json, serving};
use crate::common::{base_url, eventually, example_customer, start_server};

/// `(METHOD, path)` of every `.route(...)` in the router's source (`host/src/http/`), in axum's
/// `{param}` syntax, which OpenAPI shares.
fn declared_routes() -> BTreeSet<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source: String = std::fs::read_to_string(&path)
            .unwrap()
            .split_whitespace()
            .collect();
        for nesting in [".nest(", ".nest_service(", ".route_service("] {
            assert!(
                !source.contains(nesting),
                "{}: routes added with {nesting} are invisible to this test; extend it",
                path.display()
            );
        }
        for call in source.split(".route(\"").skip(1) {
            let (route, rest) = call.split_once('"').unwrap();
            // The method routers up to the end of this `.route(...)` call.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += i32::from(c == '(') - i32::from(c == ')');
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let methods = &rest[..end];
            let mut found = false;
            for method in ["get", "post", "put", "delete", "patch"] {
                let calls = [format!(",{method}("), format!(".{method}(")];
                if calls.iter().any(|c| methods.contains(c.as_str())) {
                    routes.insert((method.to_uppercase(), route.to_string()));
                    found = true;
                }
            }
            assert!(found, "no method for route {route} in {}", path.display());
        }
    }
    routes
}

fn documented_routes(document: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[tokio::test]
async fn the_document_lists_every_route_the_router_has() {
    let (_registry, _server, url) = serving(&[]).await;
    let (status, document) = get(&format!("{url}/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        document["openapi"].as_str().unwrap().starts_with('3'),
        "OpenAPI 3: {}",
        document["openapi"]
    );
    let declared = declared_routes();
    for expected in [
        "/predict",
        "/health",
        "/ready",
        "/startup",
        "/model",
        "/metrics",
        "/monitoring/drift",
        "/v2/models/{name}/versions/{version}/infer",
        "/openapi.json",
        "/docs",
    ] {
        assert!(
            declared.iter().any(|(_, path)| path == expected),
            "the route scan missed {expected}: {declared:?}"
        );
    }
    let documented = documented_routes(&document);
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&declared).collect();
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );

    // Every documented operation reaches a handler: neither the fallback nor a wrong method.
    let client = reqwest::Client::new();
    for (method, path) in &documented {
        let concrete = path
            .replace("{name}", "churn")
            .replace("{version}", VERSION);
        let request = match method.as_str() {
            "GET" => client.get(format!("{url}{concrete}")),
            "POST" => client.post(format!("{url}{concrete}")).json(&json!({})),
            other => panic!("unexpected method {other}"),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("no route for") && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status} {body}"
        );
    }
}

#[tokio::test]
async fn documented_bodies_match_real_ones_and_carry_the_lab_example() {
    let (_registry, _server, url) = serving(&[]).await;
    let (_, document) = get(&format!("{url}/openapi.json")).await;
    let schemas = &document["components"]["schemas"];
    let properties = |name: &str| -> Vec<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    };
    let keys =
        |value: &Value| -> Vec<String> { value.as_object().unwrap().keys().cloned().collect() };

    let (_, answer) = post_json(&format!("{url}/predict"), &example_customer()).await;
    assert_eq!(
        properties("PredictResponse"),
        keys(&answer),
        "same fields, same order"
    );
    let (_, model) = get(&format!("{url}/model")).await;
    assert_eq!(properties("ModelDescription"), keys(&model));
    let (_, drift) = get(&format!("{url}/monitoring/drift")).await;
    assert_eq!(properties("DriftReport"), keys(&drift));
    let (_, metadata) = get(&format!("{url}/v2/models/churn")).await;
    assert_eq!(properties("ModelMetadata"), keys(&metadata));

    // The lab's example customer is the request example, and it is valid.
    let example = &schemas["PredictRequest"]["example"];
    let mut customer = example_customer();
    assert_eq!(*example, customer);
    customer.as_object_mut().unwrap().remove("request_id");
    let mut required: Vec<&str> = schemas["PredictRequest"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    let mut fields: Vec<&str> = customer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(required, fields);
    let infer_example = &schemas["InferRequest"]["example"];
    let (status, answer) = post_json(&format!("{url}/v2/models/churn/infer"), infer_example).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the infer example is valid: {answer}"
    );
    assert_eq!(answer["outputs"][1]["data"], json!([1]));
    assert_eq!(
        document["components"]["securitySchemes"]["monitoring_token"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn docs_loads_only_the_vendored_viewer_under_a_strict_policy() {
    let (_registry, _server, url) = serving(&[]).await;
    let response = reqwest::get(format!("{url}/docs")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.starts_with("default-src 'self';"), "{policy}");
    for directive in policy.split(';') {
        let mut sources = directive.split_whitespace();
        let name = sources.next().unwrap_or_default();
        for source in sources {
            assert!(
                source.starts_with('\'') || source == "data:" || source == "blob:",
                "{name} allows another origin, {source}: {policy}"
            );
        }
    }
    let page = response.text().await.unwrap();
    assert!(page.contains("<title>modelhost API</title>"), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page refers to nothing outside this server: {page}"
    );
    assert!(
        page.contains(r#"<redoc spec-url="/openapi.json">"#),
        "{page}"
    );
    let viewer = page
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page loads a script");
    assert!(viewer.starts_with("/docs/"), "{viewer}");

    let response = reqwest::get(format!("{url}{viewer}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let cache = response.headers()["cache-control"].to_str().unwrap();
    assert!(cache.contains("max-age=31536000"), "{cache}");
    let script = response.text().await.unwrap();
    let vendored = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/docs/redoc.standalone.js"),
    )
    .unwrap();
    assert!(script == vendored, "the viewer is the vendored bundle");
}

#[tokio::test]
async fn the_document_declares_what_the_server_refuses() {
    let (_registry, _server, url) = serving(&[]).await;
    let (_, document) = get(&format!("{url}/openapi.json")).await;
    let schemas = &document["components"]["schemas"];

    // `loc` items are the strings and integers a real 422 holds.
    let loc_items = &schemas["ValidationProblem"]["properties"]["loc"]["items"];
    let reference = loc_items["$ref"].as_str().unwrap();
    let loc_part = &schemas[reference.rsplit('/').next().unwrap()];
    let mut types: Vec<&str> = loc_part["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["integer", "string"], "{loc_part}");
    let mut row = super::customers()[0].clone();
    row["tenure_months"] = json!(201);
    let (status, error) = post_json(&format!("{url}/predict"), &json!({"instances": [row]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let loc = error["detail"][0]["loc"].as_array().unwrap();
    assert!(
        loc.iter().all(|part| part.is_string() || part.is_u64()),
        "{loc:?}"
    );

    // An empty batch is refused, and the document says so.
    assert_eq!(
        schemas["BatchRequest"]["properties"]["instances"]["minItems"],
        1
    );
    let (status, _) = post_json(&format!("{url}/predict"), &json!({"instances": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Drift thresholds must be above 0, and the document says so.
    let drift = &document["paths"]["/monitoring/drift"]["get"]["parameters"];
    for name in ["z_threshold", "psi_threshold"] {
        let parameter = drift
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        assert_eq!(parameter["schema"]["exclusiveMinimum"], 0, "{parameter}");
        let (status, error) = get(&format!("{url}/monitoring/drift?{name}=0")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    }

    // Every v2 input the model lists is required, once; a request without one is refused.
    let (_, metadata) = get(&format!("{url}/v2/models/churn")).await;
    let features: Vec<&str> = metadata["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    let inputs = &schemas["InferRequest"]["properties"]["inputs"];
    assert_eq!(inputs["minItems"], features.len());
    assert_eq!(inputs["maxItems"], features.len());
    let required: Vec<&str> = inputs["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["contains"]["properties"]["name"]["enum"][0]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(required, features);
    let described: Vec<&str> = inputs["items"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["properties"]["name"]["enum"][0].as_str().unwrap())
        .collect();
    assert_eq!(described, features);
    let (status, error) = post_json(
        &format!("{url}/v2/models/churn/infer"),
        &json!({"inputs": []}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
}

/// Fields whose documented value only illustrates: the clock's (`latency_ms`, `ts`). Everything
/// else in an example answer is what the default model answers, to the last digit.
const ILLUSTRATIVE: [&str; 2] = ["latency_ms", "ts"];

/// A server on a copy of the committed default registry (`registry/churn`), once it serves.
async fn serving_the_default() -> (tempfile::TempDir, modelhost::serve::Server, String) {
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../registry/churn");
    let registry = tempfile::tempdir().unwrap();
    crate::common::copy_dir(&committed, &registry.path().join("churn"));
    let server = start_server(registry.path()).await;
    let url = base_url(&server);
    let ready = eventually(Duration::from_secs(10), || async {
        get(&format!("{url}/ready")).await.0 == StatusCode::OK
    })
    .await;
    assert!(ready, "the default model never served");
    (registry, server, url)
}

/// The schema `schema` names, following a `$ref` into `components`.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/schemas/").unwrap();
            &document["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// The examples a JSON body carries, by name: its named `examples`, else its `example`, else
/// its schema's `example`, and the examples of each alternative of a `oneOf` schema (named
/// `oneOf[i]`, so a request's alternative pairs with the answer's).
fn examples(document: &Value, content: &Value) -> Vec<(String, Value)> {
    let content = &content["application/json"];
    let mut found = Vec::new();
    if let Some(named) = content["examples"].as_object() {
        for (name, example) in named {
            found.push((name.clone(), example["value"].clone()));
        }
    } else if !content["example"].is_null() {
        found.push(("example".to_string(), content["example"].clone()));
    }
    let schema = resolve(document, &content["schema"]);
    if found.is_empty() && !schema["example"].is_null() {
        found.push(("example".to_string(), schema["example"].clone()));
    }
    for (i, alternative) in schema["oneOf"].as_array().into_iter().flatten().enumerate() {
        let alternative = resolve(document, alternative);
        if !alternative["example"].is_null() {
            found.push((format!("oneOf[{i}]"), alternative["example"].clone()));
        }
    }
    found
}

/// Where `answer` differs from `documented`: a missing or extra field, another value, or for
/// the [`ILLUSTRATIVE`] fields, another JSON type.
fn differences(documented: &Value, answer: &Value, at: &str, found: &mut Vec<String>) {
    match (documented, answer) {
        (Value::Object(doc), Value::Object(real)) => {
            let doc_keys: Vec<_> = doc.keys().collect();
            let real_keys: Vec<_> = real.keys().collect();
            if doc_keys != real_keys {
                found.push(format!(
                    "{at}: documented fields {doc_keys:?}, answered {real_keys:?}"
                ));
                return;
            }
            for (key, value) in doc {
                let at = format!("{at}.{key}");
                if ILLUSTRATIVE.contains(&key.as_str()) {
                    if std::mem::discriminant(value) != std::mem::discriminant(&real[key]) {
                        found.push(format!("{at}: documented {value}, answered {}", real[key]));
                    }
                } else {
                    differences(value, &real[key], &at, found);
                }
            }
        }
        (Value::Array(doc), Value::Array(real)) if doc.len() == real.len() => {
            for (i, (doc, real)) in doc.iter().zip(real).enumerate() {
                differences(doc, real, &format!("{at}[{i}]"), found);
            }
        }
        _ if documented != answer => {
            found.push(format!("{at}: documented {documented}, answered {answer}"));
        }
        _ => {}
    }
}

/// The examples every model's document carries and [`check_every_example`] checks (the default
/// model's also has the v2 metadata's, which names its features).
pub const CHECKED_FOR_EVERY_MODEL: [&str; 6] = [
    "post /predict (one customer)",
    "post /predict (a batch)",
    "post /predict (oneOf[0])",
    "post /v2/models/{name}/infer (example)",
    "post /v2/models/{name}/versions/{version}/infer (example)",
    "get /ready (example)",
];

/// Every request example is sent to its route, every route without a body is asked, and each
/// documented answer must be the server's.
#[tokio::test]
async fn every_documented_example_is_what_the_default_model_answers() {
    let (_registry, _server, url) = serving_the_default().await;
    let checked = check_every_example(&url).await;
    let metadata = "get /v2/models/{name} (example)";
    for expected in CHECKED_FOR_EVERY_MODEL.iter().chain([&metadata]) {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} unchecked: {checked:?}"
        );
    }
}

/// Sends every request example of the server at `url`'s document to its route and asks every
/// route without a body; fails unless each documented answer is the server's. Returns what
/// was checked, as `method path (example name)`.
pub async fn check_every_example(url: &str) -> Vec<String> {
    let (_, document) = get(&format!("{url}/openapi.json")).await;
    let mut checked = Vec::new();
    let mut wrong = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            // Path parameters take their documented examples.
            let mut concrete = path.clone();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    let name = parameter["name"].as_str().unwrap();
                    let example = parameter["example"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{path}: no example for {{{name}}}"));
                    concrete = concrete.replace(&format!("{{{name}}}"), example);
                }
            }
            let answers = examples(&document, &operation["responses"]["200"]["content"]);
            let Some(request_body) = operation.get("requestBody") else {
                // A drift report's example shows a drifted window, which a fresh server has not.
                if path == "/monitoring/drift" {
                    continue;
                }
                for (name, documented) in &answers {
                    let at = format!("{method} {path} ({name})");
                    let (status, answer) = get(&format!("{url}{concrete}")).await;
                    assert_eq!(status, StatusCode::OK, "{at}: {answer}");
                    differences(documented, &answer, &at, &mut wrong);
                    checked.push(at);
                }
                continue;
            };
            assert_eq!(method, "post", "{path}");
            let requests = examples(&document, &request_body["content"]);
            assert!(!requests.is_empty(), "{path}: no request example");
            for (name, request) in &requests {
                let at = format!("{method} {path} ({name})");
                let (status, answer) = post_json(&format!("{url}{concrete}"), request).await;
                assert_eq!(status, StatusCode::OK, "{at}: {answer}");
                match answers.iter().find(|(answered, _)| answered == name) {
                    Some((_, documented)) => {
                        differences(documented, &answer, &at, &mut wrong);
                        checked.push(at);
                    }
                    // Only an alternative's schema may leave its answer undocumented.
                    None => assert!(name.starts_with("oneOf"), "{at}: no answer documented"),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "examples that are not the server's answer:\n{}",
        wrong.join("\n")
    );
    checked
}
