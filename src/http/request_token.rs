//! Where a request carries its access token: the `Authorization: Bearer`
//! header, else (over HTTP) the session cookie. One reading for every
//! surface (gRPC metadata, the REST gateway, forward auth, Envoy's Check),
//! so a proxy and authd's own endpoints never disagree about who is calling.

use std::sync::Arc;

use axum_extra::extract::CookieJar;
use http::HeaderMap;
use http::header::AUTHORIZATION;

pub use authd_token::bearer_token;

use crate::domain::{AuthError, Claims, TokenRejection, TokenService};

/// The verified claims of the token a request carries. An `Authorization`
/// header wins over the cookie; a bad header is refused, never passed over
/// for the cookie, so a request cannot be read two ways.
///
/// # Errors
/// As [`TokenService::verify`]; `TokenRejection::Missing` without a token.
pub async fn verify_request_token(
    tokens: &TokenService,
    headers: &HeaderMap,
    cookie_name: &str,
) -> Result<Arc<Claims>, AuthError> {
    let authorization = headers.get_all(AUTHORIZATION);
    if let Some(token) = bearer_token(authorization.iter().map(|value| value.as_bytes())) {
        return tokens.verify(token?).await;
    }
    let jar = CookieJar::from_headers(headers);
    let cookie = jar.get(cookie_name).ok_or(TokenRejection::Missing)?;
    tokens.verify(cookie.value()).await
}
