//! Who is calling a protected endpoint: the REST counterpart of the gRPC
//! bearer interceptor, on the same domain check.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;
use tonic::transport::server::TcpConnectInfo;

use super::RestState;
use super::problem::Problem;
use crate::domain::Claims;
use crate::request_token::verify_request_token;
use crate::storage::Store;

/// The verified claims of the caller of a protected endpoint, from its
/// `Authorization` header or its session cookie.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Claims>);

impl<S: Store> FromRequestParts<Arc<RestState<S>>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<RestState<S>>,
    ) -> Result<Self, Problem> {
        let claims =
            verify_request_token(state.auth.tokens(), &parts.headers, &state.cookie_name).await?;
        Ok(Self(claims))
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
