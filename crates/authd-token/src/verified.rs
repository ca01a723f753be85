//! Tokens whose signature and claims have already been checked. Services
//! check the same user's token on every request they serve, and a signature
//! check costs several times a whole RPC, so each token's is done once.
//!
//! An entry is keyed by the SHA-256 of the token, so only the very same
//! bytes find it; it is never used at or past the token's `exp`; and it says
//! nothing about revocation, which the caller checks on every use.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::Claims;

/// The key of a cached token: the SHA-256 of its compact form.
pub type TokenDigest = [u8; 32];

/// A bounded set of verified tokens, evicting the least useful first
/// (S3-FIFO, from `quick_cache`).
pub struct VerifiedTokens {
    entries: Option<quick_cache::sync::Cache<TokenDigest, Arc<Claims>>>,
}

impl VerifiedTokens {
    /// Holds at most `capacity` tokens; 0 turns the cache off.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// The cache key of `token`.
    pub fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of a token verified before, unless it has expired since.
    pub fn get(&self, digest: &TokenDigest, now: i64) -> Option<Arc<Claims>> {
        let entries = self.entries.as_ref()?;
        entries.get(digest).filter(|claims| now < claims.exp)
    }

    /// Remembers a token that has just been verified.
    pub fn insert(&self, digest: TokenDigest, claims: Arc<Claims>) {
        if let Some(entries) = &self.entries {
            entries.insert(digest, claims);
        }
    }

    /// Forgets every token, when a key they may have been signed with is gone.
    pub fn clear(&self) {
        if let Some(entries) = &self.entries {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<Claims> {
        Arc::new(Claims {
            iss: "authd".into(),
            sub: "user".into(),
            aud: "authd".into(),
            exp,
            nbf: 0,
            iat: 0,
            jti: "jti".into(),
            username: "alice".into(),
            sid: None,
            client_id: None,
            auth_time: None,
            amr: Vec::new(),
            acr: None,
        })
    }

    #[test]
    fn a_token_is_found_only_by_its_own_bytes_and_only_before_exp() {
        let cache = VerifiedTokens::new(10);
        let digest = VerifiedTokens::digest("a.b.c");
        cache.insert(digest, claims(100));

        assert!(cache.get(&digest, 99).is_some());
        assert!(cache.get(&digest, 100).is_none());
        assert!(cache.get(&VerifiedTokens::digest("a.b.d"), 99).is_none());
    }

    #[test]
    fn the_cache_is_bounded_and_can_be_off() {
        let cache = VerifiedTokens::new(100);
        for n in 0..1000 {
            cache.insert(VerifiedTokens::digest(&n.to_string()), claims(100));
        }
        let kept = (0..1000)
            .filter(|n| {
                cache
                    .get(&VerifiedTokens::digest(&n.to_string()), 0)
                    .is_some()
            })
            .count();
        assert!(kept <= 110, "{kept}");

        let off = VerifiedTokens::new(0);
        let digest = VerifiedTokens::digest("a.b.c");
        off.insert(digest, claims(100));
        assert!(off.get(&digest, 0).is_none());
    }
}
