//! The revocation list, consulted on every token check so that the hot path
//! never waits for a database or the network. authd keeps the durable copy
//! and tells verifiers what changes (`WatchRevocations`).

use std::collections::{HashMap, HashSet};
use std::sync::{PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::{Claims, TokenRejection};

/// A token id as the list keeps it: the 16 random bytes authd's `jti` spells
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

/// One thing the list can hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Revocation {
    /// One token, refused until it expires.
    Token {
        /// Its `jti`.
        jti: String,
        /// Its `exp`, Unix seconds.
        expires_at: i64,
    },
    /// Every token of a user issued at or before a time.
    Cutoff {
        /// The user id (`sub`).
        user_id: String,
        /// Unix seconds: tokens whose `iat` is at or before it are refused.
        revoked_through: i64,
    },
    /// Every token of a session.
    Session {
        /// The session id (`sid`).
        session_id: Uuid,
        /// Unix seconds after which none of its tokens can be valid: the
        /// entry is forgotten then.
        until: i64,
    },
    /// An account disabled or enabled again.
    Account {
        /// The user id (`sub`).
        user_id: String,
        /// While true, every token of the account is refused.
        disabled: bool,
    },
}

/// Revoked token ids with their expiry, per user the second through which
/// all their tokens are revoked ("log out everywhere"), ended sessions, and
/// disabled accounts.
#[derive(Debug, Default)]
pub struct RevocationList {
    expiry_by_jti: RwLock<HashMap<TokenIdKey, i64>>,
    cutoff_by_subject: RwLock<HashMap<String, i64>>,
    until_by_session: RwLock<HashMap<Uuid, i64>>,
    disabled_subjects: RwLock<HashSet<String>>,
}

impl RevocationList {
    /// Takes up one revocation; whether it changed anything (a revocation
    /// already known, or a cutoff earlier than the one held, changes
    /// nothing).
    pub fn apply(&self, revocation: &Revocation) -> bool {
        match revocation {
            Revocation::Token { jti, expires_at } => write(&self.expiry_by_jti)
                .insert(token_id_key(jti), *expires_at)
                .is_none(),
            Revocation::Cutoff {
                user_id,
                revoked_through,
            } => {
                let mut cutoffs = write(&self.cutoff_by_subject);
                let cutoff = cutoffs.entry(user_id.clone()).or_insert(i64::MIN);
                let raised = *revoked_through > *cutoff;
                *cutoff = (*cutoff).max(*revoked_through);
                raised
            }
            Revocation::Session { session_id, until } => {
                let mut sessions = write(&self.until_by_session);
                let known = sessions.get(session_id).copied();
                sessions.insert(*session_id, known.unwrap_or(i64::MIN).max(*until));
                known.is_none()
            }
            Revocation::Account { user_id, disabled } => {
                let mut subjects = write(&self.disabled_subjects);
                if *disabled {
                    subjects.insert(user_id.clone())
                } else {
                    subjects.remove(user_id)
                }
            }
        }
    }

    /// Takes up many revocations; those that changed anything.
    pub fn apply_all(&self, revocations: impl IntoIterator<Item = Revocation>) -> Vec<Revocation> {
        revocations
            .into_iter()
            .filter(|revocation| self.apply(revocation))
            .collect()
    }

    /// The second through which `subject`'s tokens are revoked, if any.
    pub fn cutoff(&self, subject: &str) -> Option<i64> {
        read(&self.cutoff_by_subject).get(subject).copied()
    }

    /// Whether the account `subject` is disabled.
    pub fn is_disabled(&self, subject: &str) -> bool {
        read(&self.disabled_subjects).contains(subject)
    }

    /// The ids of the accounts disabled now.
    pub fn disabled(&self) -> Vec<String> {
        read(&self.disabled_subjects).iter().cloned().collect()
    }

    /// Why the token with these claims is refused, if it is: its account
    /// disabled, or revoked by id, by a cutoff or by the end of its session.
    pub fn rejection(&self, claims: &Claims) -> Option<TokenRejection> {
        if read(&self.disabled_subjects).contains(&claims.sub) {
            return Some(TokenRejection::AccountDisabled);
        }
        let revoked = read(&self.expiry_by_jti).contains_key(&token_id_key(&claims.jti))
            || claims
                .session_id()
                .is_some_and(|sid| read(&self.until_by_session).contains_key(&sid))
            || self
                .cutoff(&claims.sub)
                .is_some_and(|cutoff| claims.iat <= cutoff);
        revoked.then_some(TokenRejection::Revoked)
    }

