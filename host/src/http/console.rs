//! The operator's console at `/`: one HTML page, its script and its style sheet, all embedded
//! in the binary (`host/assets/console/`), hand-written without a build step, so `cargo build`
//! on a fresh machine is all it takes and the page loads nothing from elsewhere.
//!
//! The page itself holds no data and no inline script: the script fetches `/model` (public) and,
//! with the bearer token when `MONITORING_TOKEN` is set, `/metrics`, `/monitoring/drift`,
//! `/monitoring/history` and `/monitoring/events`, and draws them (tables, SVG charts). So the
//! page is the same for everyone and reveals nothing the token guards. It goes out through
//! [`page_csp`](super::openapi::page_csp) like `/docs`.
//!
//! The script and style sheet are linked as `/console.js?v=<digest>`: the digest is of their
//! bytes, so an answer to that exact URL never changes and is cached for a year; any other URL
//! of them is answered `no-cache`, so a page from an older binary never keeps a stale copy.

use std::sync::LazyLock;

use axum::extract::RawQuery;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::openapi::page_csp;

const PAGE_TEMPLATE: &str = include_str!("../../assets/console/index.html");
const SCRIPT: &str = include_str!("../../assets/console/console.js");
const STYLE: &str = include_str!("../../assets/console/console.css");

/// The first 16 hex digits of the sha256 of `bytes`: names one version of an asset.
fn digest(bytes: &str) -> String {
    let hash = Sha256::digest(bytes.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

static SCRIPT_DIGEST: LazyLock<String> = LazyLock::new(|| digest(SCRIPT));
static STYLE_DIGEST: LazyLock<String> = LazyLock::new(|| digest(STYLE));

/// The page, linking each asset by its digest.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    PAGE_TEMPLATE
        .replace("{{script_digest}}", &SCRIPT_DIGEST)
        .replace("{{style_digest}}", &STYLE_DIGEST)
});

/// `GET /`.
pub async fn page() -> Response {
    page_csp(PAGE.as_str())
}

/// `GET /console.js`.
pub async fn script(RawQuery(query): RawQuery) -> Response {
    asset(
        SCRIPT,
        "text/javascript; charset=utf-8",
        &SCRIPT_DIGEST,
        query,
    )
}

/// `GET /console.css`.
pub async fn style(RawQuery(query): RawQuery) -> Response {
    asset(STYLE, "text/css; charset=utf-8", &STYLE_DIGEST, query)
}

/// An embedded asset: kept a year when asked for by its current digest, revalidated otherwise.
fn asset(
    body: &'static str,
    content_type: &'static str,
    digest: &str,
    query: Option<String>,
) -> Response {
    let current = query.is_some_and(|q| q == format!("v={digest}"));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_its_assets_by_digest_and_runs_no_inline_code() {
        assert!(
            PAGE.contains(&format!("src=\"/console.js?v={}\"", *SCRIPT_DIGEST)),
            "{}",
            *PAGE
        );
        assert!(
            PAGE.contains(&format!("href=\"/console.css?v={}\"", *STYLE_DIGEST)),
            "{}",
            *PAGE
        );
        assert!(
            !PAGE.contains("{{"),
            "every placeholder is filled: {}",
            *PAGE
        );
        // The Content-Security-Policy allows no inline script, and the page needs none.
        assert_eq!(PAGE.matches("<script").count(), 1, "{}", *PAGE);
        let inline_handler = PAGE
            .split(|c: char| c.is_whitespace())
            .find(|word| word.starts_with("on") && word.contains('='));
        assert_eq!(inline_handler, None, "no inline event handlers");
        assert!(!PAGE.contains("style="), "no inline styles");
        // The SVG namespace is a name, not a place anything is loaded from.
        let script = SCRIPT.replace("http://www.w3.org/2000/svg", "");
        for origin in ["http://", "https://", "//cdn"] {
            assert!(
                !PAGE.contains(origin),
                "the page names no other origin: {origin}"
            );
            assert!(
                !script.contains(origin),
                "the script names no other origin: {origin}"
            );
        }
    }
}
