//! Following authd's revocation feed (`WatchRevocations`), in the manner of
//! a Kubernetes informer: take a snapshot, then every change after it from
//! the snapshot's cursor; on a dropped connection resume from the last
//! cursor taken up; when authd can no longer resume from it
//! (`CURSOR_EXPIRED`: it restarted, or the cursor fell out of its memory),
//! take a new snapshot and replace the list with it.
//!
//! Freshness is measured from the last message taken up while in sync (a
//! change or a checkpoint); authd sends a checkpoint every few seconds when
//! nothing changes, so silence longer than the staleness limit means the
//! list may be missing a logout.

use std::hash::{BuildHasher as _, Hasher as _, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authd_token::{Revocation, RevocationList, horizons};
use tokio::sync::watch;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};
use tonic_types::StatusExt as _;

use crate::pb::revocation_service_client::RevocationServiceClient;
use crate::pb::{WatchRevocationsRequest, WatchRevocationsResponse};
use crate::verifier::Shared;

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often entries that no token can use any more are forgotten.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// How the feed is doing, read by `Verifier::state` and on every check.
pub struct FeedStatus {
    started: Instant,
    staleness_limit: Duration,
    /// Milliseconds from `started` to the last message taken up in sync,
    /// plus one; 0 until the first snapshot is complete. An atomic, so the
    /// hot path reads it without a lock.
    last_sync: AtomicU64,
    connected: AtomicBool,
    /// Whether the current stale spell has been logged.
    stale_reported: AtomicBool,
    /// The cursor of the last message taken up; empty before a snapshot.
    cursor: Mutex<String>,
}

impl FeedStatus {
    pub fn new(staleness_limit: Duration) -> Self {
        Self {
            started: Instant::now(),
            staleness_limit,
            last_sync: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            stale_reported: AtomicBool::new(false),
            cursor: Mutex::new(String::new()),
        }
    }

    /// How long since the list was last known to be in sync with authd;
    /// none before the first snapshot.
    pub fn since_last_sync(&self) -> Option<Duration> {
        let last_sync = self.last_sync.load(Ordering::Acquire).checked_sub(1)?;
        Some(
            self.started
                .elapsed()
                .saturating_sub(Duration::from_millis(last_sync)),
        )
    }

    /// Whether the list may be missing revocations.
    pub fn is_stale(&self) -> bool {
        self.since_last_sync()
            .is_none_or(|since| since > self.staleness_limit)
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub fn cursor(&self) -> String {
        self.cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn synced(&self, cursor: &str) {
        cursor.clone_into(&mut self.cursor.lock().unwrap_or_else(PoisonError::into_inner));
        let since_start = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_sync
            .store(since_start.saturating_add(1), Ordering::Release);
        if self.stale_reported.swap(false, Ordering::AcqRel) {
            tracing::info!(cursor, "authd verifier fresh again");
        }
    }

    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
    }

    /// Logs the start of a stale spell, once; not before the first
    /// snapshot, which `Verifier::connect` waits for and reports itself.
    fn report_if_stale(&self) {
        let Some(since_last_sync) = self.since_last_sync() else {
            return;
        };
        if since_last_sync > self.staleness_limit
            && !self.stale_reported.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(
                ?since_last_sync,
                limit = ?self.staleness_limit,
                "authd verifier stale: revocations may be missed"
            );
        }
    }
}

/// How the first snapshot is coming along, for `Verifier::connect`.
#[derive(Clone)]
pub enum Progress {
    /// Not yet in sync; the last error, if any.
    Waiting(Option<Status>),
    /// The first snapshot is taken up.
    Synced,
    /// authd refused the feed credential, or has no feed.
    Refused(Status),
}

/// Where the feed comes from.
pub struct FeedSource {
    pub client: RevocationServiceClient<Channel>,
    /// `Bearer <feed credential>`.
    pub authorization: MetadataValue<Ascii>,
}

/// The feed's connection as the log tells it: one line per real change.
///
/// A watch counts as connected at its first message, not when authd answers
/// the call: a draining authd answers a resumed watch and ends it at once
/// with UNAVAILABLE / SHUTTING_DOWN, and counting the answer logged
/// "connected" at every retry of the drain (six in five seconds of backoff)
/// against a single "disconnected".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Link {
    /// Nothing has happened yet.
    #[default]
    Starting,
    /// Messages are arriving.
    Up,
    /// The last watch failed, and that was reported.
    Down,
}

