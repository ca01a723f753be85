//! Background upkeep while serving: gRPC health follows the database, and
//! state nothing needs any more is forgotten.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::domain::{Authenticator, RevocationsFrom, Store};
use crate::grpc::pb::auth_service_server::SERVICE_NAME;

/// How often expired revocations and full rate-limit budgets are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(300);

/// Pings the database every `interval` and reports SERVING or NOT_SERVING
/// for the whole server ("") and for `auth.v1.AuthService`.
pub async fn report_health<S: Store>(
    auth: Arc<Authenticator<S>>,
    health: HealthReporter,
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
            set_health(&health, status).await;
            reported = Some(status);
        }
    }
}

/// Reports `status` for the whole server ("") and for `auth.v1.AuthService`.
pub async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(SERVICE_NAME, status).await;
}

/// Forgets what no check needs any more, every [`PRUNE_INTERVAL`].
pub async fn prune<S: Store>(auth: Arc<Authenticator<S>>) {
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
pub async fn catch_up_revocations<S: Store>(auth: Arc<Authenticator<S>>, interval: Duration) {
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
pub async fn listen_for_revocations<S: Store>(auth: Arc<Authenticator<S>>) {
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
pub async fn refresh_keys<S: Store>(auth: Arc<Authenticator<S>>, interval: Duration) {
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
