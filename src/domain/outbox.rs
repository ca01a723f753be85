//! The outbox's delivery rule, run by background tasks (`app::tasks`):
//! claim the due rows, send each, record it sent or the failure with an
//! exponential backoff. One rule for both outboxes, mails (SMTP) and
//! webhook events, through [`Channel`]. At least once: a row sent by a
//! sender that dies before recording it is sent again when its claim
//! lapses, under the same Message-ID or `webhook-id`.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::BoxError;
use super::error::AuthError;
use super::ports::{
    MailSender, OutboxBacklog, OutboxMail, OutboxStore, WebhookEvent, WebhookOutboxStore,
    WebhookSender,
};
use super::sessions::delta;
/// How the outbox is drained.
#[derive(Debug, Clone, Copy)]
pub struct OutboxSettings {
    /// Mails claimed at once.
    pub batch: u64,
    /// How long a claim holds a mail: longer than sending a batch takes,
    /// so that two senders never hold one mail at once.
    pub claim_for: Duration,
    /// The longest one mail's sending may take (the sender enforces it).
    pub send_timeout: Duration,
    /// The wait after the first failure, doubled after each next one.
    pub first_retry: Duration,
    /// The longest wait between attempts.
    pub max_retry: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            batch: 20,
            claim_for: Duration::from_secs(120),
            send_timeout: Duration::from_secs(60),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(600),
        }
    }
}

/// What one round delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub sent: u64,
    pub failed: u64,
}

/// Claims the mails due at `now`, one batch, and sends them.
///
/// # Errors
/// The store's (`Unavailable`, `Internal`): the round stops there, and
/// mails it claimed are taken up again once their claim lapses.
pub async fn deliver_due<S: OutboxStore, M: MailSender>(
    store: &S,
    sender: &M,
    now: DateTime<Utc>,
    settings: &OutboxSettings,
) -> Result<Delivered, AuthError> {
    deliver(&Mails { store, sender }, now, settings).await
}

/// Claims the webhook events due at `now`, one batch, and posts them.
///
/// # Errors
/// As [`deliver_due`]'s.
pub async fn deliver_due_events<S: WebhookOutboxStore, W: WebhookSender>(
    store: &S,
    sender: &W,
    now: DateTime<Utc>,
    settings: &OutboxSettings,
) -> Result<Delivered, AuthError> {
    deliver(&Webhooks { store, sender }, now, settings).await
}

/// Reports the mail outbox's size and its oldest mail's age at `now`.
///
/// # Errors
/// The store's.
pub async fn report_backlog<S: OutboxStore>(
    store: &S,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let (queued, age) = backlog_at(store.outbox_backlog().await?, now);
    crate::metrics::mail_backlog(queued, age);
    Ok(())
}

/// Reports the webhook outbox's size and its oldest event's age at `now`.
///
/// # Errors
/// The store's.
pub async fn report_webhook_backlog<S: WebhookOutboxStore>(
    store: &S,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let (queued, age) = backlog_at(store.webhook_backlog().await?, now);
    crate::metrics::webhook_backlog(queued, age);
    Ok(())
}

fn backlog_at(backlog: OutboxBacklog, now: DateTime<Utc>) -> (u64, Duration) {
    let age = backlog
        .oldest_queued_at
        .and_then(|at| (now - at).to_std().ok())
        .unwrap_or_default();
    (backlog.queued, age)
}

/// A claimed row: its id, its attempts so far (this one included), and
/// what to send.
struct Claimed<T> {
    id: Uuid,
    attempts: i32,
    item: T,
}

/// One outbox and its sender: what the delivery rule needs of them.
trait Channel: Sync {
    type Item: Send + Sync;

    /// What the warnings call a row.
    const NOUN: &'static str;

