//! The outbox's delivery rule, run by a background task (`app::tasks`):
//! claim the due mails, send each, record it sent or the failure with an
//! exponential backoff. At least once: a mail sent by a sender that dies
//! before recording it is sent again when its claim lapses, under the same
//! Message-ID.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::AuthError;
use super::ports::{MailSender, OutboxStore};
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
    let claimed_until = now + delta(settings.claim_for);
    let mails = store
        .claim_due_mails(now, claimed_until, settings.batch)
        .await?;
    let mut delivered = Delivered::default();
    for claimed in mails {
        // Two senders must never hold one mail: one whose claim could lapse
        // while it is sent is left to lapse, and taken up again then.
        if Utc::now() + delta(settings.send_timeout) > claimed_until {
            break;
        }
        match sender.send(&claimed.mail).await {
            Ok(()) => {
                store.mark_mail_sent(claimed.mail.id, Utc::now()).await?;
                delivered.sent += 1;
                crate::metrics::mail_sent();
            }
            Err(error) => {
                let wait = backoff(settings, claimed.attempts);
                tracing::warn!(
                    mail_id = %claimed.mail.id,
                    attempts = claimed.attempts,
                    retry_in = ?wait,
                    error = %error,
                    "cannot send a mail; it stays queued"
                );
                store
                    .mark_mail_failed(
                        claimed.mail.id,
                        &error.to_string(),
                        Utc::now() + delta(wait),
                    )
                    .await?;
                delivered.failed += 1;
                crate::metrics::mail_failed();
            }
        }
    }
    Ok(delivered)
}

/// Reports the backlog's size and the oldest queued mail's age at `now`.
///
/// # Errors
/// The store's.
pub async fn report_backlog<S: OutboxStore>(
    store: &S,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let backlog = store.outbox_backlog().await?;
    let age = backlog
        .oldest_queued_at
        .and_then(|at| (now - at).to_std().ok())
        .unwrap_or_default();
    crate::metrics::mail_backlog(backlog.queued, age);
    Ok(())
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
