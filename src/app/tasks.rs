//! The background tasks of a serving instance, started in one list: health
//! follows the database, revocations other instances record are taken up,
//! signing keys are reloaded, the outboxes (mail, webhook) are delivered,
//! and what
//! nothing needs any more is forgotten.
//! Each is a timer around a domain call.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tonic_health::ServingStatus;

use super::health::HealthStatus;
use crate::config::Settings;
use crate::domain::{
    AuthError, Authenticator, Delivered, OutboxSettings, RevocationsFrom, Store, deliver_due,
    deliver_due_events, report_backlog, report_webhook_backlog,
};
use crate::mail::SmtpSender;
use crate::webhook::HttpWebhookSender;

/// How often expired revocations and full rate-limit budgets are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(300);

/// The background tasks, stopped together when the set is dropped or
/// aborted.
pub struct Tasks {
    pub set: JoinSet<()>,
    /// The health reports, stopped on their own when shutdown begins.
    pub health: AbortHandle,
}

/// What delivers the outboxes; each configured one drains its own.
#[derive(Clone, Default)]
pub struct Senders {
    /// `None` without `--smtp-url`.
    pub mail: Option<Arc<SmtpSender>>,
    /// `None` without `--notification-webhook-url`.
    pub webhook: Option<Arc<HttpWebhookSender>>,
}

/// Starts every background task.
pub fn spawn<S: Store>(
    auth: &Arc<Authenticator<S>>,
    health: HealthStatus,
    settings: &Settings,
    senders: Senders,
) -> Tasks {
    let mut set = JoinSet::new();
    let health = set.spawn(report_health(
        Arc::clone(auth),
        health,
        settings.health_check_interval,
    ));
    set.spawn(prune(Arc::clone(auth)));
    set.spawn(listen_for_revocations(Arc::clone(auth)));
    set.spawn(catch_up_revocations(
        Arc::clone(auth),
        settings.revocation_refresh_interval,
    ));
    set.spawn(refresh_keys(
        Arc::clone(auth),
        settings.key_refresh_interval,
    ));
    if let Some(sender) = senders.mail {
        set.spawn(deliver_mail(
            Arc::clone(auth),
            sender,
            settings.mail_poll_interval,
        ));
    }
    if let Some(sender) = senders.webhook {
        set.spawn(deliver_webhook_events(
            Arc::clone(auth),
            sender,
            settings.mail_poll_interval,
        ));
    }
    Tasks { set, health }
}

/// Sends the outbox's due mails every `interval`, one batch after another
/// while batches come full, and reports its backlog.
async fn deliver_mail<S: Store>(
    auth: Arc<Authenticator<S>>,
    sender: Arc<SmtpSender>,
    interval: Duration,
) {
    let settings = OutboxSettings {
        send_timeout: crate::mail::SEND_TIMEOUT,
        ..OutboxSettings::default()
    };
    drain_every(
        interval,
        settings.batch,
        "mail outbox",
        || deliver_due(auth.store(), sender.as_ref(), Utc::now(), &settings),
        || report_backlog(auth.store(), Utc::now()),
    )
    .await;
}

/// Posts the webhook outbox's due events every `interval`, as
/// [`deliver_mail`] sends mails, and reports its backlog.
async fn deliver_webhook_events<S: Store>(
    auth: Arc<Authenticator<S>>,
    sender: Arc<HttpWebhookSender>,
    interval: Duration,
) {
    let settings = OutboxSettings {
        send_timeout: crate::webhook::SEND_TIMEOUT,
        ..OutboxSettings::default()
    };
    drain_every(
        interval,
        settings.batch,
        "webhook outbox",
        || deliver_due_events(auth.store(), sender.as_ref(), Utc::now(), &settings),
        || report_webhook_backlog(auth.store(), Utc::now()),
    )
    .await;
}

/// Every `interval`, delivers an outbox's due rows with `deliver`, one
/// batch after another while batches of `batch` come full, then reports
/// its backlog with `report`.
async fn drain_every<Deliver, Delivering, Report, Reporting>(
    interval: Duration,
    batch: u64,
    outbox: &str,
    deliver: Deliver,
    report: Report,
) where
    Deliver: Fn() -> Delivering,
    Delivering: Future<Output = Result<Delivered, AuthError>>,
    Report: Fn() -> Reporting,
    Reporting: Future<Output = Result<(), AuthError>>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        loop {
            match deliver().await {
                Ok(delivered) if delivered.sent + delivered.failed == batch => {}
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(error = ?error, "cannot read the {outbox}");
                    break;
                }
            }
        }
        if let Err(error) = report().await {
            tracing::warn!(error = ?error, "cannot read the {outbox}'s backlog");
        }
    }
}

