//! The one place where `authorization` metadata is read for the gRPC surface.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::domain::{AuthError, Claims, TokenRejection, TokenService};
use crate::http::request_token::bearer_token;

/// The outcome of the bearer check, left in the request extensions for the
/// handlers. Absent when the caller sent no `authorization` metadata.
#[derive(Debug, Clone)]
pub struct Authentication(Outcome);

#[derive(Debug, Clone)]
enum Outcome {
    /// Decided with the keys in memory.
    Checked(Result<Arc<Claims>, TokenRejection>),
    /// The token names a key this instance does not hold yet. An
    /// interceptor cannot wait for the keys to be reloaded, so the handler
    /// checks it again, waiting.
    UnknownKey(String),
}

impl Authentication {
    /// The verified claims of a request to a protected RPC, or why there are
    /// none. A missing token and a refused one are both errors here: a
    /// protected RPC never runs without claims.
    pub async fn require<T>(
        request: &Request<T>,
        tokens: &TokenService,
    ) -> Result<Arc<Claims>, AuthError> {
        match request.extensions().get::<Self>() {
            Some(Self(Outcome::Checked(outcome))) => outcome.clone().map_err(AuthError::from),
            Some(Self(Outcome::UnknownKey(token))) => tokens.verify(token).await,
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
        let outcome = match bearer_token(values.iter().map(|value| value.as_encoded_bytes())) {
            None => return Ok(request),
            Some(Err(rejection)) => Outcome::Checked(Err(rejection)),
            Some(Ok(token)) => match self.tokens.verify_in_memory(token) {
                Err(TokenRejection::UnknownKey) => Outcome::UnknownKey(token.to_owned()),
                checked => Outcome::Checked(checked),
            },
        };
        request.extensions_mut().insert(Authentication(outcome));
        Ok(request)
    }
}