impl Link {
    /// A message arrived: whether that is news (the first since the start
    /// or since a failure).
    fn message(&mut self) -> bool {
        std::mem::replace(self, Self::Up) != Self::Up
    }

    /// A watch failed: whether that is news (the first failure since
    /// messages last arrived, or since the start).
    fn failed(&mut self) -> bool {
        std::mem::replace(self, Self::Down) != Self::Down
    }
}

/// How one watch ended.
enum Ended {
    /// authd cannot resume from the cursor: watch again from a snapshot.
    CursorExpired,
    /// Anything else: reconnect after a backoff and resume.
    Failed(Status),
}

/// Follows the feed until the task is aborted (the last `Verifier` clone
/// dropped).
pub async fn follow(shared: Arc<Shared>, source: FeedSource, progress: watch::Sender<Progress>) {
    let mut cursor = String::new();
    // Attempts count from the last message taken up, for the backoff.
    let mut attempt: u32 = 0;
    let mut link = Link::default();
    loop {
        let ended = match watch_once(
            &shared,
            &source,
            &mut cursor,
            &progress,
            &mut attempt,
            &mut link,
        )
        .await
        {
            // Only a cursor can expire; a watch from a snapshot refused so
            // is a fault to back off from, not a reason to loop at once.
            Ended::CursorExpired if cursor.is_empty() => Ended::Failed(
                Status::failed_precondition("authd refused a watch from a snapshot"),
            ),
            ended => ended,
        };
        shared.feed.set_connected(false);
        match ended {
            Ended::CursorExpired => {
                tracing::info!("authd cannot resume the revocation feed; taking a new snapshot");
                cursor.clear();
            }
            Ended::Failed(status) => {
                let refused = is_credential_refusal(&status);
                progress.send_if_modified(|progress| match progress {
                    Progress::Synced => false,
                    waiting => {
                        *waiting = if refused {
                            Progress::Refused(status.clone())
                        } else {
                            Progress::Waiting(Some(status.clone()))
                        };
                        true
                    }
                });
                let wait = backoff(attempt);
                attempt = attempt.saturating_add(1);
                let news = link.failed();
                if refused {
                    tracing::error!(
                        code = ?status.code(),
                        message = status.message(),
                        retry_in = ?wait,
                        "authd refused the revocation feed credential"
                    );
                } else if news {
                    tracing::warn!(
                        code = ?status.code(),
                        message = status.message(),
                        retry_in = ?wait,
                        "authd revocation feed disconnected"
                    );
                } else {
                    tracing::debug!(code = ?status.code(), retry_in = ?wait, "authd still unreachable");
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// One `WatchRevocations` call, from `cursor` (empty: from a snapshot),
/// until it ends.
async fn watch_once(
    shared: &Shared,
    source: &FeedSource,
    cursor: &mut String,
    progress: &watch::Sender<Progress>,
    attempt: &mut u32,
    link: &mut Link,
) -> Ended {
    let resuming = !cursor.is_empty();
    let mut request = Request::new(WatchRevocationsRequest {
        cursor: cursor.clone(),
    });
    request
        .metadata_mut()
        .insert("authorization", source.authorization.clone());
    let mut stream = match source.client.clone().watch_revocations(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return ended_by(status),
    };

    // A snapshot is gathered here and replaces the list only once complete:
    // until then the list held, however old, is the better answer.
    let mut snapshot: Option<Vec<Revocation>> = cursor.is_empty().then(Vec::new);
    loop {
        let message = match next_message(&mut stream, shared.feed.staleness_limit).await {
            Ok(message) => message,
            Err(ended) => return ended,
        };
        // Connected once authd sends something, not when it answers the
        // call (see `Link`).
        shared.feed.set_connected(true);
        if link.message() {
            tracing::info!(resuming, "authd revocation feed connected");
        }
        let revocations = message
            .revocations
            .into_iter()
            .filter_map(|revocation| revocation.kind?.into_revocation());
        match &mut snapshot {
            Some(gathered) => {
                gathered.extend(revocations);
                if !message.snapshot_complete {
                    continue;
                }
                let list = RevocationList::default();
                let count = gathered.len();
                list.apply_all(std::mem::take(gathered));
                shared.tokens.replace_revocations(list);
                snapshot = None;
                tracing::info!(revocations = count, "authd revocation snapshot taken up");
            }
            None => {
                let list = shared.tokens.current();
                for revocation in revocations {
                    list.revocations().apply(&revocation);
                }
            }
        }
        cursor.clone_from(&message.cursor);
        shared.feed.synced(cursor);
        *attempt = 0;
        progress.send_if_modified(|progress| {
            let first = !matches!(progress, Progress::Synced);
            *progress = Progress::Synced;
            first
        });
    }
}

/// The next message, or how the watch ended; silence for longer than the
/// staleness limit counts as a lost connection (authd would have sent a
/// checkpoint), so a half-open TCP connection does not hold the feed.
async fn next_message(
    stream: &mut Streaming<WatchRevocationsResponse>,
    silence_limit: Duration,
) -> Result<WatchRevocationsResponse, Ended> {
    match tokio::time::timeout(silence_limit, stream.message()).await {
        Ok(Ok(Some(message))) => Ok(message),
        Ok(Ok(None)) => Err(Ended::Failed(Status::unavailable("the feed ended"))),
        Ok(Err(status)) => Err(ended_by(status)),
        Err(_) => Err(Ended::Failed(Status::unavailable(
            "no checkpoint within the staleness limit",
        ))),
    }
}

fn ended_by(status: Status) -> Ended {
    let reason = status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default();
    match (status.code(), reason.as_str()) {
        (Code::FailedPrecondition, "CURSOR_EXPIRED")
        | (Code::InvalidArgument, "CURSOR_INVALID") => Ended::CursorExpired,
        _ => Ended::Failed(status),
    }
}

/// Errors that retrying will not fix until an operator acts; still retried
/// (with the longest backoff), since authd's configuration may change.
fn is_credential_refusal(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::PermissionDenied | Code::Unauthenticated
    )
}

/// The wait before reconnection attempt `attempt` (0 first): doubling from
/// [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`], and between half and all of
/// that at random, so that the many verifiers of a restarted authd do not
/// all come back in the same instant.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_BACKOFF);
    // std's hasher keys are random per process and change per instance:
    // randomness enough for jitter, without a dependency.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let fraction = (hasher.finish() % 1_000) as f64 / 1_000.0;
    ceiling.mul_f64(0.5 + fraction / 2.0)
}

/// Logs stale spells, forgets revocations of expired tokens, and fetches
/// the keys every `key_max_age`, until the task is aborted.
pub async fn upkeep(shared: Arc<Shared>, key_max_age: Duration) {
    let tick =
        (shared.feed.staleness_limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = Instant::now();
    loop {
        ticker.tick().await;
        shared.feed.report_if_stale();
        if last_prune.elapsed() >= PRUNE_INTERVAL {
            last_prune = Instant::now();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs().cast_signed());
            let before = horizons::earliest_accepted_expiry(now);
            let forgotten = shared
                .tokens
                .current()
                .revocations()
                .prune_expired_before(before);
            tracing::debug!(forgotten, "expired revocations forgotten");
        }
        shared
            .keys
            .refresh_if_older_than(key_max_age, &shared.tokens)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        for attempt in 0..40 {
            let ceiling = FIRST_BACKOFF
                .saturating_mul(2u32.saturating_pow(attempt.min(16)))
                .min(MAX_BACKOFF);
            let wait = backoff(attempt);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{attempt}: {wait:?}"
            );
        }
        assert!(backoff(100) <= MAX_BACKOFF);
    }

    #[test]
    fn a_draining_authd_that_ends_every_retry_at_once_is_one_disconnect_and_one_reconnect() {
        let mut link = Link::default();
        assert!(link.message(), "the first message connects");
        assert!(!link.message(), "later messages are no news");
        assert!(link.failed(), "the drain's first refusal disconnects");
        // Each retry is answered, then ended with SHUTTING_DOWN before any
        // message: no "connected", no second "disconnected".
        for retry in 0..6 {
            assert!(!link.failed(), "retry {retry}");
        }
        assert!(
            link.message(),
            "the restarted authd's first message reconnects"
        );
    }

    #[test]
    fn a_feed_that_cannot_connect_at_start_says_so_once() {
        let mut link = Link::default();
        assert!(link.failed());
        assert!(!link.failed());
        assert!(link.message());
    }

    #[test]
    fn a_feed_is_stale_until_its_first_snapshot_and_after_the_limit() {
        let status = FeedStatus::new(Duration::from_millis(30));
        assert!(status.is_stale());
        status.synced("c1");
        assert!(!status.is_stale());
        assert_eq!(status.cursor(), "c1");
        std::thread::sleep(Duration::from_millis(40));
        assert!(status.is_stale());
    }
}
