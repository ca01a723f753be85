//! Credentials other services present to authd's service-to-service
//! endpoints (the revocation feed, token introspection): kept only as
//! SHA-256 digests, compared in constant time.

use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq as _};

/// The secrets an endpoint accepts; none turns the endpoint off.
#[derive(Clone)]
pub struct ServiceCredentials {
    digests: Vec<[u8; 32]>,
}

impl ServiceCredentials {
    /// Accepts any of `tokens` (several while rotating).
    pub fn new(tokens: &[String]) -> Self {
        Self {
            digests: tokens
                .iter()
                .map(|token| Sha256::digest(token.as_bytes()).into())
                .collect(),
        }
    }

    /// Whether any credential is configured (the endpoint is on).
    pub fn any(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Whether `presented` is one of the credentials. Every digest is
    /// compared in full, so the time says nothing about which came close.
    pub fn accepts(&self, presented: &str) -> bool {
        let presented = <[u8; 32]>::from(Sha256::digest(presented.as_bytes()));
        let matched = self
            .digests
            .iter()
            .fold(Choice::from(0), |matched, digest| {
                matched | digest.ct_eq(&presented)
            });
        bool::from(matched)
    }
}

impl std::fmt::Debug for ServiceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCredentials")
            .field("count", &self.digests.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_credential_is_accepted() {
        let credentials = ServiceCredentials::new(&["old".into(), "new".into()]);
        assert!(credentials.any());
        assert!(credentials.accepts("old") && credentials.accepts("new"));
        assert!(!credentials.accepts("ne") && !credentials.accepts(""));
        let none = ServiceCredentials::new(&[]);
        assert!(!none.any() && !none.accepts(""));
    }
}
