//! A tower layer that authenticates every call to a tonic server: handlers
//! find the caller's claims in the request extensions and never parse
//! headers, as in tonic's own interceptor examples. A layer rather than a
//! tonic `Interceptor`, because an interceptor cannot wait, and a check may
//! have to (a rotated key is fetched once, for everyone).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use authd_token::{AuthenticationPolicy, Claims};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use tower::{Layer, Service};

use crate::bearer::request_token;
use crate::error::{ERROR_DOMAIN, VerifyError};
use crate::verifier::Verifier;

/// Requires a valid access token (`authorization: Bearer <token>`) on every
/// call of the services it wraps, and hands handlers its claims as an
/// `Arc<Claims>` request extension. A call without one gets
/// UNAUTHENTICATED with a `google.rpc.ErrorInfo` (domain `authd`) whose
/// reason is authd's ([`VerifyError::reason`]); a verifier unable to tell
/// (`AUTHD_UNAVAILABLE`, `VERIFIER_STALE`) gets UNAVAILABLE, which clients
/// retry rather than log in again.
///
/// Applied with `Server::builder().layer(...)`, it covers every service of
/// the server, health and reflection included. To keep those open, wrap
/// only the services to protect with tonic's `LayerExt::named_layer`
/// (`.add_service(layer.named_layer(MyServer::new(...)))`), as
/// `examples/tonic_service.rs` does, or serve them from a second server.
///
/// With [`with_policy`](Self::with_policy), the calls also need an
/// authentication that meets an [`AuthenticationPolicy`]: a valid token that
/// does not gets UNAUTHENTICATED with reason
/// `INSUFFICIENT_USER_AUTHENTICATION` and the policy's `acr_values` and
/// `max_age` in the `ErrorInfo` metadata. A policy applies to the services
/// the layer wraps: give each service that needs its own a layer of its own
/// (`named_layer`), or, for one method of a service, check
/// [`AuthenticationPolicy::check`] in its handler and return
/// `Status::from(VerifyError::from(refused))`.
///
/// ```no_run
/// use std::sync::Arc;
/// use authd_client::{Claims, RequireTokenLayer, Verifier};
///
/// # fn build(verifier: Verifier) {
/// // Then `.add_service(...)` each service to protect, and `.serve(...)`.
/// let server = tonic::transport::Server::builder().layer(RequireTokenLayer::new(verifier));
/// # }
///
/// // In a handler:
/// fn caller<T>(request: &tonic::Request<T>) -> Option<&Arc<Claims>> {
///     request.extensions().get::<Arc<Claims>>()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RequireTokenLayer {
    verifier: Verifier,
    policy: AuthenticationPolicy,
}

impl RequireTokenLayer {
    /// Checks tokens with `verifier`, asking nothing of how and when the
    /// caller authenticated.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            policy: AuthenticationPolicy::new(),
        }
    }

    /// Also requires the caller's authentication to meet `policy`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use authd_client::{AuthenticationPolicy, RequireTokenLayer, Verifier};
    ///
    /// # fn build(verifier: Verifier) {
    /// let two_factors = RequireTokenLayer::new(verifier).with_policy(
    ///     AuthenticationPolicy::new()
    ///         .require_two_factors()
    ///         .max_auth_age(Duration::from_secs(300)),
    /// );
    /// // Then, with tonic's `LayerExt`:
    /// // `.add_service(two_factors.named_layer(PaymentsServer::new(...)))`.
    /// # }
    /// ```
    #[must_use]
    pub fn with_policy(mut self, policy: AuthenticationPolicy) -> Self {
        self.policy = policy;
        self
    }
}

impl<S> Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireToken {
            inner,
            verifier: self.verifier.clone(),
            policy: self.policy,
        }
    }
}

/// The service [`RequireTokenLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct RequireToken<S> {
    inner: S,
    verifier: Verifier,
    policy: AuthenticationPolicy,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for RequireToken<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    RequestBody: Send + 'static,
    ResponseBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        // The clone that was polled ready serves this call (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let policy = self.policy;
        Box::pin(async move {
            let verified: Result<Arc<Claims>, VerifyError> =
                match request_token(request.headers(), None) {
                    Ok(token) => verifier.verify_with(token, &policy).await,
                    Err(rejection) => Err(VerifyError::Rejected(rejection)),
                };
            match verified {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    inner.call(request).await
                }
                Err(error) => Ok(Status::from(error).into_http()),
            }
        })
    }
}

/// The gRPC status of a refusal: UNAUTHENTICATED for the token's fault (a
/// policy's refusal included, with its `acr_values` and `max_age` in the
/// metadata), UNAVAILABLE when the verifier cannot tell; with authd's
/// `ErrorInfo`.
impl From<VerifyError> for Status {
    fn from(error: VerifyError) -> Self {
        let code = if error.is_rejection() {
            Code::Unauthenticated
        } else {
            Code::Unavailable
        };
        let metadata: HashMap<String, String> = match error {
            VerifyError::InsufficientAuthentication(refused) => refused
                .metadata()
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
            _ => HashMap::new(),
        };
        let details = ErrorDetails::with_error_info(error.reason(), ERROR_DOMAIN, metadata);
        Status::with_error_details(code, error.to_string(), details)
    }
}