    /// Forgets tokens that expired before `before` and sessions none of
    /// whose tokens can be valid after it, which no check would accept
    /// anyway; returns how many entries were forgotten.
    pub fn prune_expired_before(&self, before: i64) -> usize {
        let mut sessions = write(&self.until_by_session);
        let mut tokens = write(&self.expiry_by_jti);
        let size = sessions.len() + tokens.len();
        sessions.retain(|_, until| *until >= before);
        tokens.retain(|_, expires_at| *expires_at >= before);
        size - sessions.len() - tokens.len()
    }

    /// How many revoked tokens are remembered.
    pub fn len(&self) -> usize {
        read(&self.expiry_by_jti).len()
    }

    /// Whether no revoked token is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything the list holds, as revocations that rebuild it.
    pub fn snapshot(&self) -> Vec<Revocation> {
        let tokens = read(&self.expiry_by_jti);
        let cutoffs = read(&self.cutoff_by_subject);
        let sessions = read(&self.until_by_session);
        let accounts = read(&self.disabled_subjects);
        let mut snapshot =
            Vec::with_capacity(tokens.len() + cutoffs.len() + sessions.len() + accounts.len());
        snapshot.extend(tokens.iter().map(|(key, expires_at)| Revocation::Token {
            // A key reads back as itself: `token_id_key` of these 22
            // characters is `key` again.
            jti: URL_SAFE_NO_PAD.encode(key),
            expires_at: *expires_at,
        }));
        snapshot.extend(
            cutoffs
                .iter()
                .map(|(user_id, revoked_through)| Revocation::Cutoff {
                    user_id: user_id.clone(),
                    revoked_through: *revoked_through,
                }),
        );
        snapshot.extend(
            sessions
                .iter()
                .map(|(session_id, until)| Revocation::Session {
                    session_id: *session_id,
                    until: *until,
                }),
        );
        snapshot.extend(accounts.iter().map(|user_id| Revocation::Account {
            user_id: user_id.clone(),
            disabled: true,
        }));
        snapshot
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(jti: &str, expires_at: i64) -> Revocation {
        Revocation::Token {
            jti: jti.into(),
            expires_at,
        }
    }

    #[test]
    fn pruning_keeps_what_can_still_be_presented() {
        let list = RevocationList::default();
        list.apply_all([token("old", 100), token("edge", 200), token("new", 300)]);
        let session = Uuid::from_u128(1);
        list.apply(&Revocation::Session {
            session_id: session,
            until: 150,
        });
        assert_eq!(list.prune_expired_before(200), 2);
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn token_ids_of_any_form_are_told_apart() {
        let ids = [
            "AAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAB",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
        ];
        let keys: HashSet<_> = ids.iter().map(|id| token_id_key(id)).collect();
        assert_eq!(keys.len(), ids.len());
    }

    #[test]
    fn a_snapshot_rebuilds_the_same_list() {
        let list = RevocationList::default();
        let changed = list.apply_all([
            token("AbCdEfGhIjKlMnOpQrStUw", 500),
            token("not-from-authd", 500),
            Revocation::Cutoff {
                user_id: "u1".into(),
                revoked_through: 10,
            },
            Revocation::Cutoff {
                user_id: "u1".into(),
                revoked_through: 5,
            },
            Revocation::Session {
                session_id: Uuid::from_u128(7),
                until: 900,
            },
            Revocation::Account {
                user_id: "u2".into(),
                disabled: true,
            },
        ]);
        assert_eq!(changed.len(), 5, "the earlier cutoff changes nothing");

        let copy = RevocationList::default();
        copy.apply_all(list.snapshot());

        let mut original = list.snapshot();
        let mut rebuilt = copy.snapshot();
        original.sort_by_key(|revocation| format!("{revocation:?}"));
        rebuilt.sort_by_key(|revocation| format!("{revocation:?}"));
        assert_eq!(original, rebuilt);
        let claims = Claims {
            iss: String::new(),
            sub: "u3".into(),
            aud: String::new(),
            exp: 0,
            nbf: 0,
            iat: 0,
            jti: "not-from-authd".into(),
            username: String::new(),
            sid: None,
            client_id: None,
            auth_time: None,
            amr: Vec::new(),
            acr: None,
        };
        assert_eq!(copy.rejection(&claims), Some(TokenRejection::Revoked));
    }
}
