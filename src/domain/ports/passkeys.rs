//! The passkeys port: an account's WebAuthn credentials, its user handle,
//! and the ceremonies in flight. Ceremonies live in the database so that
//! any instance finishes what another started; each is spent by one DELETE
//! whose row count says which of racing calls won.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::AuthError;
use crate::domain::ports::OutboxEntry;
use crate::domain::ports::UserRecord;

/// A registered passkey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The credential id, base64url: public, unique across accounts.
    pub credential_id: String,
    /// webauthn-rs' `Passkey`, serialised (public key, flags, counter).
    pub credential: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub backed_up: bool,
    /// The authenticator's signature counter at the last use; 0 for one
    /// that does not count.
    pub sign_count: i64,
}

/// What a ceremony is for: a state is finished by its own kind of call only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Registration,
    Login,
    /// A passkey as a second factor or a step-up's proof, bound to a
    /// Login's ticket or a session.
    SecondFactor,
    /// The first passkey of an account that does not exist yet.
    Signup,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Login => "login",
            Self::SecondFactor => "second_factor",
            Self::Signup => "signup",
        }
    }
}

/// A ceremony in flight as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    pub id: Uuid,
    pub kind: CeremonyKind,
    /// `None` for a discoverable login, where the passkey names the user.
    pub user_id: Option<Uuid>,
    /// webauthn-rs' ceremony state, serialised (holds the challenge).
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

/// What removing a passkey did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRemoval {
    Removed,
    /// The account has no passkey with that id.
    NotFound,
    /// Nothing removed: it is the passkey of an account without a password
    /// that has no other.
    LastSignInMethod,
}

/// A passkey's use, to record when its signature checked out.
#[derive(Debug, Clone)]
pub struct PasskeyUse {
    pub id: Uuid,
    /// The counter the use was checked against: the record is updated only
    /// if it still holds it, so that of racing uses of one counter value
    /// exactly one is recorded.
    pub previous_sign_count: i64,
    pub sign_count: i64,
    /// The credential with its counter and backup flags updated.
    pub credential: String,
    pub backed_up: bool,
    pub at: DateTime<Utc>,
}

/// Where passkeys are kept.
///
/// # Errors
///
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait PasskeyStore: Send + Sync + 'static {
    /// The account's WebAuthn user handle, made from `candidate` if it has
    /// none yet (racing calls agree on one).
    fn passkey_user_handle(
        &self,
        user_id: Uuid,
        candidate: Uuid,
    ) -> impl Future<Output = Result<Uuid, AuthError>> + Send;

    /// The account a user handle belongs to.
    fn user_of_passkey_handle(
        &self,
        handle: Uuid,
    ) -> impl Future<Output = Result<Option<Uuid>, AuthError>> + Send;

    /// Stores a new passkey; returns false (and stores nothing) when its
    /// credential id is registered already, to any account, decided by the
    /// database's unique index. `notices` are queued with it when it is
    /// stored.
    fn insert_passkey(
        &self,
        record: &PasskeyRecord,
        notices: &[OutboxEntry],
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// An account's passkeys, oldest first.
    fn passkeys_of(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<PasskeyRecord>, AuthError>> + Send;

    /// The passkey with this credential id, whichever account has it.
    fn passkey_by_credential_id(
        &self,
        credential_id: &str,
    ) -> impl Future<Output = Result<Option<PasskeyRecord>, AuthError>> + Send;

    /// Renames one of the account's passkeys; returns whether it has it.
    fn rename_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        name: &str,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Removes one of the account's passkeys, unless the account has no
    /// password and no other passkey. Decided under a lock on the account,
    /// so that racing removals of its last two passkeys leave one.
    /// `notices` are queued with the removal when it is made.
    fn delete_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        notices: &[OutboxEntry],
    ) -> impl Future<Output = Result<PasskeyRemoval, AuthError>> + Send;

    /// Creates an account whose only credential is `passkey`, with its
    /// user handle, all or nothing.
    ///
    /// # Errors
    ///
    /// MUST return `AuthError::UsernameTaken` when an account with the same
    /// canonical username exists and `AuthError::PasskeyAlreadyRegistered`
    /// when the credential id is registered already, each decided by the
    /// database's unique index; nothing is stored then.
    fn insert_passkey_account(
        &self,
        user: UserRecord,
        user_handle: Uuid,
        passkey: &PasskeyRecord,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Removes every passkey of an account and its ceremonies in flight
    /// (an operator's reset); returns how many passkeys there were.
    fn delete_passkeys_of(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// Records a use if the passkey's counter is still the one it was
    /// checked against; returns whether it did.
    fn record_passkey_use(
        &self,
        used: &PasskeyUse,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Stores a new ceremony, replacing one with the same id (a session's
    /// step-up challenge started again).
    fn insert_passkey_ceremony(
        &self,
        ceremony: &CeremonyRecord,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// A sign-in's ceremony of `kind` unexpired at `now`, left in place (a
    /// sign-in spends it with its session:
    /// `SessionStore::insert_session_spending`), with the passkey whose
    /// credential id is `credential_id` if any account has one: a sign-in
    /// reads both in one query.
    fn find_sign_in_ceremony(
        &self,
        id: Uuid,
        kind: CeremonyKind,
        now: DateTime<Utc>,
        credential_id: &str,
    ) -> impl Future<Output = Result<Option<(CeremonyRecord, Option<PasskeyRecord>)>, AuthError>> + Send;

    /// Spends a ceremony of `kind` unexpired at `now`: deletes it and
    /// returns it, or `None` when there is none to spend (unknown, expired,
    /// of the other kind, or spent by this or a racing call).
    fn take_passkey_ceremony(
        &self,
        id: Uuid,
        kind: CeremonyKind,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<CeremonyRecord>, AuthError>> + Send;

    /// Forgets ceremonies that expired before `now`; returns how many.
    fn delete_passkey_ceremonies_expired_before(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;
}
