//! The caller of an axum handler, from their access token, and what a
//! route asks of their authentication.

use std::sync::Arc;
use std::task::{Context, Poll};

use authd_token::{AuthenticationPolicy, Claims, TokenRejection};
use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use tower::{Layer, Service};

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
/// On a route wrapped in an [`AuthenticationPolicyLayer`], the caller's
/// authentication must also meet that layer's [`AuthenticationPolicy`]
/// (level, age), or the request is refused with 401 and RFC 9470's
/// `insufficient_user_authentication` challenge.
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
        let policy = parts
            .extensions
            .get::<RoutePolicy>()
            .map_or_else(AuthenticationPolicy::new, |route| route.0);
        verifier
            .verify_with(token, &policy)
            .await
            .map(AuthenticatedUser)
            .map_err(AuthRejection)
    }
}

/// Makes [`AuthenticatedUser`] require an [`AuthenticationPolicy`] on the
/// routes it wraps: a second factor, a recent authentication. Put it on a
/// route (`get(handler).layer(...)`), on the routes added so far
/// (`Router::route_layer`) or on a nested router. Where several wrap one
/// route, each adds its requirements to the others' (the higher level, the
/// shorter age): an inner layer never loosens an outer one.
///
/// The layer only says what is required; `AuthenticatedUser` checks it. A
/// handler that does not take an `AuthenticatedUser` checks nothing, as
/// without the layer.
///
/// ```no_run
/// use std::time::Duration;
/// use authd_client::{AuthenticatedUser, AuthenticationPolicy, AuthenticationPolicyLayer, Verifier};
/// use axum::{Router, routing::{get, post}};
///
/// async fn me(AuthenticatedUser(claims): AuthenticatedUser) -> String {
///     claims.username.clone()
/// }
///
/// async fn pay(AuthenticatedUser(claims): AuthenticatedUser) -> String {
///     format!("paid by {}", claims.username)
/// }
///
/// # fn build(verifier: Verifier) -> Router {
/// let two_factors = AuthenticationPolicy::new()
///     .require_two_factors()
///     .max_auth_age(Duration::from_secs(300));
/// Router::new()
///     .route("/me", get(me))
///     .route("/pay", post(pay).layer(AuthenticationPolicyLayer::new(two_factors)))
///     .with_state(verifier)
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AuthenticationPolicyLayer {
    policy: AuthenticationPolicy,
}

impl AuthenticationPolicyLayer {
    /// Requires `policy` on the routes it wraps.
    pub fn new(policy: AuthenticationPolicy) -> Self {
        Self { policy }
    }
}

impl<S> Layer<S> for AuthenticationPolicyLayer {
    type Service = AuthenticationPolicyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthenticationPolicyService {
            inner,
            policy: self.policy,
        }
    }
}

/// The service [`AuthenticationPolicyLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct AuthenticationPolicyService<S> {
    inner: S,
    policy: AuthenticationPolicy,
}

/// The policy in force on a request, as the layers around its route left
/// it. A type of this crate's own, so that only the layer sets it.
#[derive(Debug, Clone, Copy)]
struct RoutePolicy(AuthenticationPolicy);

impl<S, Body> Service<http::Request<Body>> for AuthenticationPolicyService<S>
where
    S: Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let policy = request
            .extensions()
            .get::<RoutePolicy>()
            .map_or(self.policy, |outer| outer.0.and(self.policy));
        request.extensions_mut().insert(RoutePolicy(policy));
        self.inner.call(request)
    }
}

/// Why [`AuthenticatedUser`] refused a request, answered as authd answers
/// (RFC 9457 `application/problem+json` with `type`, `title`, `status`,
/// `detail` and `reason`):
///
/// - the token's fault: 401 with `WWW-Authenticate: Bearer realm="authd",
///   error="invalid_token", error_description="..."` (RFC 6750), or a bare
///   `Bearer realm="authd"` when the request carried no token;
/// - a valid token whose authentication does not meet the route's
///   [`AuthenticationPolicy`] (`INSUFFICIENT_USER_AUTHENTICATION`): 401 with
///   RFC 9470's challenge, `WWW-Authenticate: Bearer realm="authd",
///   error="insufficient_user_authentication", error_description="...",
///   acr_values="aal2", max_age=300` (each of the last two when the policy
///   asks for it), and the same `acr_values` and `max_age` in the body;
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
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": error.to_string(),
            "reason": error.reason(),
        });
        if let VerifyError::InsufficientAuthentication(refused) = error {
            let policy = refused.policy();
            if let Some(acr_values) = policy.acr_values() {
                body["acr_values"] = acr_values.into();
            }
            if let Some(max_age) = policy.max_age() {
                body["max_age"] = max_age.as_secs().into();
            }
        }
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
            VerifyError::InsufficientAuthentication(refused) => Some(refused.www_authenticate()),
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
