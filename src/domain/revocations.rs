//! The in-memory set of revoked tokens, consulted on every token check so the
//! hot path never waits for the database. The database holds the durable
//! copy; this set is loaded from it at start.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::storage::Revocation;

/// Revoked token ids with their expiry (Unix seconds).
#[derive(Debug, Default)]
pub struct RevocationList {
    expiry_by_jti: RwLock<HashMap<String, i64>>,
}

impl RevocationList {
    /// Remembers a revoked token until `expires_at`.
    pub fn insert(&self, jti: String, expires_at: i64) {
        self.expiry_by_jti
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(jti, expires_at);
    }

    /// Whether the token with this id was revoked.
    pub fn contains(&self, jti: &str) -> bool {
        self.expiry_by_jti
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(jti)
    }

    /// Forgets tokens that expired before `before`, which no check would
    /// accept anyway; returns how many were forgotten.
    pub fn prune_expired_before(&self, before: i64) -> usize {
        let mut entries = self
            .expiry_by_jti
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let size = entries.len();
        entries.retain(|_, expires_at| *expires_at >= before);
        size - entries.len()
    }

    /// How many revoked tokens are remembered.
    pub fn len(&self) -> usize {
        self.expiry_by_jti
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no revoked token is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<Revocation> for RevocationList {
    fn from_iter<I: IntoIterator<Item = Revocation>>(revocations: I) -> Self {
        let entries = revocations
            .into_iter()
            .map(|revocation| (revocation.jti, revocation.expires_at))
            .collect();
        Self {
            expiry_by_jti: RwLock::new(entries),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_tokens_that_are_still_valid() {
        let list = RevocationList::default();
        list.insert("old".into(), 100);
        list.insert("edge".into(), 200);
        list.insert("new".into(), 300);
        assert_eq!(list.prune_expired_before(200), 1);
        assert!(!list.contains("old"));
        assert!(list.contains("edge"));
        assert!(list.contains("new"));
    }
}
