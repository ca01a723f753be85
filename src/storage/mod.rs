//! Storage: the port the domain talks to (`Store`) and its one adapter on
//! sea-orm (`Database`), which serves SQLite and PostgreSQL alike. Nothing
//! outside this module imports sea-orm.

mod database;
mod entities;

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use database::{Database, DatabaseSettings};

use crate::domain::AuthError;

/// An account as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub username_canonical: String,
    /// PHC string (`$argon2id$...`).
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A logged-out token, remembered until it would have expired anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub jti: String,
    pub user_id: Uuid,
    /// The token's `exp`, Unix seconds.
    pub expires_at: i64,
}

/// A revocation as announced between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationEvent {
    /// One token logged out.
    Token(Revocation),
    /// Every token of a user issued at or before `revoked_through`.
    AllOf { user_id: Uuid, revoked_through: i64 },
}

impl RevocationEvent {
    /// A compact text form for a notification payload.
    pub fn encode(&self) -> String {
        match self {
            Self::Token(revocation) => format!(
                "token {} {} {}",
                revocation.jti, revocation.user_id, revocation.expires_at
            ),
            Self::AllOf {
                user_id,
                revoked_through,
            } => format!("all {user_id} {revoked_through}"),
        }
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(payload: &str) -> Option<Self> {
        let fields: Vec<&str> = payload.split(' ').collect();
        match fields.as_slice() {
            ["token", jti, user_id, expires_at] => Some(Self::Token(Revocation {
                jti: (*jti).to_owned(),
                user_id: user_id.parse().ok()?,
                expires_at: expires_at.parse().ok()?,
            })),
            ["all", user_id, revoked_through] => Some(Self::AllOf {
                user_id: user_id.parse().ok()?,
                revoked_through: revoked_through.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// A token signing key pair.
#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// JWS algorithm name; the only one the key may verify.
    pub algorithm: String,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// Raw public key bytes.
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// Signing starts at this time; verification at once.
    pub activates_at: DateTime<Utc>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// What the domain needs from a database. Every method fails with
/// `AuthError::Unavailable` when the database cannot be reached and with
/// `AuthError::Internal` on anything unexpected.
pub trait Store: Send + Sync + 'static {
    /// Stores a new account.
    ///
    /// # Errors
    /// MUST return `AuthError::UsernameTaken` when an account with the same
    /// canonical username exists, decided by the database's unique index
    /// (never by a check-then-insert, which races).
    fn insert_user(&self, user: UserRecord) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Finds an account by canonical username.
    fn find_user(
        &self,
        username_canonical: &str,
    ) -> impl Future<Output = Result<Option<UserRecord>, AuthError>> + Send;

    /// Records a revocation durably. Revoking a token twice is not an error.
    fn insert_revocation(
        &self,
        revocation: &Revocation,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Revocations recorded at or after `since`, by any instance.
    fn revocations_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Revocation>, AuthError>> + Send;

    /// Revocations whose token is still valid at `now` (Unix seconds), a page
    /// at a time: up to `limit` in `jti` order, after the `jti` given.
    fn revocations_in_force(
        &self,
        now: i64,
        after: Option<&str>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<Revocation>, AuthError>> + Send;

    /// Forgets revocations of tokens that expired before `before`; returns how
    /// many.
    fn delete_revocations_expired_before(
        &self,
        before: i64,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// Every signing key, the latest to activate first.
    fn signing_keys(&self)
    -> impl Future<Output = Result<Vec<SigningKeyRecord>, AuthError>> + Send;

    /// Deletes signing keys; returns how many existed.
    fn delete_signing_keys(
        &self,
        kids: &[String],
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// Replaces a user's password hash (after a parameter upgrade).
    fn update_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Refuses a user's tokens issued at or before `revoked_through` (Unix
    /// seconds); a later cutoff replaces an earlier one, never the reverse.
    fn insert_session_cutoff(
        &self,
        user_id: Uuid,
        revoked_through: i64,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Every user's session cutoff.
    fn session_cutoffs(&self) -> impl Future<Output = Result<Vec<(Uuid, i64)>, AuthError>> + Send;

    /// Stores a new signing key.
    fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// The GCRA theoretical arrival time (Unix ms) of a rate-limit key.
    fn rate_limit_tat(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<i64>, AuthError>> + Send;

    /// Moves a key's theoretical arrival time to `max(tat, now) + interval`,
    /// atomically, so that instances sharing the database share the budget.
    fn advance_rate_limit_tat(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Forgets keys whose budget is full again (`tat` before `now_ms`).
    fn delete_rate_limits_before(
        &self,
        now_ms: i64,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// Delivers revocations other instances announce, as they happen, until
    /// the connection fails (an error). Returns `Ok` at once where the
    /// database cannot announce (SQLite: one instance only).
    fn listen_for_revocations(
        &self,
        on_event: impl FnMut(RevocationEvent) + Send,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Connections of the pool: `(in use, idle)`.
    fn connection_counts(&self) -> (usize, usize);

    /// Whether the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), AuthError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_notices_read_back_as_written() {
        let events = [
            RevocationEvent::Token(Revocation {
                jti: "AbC-_123".into(),
                user_id: Uuid::now_v7(),
                expires_at: 1_800_000_000,
            }),
            RevocationEvent::AllOf {
                user_id: Uuid::now_v7(),
                revoked_through: 1_700_000_000,
            },
        ];
        for event in events {
            assert_eq!(RevocationEvent::decode(&event.encode()), Some(event));
        }
        assert_eq!(RevocationEvent::decode("token only-two"), None);
    }
}
