//! Who is calling a protected endpoint: the REST counterpart of the gRPC
//! bearer interceptor, on the same domain check.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::Method;
use http::header::{AUTHORIZATION, USER_AGENT};
use http::request::Parts;
use tonic::transport::server::TcpConnectInfo;

use super::RestState;
use super::origin::from_this_or_allowed_origin;
use crate::domain::{Claims, ClientInfo, Store};
use crate::http::problem::Problem;
use crate::http::request_token::verify_request_token;

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
        // A cookie is all the credential a forged cross-origin form carries.
        let changes_state = !matches!(parts.method, Method::GET | Method::HEAD);
        if changes_state
            && !parts.headers.contains_key(AUTHORIZATION)
            && !from_this_or_allowed_origin(&parts.headers, &state.allowed_origins)
        {
            return Err(Problem::cross_origin());
        }
        let claims =
            verify_request_token(state.auth.tokens(), &parts.headers, &state.cookie_name).await?;
        Ok(Self(claims))
    }
}

/// Who is calling: the address rate limits count this request against and
/// the user agent a new session records.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S: Store> FromRequestParts<Arc<RestState<S>>> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<RestState<S>>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr);
        let address = state.addresses.resolve(&parts.headers, peer);
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok());
        Ok(Self(ClientInfo::new(address, user_agent)))
    }
}
