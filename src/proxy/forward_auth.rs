//! Forward auth: a proxy asks `/auth/forward` about each request it
//! receives, passing the request's headers; `200` lets the request through
//! with the identity headers to copy onto it, `401` refuses it. Never a
//! redirect: nginx treats anything but 2xx, 401 and 403 as an error.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue};

use super::IdentityHeaders;
use crate::domain::{AuthError, TokenService};
use crate::http::problem::Problem;
use crate::http::request_token::verify_request_token;

/// The path proxies are pointed at.
pub const FORWARD_AUTH_PATH: &str = "/auth/forward";

struct ForwardAuth {
    tokens: Arc<TokenService>,
    cookie_name: String,
    identity: IdentityHeaders,
}

/// `/auth/forward`, answering every method alike: proxies send the original
/// request's method.
pub fn forward_auth_router(
    tokens: Arc<TokenService>,
    cookie_name: String,
    identity: IdentityHeaders,
) -> Router {
    let state = Arc::new(ForwardAuth {
        tokens,
        cookie_name,
        identity,
    });
    Router::new()
        .route(FORWARD_AUTH_PATH, any(forward_auth))
        .with_state(state)
}

async fn forward_auth(State(state): State<Arc<ForwardAuth>>, headers: HeaderMap) -> Response {
    match allow(&state, &headers).await {
        Ok(identity) => identity.into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}

/// The identity headers of an allowed request. A decision is about one
/// request: no cache may keep it.
async fn allow(state: &ForwardAuth, headers: &HeaderMap) -> Result<HeaderMap, AuthError> {
    let claims = verify_request_token(&state.tokens, headers, &state.cookie_name).await?;
    let mut identity = HeaderMap::new();
    for (name, value) in state.identity.for_claims(&claims) {
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(AuthError::internal)?;
        identity.insert(name.clone(), value);
    }
    identity.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(identity)
}
