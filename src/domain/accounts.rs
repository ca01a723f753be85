//! What operators do to accounts (`authd users ...`), on the database
//! directly: running instances hear of it from the announcements
//! (PostgreSQL) or their next revocation catch-up.

use chrono::Utc;

use super::credentials::Username;
use super::error::AuthError;
use super::ports::{SessionRecord, Store, UserRecord};
use super::sessions::end_every_session_durably;

/// An account with its live sessions, for `authd users show`.
#[derive(Debug, Clone)]
pub struct AccountDetails {
    pub account: UserRecord,
    /// Not ended and before their absolute end; newest first.
    pub sessions: Vec<SessionRecord>,
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
        Ok(Some(AccountDetails { account, sessions }))
    }

    /// Disables an account: its sessions end, its tokens are refused with
    /// `ACCOUNT_DISABLED`, and Login and Refresh too once the password is
    /// right. Returns the account, if it exists.
    pub async fn disable(&self, name: &str) -> Result<Option<UserRecord>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        self.store
            .set_user_disabled(account.id, Some(Utc::now()))
            .await?;
        end_every_session_durably(&self.store, account.id, 0, "account_disabled").await?;
        Ok(Some(account))
    }

    /// Enables a disabled account again; its ended sessions stay ended.
    pub async fn enable(&self, name: &str) -> Result<Option<UserRecord>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        self.store.set_user_disabled(account.id, None).await?;
        Ok(Some(account))
    }

    /// Ends every session of an account.
    pub async fn logout(&self, name: &str) -> Result<Option<UserRecord>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        end_every_session_durably(&self.store, account.id, 0, "operator").await?;
        Ok(Some(account))
    }

    /// Deletes an account after ending its sessions; its name is free again.
    pub async fn delete(&self, name: &str) -> Result<Option<UserRecord>, AuthError> {
        let Some(account) = self.find(name).await? else {
            return Ok(None);
        };
        end_every_session_durably(&self.store, account.id, 0, "account_deleted").await?;
        self.store.delete_user(account.id).await?;
        Ok(Some(account))
    }

    async fn find(&self, name: &str) -> Result<Option<UserRecord>, AuthError> {
        let username =
            Username::parse(name).map_err(|violation| AuthError::InvalidInput(vec![violation]))?;
        self.store.find_user(username.canonical()).await
    }
}
