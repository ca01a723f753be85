//! The second factors port: an account's TOTP authenticator, its recovery
//! codes, and the tickets that carry a Login from the password to the
//! second factor. Every "spend" here is one conditional write, so that of
//! racing calls (on one instance or several) exactly one wins.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::AuthError;
use crate::domain::ports::OutboxEntry;

/// An account's TOTP authenticator, pending until confirmed.
#[derive(Clone)]
pub struct TotpRecord {
    pub user_id: Uuid,
    /// The secret, sealed (never stored in clear).
    pub sealed_secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// `None` while the enrollment waits for its first code.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The latest time step a code was accepted for: that step and every
    /// earlier one are refused from then on.
    pub last_used_step: Option<i64>,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_used_step", &self.last_used_step)
            .finish_non_exhaustive()
    }
}

/// One recovery code as stored: only its argon2id hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCodeRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    /// PHC string.
    pub code_hash: String,
    pub created_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// A second-factor ticket as stored: only the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaTicketRecord {
    /// SHA-256 of the ticket's secret, base64url.
    pub ticket_hash: String,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Codes tried with it so far.
    pub attempts: i32,
}

/// Where second factors are kept.
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait FactorStore: Send + Sync + 'static {
    /// A user's TOTP authenticator, pending or confirmed.
    fn totp_of(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Option<TotpRecord>, AuthError>> + Send;

    /// Stores a pending TOTP authenticator, replacing a pending one; returns
    /// false (and changes nothing) if the user has a confirmed one.
    fn put_pending_totp(
        &self,
        record: &TotpRecord,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Confirms the user's pending authenticator with the sealed secret it
    /// was read with, spends `step`, and replaces the user's recovery codes
    /// with `codes`, in one transaction. Returns false (and changes
    /// nothing) if that pending authenticator is no longer there (replaced,
    /// or confirmed by a racing call).
    fn confirm_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        step: i64,
        codes: &[RecoveryCodeRecord],
        at: DateTime<Utc>,
        notices: &[OutboxEntry],
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Every TOTP secret as stored: `(user id, sealed secret)`.
    fn sealed_totp_secrets(
        &self,
    ) -> impl Future<Output = Result<Vec<(Uuid, Vec<u8>)>, AuthError>> + Send;

    /// Replaces a user's sealed TOTP secret while it still is `expected`
    /// (a reseal under a new secrets key); returns whether it did.
    fn replace_sealed_totp_secret(
        &self,
        user_id: Uuid,
        expected: &[u8],
        replacement: &[u8],
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Records `step` as used if the user's confirmed authenticator has used
    /// no step as late; returns whether it did (false: a replay, or a racing
    /// call spent it first).
    fn spend_totp_step(
        &self,
        user_id: Uuid,
        step: i64,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Replaces a user's recovery codes with `codes`, together, with
    /// `notices`.
    fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[RecoveryCodeRecord],
        notices: &[OutboxEntry],
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Forgets every second factor of a user (TOTP, pending or confirmed,
    /// recovery codes, tickets); returns whether a confirmed TOTP was among
    /// them; with `notices`, in one transaction.
    fn delete_second_factors(
        &self,
        user_id: Uuid,
        notices: &[OutboxEntry],
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// A user's recovery codes not yet used.
    fn unused_recovery_codes(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<RecoveryCodeRecord>, AuthError>> + Send;

    /// Marks a recovery code used unless it is already; returns whether
    /// this call did (of racing calls, exactly one); `notices` are queued
    /// with it when it did.
    fn spend_recovery_code(
        &self,
        code_id: Uuid,
        at: DateTime<Utc>,
        notices: &[OutboxEntry],
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Stores a new ticket.
    fn insert_mfa_ticket(
        &self,
        ticket: &MfaTicketRecord,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Counts one attempt on a ticket that is unexpired at `now` and has
    /// had fewer than `max_attempts`; returns the ticket as it was, or
    /// `None` when no attempt is left for it (unknown, expired, used, or
    /// out of attempts).
    fn attempt_mfa_ticket(
        &self,
        ticket_hash: &str,
        now: DateTime<Utc>,
        max_attempts: i32,
    ) -> impl Future<Output = Result<Option<MfaTicketRecord>, AuthError>> + Send;

    /// Forgets tickets that expired before `now`; returns how many.
    fn delete_mfa_tickets_expired_before(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;
}
