//! The revocations port: logged-out tokens, "log out everywhere" cutoffs,
//! and the announcements instances make of them to each other.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::AuthError;

/// A logged-out token, remembered until it would have expired anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    pub jti: String,
    pub user_id: Uuid,
    /// The token's `exp`, Unix seconds.
    pub expires_at: i64,
}

/// A revocation as announced between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationEvent {
    /// One token logged out.
    Token(RevokedToken),
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

/// Where revocations are kept, and how instances hear of each other's.
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait RevocationStore: Send + Sync + 'static {
    /// Records a revocation durably. Revoking a token twice is not an error.
    fn insert_revocation(
        &self,
        revocation: &RevokedToken,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Revocations recorded at or after `since`, by any instance.
    fn revocations_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<RevokedToken>, AuthError>> + Send;

    /// Revocations whose token is still valid at `now` (Unix seconds), a page
    /// at a time: up to `limit` in `jti` order, after the `jti` given.
    fn revocations_in_force(
        &self,
        now: i64,
        after: Option<&str>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<RevokedToken>, AuthError>> + Send;

    /// Forgets revocations of tokens that expired before `before`; returns how
    /// many.
    fn delete_revocations_expired_before(
        &self,
        before: i64,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// Refuses a user's tokens issued at or before `revoked_through` (Unix
    /// seconds); a later cutoff replaces an earlier one, never the reverse.
    fn insert_session_cutoff(
        &self,
        user_id: Uuid,
        revoked_through: i64,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Every user's session cutoff.
    fn session_cutoffs(&self) -> impl Future<Output = Result<Vec<(Uuid, i64)>, AuthError>> + Send;

    /// Delivers revocations other instances announce, as they happen, until
    /// the connection fails (an error). Returns `Ok` at once where the
    /// database cannot announce (SQLite: one instance only).
    fn listen_for_revocations(
        &self,
        on_event: impl FnMut(RevocationEvent) + Send,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;
}
