//! Checks that proxies make on authd's behalf, so that a service in any
//! language can sit behind authd without a client library: forward auth
//! over HTTP (nginx `auth_request`, Caddy `forward_auth`, Traefik
//! `ForwardAuth`) and Envoy's external authorization over gRPC. Both read the
//! token as the REST gateway does and check it as `Verify` does.

mod envoy;
mod forward_auth;

use http::HeaderName;

use crate::domain::Claims;

pub use envoy::EnvoyAuthorization;
pub use forward_auth::{FORWARD_AUTH_PATH, forward_auth_router};

/// The header many upstream applications (and Authelia) read the user name
/// from; set beside authd's own identity headers.
static REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");

/// The headers a proxy sets on the upstream request of an allowed call:
/// whom the token belongs to. The proxy replaces any header of these names
/// the client sent, so an upstream can trust them.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    /// Carries the user id (the token's `sub`).
    pub user_id: HeaderName,
    /// Carries the user name, as is `Remote-User`.
    pub username: HeaderName,
}

impl IdentityHeaders {
    /// Each identity header with its value for these claims. Usernames may
    /// hold any script's letters: they travel as UTF-8, which HTTP allows in
    /// values (RFC 9110 `obs-text`) and the proxies pass on as they are.
    fn for_claims<'a>(&'a self, claims: &'a Claims) -> [(&'a HeaderName, &'a str); 3] {
        [
            (&self.user_id, &claims.sub),
            (&self.username, &claims.username),
            (&REMOTE_USER, &claims.username),
        ]
    }
}
