//! The in-memory set of revoked tokens, consulted on every token check so the
//! hot path never waits for the database. The database holds the durable
//! copy; this set is loaded from it at start.

use std::collections::{HashMap, HashSet};
use std::sync::{PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::error::TokenRejection;
use super::tokens::Claims;
use crate::storage::{Revocation, RevocationEvent};

/// A token id as the set keeps it: the 16 random bytes authd's `jti` spells
/// in base64url, so an entry costs about 25 bytes rather than 80 with a
/// string; any other `jti` (none is ever issued) by its SHA-256, cut to 16.
type TokenIdKey = [u8; 16];

fn token_id_key(jti: &str) -> TokenIdKey {
    let mut key = [0u8; 16];
    // 22 characters decode to exactly 16 bytes; a buffer with room for more
    // makes any other length fail or show.
    let mut decoded = [0u8; 18];
    match URL_SAFE_NO_PAD.decode_slice(jti, &mut decoded) {
        Ok(16) => key.copy_from_slice(&decoded[..16]),
        _ => key.copy_from_slice(&Sha256::digest(jti.as_bytes())[..16]),
    }
    key
}

/// Revoked token ids with their expiry (Unix seconds), per user the second
/// through which all their tokens are revoked ("log out everywhere"), ended
/// sessions with when they ended, and disabled accounts.
#[derive(Debug, Default)]
pub struct RevocationList {
    expiry_by_jti: RwLock<HashMap<TokenIdKey, i64>>,
    cutoff_by_subject: RwLock<HashMap<String, i64>>,
    ended_at_by_session: RwLock<HashMap<Uuid, i64>>,
    disabled_subjects: RwLock<HashSet<String>>,
}

impl RevocationList {
    /// Remembers a revoked token until `expires_at`.
    pub fn insert(&self, jti: &str, expires_at: i64) {
        self.insert_all([(jti, expires_at)]);
    }

    /// Remembers many revoked tokens under one lock.
    fn insert_all<'a>(&self, revoked: impl IntoIterator<Item = (&'a str, i64)>) {
        let mut entries = self
            .expiry_by_jti
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for (jti, expires_at) in revoked {
            entries.insert(token_id_key(jti), expires_at);
        }
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

    /// Remembers that a session ended at `ended_at` (Unix seconds): its
    /// tokens are refused.
    pub fn end_session(&self, session_id: Uuid, ended_at: i64) {
        self.end_sessions([(session_id, ended_at)]);
    }

    /// Remembers many ended sessions under one lock.
    pub fn end_sessions(&self, ended: impl IntoIterator<Item = (Uuid, i64)>) {
        let mut sessions = self
            .ended_at_by_session
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for (session_id, ended_at) in ended {
            sessions.entry(session_id).or_insert(ended_at);
        }
    }

    /// Marks an account disabled or enabled again.
    pub fn set_disabled(&self, subject: String, disabled: bool) {
        let mut disabled_subjects = self
            .disabled_subjects
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if disabled {
            disabled_subjects.insert(subject);
        } else {
            disabled_subjects.remove(&subject);
        }
    }

    /// Replaces the disabled accounts by the database's list, which also
    /// takes up accounts enabled again elsewhere.
    pub fn replace_disabled(&self, user_ids: Vec<Uuid>) {
        let subjects = user_ids.iter().map(Uuid::to_string).collect();
        *self
            .disabled_subjects
            .write()
            .unwrap_or_else(PoisonError::into_inner) = subjects;
    }

    /// Why the token with these claims is refused, if it is: revoked by id,
    /// by a cutoff or by the end of its session, or its account disabled.
    pub fn rejection(&self, claims: &Claims) -> Option<TokenRejection> {
        let revoked_by_id = self
            .expiry_by_jti
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&token_id_key(&claims.jti));
        let session_ended = || {
            claims.session_id().is_some_and(|sid| {
                self.ended_at_by_session
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains_key(&sid)
            })
        };
        let cut_off = || {
            self.cutoff(&claims.sub)
                .is_some_and(|cutoff| claims.iat <= cutoff)
        };
        let disabled = || {
            self.disabled_subjects
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&claims.sub)
        };
        if disabled() {
            Some(TokenRejection::AccountDisabled)
        } else if revoked_by_id || session_ended() || cut_off() {
            Some(TokenRejection::Revoked)
        } else {
            None
        }
    }

    /// Forgets tokens that expired before `before`, and sessions that ended
    /// more than `token_lifetime` before it, which no check would accept
    /// anyway; returns how many tokens were forgotten.
    pub fn prune_expired_before(&self, before: i64, token_lifetime: i64) -> usize {
        self.ended_at_by_session
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, ended_at| *ended_at + token_lifetime >= before);
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
    /// A list with the database's "log out everywhere" cutoffs; revoked
    /// tokens come with [`Self::remember`], a page at a time.
    pub fn with_cutoffs(cutoffs: Vec<(Uuid, i64)>) -> Self {
        let list = Self::default();
        list.cut_off_all(cutoffs);
        list
    }

    /// Remembers revoked tokens as the database holds them.
    pub fn remember(&self, revocations: &[Revocation]) {
        self.insert_all(
            revocations
                .iter()
                .map(|revocation| (revocation.jti.as_str(), revocation.expires_at)),
        );
    }

    /// Takes up one revocation another instance announced.
    pub fn apply(&self, event: RevocationEvent) {
        match event {
            RevocationEvent::Token(revocation) => {
                self.insert(&revocation.jti, revocation.expires_at)
            }
            RevocationEvent::AllOf {
                user_id,
                revoked_through,
            } => self.cut_off(user_id.to_string(), revoked_through),
            RevocationEvent::Session {
                session_id,
                ended_at,
                ..
            } => self.end_session(session_id, ended_at),
            RevocationEvent::AccountDisabled { user_id, disabled } => {
                self.set_disabled(user_id.to_string(), disabled)
            }
        }
    }

    /// Adds what other instances recorded; nothing already known is lost.
    pub fn merge(&self, revocations: Vec<Revocation>, cutoffs: Vec<(Uuid, i64)>) {
        self.remember(&revocations);
        self.cut_off_all(cutoffs);
    }

    fn cut_off_all(&self, cutoffs: Vec<(Uuid, i64)>) {
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
        list.insert("old", 100);
        list.insert("edge", 200);
        list.insert("new", 300);
        assert_eq!(list.prune_expired_before(200, 60), 1);
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn token_ids_of_any_form_are_told_apart() {
        let issued = crate::domain::tokens::random_id::<16>().unwrap();
        let ids = [
            issued.as_str(),
            "AAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAB",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
        ];
        let keys: std::collections::HashSet<_> = ids.iter().map(|id| token_id_key(id)).collect();
        assert_eq!(keys.len(), ids.len());
        assert_eq!(
            token_id_key(&issued).to_vec(),
            URL_SAFE_NO_PAD.decode(&issued).unwrap()
        );
    }
}
