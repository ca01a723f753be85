//! Who is calling a protected endpoint: the REST counterpart of the gRPC
//! bearer interceptor, on the same domain check.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum_extra::extract::CookieJar;
use http::header::AUTHORIZATION;
use http::request::Parts;
use tonic::transport::server::TcpConnectInfo;

use super::RestState;
use super::problem::Problem;
use crate::domain::{AuthError, Claims, TokenRejection};
use crate::storage::Store;

/// The verified claims of the caller of a protected endpoint. An
/// `Authorization` header wins over the session cookie; a bad header is
/// refused, never passed over for the cookie.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Claims>);

impl<S: Store> FromRequestParts<Arc<RestState<S>>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<RestState<S>>,
    ) -> Result<Self, Problem> {
        let tokens = state.auth.tokens();
        let headers = parts.headers.get_all(AUTHORIZATION);
        if let Some(outcome) =
            tokens.verify_authorization_values(headers.iter().map(|value| value.as_bytes()))
        {
            return Ok(Self(outcome.map_err(AuthError::from)?));
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(&state.cookie_name)
            .ok_or(AuthError::from(TokenRejection::Missing))?;
        Ok(Self(tokens.verify(token.value()).map_err(AuthError::from)?))
    }
}

/// The client address rate limits count this request against.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

impl<S: Store> FromRequestParts<Arc<RestState<S>>> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<RestState<S>>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr);
        Ok(Self(state.addresses.resolve(&parts.headers, peer)))
    }
}
