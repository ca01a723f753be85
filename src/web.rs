//! What browsers need beyond REST: grpc-web translation for the gRPC
//! services (applied per service, so plain HTTP/1.1 REST requests pass
//! untouched), CORS, and optionally the demo page's static files.

use std::path::Path;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

/// Headers a grpc-web client sends besides `content-type` and `authorization`.
const GRPC_WEB_REQUEST_HEADERS: [&str; 4] = [
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    crate::telemetry::REQUEST_ID_HEADER,
];
/// Headers a grpc-web client must be able to read: where the status travels
/// when a call fails before any message.
const GRPC_WEB_RESPONSE_HEADERS: [&str; 4] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    crate::telemetry::REQUEST_ID_HEADER,
];

/// CORS for browser apps served from other origins. With no allowed origin
/// (the default) no CORS headers are sent, so browsers keep every other
/// origin out.
pub fn cors_layer(allowed_origins: &[HeaderValue]) -> CorsLayer {
    let request_headers = GRPC_WEB_REQUEST_HEADERS
        .into_iter()
        .map(HeaderName::from_static)
        .chain([CONTENT_TYPE, AUTHORIZATION]);
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed_origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(request_headers.collect::<Vec<_>>())
        .expose_headers(GRPC_WEB_RESPONSE_HEADERS.map(HeaderName::from_static))
        // The allow-list is explicit, so the session cookie may travel too.
        .allow_credentials(true)
        .max_age(Duration::from_secs(600))
}

/// Serves the files under `root`, `index.html` for directories.
pub fn static_files(root: &Path) -> ServeDir {
    ServeDir::new(root).append_index_html_on_directories(true)
}