    fn claim(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<Claimed<Self::Item>>, AuthError>> + Send;

    fn send(&self, item: &Self::Item) -> impl Future<Output = Result<(), BoxError>> + Send;

    fn mark_sent(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    fn mark_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Counts a sent row, or a failed attempt.
    fn count(&self, sent: bool);
}

/// The claim, send and record loop, for either outbox.
async fn deliver<C: Channel>(
    channel: &C,
    now: DateTime<Utc>,
    settings: &OutboxSettings,
) -> Result<Delivered, AuthError> {
    let claimed_until = now + delta(settings.claim_for);
    let rows = channel.claim(now, claimed_until, settings.batch).await?;
    let mut delivered = Delivered::default();
    for claimed in rows {
        // Two senders must never hold one row: one whose claim could lapse
        // while it is sent is left to lapse, and taken up again then.
        if Utc::now() + delta(settings.send_timeout) > claimed_until {
            break;
        }
        match channel.send(&claimed.item).await {
            Ok(()) => {
                channel.mark_sent(claimed.id, Utc::now()).await?;
                delivered.sent += 1;
                channel.count(true);
            }
            Err(error) => {
                let wait = backoff(settings, claimed.attempts);
                tracing::warn!(
                    id = %claimed.id,
                    attempts = claimed.attempts,
                    retry_in = ?wait,
                    error = %error,
                    "cannot send a {}; it stays queued",
                    C::NOUN
                );
                channel
                    .mark_failed(claimed.id, &error.to_string(), Utc::now() + delta(wait))
                    .await?;
                delivered.failed += 1;
                channel.count(false);
            }
        }
    }
    Ok(delivered)
}

/// The mail outbox and the SMTP sender.
struct Mails<'a, S, M> {
    store: &'a S,
    sender: &'a M,
}

impl<S: OutboxStore, M: MailSender> Channel for Mails<'_, S, M> {
    type Item = OutboxMail;
    const NOUN: &'static str = "mail";

    async fn claim(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Claimed<OutboxMail>>, AuthError> {
        let rows = self
            .store
            .claim_due_mails(now, claimed_until, limit)
            .await?;
        Ok(rows
            .into_iter()
            .map(|claimed| Claimed {
                id: claimed.mail.id,
                attempts: claimed.attempts,
                item: claimed.mail,
            })
            .collect())
    }

    async fn send(&self, item: &OutboxMail) -> Result<(), BoxError> {
        self.sender.send(item).await
    }

    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), AuthError> {
        self.store.mark_mail_sent(id, at).await
    }

    async fn mark_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        self.store
            .mark_mail_failed(id, error, next_attempt_at)
            .await
    }

    fn count(&self, sent: bool) {
        if sent {
            crate::metrics::mail_sent();
        } else {
            crate::metrics::mail_failed();
        }
    }
}

/// The webhook outbox and the HTTP sender.
struct Webhooks<'a, S, W> {
    store: &'a S,
    sender: &'a W,
}

impl<S: WebhookOutboxStore, W: WebhookSender> Channel for Webhooks<'_, S, W> {
    type Item = WebhookEvent;
    const NOUN: &'static str = "webhook event";

    async fn claim(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Claimed<WebhookEvent>>, AuthError> {
        let rows = self
            .store
            .claim_due_events(now, claimed_until, limit)
            .await?;
        Ok(rows
            .into_iter()
            .map(|claimed| Claimed {
                id: claimed.event.id,
                attempts: claimed.attempts,
                item: claimed.event,
            })
            .collect())
    }

    async fn send(&self, item: &WebhookEvent) -> Result<(), BoxError> {
        self.sender.send(item).await
    }

    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), AuthError> {
        self.store.mark_event_delivered(id, at).await
    }

    async fn mark_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        self.store
            .mark_event_failed(id, error, next_attempt_at)
            .await
    }

    fn count(&self, sent: bool) {
        if sent {
            crate::metrics::webhook_delivered();
        } else {
            crate::metrics::webhook_failed();
        }
    }
}

/// The wait before the next attempt after `attempts` failed ones:
/// `first_retry`, doubled each time, at most `max_retry`.
fn backoff(settings: &OutboxSettings, attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(31);
    settings
        .first_retry
        .saturating_mul(1 << doublings)
        .min(settings.max_retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_each_failure_up_to_its_bound() {
        let settings = OutboxSettings {
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
            ..OutboxSettings::default()
        };
        let waits: Vec<u64> = [1, 2, 3, 4, 7, 8, 1000]
            .into_iter()
            .map(|attempts| backoff(&settings, attempts).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 60, 60, 60]);
    }
}
