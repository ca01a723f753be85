//! Stopping: what a signal asks for, and the order of the steps, so that
//! load balancers move away before authd stops accepting and calls in
//! flight may finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::health::HealthStatus;
use crate::domain::Revocations;

/// A step of the shutdown to wait for.
type Step<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The two moments of a shutdown, as futures for the server to wait on.
pub struct Shutdown<'a> {
    /// Completes when authd stops accepting and lets calls in flight finish.
    pub stop: Step<'a>,
    /// Completes `--shutdown-timeout` after `stop`: the calls still in
    /// flight are dropped.
    pub give_up: Step<'a>,
}

/// Once `requested` resolves to how long to drain: the revocation feed's
/// watchers are sent to another instance, health reports NOT_SERVING for
/// good (its task stopped first), and after the drain authd stops
/// accepting; `shutdown_timeout` later it gives up on the calls left.
pub fn sequence<'a>(
    requested: impl Future<Output = Duration> + Send + 'a,
    revocations: Arc<Revocations>,
    health: HealthStatus,
    health_task: AbortHandle,
    shutdown_timeout: Duration,
) -> Shutdown<'a> {
    let stopping = Arc::new(Notify::new());
    let stop = {
        let stopping = Arc::clone(&stopping);
        async move {
            let drain = requested.await;
            // Watchers move to another instance now: a stream would hold
            // the shutdown until its timeout.
            revocations.close();
            // Health must stay NOT_SERVING from here on.
            health_task.abort();
            health.stopping().await;
            tracing::info!(drain = ?drain, "shutting down: reporting NOT_SERVING while load balancers drain");
            tokio::time::sleep(drain).await;
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            stopping.notify_one();
        }
    };
    let give_up = async move {
        stopping.notified().await;
        tokio::time::sleep(shutdown_timeout).await;
    };
    Shutdown {
        stop: Box::pin(stop),
        give_up: Box::pin(give_up),
    }
}

/// Completes on Ctrl-C or SIGTERM with how long to drain: SIGTERM comes
/// from orchestrators, whose load balancers need `drain` to notice
/// NOT_SERVING; Ctrl-C comes from a person, who should not wait.
pub async fn shutdown_signal(drain: Duration) -> Duration {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => Duration::ZERO,
        () = terminate => drain,
    }
}
