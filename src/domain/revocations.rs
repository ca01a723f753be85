//! The in-memory set of revoked tokens, consulted on every token check so the
//! hot path never waits for the database. The database holds the durable
//! copy; this set is loaded from it at start.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use uuid::Uuid;

use super::tokens::Claims;
use crate::storage::{Revocation, RevocationEvent};

/// Revoked token ids with their expiry (Unix seconds), and per user the
/// second through which all their tokens are revoked ("log out everywhere").
#[derive(Debug, Default)]
pub struct RevocationList {
    expiry_by_jti: RwLock<HashMap<String, i64>>,
    cutoff_by_subject: RwLock<HashMap<String, i64>>,
}

impl RevocationList {
    /// Remembers a revoked token until `expires_at`.
    pub fn insert(&self, jti: String, expires_at: i64) {
        let mut entries = self
            .expiry_by_jti
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        entries.insert(jti, expires_at);
        crate::metrics::revoked_tokens(entries.len());
    }

    /// Revokes every token of `subject` issued at or before `revoked_through`.
    pub fn cut_off(&self, subject: String, revoked_through: i64) {
        let mut cutoffs = self
            .cutoff_by_subject
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let cutoff = cutoffs.entry(subject).or_insert(revoked_through);
        *cutoff = (*cutoff).max(revoked_through);
    }

    /// The second through which `subject`'s tokens are revoked, if any.
    pub fn cutoff(&self, subject: &str) -> Option<i64> {
        self.cutoff_by_subject
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(subject)
            .copied()
    }

    /// Whether the token with these claims was revoked, by id or by a cutoff.
    pub fn revokes(&self, claims: &Claims) -> bool {
        let revoked_by_id = self
            .expiry_by_jti
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&claims.jti);
        revoked_by_id
            || self
                .cutoff(&claims.sub)
                .is_some_and(|cutoff| claims.iat <= cutoff)
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
        crate::metrics::revoked_tokens(entries.len());
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

impl RevocationList {
    /// The list as the database holds it: revoked tokens and cutoffs.
    pub fn new(revocations: Vec<Revocation>, cutoffs: Vec<(Uuid, i64)>) -> Self {
        let list = Self::default();
        list.merge(revocations, cutoffs);
        list
    }

    /// Takes up one revocation another instance announced.
    pub fn apply(&self, event: RevocationEvent) {
        match event {
            RevocationEvent::Token(revocation) => {
                self.insert(revocation.jti, revocation.expires_at)
            }
            RevocationEvent::AllOf {
                user_id,
                revoked_through,
            } => self.cut_off(user_id.to_string(), revoked_through),
        }
    }

    /// Adds what other instances recorded; nothing already known is lost.
    pub fn merge(&self, revocations: Vec<Revocation>, cutoffs: Vec<(Uuid, i64)>) {
        for revocation in revocations {
            self.insert(revocation.jti, revocation.expires_at);
        }
        for (user_id, revoked_through) in cutoffs {
            self.cut_off(user_id.to_string(), revoked_through);
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
        assert_eq!(list.len(), 2);
    }
}
