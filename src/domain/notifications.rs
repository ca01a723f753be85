//! What authd tells of an account, by mail (`--smtp-url`) and by a signed
//! webhook event (`--notification-webhook-url`): one entry per configured
//! channel, built together so that both carry the same facts and go out
//! under the same rule. A webhook event is the mail's facts as JSON, in the
//! Standard Webhooks payload shape (`type`, `timestamp`, `data`), for teams
//! that send the mail themselves; nothing is in it that the mail does not
//! say.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::mail_templates::MailKind;
use super::ports::{OutboxEntry, Store, WebhookEvent};
use super::service::Authenticator;

/// The type of the event that carries an address's verification link.
pub(super) const VERIFICATION_REQUESTED: &str = "email.verification_requested";

/// The type of the event that carries a password reset link.
pub(super) const PASSWORD_RESET_REQUESTED: &str = "password_reset.requested";

/// One notification: the mail's template and values, and the event's type
/// and data.
pub(super) struct Notification<'a> {
    pub kind: MailKind,
    pub recipient: &'a str,
    pub values: &'a [(&'a str, &'a str)],
    pub event_type: &'a str,
    pub data: Value,
}

impl<S: Store> Authenticator<S> {
    /// The outbox entries of `notification` at `now`: its mail when SMTP is
    /// configured, its event when a webhook is; neither when none is.
    pub(super) fn notify(
        &self,
        notification: Notification<'_>,
        now: DateTime<Utc>,
    ) -> Vec<OutboxEntry> {
        let mut entries = Vec::with_capacity(2);
        if self.mail.smtp {
            entries.push(OutboxEntry::Mail(self.outbox_mail(
                notification.kind,
                notification.recipient,
                notification.values,
                now,
            )));
        }
        if self.mail.webhook {
            entries.push(OutboxEntry::Webhook(webhook_event(
                notification.event_type,
                notification.data,
                now,
            )));
        }
        entries
    }
}

/// An event of `event_type` with `data`, stamped `now`, its id a new
/// UUIDv7 (the `webhook-id` of every attempt).
fn webhook_event(event_type: &str, data: Value, now: DateTime<Utc>) -> WebhookEvent {
    let payload = json!({
        "type": event_type,
        "timestamp": rfc3339(now),
        "data": data,
    });
    WebhookEvent {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        payload: payload.to_string(),
        created_at: now,
    }
}

/// A time as events spell it: RFC 3339 in UTC, to the millisecond.
pub(super) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_payload_has_the_standard_webhooks_shape() {
        let at = DateTime::parse_from_rfc3339("2026-12-14T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = webhook_event("password.changed", json!({"username": "ada"}), at);
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(
            payload,
            json!({
                "type": "password.changed",
                "timestamp": "2026-12-14T10:00:00.000Z",
                "data": {"username": "ada"},
            })
        );
        assert_eq!(event.event_type, "password.changed");
        assert_eq!(event.created_at, at);
    }
}
