//! The sessions port: sessions and the refresh tokens that renew them.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::AuthError;
use crate::domain::authentication::Authentication;
use crate::domain::ports::OutboxEntry;
use crate::domain::ports::passkeys::{CeremonyKind, PasskeyUse};

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
    /// How and when its user last proved who they are.
    pub authentication: Authentication,
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

/// A single-use thing a sign-in spends in the transaction that starts its
/// session, so that the session exists if and only if it was spent (and a
/// sign-in commits once).
#[derive(Debug, Clone, Copy)]
pub enum Spend<'a> {
    /// A passkey ceremony, deleted: of racing finishes, one.
    PasskeyCeremony { id: Uuid, kind: CeremonyKind },
    /// A passkey's use, recorded if its counter is still the one it was
    /// checked against.
    PasskeyUse(&'a PasskeyUse),
    /// A Login's second-factor ticket (its hash), deleted: of racing
    /// completions, one.
    MfaTicket(&'a str),
    /// A TOTP time step, recorded as the account's last if it is later
    /// than the last: a code is accepted once.
    TotpStep { user_id: Uuid, step: i64 },
    /// A recovery code, marked used at `at` if it was unused.
    RecoveryCode { id: Uuid, at: DateTime<Utc> },
}

/// Where sessions and their refresh tokens are kept.
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session with its first refresh token, together.
    fn insert_session(
        &self,
        session: &SessionRecord,
        refresh_token: &RefreshTokenRecord,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// As [`insert_session`](Self::insert_session), in one transaction with
    /// `spent`: `None` when every spend took and the session is stored,
    /// else the index of the first that did not (spent already, or raced),
    /// and nothing is written. `notices` are queued with the session.
    fn insert_session_spending(
        &self,
        session: &SessionRecord,
        refresh_token: &RefreshTokenRecord,
        spent: &[Spend<'_>],
        notices: &[OutboxEntry],
    ) -> impl Future<Output = Result<Option<usize>, AuthError>> + Send;

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

    /// Records a new authentication on a live session of `user_id`;
    /// returns whether there was one.
    fn update_session_authentication(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        authentication: &Authentication,
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
}
