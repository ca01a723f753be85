//! authd-client's verifier in the bench's own process, as a service would
//! hold it: what a check costs in-process, and how soon after a Logout the
//! verifier refuses the token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authd_client::{Verifier, VerifierConfig};
use hdrhistogram::Histogram;

use crate::feed::{FEED_TOKEN, Session, logout};
use crate::server::Server;

/// A verifier of `server`'s tokens, following its revocation feed.
pub async fn verifier(server: &Server) -> anyhow::Result<Verifier> {
    Ok(Verifier::connect(VerifierConfig::new(server.url(), FEED_TOKEN)).await?)
}

/// The mean time of one check on one thread: `token` over and over (a
/// token seen before), or each of `tokens` once (every token new).
pub async fn time_per_check(
    verifier: &Verifier,
    tokens: &[String],
    repeat: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut checks = 0u32;
    for token in tokens {
        for _ in 0..repeat {
            verifier
                .verify(token)
                .await
                .map_err(|error| anyhow::anyhow!("refused: {}", error.reason()))?;
            checks += 1;
        }
    }
    Ok(started.elapsed() / checks.max(1))
}

/// Checks per second of `token` over and over on every core at once.
pub async fn checks_per_second(verifier: &Verifier, token: &str, duration: Duration) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let deadline = Instant::now() + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..cores {
        let (verifier, token) = (verifier.clone(), Arc::<str>::from(token));
        workers.spawn(async move {
            let mut checks = 0u64;
            while Instant::now() < deadline {
                for _ in 0..256 {
                    if verifier.verify(&token).await.is_ok() {
                        checks += 1;
                    }
                }
                // Let the other tasks of this thread run.
                tokio::task::yield_now().await;
            }
            checks
        });
    }
    let mut checks = 0;
    while let Some(counted) = workers.join_next().await {
        checks += counted.unwrap_or(0);
    }
    checks as f64 / duration.as_secs_f64()
}

/// Logs every session out on `logging_out`, one at a time, and times from
/// each Logout's answer to `verifier` refusing the session's token.
pub async fn propagation(
    verifier: &Verifier,
    logging_out: &Server,
    sessions: &[Session],
) -> anyhow::Result<Histogram<u64>> {
    let channel = logging_out.channels(1).await?.remove(0);
    let mut latency = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    for session in sessions {
        verifier
            .verify(&session.access)
            .await
            .map_err(|error| anyhow::anyhow!("refused before its logout: {}", error.reason()))?;
        logout(channel.clone(), &session.access).await?;
        let returned = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), async {
            // Polled without sleeping: a timer would round up to a
            // millisecond, far more than what is measured.
            while verifier.verify(&session.access).await.is_ok() {
                tokio::task::yield_now().await;
            }
        })
        .await?;
        let micros = u64::try_from(returned.elapsed().as_micros()).unwrap_or(u64::MAX);
        latency.saturating_record(micros.max(1));
    }
    Ok(latency)
}
