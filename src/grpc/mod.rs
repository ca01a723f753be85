//! The gRPC surface: `auth.v1.AuthService`, its bearer check, and the
//! mapping of domain errors to gRPC statuses.

mod bearer;
mod deadline;
mod revocation_feed;
mod service;
mod status;

use std::sync::Arc;

use tonic::service::interceptor::InterceptedService;

pub use bearer::{Authentication, BearerAuth};
pub use deadline::DeadlineLayer;
pub use revocation_feed::{FeedCredentials, RevocationFeed};
pub use service::AuthGrpc;

use crate::domain::Authenticator;
use crate::domain::Store;
use crate::http::client_address::ClientAddressResolver;
use pb::auth_service_server::AuthServiceServer;

/// Code generated from `proto/auth/v1/auth.proto`.
pub mod pb {
    tonic::include_proto!("auth.v1");

    /// The encoded descriptors of `auth.v1` and its imports, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/auth_v1_descriptor.bin"));
}

/// Requests are tiny (a username, a password, a token of at most 8 KiB);
/// anything much larger is refused before it is decoded.
const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// `auth.v1.AuthService` behind the bearer check.
pub fn auth_service<S: Store>(
    auth: Arc<Authenticator<S>>,
    addresses: ClientAddressResolver,
) -> InterceptedService<AuthServiceServer<AuthGrpc<S>>, BearerAuth> {
    let bearer = BearerAuth::new(Arc::clone(auth.tokens()));
    let server = AuthServiceServer::new(AuthGrpc::new(auth, addresses))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    InterceptedService::new(server, bearer)
}
