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

use authd_token::Claims;
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
}

impl RequireTokenLayer {
    /// Checks tokens with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireToken {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`RequireTokenLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct RequireToken<S> {
    inner: S,
    verifier: Verifier,
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
        Box::pin(async move {
            let verified: Result<Arc<Claims>, VerifyError> =
                match request_token(request.headers(), None) {
                    Ok(token) => verifier.verify(token).await,
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

/// The gRPC status of a refusal: UNAUTHENTICATED for the token's fault,
/// UNAVAILABLE when the verifier cannot tell; with authd's `ErrorInfo`.
impl From<VerifyError> for Status {
    fn from(error: VerifyError) -> Self {
        let code = if error.is_rejection() {
            Code::Unauthenticated
        } else {
            Code::Unavailable
        };
        let details = ErrorDetails::with_error_info(error.reason(), ERROR_DOMAIN, HashMap::new());
        Status::with_error_details(code, error.to_string(), details)
    }
}
