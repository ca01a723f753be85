//! The REST gateway: the documented HTTP endpoints, mapped onto the same
//! domain service as the gRPC surface.

mod problem;

use std::path::Path;

use axum::Router;
use axum::handler::HandlerWithoutStateExt as _;
use axum::response::{IntoResponse, Response};
use http::Request;
use http::header::CONTENT_TYPE;

use problem::Problem;

/// The REST routes, and for unknown paths either the static files under
/// `web_root` or a 404.
pub fn router(web_root: Option<&Path>) -> Router {
    let router = Router::new();
    match web_root {
        Some(root) => router.fallback_service(
            crate::web::static_files(root).not_found_service(not_found.into_service()),
        ),
        None => router.fallback(not_found),
    }
}

/// Unknown paths: a gRPC client gets UNIMPLEMENTED as gRPC expects, anyone
/// else a 404 problem.
async fn not_found(request: Request<axum::body::Body>) -> Response {
    let is_grpc = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    if is_grpc {
        tonic::Status::unimplemented("unknown service or method").into_http()
    } else {
        Problem::not_found(request.uri().path()).into_response()
    }
}
