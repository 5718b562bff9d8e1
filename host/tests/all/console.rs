//! The console at `/` over a real socket: the page and its embedded assets with their security
//! headers, and the monitoring routes it reads (`/monitoring/history`, `/monitoring/events`)
//! guarded by the token like `/metrics` and never cached. The page in a real browser is
//! `tests/browser/` (CI's last step).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderMap};
use serde_json::Value;

use crate::common::*;

/// A temp copy of the committed registry.
fn committed_registry() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../registry");
    copy_dir(&committed, dir.path());
    dir
}

async fn fetch(url: &str, token: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn header(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> &str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

/// The value of `attribute="..."` that starts with `prefix` in `page`.
fn linked(page: &str, attribute: &str, prefix: &str) -> String {
    let start = page
        .find(&format!("{attribute}=\"{prefix}"))
        .unwrap_or_else(|| panic!("no {attribute}={prefix}… in {page}"))
        + attribute.len()
        + 2;
    page[start..start + page[start..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn the_console_and_its_assets_are_served_with_their_security_headers() {
    let registry = committed_registry();
    let server = start_server(registry.path()).await;
    let url = base_url(&server);

    let (status, headers, page) = fetch(&format!("{url}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, CONTENT_TYPE).starts_with("text/html"));
    let csp = header(&headers, CONTENT_SECURITY_POLICY);
    assert_eq!(csp, modelhost::http::openapi::PAGE_CSP);
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self';"));
    assert!(
        !csp.contains("http") && !csp.contains('*'),
        "no other origin: {csp}"
    );
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(page.contains("<h1>modelhost console</h1>"), "{page}");

    for (attribute, path, content_type) in [
        ("src", "/console.js?v=", "text/javascript"),
        ("href", "/console.css?v=", "text/css"),
    ] {
        let versioned = linked(&page, attribute, path);
        let (status, headers, body) = fetch(&format!("{url}{versioned}"), None).await;
        assert_eq!(status, StatusCode::OK, "{versioned}");
        assert!(header(&headers, CONTENT_TYPE).starts_with(content_type));
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert_eq!(
            header(&headers, CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{versioned}: its digest names these bytes"
        );
        assert!(body.len() > 1000, "{versioned} is the embedded asset");
        let unversioned = versioned.split('?').next().unwrap();
        let (status, headers, again) = fetch(&format!("{url}{unversioned}?v=older"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, CACHE_CONTROL), "no-cache", "{unversioned}");
        assert_eq!(again, body);
    }

    // /docs goes out through the same policy.
    let (status, headers, _) = fetch(&format!("{url}/docs"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, CONTENT_SECURITY_POLICY),
        modelhost::http::openapi::PAGE_CSP
    );
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");

    // Only `/` became the console: other unknown paths are still the JSON 404.
    let (status, _, body) = fetch(&format!("{url}/console"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "no route for /console");
}

#[tokio::test]
async fn history_and_events_need_the_token_are_never_cached_and_tell_what_happened() {
    let registry = committed_registry();
    let server = start_server_with(registry.path(), &[("monitoring_token", "sekrit")]).await;
    let url = base_url(&server);
    let loaded = eventually(Duration::from_secs(10), || async {
        serving_version(&server).is_some()
    })
    .await;
    assert!(loaded, "the committed model serves");
    let first = serving_version(&server).unwrap();

    for path in ["/monitoring/history", "/monitoring/events"] {
        let (status, headers, body) = fetch(&format!("{url}{path}"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(
            !body.contains(&first),
            "{path} shows nothing without the token: {body}"
        );
        assert_eq!(header(&headers, CACHE_CONTROL), "no-store");
        let (status, headers, _) = fetch(&format!("{url}{path}"), Some("wrong")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(header(&headers, CACHE_CONTROL), "no-store");
        let (status, headers, _) = fetch(&format!("{url}{path}"), Some("sekrit")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, CACHE_CONTROL), "no-store", "{path}");
    }

    // The history is the registry's, line for line, with the live version found by sha256.
    let (_, _, body) = fetch(&format!("{url}/monitoring/history"), Some("sekrit")).await;
    let history: Value = serde_json::from_str(&body).unwrap();
    let lines = std::fs::read_to_string(registry.path().join("churn/history.jsonl")).unwrap();
    assert_eq!(history["model"], "churn");
    assert_eq!(history["live"], first.as_str());
    assert_eq!(history["total"], lines.lines().count());
    let entry = &history["entries"][0];
    assert_eq!(entry["line"], 1);
    assert_eq!(entry["event"], "train");
    assert_eq!(entry["version"], first.as_str());
    assert_eq!(entry["promoted"], true);
    assert!(entry["f1"].as_f64().unwrap() > 0.7, "{entry}");

    // A refused candidate, then a swap: both in the events, oldest first.
    publish(registry.path(), &fixture("hostile/import_env.wat"));
    let refused = eventually(Duration::from_secs(10), || async {
        server.active.status().rejections == 1
    })
    .await;
    assert!(refused, "the hostile candidate is refused");
    publish(registry.path(), &churn_artifact("v-console", 0.5));
    assert!(wait_for_version(&server, "v-console", Duration::from_secs(10)).await);

    let (_, _, body) = fetch(&format!("{url}/monitoring/events"), Some("sekrit")).await;
    let recent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(recent["swaps"], 2);
    assert_eq!(recent["rejections"], 1);
    let events = recent["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["swap", "refused", "swap"]);
    assert_eq!(events[0]["version"], first.as_str());
    assert_eq!(events[0]["from"], Value::Null);
    let reason = events[1]["reason"].as_str().unwrap();
    assert!(reason.contains("import"), "the refusal says why: {reason}");
    assert_eq!(events[2]["version"], "v-console");
    assert_eq!(events[2]["from"], first.as_str());
    assert!(
        events
            .iter()
            .all(|e| e["at"].as_str().unwrap().ends_with('Z'))
    );
}

#[tokio::test]
async fn a_history_too_large_to_read_is_refused_by_name_and_the_server_keeps_serving() {
    let logs = capture_logs();
    let registry = committed_registry();
    let server = start_server(registry.path()).await;
    let url = base_url(&server);
    let path = registry.path().join("churn/history.jsonl");
    // A sparse file: its length is over the limit, without writing that many bytes.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(32 * 1024 * 1024 + 1).unwrap();
    drop(file);

    let (status, headers, body) = fetch(&format!("{url}/monitoring/history"), None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(header(&headers, CACHE_CONTROL), "no-store");
    // A 500 never tells the client more; the log names the file and the limit.
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "internal error");
    let named = format!("{} is 33554433 bytes, over the 33554432", path.display());
    assert_eq!(
        logs.count(&named),
        1,
        "the log names the file and the limit"
    );
    let (status, _, _) = fetch(&format!("{url}/monitoring/events"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = fetch(&format!("{url}/health"), None).await;
    assert_eq!(status, StatusCode::OK);
}
