//! The outbox ports: mails and webhook events written with the change they
//! report (see `EmailStore`), then delivered by a background sender that
//! claims them. Delivery is at least once: a sender that dies between
//! sending and marking a row sent leaves it to be sent again when its claim
//! lapses, under the same Message-ID or `webhook-id`, so that receivers can
//! tell the copies.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{AuthError, BoxError};

/// A mail to send.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: Uuid,
    /// The Message-ID header (without angle brackets), the same on every
    /// attempt.
    pub message_id: String,
    pub recipient: String,
    pub subject: String,
    /// Plain text and HTML bodies; they may hold a token's link, so they
    /// are never logged.
    pub text_body: String,
    pub html_body: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for OutboxMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMail")
            .field("id", &self.id)
            .field("message_id", &self.message_id)
            .field("subject", &self.subject)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A notification event for `--notification-webhook-url`, in the Standard
/// Webhooks shape.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The `webhook-id` header, the same on every attempt.
    pub id: Uuid,
    /// The payload's `type`, e.g. `password.changed`.
    pub event_type: String,
    /// The JSON body, `{"type", "timestamp", "data"}`, exactly as signed
    /// and sent. It may hold a token's link, so it is never logged.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for WebhookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEvent")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// One row for the outbox, of either kind: what the domain hands to a
/// store method with the change it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxEntry {
    /// Sent through `--smtp-url`.
    Mail(OutboxMail),
    /// Posted to `--notification-webhook-url`.
    Webhook(WebhookEvent),
}

/// A mail a sender has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    pub mail: OutboxMail,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// A webhook event a sender has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEvent {
    pub event: WebhookEvent,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// What waits in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// Mails not sent yet.
    pub queued: u64,
    /// When the oldest of them was queued.
    pub oldest_queued_at: Option<DateTime<Utc>>,
}

/// Where mails wait to be sent.
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait OutboxStore: Send + Sync + 'static {
    /// Claims up to `limit` unsent mails due at `now` that no live claim
    /// holds, oldest due first, until `claimed_until`, and counts an attempt
    /// on each. Of senders claiming at once (on one instance or several),
    /// each mail goes to one.
    fn claim_due_mails(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<ClaimedMail>, AuthError>> + Send;

    /// Records a claimed mail as sent.
    fn mark_mail_sent(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Records a failed attempt, releases the claim and sets when to try
    /// again.
    fn mark_mail_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Forgets mails sent before `cutoff`; returns how many.
    fn delete_mails_sent_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// How many mails wait, and since when.
    fn outbox_backlog(&self) -> impl Future<Output = Result<OutboxBacklog, AuthError>> + Send;
}

/// Where webhook events wait to be delivered: the same rule as
/// `OutboxStore`'s, on rows of their own.
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait WebhookOutboxStore: Send + Sync + 'static {
    /// Claims up to `limit` undelivered events due at `now` that no live
    /// claim holds, oldest due first, until `claimed_until`, and counts an
    /// attempt on each. Of senders claiming at once, each event goes to one.
    fn claim_due_events(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<ClaimedEvent>, AuthError>> + Send;

    /// Records a claimed event as delivered.
    fn mark_event_delivered(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Records a failed attempt, releases the claim and sets when to try
    /// again.
    fn mark_event_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Forgets events delivered before `cutoff`; returns how many.
    fn delete_events_delivered_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// How many events wait, and since when.
    fn webhook_backlog(&self) -> impl Future<Output = Result<OutboxBacklog, AuthError>> + Send;
}

/// What delivers a webhook event (HTTP, in `crate::webhook`).
pub trait WebhookSender: Send + Sync + 'static {
    /// Posts `event`, signed, under its id.
    ///
    /// # Errors
    /// Any failure (unreachable receiver, an answer other than 2xx, a
    /// timeout): the outbox tries again later.
    fn send(&self, event: &WebhookEvent) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// What delivers a mail (SMTP, in `crate::mail`).
pub trait MailSender: Send + Sync + 'static {
    /// Hands `mail` to the mail system, under its Message-ID.
    ///
    /// # Errors
    /// Any failure to hand it over (unreachable server, refused recipient):
    /// the outbox tries again later.
    fn send(&self, mail: &OutboxMail) -> impl Future<Output = Result<(), BoxError>> + Send;
}
