//! The accounts port: what the domain reads and writes of accounts.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::email::EmailRecord;
use super::factors::TotpRecord;
use crate::domain::AuthError;
use crate::domain::ports::OutboxEntry;

/// An account as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub username_canonical: String,
    /// PHC string (`$argon2id$...`); `None` for an account that signs in
    /// with passkeys only.
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Set by an operator (`authd users disable`): the account cannot log
    /// in, refresh or use any token.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// An account with what signing in to it reads besides, in one query
/// rather than one each: every statement is a round trip to the database,
/// and a sign-in without argon2 is made of little else.
#[derive(Debug, Clone)]
pub struct AccountFacts {
    pub user: UserRecord,
    pub email: Option<EmailRecord>,
    /// Confirmed or pending.
    pub totp: Option<TotpRecord>,
    pub has_passkey: bool,
    pub recovery_codes_left: u32,
    /// The GCRA theoretical arrival time (Unix ms) of the account's budget
    /// of failed logins (keyed by its canonical name), if one is on record.
    pub login_failures_tat: Option<i64>,
    /// The same for its budget of wrong second-factor codes.
    pub second_factor_failures_tat: Option<i64>,
}

/// Where accounts are kept.
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait UserStore: Send + Sync + 'static {
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

    /// An account by id with what signing in to it reads besides (see
    /// [`AccountFacts`]), in one query; the budgets are those keyed as
    /// `crate::domain::rate_limits` spells their keys.
    fn account_facts(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Option<AccountFacts>, AuthError>> + Send;

    /// Accounts in canonical-name order, after `after`, whose canonical
    /// name contains `containing`: a page of at most `limit`.
    fn list_users(
        &self,
        containing: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<UserRecord>, AuthError>> + Send;

    /// Deletes an account, queueing `notices` with it; returns whether it
    /// existed. Its sessions stay,
    /// ended, until their last access token has expired.
    fn delete_user(
        &self,
        user_id: Uuid,
        notices: &[OutboxEntry],
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Disables (`Some`) or enables (`None`) an account and announces it.
    fn set_user_disabled(
        &self,
        user_id: Uuid,
        disabled_at: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// The ids of every disabled account.
    fn disabled_users(&self) -> impl Future<Output = Result<Vec<Uuid>, AuthError>> + Send;

    /// Replaces a user's password hash (a change, or a parameter upgrade),
    /// queueing `notices` with it.
    fn update_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
        notices: &[OutboxEntry],
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Gives an account without a password this one; returns false (and
    /// changes nothing) when it has one, decided by one conditional UPDATE
    /// so that of racing calls one sets it.
    fn set_first_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;
}
