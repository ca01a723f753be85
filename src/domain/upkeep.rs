//! What the background tasks ask of the domain: take up the revocations
//! every instance recorded (at start-up everything still in force, then
//! what was recorded since), forget what no token needs any more, and
//! reload the signing keys. The horizons come from `authd_token::horizons`;
//! the timers that call these are `crate::app`'s tasks.

use std::time::Duration;

use authd_token::horizons::{acceptance_window, earliest_accepted_expiry};
use chrono::{DateTime, TimeDelta, Utc};

use super::error::AuthError;
use super::keys::retired_keys;
use super::ports::{RevocationStore, Store};
use super::revocation_feed::Revocations;
use super::secrets_at_rest::{Reseal, open_signing_keys, reseal_signing_keys};
use super::service::Authenticator;

/// Revocations read at start, a page at a time: a million of them never sit
/// in memory twice (as rows and in the set).
const REVOCATION_PAGE: u64 = 10_000;

/// How long a sent mail stays in the outbox: enough to answer "was it
/// sent, and when?" about a recent mail, without keeping every mail's text.
const SENT_MAIL_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where taking up stored revocations starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationsFrom {
    /// Everything still in force, before anyone watches the feed: start-up.
    InForce,
    /// What any instance recorded from this moment on, announced to the
    /// feed's watchers: the periodic catch-up.
    RecordedSince(DateTime<Utc>),
}

/// `now` less `span`, or the distant past when `span` is beyond chrono.
fn before(now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    now - TimeDelta::from_std(span).unwrap_or(TimeDelta::MAX)
}

impl<S: Store> Authenticator<S> {
    /// Takes up revoked tokens, "log out everywhere" cutoffs, ended sessions
    /// and disabled accounts as the database holds them, `from` a start.
    pub async fn take_up_revocations(&self, from: RevocationsFrom) -> Result<(), AuthError> {
        let store = &self.store;
        let list = self.tokens.revocations();
        match from {
            RevocationsFrom::InForce => {
                let now = Utc::now();
                load_in_force(store, list, REVOCATION_PAGE, now.timestamp()).await?;
                // Sessions whose access tokens may still be in anyone's hands.
                let since = before(now, acceptance_window(self.tokens.lifetime()));
                let (cutoffs, ended_sessions, disabled) = tokio::try_join!(
                    store.session_cutoffs(),
                    store.sessions_ended_since(since),
                    store.disabled_users(),
                )?;
                list.load_stored(Vec::new(), cutoffs);
                list.load_ended(ended_sessions, disabled);
            }
            RevocationsFrom::RecordedSince(since) => {
                let (revocations, cutoffs, ended_sessions, disabled) = tokio::try_join!(
                    store.revocations_since(since),
                    store.session_cutoffs(),
                    store.sessions_ended_since(since),
                    store.disabled_users(),
                )?;
                list.merge(revocations, cutoffs);
                list.end_sessions(ended_sessions);
                list.replace_disabled(disabled);
            }
        }
        Ok(())
    }

    /// Forgets what no check needs any more at `now`: rate-limit state whose
    /// budget is full again, revocations of tokens that have expired, and
    /// sessions no token or refresh can use. Each part is tried even when
    /// another fails; failures are logged, and the next round tries again.
    pub async fn prune(&self, now: DateTime<Utc>) {
        self.limits.forget_idle_addresses();
        if let Err(error) = self
            .store
            .delete_rate_limits_before(now.timestamp_millis())
            .await
        {
            tracing::warn!(error = ?error, "cannot prune rate limits");
        }
        let expired_before = earliest_accepted_expiry(now.timestamp());
        self.tokens
            .revocations()
            .prune_expired_before(expired_before);
        let lifetime = self.tokens.lifetime();
        let ended_before = before(now, acceptance_window(lifetime));
        let used_before = before(now, self.sessions.idle_timeout + lifetime);
        match self
            .store
            .delete_sessions_finished_before(ended_before, used_before)
            .await
        {
            Ok(deleted) => tracing::debug!(deleted, "pruned finished sessions"),
            Err(error) => tracing::warn!(error = ?error, "cannot prune finished sessions"),
        }
        match self
            .store
            .delete_revocations_expired_before(expired_before)
            .await
        {
            Ok(deleted) => tracing::debug!(deleted, "pruned expired revocations"),
            Err(error) => tracing::warn!(error = ?error, "cannot prune expired revocations"),
        }
        match self.store.delete_mfa_tickets_expired_before(now).await {
            Ok(deleted) => tracing::debug!(deleted, "pruned expired second-factor tickets"),
            Err(error) => tracing::warn!(error = ?error, "cannot prune second-factor tickets"),
        }
        match self
            .store
            .delete_passkey_ceremonies_expired_before(now)
            .await
        {
            Ok(deleted) => tracing::debug!(deleted, "pruned expired passkey ceremonies"),
            Err(error) => tracing::warn!(error = ?error, "cannot prune passkey ceremonies"),
        }
        match self.store.delete_mail_tokens_expired_before(now).await {
            Ok(deleted) => tracing::debug!(deleted, "pruned expired mailed tokens"),
            Err(error) => tracing::warn!(error = ?error, "cannot prune mailed tokens"),
        }
        match self
            .store
            .delete_mails_sent_before(before(now, SENT_MAIL_RETENTION))
            .await
        {
            Ok(deleted) => tracing::debug!(deleted, "pruned sent mails"),
            Err(error) => tracing::warn!(error = ?error, "cannot prune sent mails"),
        }
        match self
            .store
            .delete_events_delivered_before(before(now, SENT_MAIL_RETENTION))
            .await
        {
            Ok(deleted) => tracing::debug!(deleted, "pruned delivered webhook events"),
            Err(error) => tracing::warn!(error = ?error, "cannot prune webhook events"),
        }
    }

