//! `auth.v1.AuthService`: converts messages, calls the domain, converts back.

use std::sync::Arc;

use prost_types::Timestamp;
use tonic::{Request, Response, Status};

use super::bearer::Authentication;
use super::pb::{
    self, GetJwksRequest, GetJwksResponse, LoginRequest, LoginResponse, LogoutAllRequest,
    LogoutAllResponse, LogoutRequest, LogoutResponse, RegisterRequest, RegisterResponse,
    VerifyRequest, VerifyResponse, auth_service_server::AuthService,
};
use crate::client_address::ClientAddressResolver;
use crate::domain::{Authenticator, Credentials, Deadline, Session, User};
use crate::storage::Store;

const TOKEN_TYPE: &str = "Bearer";

/// The gRPC face of the [`Authenticator`].
pub struct AuthGrpc<S> {
    auth: Arc<Authenticator<S>>,
    addresses: ClientAddressResolver,
}

impl<S> AuthGrpc<S> {
    pub fn new(auth: Arc<Authenticator<S>>, addresses: ClientAddressResolver) -> Self {
        Self { auth, addresses }
    }

    fn client_address<T>(&self, request: &Request<T>) -> std::net::IpAddr {
        self.addresses
            .resolve(request.metadata().as_ref(), request.remote_addr())
    }
}

/// The client's deadline, as the deadline layer found it in `grpc-timeout`.
fn client_deadline<T>(request: &Request<T>) -> Option<Deadline> {
    request.extensions().get::<Deadline>().copied()
}

#[tonic::async_trait]
impl<S: Store> AuthService for AuthGrpc<S> {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let client = self.client_address(&request);
        let deadline = client_deadline(&request);
        let RegisterRequest { username, password } = request.into_inner();
        let credentials = Credentials::for_registration(&username, password)?;
        let Session { user, token } = self.auth.register(credentials, client, deadline).await?;
        Ok(Response::new(RegisterResponse {
            access_token: token.token,
            token_type: TOKEN_TYPE.into(),
            expires_in: token.expires_in,
            user: Some(user.into()),
        }))
    }

    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        let client = self.client_address(&request);
        let deadline = client_deadline(&request);
        let LoginRequest { username, password } = request.into_inner();
        let credentials = Credentials::for_login(&username, password)?;
        let Session { user, token } = self.auth.login(credentials, client, deadline).await?;
        Ok(Response::new(LoginResponse {
            access_token: token.token,
            token_type: TOKEN_TYPE.into(),
            expires_in: token.expires_in,
            user: Some(user.into()),
        }))
    }

    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        self.auth.logout(&claims).await?;
        Ok(Response::new(LogoutResponse {}))
    }

    async fn logout_all(
        &self,
        request: Request<LogoutAllRequest>,
    ) -> Result<Response<LogoutAllResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        self.auth.logout_all(&claims).await?;
        Ok(Response::new(LogoutAllResponse {}))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        let keys = self
            .auth
            .tokens()
            .published_keys()
            .into_iter()
            .map(|key| pb::Jwk {
                kty: key.kty.into(),
                crv: key.crv.into(),
                x: key.x,
                kid: key.kid,
                alg: key.alg.into(),
                r#use: key.key_use.into(),
            })
            .collect();
        Ok(Response::new(GetJwksResponse { keys }))
    }

    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let claims = self.auth.verify(&request.get_ref().access_token).await?;
        Ok(Response::new(VerifyResponse {
            user: Some(pb::User {
                id: claims.sub.clone(),
                username: claims.username.clone(),
            }),
            issued_at: Some(timestamp(claims.iat)),
            expires_at: Some(timestamp(claims.exp)),
            token_id: claims.jti.clone(),
        }))
    }
}

impl From<User> for pb::User {
    fn from(user: User) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username,
        }
    }
}

fn timestamp(unix_seconds: i64) -> Timestamp {
    Timestamp {
        seconds: unix_seconds,
        nanos: 0,
    }
}
