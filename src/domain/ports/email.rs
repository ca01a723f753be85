//! The email addresses port: an account's one address, whether it is
//! verified, and the single-use tokens mailed to it. Every change that
//! mails someone takes the mail with it, and stores both in one
//! transaction (the outbox pattern, see `outbox.rs`): a change is never
//! stored without its mail, nor a mail queued for a change that failed.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::outbox::OutboxEntry;
use super::users::UserRecord;
use crate::domain::AuthError;

/// What a mailed token is for: a token of one purpose is never accepted
/// for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailPurpose {
    /// Proves the account's holder receives mail at the address.
    VerifyEmail,
    /// Lets the account's holder choose a new password.
    ResetPassword,
}

impl MailPurpose {
    /// How the purpose is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify",
            Self::ResetPassword => "reset",
        }
    }
}

/// An account's address as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    pub user_id: Uuid,
    /// As the user gave it: what mail is sent to.
    pub address: String,
    /// What addresses are compared by (`EmailAddress::normalized`).
    pub address_normalized: String,
    pub created_at: DateTime<Utc>,
    /// `None` until a token mailed to the address came back.
    pub verified_at: Option<DateTime<Utc>>,
}

/// A mailed token as stored: only the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTokenRecord {
    /// SHA-256 of the token's secret, base64url.
    pub token_hash: String,
    pub user_id: Uuid,
    pub purpose: MailPurpose,
    /// The normalised address it was mailed to.
    pub address_normalized: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Where addresses and mailed tokens are kept.
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait EmailStore: Send + Sync + 'static {
    /// A user's address, verified or not.
    fn email_of(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Option<EmailRecord>, AuthError>> + Send;

    /// Stores a new account with its unverified address and, when mail is
    /// on, the address's verification token and the mail that carries it,
    /// in one transaction.
    ///
    /// # Errors
    /// MUST return `AuthError::UsernameTaken` as `UserStore::insert_user`
    /// does, and then store none of them.
    fn insert_user_with_email(
        &self,
        user: UserRecord,
        email: &EmailRecord,
        verification: Option<(&MailTokenRecord, &[OutboxEntry])>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Sets or replaces a user's address (unverified), replaces the user's
    /// verification token with `token` (voiding the previous one) and
    /// queues `entries`, in one transaction.
    fn replace_email(
        &self,
        email: &EmailRecord,
        token: &MailTokenRecord,
        entries: &[OutboxEntry],
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Replaces the user's token of `token.purpose` with `token` (voiding
    /// the previous one) and queues `entries`, in one transaction.
    fn replace_mail_token(
        &self,
        token: &MailTokenRecord,
        entries: &[OutboxEntry],
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Spends an email verification token unexpired at `now` and marks the
    /// address it was mailed to verified, in one transaction. Returns the
    /// verified address, or `None` (and changes nothing) when the token is
    /// unknown, expired, spent (of racing calls, exactly one wins) or the
    /// account's address is no longer the one it was mailed to.
    ///
    /// # Errors
    /// MUST return `AuthError::EmailTaken` when another account has
    /// verified the same normalised address, decided by the database's
    /// unique index, and then change nothing (the token stays unspent).
    fn verify_email(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<EmailRecord>, AuthError>> + Send;

    /// The address some account has verified whose normalised form is
    /// `address_normalized`, if any (at most one: verified addresses are
    /// unique). Unverified addresses are never found here.
    fn verified_email(
        &self,
        address_normalized: &str,
    ) -> impl Future<Output = Result<Option<EmailRecord>, AuthError>> + Send;

    /// A token of `purpose` unexpired at `now`, without spending it.
    fn find_mail_token(
        &self,
        token_hash: &str,
        purpose: MailPurpose,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<MailTokenRecord>, AuthError>> + Send;

    /// Spends a password reset token of `user_id` unexpired at `now`,
    /// replaces the account's password hash (giving one to an account
    /// without) and queues `notices`, in one transaction. Returns whether
    /// this call spent the token (of racing calls, exactly one); when it
    /// did not, nothing changes.
    fn reset_password(
        &self,
        token_hash: &str,
        user_id: Uuid,
        password_hash: &str,
        notices: &[OutboxEntry],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Forgets mailed tokens that expired before `now`; returns how many.
    fn delete_mail_tokens_expired_before(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;
}
