//! The caller of an axum handler, from their access token.

use std::sync::Arc;

use authd_token::{Claims, TokenRejection};
use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};

use crate::bearer::request_token;
use crate::error::VerifyError;
use crate::verifier::Verifier;

/// The verified claims of the caller: the `Authorization: Bearer` token,
/// else the cookie set with
/// [`VerifierConfig::token_cookie`](crate::VerifierConfig::token_cookie).
/// The [`Verifier`] comes from the router's state (`FromRef`).
///
/// A request without a good token is answered with [`AuthRejection`]. There
/// is deliberately no `Option<AuthenticatedUser>` reading: it would let a
/// bad token pass as no token at all.
///
/// ```no_run
/// use authd_client::{AuthenticatedUser, Verifier};
/// use axum::{Router, routing::get};
///
/// async fn me(AuthenticatedUser(claims): AuthenticatedUser) -> String {
///     format!("hello {}", claims.username)
/// }
///
/// # fn build(verifier: Verifier) -> Router {
/// Router::new().route("/me", get(me)).with_state(verifier)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub Arc<Claims>);

impl<S> FromRequestParts<S> for AuthenticatedUser
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let token = request_token(&parts.headers, verifier.token_cookie())
            .map_err(|rejection| AuthRejection(VerifyError::Rejected(rejection)))?;
        verifier
            .verify(token)
            .await
            .map(AuthenticatedUser)
            .map_err(AuthRejection)
    }
}

/// Why [`AuthenticatedUser`] refused a request, answered as authd answers
/// (RFC 9457 `application/problem+json` with `type`, `title`, `status`,
/// `detail` and `reason`):
///
/// - the token's fault: 401 with `WWW-Authenticate: Bearer realm="authd",
///   error="invalid_token", error_description="..."` (RFC 6750), or a bare
///   `Bearer realm="authd"` when the request carried no token;
/// - the verifier unable to tell (`AUTHD_UNAVAILABLE`, `VERIFIER_STALE`):
///   503 with `Retry-After: 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthRejection(pub VerifyError);

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let Self(error) = self;
        let status = if error.is_rejection() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": error.to_string(),
            "reason": error.reason(),
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        let challenge = match error {
            VerifyError::Rejected(TokenRejection::Missing) => {
                Some(r#"Bearer realm="authd""#.to_owned())
            }
            VerifyError::Rejected(rejection) => Some(format!(
                r#"Bearer realm="authd", error="invalid_token", error_description="{rejection}""#
            )),
            VerifyError::AuthdUnavailable | VerifyError::Stale => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
                None
            }
        };
        // The descriptions are fixed ASCII strings; a value that would not
        // parse is left out rather than sent broken.
        if let Some(value) = challenge.and_then(|challenge| HeaderValue::try_from(challenge).ok()) {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}
