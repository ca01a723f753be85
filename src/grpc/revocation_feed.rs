//! `auth.v1.RevocationService/WatchRevocations`: the feed of revocations
//! for services that verify tokens themselves. A snapshot (or the changes
//! after a cursor), then every change as it is recorded here, and a
//! checkpoint whenever nothing happened for a while.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use authd_token::Revocation;
use futures_util::Stream;
use prost_types::Timestamp;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::{Interval, MissedTickBehavior};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::pb::{
    self, WatchRevocationsRequest, WatchRevocationsResponse,
    revocation_service_server::RevocationService,
};
use crate::domain::{AuthError, Change, Cursor, Revocations, ServiceCredentials, Subscription};
use crate::http::request_token::bearer_token;

/// Revocations per message: a snapshot of a million goes in a thousand
/// messages of about 50 KiB, well under the clients' 4 MiB default.
const REVOCATIONS_PER_MESSAGE: usize = 1_000;

/// Who may watch the feed.
pub struct FeedCredentials(ServiceCredentials);

impl FeedCredentials {
    /// Accepts any of `tokens`; none accepts nobody (the feed is off).
    pub fn new(tokens: &[String]) -> Self {
        Self(ServiceCredentials::new(tokens))
    }

    fn check(&self, metadata: &MetadataMap) -> Result<(), AuthError> {
        if !self.0.any() {
            return Err(AuthError::FeedDisabled);
        }
        let values = metadata.get_all("authorization");
        match bearer_token(values.iter().map(|value| value.as_encoded_bytes())) {
            Some(Ok(token)) if self.0.accepts(token) => Ok(()),
            _ => Err(AuthError::FeedCredentialInvalid),
        }
    }
}

/// The feed's gRPC face.
pub struct RevocationFeed {
    revocations: Arc<Revocations>,
    credentials: FeedCredentials,
    checkpoint_interval: Duration,
}

