//! Where an HTTP request carries its access token: the `Authorization:
//! Bearer` header, else the session cookie. One reading for every surface
//! that sees HTTP headers (the REST gateway, forward auth, Envoy's Check),
//! so a proxy and authd's own endpoints never disagree about who is calling.

use std::sync::Arc;

use axum_extra::extract::CookieJar;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::domain::{Claims, TokenRejection, TokenService};

/// The verified claims of the token a request carries. An `Authorization`
/// header wins over the cookie; a bad header is refused, never passed over
/// for the cookie, so a request cannot be read two ways.
pub fn verify_request_token(
    tokens: &TokenService,
    headers: &HeaderMap,
    cookie_name: &str,
) -> Result<Arc<Claims>, TokenRejection> {
    let authorization = headers.get_all(AUTHORIZATION);
    if let Some(outcome) =
        tokens.verify_authorization_values(authorization.iter().map(|value| value.as_bytes()))
    {
        return outcome;
    }
    let jar = CookieJar::from_headers(headers);
    let cookie = jar.get(cookie_name).ok_or(TokenRejection::Missing)?;
    tokens.verify(cookie.value())
}
