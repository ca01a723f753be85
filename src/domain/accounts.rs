//! What operators do to accounts (`authd users ...`), on the database
//! directly: running instances hear of it from the announcements
//! (PostgreSQL) or their next revocation catch-up.

use chrono::Utc;

use super::credentials::Username;
use super::error::AuthError;
use super::passkeys::PasskeySummary;
use super::ports::{SessionRecord, Store, UserRecord};
use super::sessions::end_every_session_durably;

/// An account with its live sessions and passkeys, for `authd users
/// show`.
#[derive(Debug, Clone)]
pub struct AccountDetails {
    pub account: UserRecord,
    /// Not ended and before their absolute end; newest first.
    pub sessions: Vec<SessionRecord>,
    /// Oldest first; what the owner sees of them, no public key.
    pub passkeys: Vec<PasskeySummary>,
}

/// What disabling or enabling an account did.
#[derive(Debug, Clone)]
pub struct StateChange {
    /// The account as the command found it.
    pub account: UserRecord,
    /// False when the account was in that state already: nothing changed
    /// (its "disabled since" stays).
    pub changed: bool,
}

/// Operators' commands on accounts.
pub struct AccountAdmin<S> {
    store: S,
}

impl<S: Store> AccountAdmin<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Accounts whose name contains `containing` (compared as names are:
    /// case-insensitively), in name order, `limit` after the name `after`.
    pub async fn list(
        &self,
        containing: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<UserRecord>, AuthError> {
        let containing = containing.map(str::to_lowercase);
        let after = after.map(str::to_lowercase);
        self.store
            .list_users(containing.as_deref(), after.as_deref(), limit)
            .await
    }

    /// The account named `name`, if any, with its live sessions.
    pub async fn show(&self, name: &str) -> Result<Option<AccountDetails>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        let sessions = self.store.live_sessions_of(account.id, Utc::now()).await?;
        let passkeys = self
            .store
            .passkeys_of(account.id)
            .await?
            .into_iter()
            .map(PasskeySummary::from)
            .collect();
        Ok(Some(AccountDetails {
            account,
            sessions,
            passkeys,
        }))
    }

    /// Disables an account: its sessions end, its tokens are refused with
    /// `ACCOUNT_DISABLED`, and Login and Refresh too once the password is
    /// right. An account disabled already keeps its "disabled since"; only
    /// sessions left live (by a disable that failed half-way) are ended.
    /// Returns what it did, if the account exists.
    pub async fn disable(&self, name: &str) -> Result<Option<StateChange>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        let changed = account.disabled_at.is_none();
        if changed {
            self.store
                .set_user_disabled(account.id, Some(Utc::now()))
                .await?;
        }
        if changed
            || !self
                .store
                .live_sessions_of(account.id, Utc::now())
                .await?
                .is_empty()
        {
            end_every_session_durably(&self.store, account.id, 0, "account_disabled").await?;
        }
        Ok(Some(StateChange { account, changed }))
    }

    /// Enables a disabled account again; its ended sessions stay ended. An
    /// enabled account is left as it is. Returns what it did, if the
    /// account exists.
    pub async fn enable(&self, name: &str) -> Result<Option<StateChange>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        let changed = account.disabled_at.is_some();
        if changed {
            self.store.set_user_disabled(account.id, None).await?;
        }
        Ok(Some(StateChange { account, changed }))
    }

    /// Ends every session of an account.
    pub async fn logout(&self, name: &str) -> Result<Option<UserRecord>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        end_every_session_durably(&self.store, account.id, 0, "operator").await?;
        Ok(Some(account))
    }

    /// Removes every second factor of an account (TOTP, pending or not,
    /// its recovery codes, its passkeys) and ends every session: for a user
    /// who lost the authenticators and the codes, once the operator is sure
    /// who they are. Returns the account, whether it had TOTP enabled and
    /// how many passkeys it had.
    ///
    /// # Errors
    ///
    /// `LastSignInMethod` for an account without a password: its passkeys
    /// are its only way in, and an account left with no credential could
    /// only be deleted (which the operator can do, and the user sign up
    /// again). Nothing is removed then.
    pub async fn reset_second_factors(
        &self,
        name: &str,
    ) -> Result<Option<(UserRecord, bool, u64)>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        if account.password_hash.is_none() {
            return Err(AuthError::LastSignInMethod);
        }
        // An operator's change: the operator tells the user.
        let had_totp = self.store.delete_second_factors(account.id, &[]).await?;
        let passkeys = self.store.delete_passkeys_of(account.id).await?;
        end_every_session_durably(&self.store, account.id, 0, "second_factors_reset").await?;
        Ok(Some((account, had_totp, passkeys)))
    }

    /// Deletes an account after ending its sessions; its name is free again.
    pub async fn delete(&self, name: &str) -> Result<Option<UserRecord>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        end_every_session_durably(&self.store, account.id, 0, "account_deleted").await?;
        self.store.delete_user(account.id, &[]).await?;
        Ok(Some(account))
    }

    async fn find(&self, name: &str) -> Result<Option<UserRecord>, AuthError> {
        let username =
            Username::parse(name).map_err(|violation| AuthError::InvalidInput(vec![violation]))?;
        self.store.find_user(username.canonical()).await
    }
}
