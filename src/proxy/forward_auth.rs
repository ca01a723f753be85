//! Forward auth: a proxy asks `/auth/forward` about each request it
//! receives, passing the request's headers; `200` lets the request through
//! with the identity headers to copy onto it, `401` refuses it. Never a
//! redirect: nginx treats anything but 2xx, 401 and 403 as an error.
//!
//! The query says what the route requires beyond a valid token:
//! `authd_acr=aal2` (a second factor), `authd_max_age=300` (an
//! authentication within five minutes). A valid token that falls short is
//! refused with 401 and RFC 9470's `insufficient_user_authentication`
//! challenge.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue, Uri};

use super::{IdentityHeaders, required_authentication};
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

async fn forward_auth(
    State(state): State<Arc<ForwardAuth>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match allow(&state, &uri, &headers).await {
        Ok(identity) => identity.into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}

/// The identity headers of an allowed request. A decision is about one
/// request: no cache may keep it.
async fn allow(
    state: &ForwardAuth,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<HeaderMap, AuthError> {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let required = required_authentication(
        query
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )?;
    let claims = verify_request_token(&state.tokens, headers, &state.cookie_name).await?;
    required.check(&claims)?;
    let mut identity = HeaderMap::new();
    for (name, value) in state.identity.for_claims(&claims) {
        // Left out rather than sent empty: the proxies strip what a client
        // sent under these names.
        if value.is_empty() {
            continue;
        }
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(AuthError::internal)?;
        identity.insert(name.clone(), value);
    }
    identity.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(identity)
}
