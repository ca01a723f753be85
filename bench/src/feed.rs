//! The revocation feed (`WatchRevocations`): how soon a logout reaches a
//! watcher, on one instance and from a second one on PostgreSQL; how many
//! changes one authd delivers to a hundred watchers; what a watcher costs
//! in memory. The watchers here are raw gRPC streams: what a verifier adds
//! on top (applying a change to its list) is microseconds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use authd::grpc::pb::auth_service_client::AuthServiceClient;
use authd::grpc::pb::revocation::Kind;
use authd::grpc::pb::revocation_service_client::RevocationServiceClient;
use authd::grpc::pb::{LogoutRequest, WatchRevocationsRequest, WatchRevocationsResponse};
use hdrhistogram::Histogram;
use tokio::sync::Notify;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::clients;
use crate::server::Server;

/// The feed credential of every bench server.
pub const FEED_TOKEN: &str = "bench-feed-token";
/// Arguments that turn the feed on.
pub const FEED_ARGS: [&str; 2] = ["--revocation-feed-token", FEED_TOKEN];

/// A session to log out: its access token and id.
pub struct Session {
    pub access: String,
    pub id: String,
}

/// Registers `count` users on `server`, each with one session.
pub async fn sessions(server: &Server, prefix: &str, count: usize) -> anyhow::Result<Vec<Session>> {
    let channel = server.channels(1).await?.remove(0);
    let mut sessions = Vec::with_capacity(count);
    for n in 0..count {
        let (access, _, id) =
            clients::register_session(channel.clone(), format!("{prefix}-{n}")).await?;
        sessions.push(Session { access, id });
    }
    Ok(sessions)
}

async fn watch(channel: Channel) -> anyhow::Result<Streaming<WatchRevocationsResponse>> {
    let mut request = tonic::Request::new(WatchRevocationsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {FEED_TOKEN}").parse()?);
    Ok(RevocationServiceClient::new(channel)
        .watch_revocations(request)
        .await?
        .into_inner())
}

pub async fn logout(channel: Channel, access: &str) -> anyhow::Result<()> {
    let mut request = tonic::Request::new(LogoutRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {access}").parse()?);
    AuthServiceClient::new(channel).logout(request).await?;
    Ok(())
}

/// Latencies in microseconds.
pub struct Propagation {
    pub latency: Histogram<u64>,
}

impl From<Histogram<u64>> for Propagation {
    fn from(latency: Histogram<u64>) -> Self {
        Self { latency }
    }
}

impl Propagation {
    /// `p50 / p99 / max` in milliseconds, and how many logouts.
    pub fn describe(&self) -> String {
        format!(
            "{:.2} / {:.2} / {:.2} ms ({} logouts)",
            self.latency.value_at_quantile(0.5) as f64 / 1000.0,
            self.latency.value_at_quantile(0.99) as f64 / 1000.0,
            self.latency.max() as f64 / 1000.0,
            self.latency.len()
        )
    }

    pub fn p99_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// Logs out every session on `logging_out`, one at a time, and times from
/// each Logout's answer to a watcher of `watched` receiving its session's
/// end (zero when it came first).
pub async fn propagation(
    watched: &Server,
    logging_out: &Server,
    sessions: &[Session],
) -> anyhow::Result<Propagation> {
    let seen = Arc::new((Mutex::new(HashMap::<String, Instant>::new()), Notify::new()));
    let mut stream = watch(watched.channels(1).await?.remove(0)).await?;
    let watcher = {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                let received = Instant::now();
                let mut ended = seen.0.lock().unwrap_or_else(PoisonError::into_inner);
                for revocation in message.revocations {
                    if let Some(Kind::Session(session)) = revocation.kind {
                        ended.insert(session.session_id, received);
                    }
                }
                drop(ended);
                seen.1.notify_waiters();
            }
        })
    };
    let channel = logging_out.channels(1).await?.remove(0);
    let mut latency = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    for session in sessions {
        logout(channel.clone(), &session.access).await?;
        let returned = Instant::now();
        let received = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = seen.1.notified();
                if let Some(received) = seen
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&session.id)
                {
                    return *received;
                }
                notified.await;
            }
        })
        .await?;
        let micros = received.saturating_duration_since(returned).as_micros();
        latency.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
    }
    watcher.abort();
    Ok(Propagation { latency })
}

/// What a hundred watchers cost and get.
pub struct Fanout {
    pub watchers: usize,
    /// Changes made per second (logouts flat out).
    pub produced_per_second: f64,
    /// Changes delivered per second, all watchers together.
    pub delivered_per_second: f64,
    /// Resident memory each idle watcher adds to authd.
    pub bytes_per_watcher: f64,
}

/// `watchers` watchers on `server` while every session is logged out by
/// eight callers at once.
pub async fn fanout(
    server: &Server,
    watchers: usize,
    sessions: Vec<Session>,
) -> anyhow::Result<Fanout> {
    let before_kib = server.resident_kib()?;
    let received: Arc<Vec<AtomicU64>> =
        Arc::new((0..watchers).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::with_capacity(watchers);
    for (n, channel) in server.channels(watchers).await?.into_iter().enumerate() {
        let mut stream = watch(channel).await?;
        // Past the snapshot before the changes start.
        while !stream
            .message()
            .await?
            .is_some_and(|message| message.snapshot_complete)
        {}
        let received = Arc::clone(&received);
        tasks.push(tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                received[n].fetch_add(message.revocations.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bytes_per_watcher =
        server.resident_kib()?.saturating_sub(before_kib) as f64 * 1024.0 / watchers as f64;

    let count = sessions.len() as u64;
    let callers = 8;
    let mut chunks: Vec<Vec<Session>> = (0..callers).map(|_| Vec::new()).collect();
    for (n, session) in sessions.into_iter().enumerate() {
        chunks[n % callers].push(session);
    }
    let channels = server.channels(callers).await?;
    let started = Instant::now();
    let mut loggers = tokio::task::JoinSet::new();
    for (chunk, channel) in chunks.into_iter().zip(channels) {
        loggers.spawn(async move {
            for session in chunk {
                logout(channel.clone(), &session.access).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = loggers.join_next().await {
        done??;
    }
    let produced = started.elapsed();
    tokio::time::timeout(Duration::from_secs(30), async {
        while received
            .iter()
            .any(|count_here| count_here.load(Ordering::Relaxed) < count)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await?;
    let delivered = started.elapsed();
    for task in tasks {
        task.abort();
    }
    Ok(Fanout {
        watchers,
        produced_per_second: count as f64 / produced.as_secs_f64(),
        delivered_per_second: (count * watchers as u64) as f64 / delivered.as_secs_f64(),
        bytes_per_watcher,
    })
}
