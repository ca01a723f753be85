//! Checks that proxies make on authd's behalf, so that a service in any
//! language can sit behind authd without a client library: forward auth
//! over HTTP (nginx `auth_request`, Caddy `forward_auth`, Traefik
//! `ForwardAuth`) and Envoy's external authorization over gRPC. Both read the
//! token as the REST gateway does and check it as `Verify` does.

mod envoy;
mod forward_auth;

use std::time::Duration;

use authd_token::{AuthenticationPolicy, acr_level};
use http::HeaderName;

use crate::domain::{AuthError, Claims, FieldViolation};

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
    /// Carries how the user authenticated: the token's `amr`, comma-separated
    /// (`pwd,otp,mfa`).
    pub amr: HeaderName,
    /// Carries the assurance level reached: the token's `acr` (`aal1`,
    /// `aal2`).
    pub acr: HeaderName,
}

impl IdentityHeaders {
    /// Each identity header with its value for these claims; an empty value
    /// for what a token issued before authd recorded it lacks (`amr`,
    /// `acr`), which the checks send as no header at all. Usernames may hold
    /// any script's letters: they travel as UTF-8, which HTTP allows in
    /// values (RFC 9110 `obs-text`) and the proxies pass on as they are.
    fn for_claims<'a>(&'a self, claims: &'a Claims) -> [(&'a HeaderName, String); 5] {
        [
            (&self.user_id, claims.sub.clone()),
            (&self.username, claims.username.clone()),
            (&REMOTE_USER, claims.username.clone()),
            // HTTP's list syntax (RFC 9110 section 5.6.1); method names
            // (RFC 8176) hold neither commas nor spaces.
            (&self.amr, claims.amr.join(",")),
            (&self.acr, claims.acr.clone().unwrap_or_default()),
        ]
    }
}

/// The name of the requirement of a minimum assurance level, in
/// `/auth/forward`'s query and in Envoy's context extensions: `aal1` or
/// `aal2`. Prefixed, so that a query a proxy passes on from the client
/// (Caddy keeps it unless `uri` sets one) cannot collide with the app's own
/// parameters.
pub const REQUIRED_ACR: &str = "authd_acr";

/// The name of the requirement of a recent authentication, in whole seconds.
pub const REQUIRED_MAX_AGE: &str = "authd_max_age";

/// What the route a proxy asks about requires of the caller's
/// authentication, from `(name, value)` pairs (query parameters, context
/// extensions). Other names are ignored: they belong to the app or to the
/// proxy. A requirement given twice asks the stricter of both, so one added
/// by a client cannot loosen the proxy's.
///
/// # Errors
/// `InvalidInput` naming the parameter for an `authd_acr` other than `aal1`
/// or `aal2`, or an `authd_max_age` that is no whole number of seconds:
/// refused rather than ignored, so a typo cannot leave a route open.
fn required_authentication<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<AuthenticationPolicy, AuthError> {
    let mut policy = AuthenticationPolicy::new();
    for (name, value) in pairs {
        let required = match name {
            REQUIRED_ACR => acr_level(value)
                .map(|level| AuthenticationPolicy::new().min_assurance_level(level))
                .ok_or_else(|| {
                    invalid_requirement(
                        REQUIRED_ACR,
                        format!("{REQUIRED_ACR} must be aal1 or aal2"),
                    )
                })?,
            REQUIRED_MAX_AGE => value
                .parse::<u64>()
                .map(|seconds| {
                    AuthenticationPolicy::new().max_auth_age(Duration::from_secs(seconds))
                })
                .map_err(|_| {
                    invalid_requirement(
                        REQUIRED_MAX_AGE,
                        format!("{REQUIRED_MAX_AGE} must be a whole number of seconds"),
                    )
                })?,
            _ => continue,
        };
        policy = policy.and(required);
    }
    Ok(policy)
}

fn invalid_requirement(field: &'static str, description: String) -> AuthError {
    AuthError::InvalidInput(vec![FieldViolation {
        field,
        reason: "INVALID_AUTHENTICATION_REQUIREMENT",
        description,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_are_read_by_name_and_others_ignored() {
        let policy = required_authentication([
            ("page", "2"),
            ("authd_acr", "aal2"),
            ("authd_max_age", "300"),
        ])
        .unwrap();
        assert_eq!(policy.min_level(), 2);
        assert_eq!(policy.max_age(), Some(Duration::from_secs(300)));
        assert!(
            required_authentication([("acr", "aal2")])
                .unwrap()
                .asks_nothing()
        );
    }

    #[test]
    fn a_requirement_given_twice_asks_the_stricter() {
        let policy = required_authentication([
            ("authd_acr", "aal2"),
            ("authd_acr", "aal1"),
            ("authd_max_age", "60"),
            ("authd_max_age", "3600"),
        ])
        .unwrap();
        assert_eq!(policy.min_level(), 2);
        assert_eq!(policy.max_age(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_requirement_that_cannot_be_read_is_refused() {
        for (name, value) in [
            ("authd_acr", "2"),
            ("authd_acr", "AAL2"),
            ("authd_max_age", "5m"),
            ("authd_max_age", "-1"),
        ] {
            let refused = required_authentication([(name, value)]).unwrap_err();
            assert_eq!(
                refused.reason(),
                "INVALID_AUTHENTICATION_REQUIREMENT",
                "{name}={value}"
            );
        }
    }
}
