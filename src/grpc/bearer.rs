//! The one place where `authorization` metadata is read for the gRPC surface.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::domain::{AuthError, Claims, TokenRejection, TokenService};

/// The outcome of the bearer check, left in the request extensions for the
/// handlers. Absent when the caller sent no `authorization` metadata.
#[derive(Debug, Clone)]
pub struct Authentication(Result<Arc<Claims>, TokenRejection>);

impl Authentication {
    /// The verified claims of a request to a protected RPC, or why there are
    /// none. A missing token and a refused one are both errors here: a
    /// protected RPC never runs without claims.
    pub fn require<T>(request: &Request<T>) -> Result<Arc<Claims>, AuthError> {
        match request.extensions().get::<Self>() {
            Some(Self(outcome)) => outcome.clone().map_err(AuthError::from),
            None => Err(TokenRejection::Missing.into()),
        }
    }
}

/// Verifies `authorization: Bearer <jwt>` on every call. It never refuses a
/// call itself: unprotected RPCs (Register, Login, Verify) must work even if a
/// caller sends credentials of its own, so protected ones ask
/// [`Authentication::require`].
#[derive(Clone)]
pub struct BearerAuth {
    tokens: Arc<TokenService>,
}

impl BearerAuth {
    pub fn new(tokens: Arc<TokenService>) -> Self {
        Self { tokens }
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let values = request.metadata().get_all("authorization");
        let outcome = match self
            .tokens
            .verify_authorization_values(values.iter().map(|value| value.as_encoded_bytes()))
        {
            Some(outcome) => outcome,
            None => return Ok(request),
        };
        request.extensions_mut().insert(Authentication(outcome));
        Ok(request)
    }
}