    /// Reads the signing keys again and deletes the ones no valid token can
    /// use any more.
    pub async fn reload_signing_keys(&self) -> Result<(), AuthError> {
        let mut keys = self.store.signing_keys().await?;
        // Keys an authd from before sealing added (during a rolling
        // upgrade) are sealed here rather than left in clear.
        match reseal_signing_keys(&self.store, &self.secrets, &keys, Reseal::Clear).await {
            Ok(resealed) if resealed.signing_keys > 0 => {
                tracing::info!(
                    sealed = resealed.signing_keys,
                    "sealed signing keys stored in clear"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = ?error, "cannot seal the signing keys stored in clear")
            }
        }
        let retired = retired_keys(&keys, Utc::now(), self.tokens.lifetime());
        if !retired.is_empty() {
            match self.store.delete_signing_keys(&retired).await {
                Ok(_) => {
                    tracing::info!(kids = ?retired, "retired signing keys");
                    keys.retain(|key| !retired.contains(&key.kid));
                }
                // The keys just read are loaded all the same; the next
                // reload tries again.
                Err(error) => tracing::warn!(error = ?error, "cannot delete retired signing keys"),
            }
        }
        self.tokens
            .reload_keys(&open_signing_keys(keys, &self.secrets)?)
    }
}

/// Loads every revoked token still accepted at `now` (Unix seconds) if not
/// revoked, `page_size` at a time.
async fn load_in_force(
    store: &impl RevocationStore,
    list: &Revocations,
    page_size: u64,
    now: i64,
) -> Result<(), AuthError> {
    let earliest = earliest_accepted_expiry(now);
    let mut after = None;
    loop {
        let page = store
            .revocations_in_force(earliest, after.as_deref(), page_size)
            .await?;
        let full = page.len() as u64 == page_size;
        after = page.last().map(|revocation| revocation.jti.clone());
        list.load_stored(page, Vec::new());
        if !full {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RevokedToken;
    use crate::storage::{Database, DatabaseSettings};

    #[tokio::test]
    async fn every_page_of_revocations_in_force_is_loaded() {
        let directory = tempfile::tempdir().unwrap();
        let database = Database::connect(&DatabaseSettings {
            url: format!(
                "sqlite://{}?mode=rwc",
                directory.path().join("authd.db").display()
            ),
            max_connections: 2,
            connect_timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();
        database.migrate().await.unwrap();
        let now = Utc::now().timestamp();
        for (n, expires_at) in [now + 60, now + 60, now - 3600, now + 60, now + 60, now + 60]
            .into_iter()
            .enumerate()
        {
            let revocation = RevokedToken {
                jti: format!("token-{n}"),
                user_id: uuid::Uuid::now_v7(),
                expires_at,
            };
            database.insert_revocation(&revocation).await.unwrap();
        }

        let revocations = Revocations::new(Duration::from_secs(900)).unwrap();
        load_in_force(&database, &revocations, 2, now)
            .await
            .unwrap();

        assert_eq!(
            revocations.list().len(),
            5,
            "every token still valid, over three pages"
        );
    }
}