impl RevocationFeed {
    pub fn new(
        revocations: Arc<Revocations>,
        credentials: FeedCredentials,
        checkpoint_interval: Duration,
    ) -> Self {
        Self {
            revocations,
            credentials,
            checkpoint_interval,
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchRevocationsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RevocationService for RevocationFeed {
    type WatchRevocationsStream = WatchStream;

    async fn watch_revocations(
        &self,
        request: Request<WatchRevocationsRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        self.credentials.check(request.metadata())?;
        let cursor = match request.get_ref().cursor.as_str() {
            "" => None,
            cursor => Some(cursor.parse::<Cursor>()?),
        };
        let Subscription {
            snapshot,
            backlog,
            position,
            live,
        } = self.revocations.subscribe(cursor)?;
        let mut ticker = tokio::time::interval(self.checkpoint_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let watch = Watch {
            snapshot: snapshot.map(VecDeque::from),
            backlog: backlog.into(),
            // A resumed watch counts from its own cursor: its backlog comes
            // after that, not after the position it ends at.
            cursor: cursor.unwrap_or(position),
            live,
            ticker,
            revocations: Arc::clone(&self.revocations),
            done: false,
            _counted: WatcherCount::new(),
        };
        let stream = futures_util::stream::unfold(watch, |mut watch| async move {
            let message = watch.next().await?;
            Some((message, watch))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// One watcher's position in the feed.
struct Watch {
    /// What is left of the snapshot to send, if it is not all sent.
    snapshot: Option<VecDeque<Revocation>>,
    /// What is left of the changes after the watcher's cursor.
    backlog: VecDeque<Change>,
    /// The cursor of the last message sent.
    cursor: Cursor,
    /// Every change after the snapshot or the backlog.
    live: broadcast::Receiver<Change>,
    ticker: Interval,
    revocations: Arc<Revocations>,
    done: bool,
    _counted: WatcherCount,
}

impl Watch {
    async fn next(&mut self) -> Option<Result<WatchRevocationsResponse, Status>> {
        if self.done {
            return None;
        }
        if let Some(snapshot) = &mut self.snapshot {
            let chunk: Vec<Revocation> = drain_up_to(snapshot, REVOCATIONS_PER_MESSAGE);
            let complete = snapshot.is_empty();
            if complete {
                self.snapshot = None;
            }
            return Some(Ok(self.message(chunk, complete)));
        }
        if !self.backlog.is_empty() {
            let changes = drain_up_to(&mut self.backlog, REVOCATIONS_PER_MESSAGE);
            return Some(Ok(self.changes(changes)));
        }
        tokio::select! {
            () = self.revocations.closed() => self.end(AuthError::ShuttingDown),
            received = self.live.recv() => match received {
                Ok(first) => {
                    let mut changes = vec![first];
                    while changes.len() < REVOCATIONS_PER_MESSAGE {
                        match self.live.try_recv() {
                            Ok(change) => changes.push(change),
                            // A lag shows at the next `recv`.
                            Err(TryRecvError::Empty | TryRecvError::Lagged(_) | TryRecvError::Closed) => break,
                        }
                    }
                    Some(Ok(self.changes(changes)))
                }
                Err(RecvError::Lagged(_)) => {
                    crate::metrics::watcher_dropped("too_slow");
                    self.end(AuthError::WatcherTooSlow)
                }
                Err(RecvError::Closed) => self.end(AuthError::ShuttingDown),
            },
            _ = self.ticker.tick() => Some(Ok(self.message(Vec::new(), false))),
        }
    }

    /// A message of changes, skipping any the watcher has had already.
    fn changes(&mut self, changes: Vec<Change>) -> WatchRevocationsResponse {
        let mut revocations = Vec::with_capacity(changes.len());
        for change in changes {
            if change.sequence > self.cursor.sequence() {
                self.cursor = self.cursor.at(change.sequence);
                revocations.push(change.revocation);
            }
        }
        self.message(revocations, false)
    }

    fn message(
        &mut self,
        revocations: Vec<Revocation>,
        snapshot_complete: bool,
    ) -> WatchRevocationsResponse {
        // Anything sent counts as a checkpoint: the next tick is a period on.
        self.ticker.reset();
        crate::metrics::revocation_events_sent(revocations.len());
        WatchRevocationsResponse {
            revocations: revocations.into_iter().map(pb::Revocation::from).collect(),
            cursor: self.cursor.to_string(),
            snapshot_complete,
            server_time: Some(now()),
        }
    }

    fn end(&mut self, error: AuthError) -> Option<Result<WatchRevocationsResponse, Status>> {
        self.done = true;
        Some(Err(error.into()))
    }
}

fn drain_up_to<T>(queue: &mut VecDeque<T>, count: usize) -> Vec<T> {
    let count = count.min(queue.len());
    queue.drain(..count).collect()
}

fn now() -> Timestamp {
    let now = chrono::Utc::now();
    Timestamp {
        seconds: now.timestamp(),
        nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

impl From<Revocation> for pb::Revocation {
    fn from(revocation: Revocation) -> Self {
        use pb::revocation::Kind;
        let kind = match revocation {
            Revocation::Token { jti, expires_at } => Kind::Token(pb::RevokedToken {
                token_id: jti,
                expires_at,
            }),
            Revocation::Cutoff {
                user_id,
                revoked_through,
            } => Kind::UserCutoff(pb::UserCutoff {
                user_id,
                revoked_through,
            }),
            Revocation::Session { session_id, until } => Kind::Session(pb::EndedSession {
                session_id: session_id.to_string(),
                forget_after: until,
            }),
            Revocation::Account { user_id, disabled } => {
                Kind::Account(pb::AccountState { user_id, disabled })
            }
        };
        Self { kind: Some(kind) }
    }
}

/// Counts a watcher in `/metrics` while it lives.
struct WatcherCount;

impl WatcherCount {
    fn new() -> Self {
        crate::metrics::watchers(1.0);
        Self
    }
}

impl Drop for WatcherCount {
    fn drop(&mut self) {
        crate::metrics::watchers(-1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watcher_that_falls_too_far_behind_is_dropped_with_a_reason() {
        let revocations = Arc::new(Revocations::new(Duration::from_secs(900)).unwrap());
        let credentials = FeedCredentials::new(&["feed".into()]);
        let feed = RevocationFeed::new(
            Arc::clone(&revocations),
            credentials,
            Duration::from_secs(60),
        );
        let mut request = Request::new(WatchRevocationsRequest::default());
        request
            .metadata_mut()
            .insert("authorization", "Bearer feed".parse().unwrap());
        let mut stream = feed.watch_revocations(request).await.unwrap().into_inner();
        let snapshot = futures_util::StreamExt::next(&mut stream).await.unwrap();
        assert!(snapshot.unwrap().snapshot_complete);

        // The watcher reads nothing while more changes come than it may lag.
        for n in 0..=crate::domain::WATCHER_BACKLOG {
            revocations.revoke_token(&format!("token-{n}"), i64::MAX);
        }

        let dropped = futures_util::StreamExt::next(&mut stream)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(dropped.code(), tonic::Code::ResourceExhausted);
        assert!(futures_util::StreamExt::next(&mut stream).await.is_none());
    }
}
