//! The port the domain needs from a database: the records it reads and
//! writes, and the `Store` trait `crate::storage` implements (on sea-orm,
//! for SQLite and PostgreSQL). The domain owns it, so the dependency runs
//! one way: storage depends on the domain, never the reverse.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::AuthError;

/// An account as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub username_canonical: String,
    /// PHC string (`$argon2id$...`).
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// Set by an operator (`authd users disable`): the account cannot log
    /// in, refresh or use any token.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A session: what one Register or Login started, renewed by refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The session's start or its latest refresh.
    pub last_used_at: DateTime<Utc>,
    /// The absolute end of the session.
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The generation of the newest refresh token issued.
    pub refresh_generation: i64,
    /// As seen when the session started.
    pub client_address: String,
    /// As seen when the session started.
    pub user_agent: String,
}

/// A refresh token as stored: only the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token's secret, base64url.
    pub token_hash: String,
    pub session_id: Uuid,
    /// 0 for the token the session started with, then one more per refresh.
    pub generation: i64,
    pub issued_at: DateTime<Utc>,
    /// When it was exchanged for its successor.
    pub retired_at: Option<DateTime<Utc>>,
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
    /// Every token of a session that ended at `ended_at` (Unix seconds).
    Session {
        session_id: Uuid,
        user_id: Uuid,
        ended_at: i64,
    },
    /// An operator disabled (`true`) or enabled the account.
    AccountDisabled { user_id: Uuid, disabled: bool },
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
            Self::Session {
                session_id,
                user_id,
                ended_at,
            } => format!("session {session_id} {user_id} {ended_at}"),
            Self::AccountDisabled { user_id, disabled } => {
                format!(
                    "account {user_id} {}",
                    if *disabled { "disabled" } else { "enabled" }
                )
            }
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
            ["session", session_id, user_id, ended_at] => Some(Self::Session {
                session_id: session_id.parse().ok()?,
                user_id: user_id.parse().ok()?,
                ended_at: ended_at.parse().ok()?,
            }),
            ["account", user_id, state] => Some(Self::AccountDisabled {
                user_id: user_id.parse().ok()?,
                disabled: match *state {
                    "disabled" => true,
                    "enabled" => false,
                    _ => return None,
                },
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

    /// Finds an account by id.
    fn find_user_by_id(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Option<UserRecord>, AuthError>> + Send;

    /// Accounts in canonical-name order, after `after`, whose canonical
    /// name contains `containing`: a page of at most `limit`.
    fn list_users(
        &self,
        containing: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<UserRecord>, AuthError>> + Send;

    /// Deletes an account; returns whether it existed. Its sessions stay,
    /// ended, until their last access token has expired.
    fn delete_user(&self, user_id: Uuid) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Disables (`Some`) or enables (`None`) an account and announces it.
    fn set_user_disabled(
        &self,
        user_id: Uuid,
        disabled_at: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// The ids of every disabled account.
    fn disabled_users(&self) -> impl Future<Output = Result<Vec<Uuid>, AuthError>> + Send;

    /// Stores a new session with its first refresh token, together.
    fn insert_session(
        &self,
        session: &SessionRecord,
        refresh_token: &RefreshTokenRecord,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// A session by id.
    fn find_session(
        &self,
        session_id: Uuid,
    ) -> impl Future<Output = Result<Option<SessionRecord>, AuthError>> + Send;

    /// A refresh token by the hash of its secret, with its session.
    fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<(RefreshTokenRecord, SessionRecord)>, AuthError>> + Send;

    /// Marks a refresh token retired at `at` unless it is already;
    /// returns whether this call retired it (of racing calls, exactly one).
    fn retire_refresh_token(
        &self,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Adds a refresh token to its session and marks the session used at
    /// its `issued_at`, atomically, provided the session has not ended and
    /// has issued no token of a later generation. Returns whether it did.
    fn extend_session(
        &self,
        refresh_token: &RefreshTokenRecord,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Ends a live session of `user_id` and announces it; returns whether
    /// one was ended (false: unknown, another user's, or ended already).
    fn end_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        reason: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Ends every live session of a user; returns how many. Not announced:
    /// a session cutoff for the user covers their tokens.
    fn end_sessions_of(
        &self,
        user_id: Uuid,
        reason: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// A user's sessions that have not ended and are before their absolute
    /// end at `now`, newest first.
    fn live_sessions_of(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<SessionRecord>, AuthError>> + Send;

    /// Sessions that ended at or after `since`: `(session id, ended at)`.
    fn sessions_ended_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(Uuid, i64)>, AuthError>> + Send;

    /// Forgets sessions (with their refresh tokens) that ended, or whose
    /// absolute end came, before `ended_before`, or last used before
    /// `used_before`; returns how many.
    fn delete_sessions_finished_before(
        &self,
        ended_before: DateTime<Utc>,
        used_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

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
            RevocationEvent::Session {
                session_id: Uuid::now_v7(),
                user_id: Uuid::now_v7(),
                ended_at: 1_700_000_001,
            },
            RevocationEvent::AccountDisabled {
                user_id: Uuid::now_v7(),
                disabled: true,
            },
            RevocationEvent::AccountDisabled {
                user_id: Uuid::now_v7(),
                disabled: false,
            },
        ];
        for event in events {
            assert_eq!(RevocationEvent::decode(&event.encode()), Some(event));
        }
        assert_eq!(RevocationEvent::decode("token only-two"), None);
    }
}
