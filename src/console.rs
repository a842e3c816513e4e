//! The web console: a static page that manages the broker over grpc-web.
//!
//! Its sources are in `web/` (TypeScript, no framework); `npm --prefix web
//! run build` bundles them into `web/dist/`, which is committed and embedded
//! here, so building the broker needs no Node.js. The page is served on the
//! REST listener at `/` and `/console/`, its assets under `/console/`; it
//! calls the broker's gRPC listener over grpc-web, at a URL set in the page.
//!
//! The asset URLs carry no content hash, so responses say `no-cache` and
//! carry a strong `ETag` (a hash of the embedded bytes, computed at compile
//! time): browsers revalidate and get `304 Not Modified` while the binary
//! is the same.

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

/// One embedded file of the console.
pub struct Asset {
    /// Its path under `/console/`.
    pub name: &'static str,
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// Its bytes, as built in `web/dist/`.
    pub bytes: &'static [u8],
    /// Its strong entity tag.
    pub etag: &'static str,
}

/// Declares an embedded asset, its content type chosen by its extension.
macro_rules! asset {
    ($name:literal) => {
        Asset {
            name: $name,
            content_type: content_type($name),
            bytes: include_bytes!(concat!("../web/dist/", $name)),
            etag: {
                const HASH: [u8; 18] = etag(include_bytes!(concat!("../web/dist/", $name)));
                match std::str::from_utf8(&HASH) {
                    Ok(text) => text,
                    Err(_) => panic!("an entity tag is ASCII"),
                }
            },
        }
    };
}

/// The page.
pub const INDEX: Asset = asset!("index.html");

/// Every embedded file.
pub const ASSETS: [Asset; 3] = [INDEX, asset!("console.js"), asset!("console.css")];

/// The routes of the console: `/`, `/console` (a redirect), `/console/`
/// and `/console/{asset}`.
pub fn router() -> Router {
    let mut router = Router::new()
        .route("/", get(index))
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(index));
    // One route per file: any other path under `/console/` is the
    // gateway's JSON 404, as for every unknown route.
    for asset in &ASSETS {
        router = router.route(
            &format!("/console/{}", asset.name),
            get(move |headers: HeaderMap| async move { serve(asset, &headers) }),
        );
    }
    router
}

async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

/// The asset, or `304 Not Modified` when the browser's copy is current.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = HeaderValue::from_static(asset.etag);
    let current = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| matches!(tag.trim(), "*") || tag.trim() == asset.etag);
    let common = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if current {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let mut response = (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.bytes,
    )
        .into_response();
    if asset.content_type.starts_with("text/html") {
        // The page loads only its own script and style, and may call any
        // broker over HTTP(S).
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        );
        response.headers_mut().insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

/// The content type of a file, by its extension.
pub const fn content_type(name: &str) -> &'static str {
    let name = name.as_bytes();
    if ends_with(name, b".html") {
        "text/html; charset=utf-8"
    } else if ends_with(name, b".js") {
        "text/javascript; charset=utf-8"
    } else if ends_with(name, b".css") {
        "text/css; charset=utf-8"
    } else if ends_with(name, b".png") {
        "image/png"
    } else if ends_with(name, b".svg") {
        "image/svg+xml"
    } else {
        "application/octet-stream"
    }
}

const fn ends_with(name: &[u8], suffix: &[u8]) -> bool {
    if name.len() < suffix.len() {
        return false;
    }
    let start = name.len() - suffix.len();
    let mut i = 0;
    while i < suffix.len() {
        if name[start + i] != suffix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `"` + 16 hex digits of the 64-bit FNV-1a hash of `bytes` + `"`.
const fn etag(bytes: &[u8]) -> [u8; 18] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    let digits = b"0123456789abcdef";
    let mut tag = [b'"'; 18];
    let mut d = 0;
    while d < 16 {
        tag[1 + d] = digits[((hash >> (60 - 4 * d)) & 0xf) as usize];
        d += 1;
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("a.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("js"), "application/octet-stream");
    }

    #[test]
    fn entity_tags_differ_by_content_and_are_quoted() {
        let tags: Vec<&str> = ASSETS.iter().map(|a| a.etag).collect();
        assert!(
            tags.iter()
                .all(|t| t.len() == 18 && t.starts_with('"') && t.ends_with('"'))
        );
        assert_ne!(tags[0], tags[1]);
        assert_eq!(etag(b""), *b"\"cbf29ce484222325\"");
    }

    #[test]
    fn the_page_loads_the_embedded_assets() {
        let page = std::str::from_utf8(INDEX.bytes).expect("UTF-8");
        for asset in &ASSETS[1..] {
            assert!(
                page.contains(&format!("/console/{}", asset.name)),
                "{}",
                asset.name
            );
        }
    }
}