/// Pings the database every `interval` and reports SERVING or NOT_SERVING
/// for the names that follow it.
async fn report_health<S: Store>(
    auth: Arc<Authenticator<S>>,
    health: HealthStatus,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = None;
    loop {
        ticker.tick().await;
        let (in_use, idle) = auth.store().connection_counts();
        crate::metrics::database_connections(in_use, idle);
        crate::metrics::handle().run_upkeep();
        let status = match auth.store().ping().await {
            Ok(()) => ServingStatus::Serving,
            Err(error) => {
                if reported != Some(ServingStatus::NotServing) {
                    tracing::warn!(error = ?error, "database unreachable; reporting NOT_SERVING");
                }
                ServingStatus::NotServing
            }
        };
        if reported != Some(status) {
            if reported.is_some() && status == ServingStatus::Serving {
                tracing::info!("database reachable again; reporting SERVING");
            }
            health.database(status).await;
            reported = Some(status);
        }
    }
}

/// Forgets what no check needs any more, every [`PRUNE_INTERVAL`].
async fn prune<S: Store>(auth: Arc<Authenticator<S>>) {
    let mut ticker = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        ticker.tick().await;
        auth.prune(Utc::now()).await;
    }
}

/// How far back each catch-up looks, beyond the previous one: covers clock
/// differences between instances and transactions that committed late.
const REVOCATION_OVERLAP: Duration = Duration::from_secs(300);

/// Takes up revocations and "log out everywhere" cutoffs that other
/// instances recorded, every `interval`: a token revoked anywhere is refused
/// here after at most one interval.
async fn catch_up_revocations<S: Store>(auth: Arc<Authenticator<S>>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since = Utc::now() - REVOCATION_OVERLAP;
    loop {
        ticker.tick().await;
        let started = Utc::now();
        match auth
            .take_up_revocations(RevocationsFrom::RecordedSince(since))
            .await
        {
            Ok(()) => since = started - REVOCATION_OVERLAP,
            Err(error) => tracing::warn!(error = ?error, "cannot catch up on revocations"),
        }
    }
}

/// Takes up revocations the moment another instance announces them
/// (PostgreSQL LISTEN/NOTIFY), reconnecting after failures. The periodic
/// catch-up stays as the safety net for anything missed meanwhile.
async fn listen_for_revocations<S: Store>(auth: Arc<Authenticator<S>>) {
    loop {
        let revocations = auth.tokens().revocations();
        match auth
            .store()
            .listen_for_revocations(|event| revocations.apply_event(event))
            .await
        {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(error = ?error, "revocation notices interrupted; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The shortest time between a reload of the signing keys and one asked
/// for by a token check: a flood of tokens naming keys that exist nowhere
/// costs the database at most one read a second.
const ASKED_RELOAD_SPACING: Duration = Duration::from_secs(1);

/// Reloads the signing keys from the database every `interval`, and when a
/// token check meets a key id this instance does not hold (spaced by
/// [`ASKED_RELOAD_SPACING`]), so that a key added by `authd keys rotate` on
/// any machine is verified here before or as soon as a token names it,
/// whatever the intervals; deletes keys no valid token can use any more.
/// The only task that reloads them, so reloads never overlap; checks of
/// known keys never wait for it.
async fn refresh_keys<S: Store>(auth: Arc<Authenticator<S>>, interval: Duration) {
    let reloads = auth.tokens().key_reloads();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; the keys were loaded at start.
    ticker.tick().await;
    let mut last_reload: Option<Instant> = None;
    loop {
        let asked = async move {
            reloads.asked().await;
            if let Some(last) = last_reload {
                tokio::time::sleep_until(last + ASKED_RELOAD_SPACING).await;
            }
        };
        tokio::select! {
            _ = ticker.tick() => {}
            () = asked => tracing::info!("a token names a key this instance does not hold; reloading the signing keys"),
        }
        last_reload = Some(Instant::now());
        reloads.start();
        let outcome = auth.reload_signing_keys().await;
        if let Err(error) = &outcome {
            tracing::warn!(error = ?error, "cannot refresh signing keys");
        }
        reloads.finish(outcome.is_ok());
    }
}
