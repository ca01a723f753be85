//! The revocation list of this instance and its feed. Every change to the
//! list goes through [`Revocations`], which numbers it and keeps the latest
//! ones, so that `WatchRevocations` can hand a verifier a snapshot and then
//! every change after it, in order, without a gap or a race: the list and
//! the log change under one lock, and a snapshot is taken under it.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use authd_token::horizons::acceptance_window;
use authd_token::{Revocation, RevocationList};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::error::AuthError;
use super::ports::{RevocationEvent, RevokedToken};

/// Changes kept for watchers that resume: a cursor older than these is
/// expired, and its watcher starts again from a snapshot.
const RETAINED_CHANGES: usize = 65_536;
/// Changes a watcher may fall behind the others before it is dropped (it
/// resumes from its cursor): what bounds the memory slow watchers take.
pub const WATCHER_BACKLOG: usize = 4_096;

/// A position in this instance's feed: the changes up to `sequence` of the
/// run `epoch`. Another run's, or another instance's, cursor is expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    epoch: u64,
    sequence: u64,
}

impl Cursor {
    /// The sequence of the last change it covers.
    pub fn sequence(self) -> u64 {
        self.sequence
    }

    /// The cursor of the same run after change `sequence`.
    pub fn at(self, sequence: u64) -> Self {
        Self { sequence, ..self }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.epoch, self.sequence)
    }
}

impl FromStr for Cursor {
    type Err = AuthError;

    fn from_str(text: &str) -> Result<Self, AuthError> {
        let (epoch, sequence) = text.split_once('-').ok_or(AuthError::CursorInvalid)?;
        Ok(Self {
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| AuthError::CursorInvalid)?,
            sequence: sequence.parse().map_err(|_| AuthError::CursorInvalid)?,
        })
    }
}

fn cutoff(user_id: Uuid, revoked_through: i64) -> Revocation {
    Revocation::Cutoff {
        user_id: user_id.to_string(),
        revoked_through,
    }
}

fn account(user_id: String, disabled: bool) -> Revocation {
    Revocation::Account { user_id, disabled }
}

/// Revoked tokens and cutoffs as the database holds them.
fn stored(revocations: Vec<RevokedToken>, cutoffs: Vec<(Uuid, i64)>) -> Vec<Revocation> {
    let tokens = revocations.into_iter().map(|revocation| Revocation::Token {
        jti: revocation.jti,
        expires_at: revocation.expires_at,
    });
    let cutoffs = cutoffs
        .into_iter()
        .map(|(user_id, revoked_through)| cutoff(user_id, revoked_through));
    tokens.chain(cutoffs).collect()
}

/// One numbered change.
#[derive(Debug, Clone)]
pub struct Change {
    pub sequence: u64,
    pub revocation: Revocation,
}

/// What a watcher gets on subscribing: a snapshot (a fresh watch) or the
/// changes after its cursor (a resumed one), then the live changes.
pub struct Subscription {
    /// Everything in force, for a watch without a cursor.
    pub snapshot: Option<Vec<Revocation>>,
    /// The retained changes after the cursor, for a resumed watch.
    pub backlog: Vec<Change>,
    /// Where the snapshot or the backlog ends.
    pub position: Cursor,
    /// Every change after `position`.
    pub live: broadcast::Receiver<Change>,
}

struct Log {
    epoch: u64,
    /// The sequence of the latest change (0: none yet).
    latest: u64,
    retained: VecDeque<Change>,
}

/// The revocation list of this instance, and its feed.
pub struct Revocations {
    list: Arc<RevocationList>,
    log: Mutex<Log>,
    changes: broadcast::Sender<Change>,
    /// How long after its end a session's tokens may still be presented.
    session_memory: i64,
    stopping: watch::Sender<bool>,
}

impl Revocations {
    /// An empty list; a session's end is remembered for `token_lifetime`
    /// (and the clock leeway), after which none of its tokens is valid.
    pub fn new(token_lifetime: Duration) -> Result<Self, AuthError> {
        let mut epoch = [0u8; 8];
        getrandom::fill(&mut epoch).map_err(AuthError::internal)?;
        Ok(Self {
            list: Arc::default(),
            log: Mutex::new(Log {
                epoch: u64::from_le_bytes(epoch),
                latest: 0,
                retained: VecDeque::new(),
            }),
            changes: broadcast::channel(WATCHER_BACKLOG).0,
            session_memory: acceptance_window(token_lifetime).as_secs().cast_signed(),
            stopping: watch::channel(false).0,
        })
    }

    /// The list token checks consult.
    pub fn list(&self) -> &Arc<RevocationList> {
        &self.list
    }

    /// Applies revocations to the list, and numbers and publishes those
    /// that changed it.
    fn record(&self, revocations: impl IntoIterator<Item = Revocation>) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        self.record_locked(&mut log, revocations);
    }

    /// [`record`](Self::record) under a lock already held.
    fn record_locked(&self, log: &mut Log, revocations: impl IntoIterator<Item = Revocation>) {
        for revocation in revocations {
            if !self.list.apply(&revocation) {
                continue;
            }
            log.latest += 1;
            let change = Change {
                sequence: log.latest,
                revocation,
            };
            if log.retained.len() == RETAINED_CHANGES {
                log.retained.pop_front();
            }
            log.retained.push_back(change.clone());
            // No watcher is no error.
            let _ = self.changes.send(change);
        }
        crate::metrics::revoked_tokens(self.list.len());
    }

    /// Takes up what the database holds, before anyone watches: not
    /// numbered, since every watcher of this run starts from a snapshot
    /// that holds it.
    fn load(&self, revocations: impl IntoIterator<Item = Revocation>) {
        let _log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        self.list.apply_all(revocations);
        crate::metrics::revoked_tokens(self.list.len());
    }

    /// The revocation a session's end at `ended_at` makes.
    fn session_ended(&self, session_id: Uuid, ended_at: i64) -> Revocation {
        Revocation::Session {
            session_id,
            until: ended_at + self.session_memory,
        }
    }

    /// A token revoked until it expires.
    pub fn revoke_token(&self, jti: &str, expires_at: i64) {
        self.record([Revocation::Token {
            jti: jti.to_owned(),
            expires_at,
        }]);
    }

    /// A session ended at `ended_at` (Unix seconds).
    pub fn end_session(&self, session_id: Uuid, ended_at: i64) {
        self.end_sessions([(session_id, ended_at)]);
    }

    /// Sessions ended, each at its time.
    pub fn end_sessions(&self, ended: impl IntoIterator<Item = (Uuid, i64)>) {
        let ended = ended
            .into_iter()
            .map(|(session_id, ended_at)| self.session_ended(session_id, ended_at))
            .collect::<Vec<_>>();
        self.record(ended);
    }

    /// Every token of a user issued at or before `revoked_through`.
    pub fn cut_off(&self, user_id: Uuid, revoked_through: i64) {
        self.record([cutoff(user_id, revoked_through)]);
    }

    /// An account disabled or enabled again.
    pub fn set_disabled(&self, user_id: Uuid, disabled: bool) {
        self.record([account(user_id.to_string(), disabled)]);
    }

    /// Where the list stands: the sequence of its latest change. Taken
    /// before reading an account from the database, for
    /// [`take_up_enabled`](Self::take_up_enabled).
    pub fn position(&self) -> u64 {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .latest
    }

    /// An account that a read of the database begun at `read_from` (a
    /// [`position`](Self::position)) found enabled, taken up at once when
    /// the list still holds it disabled: Login and Refresh call it, so that
    /// the tokens they issue after `authd users enable` are not refused
    /// until the next catch-up. Only a disable the list held before the
    /// read is undone: one taken up since may be newer than what the read
    /// saw, and stays. Published like any change, so that the feed's
    /// watchers accept the account's tokens too. Whether it changed the list.
    pub fn take_up_enabled(&self, user_id: Uuid, read_from: u64) -> bool {
        let subject = user_id.to_string();
        // Most logins are of accounts not disabled here: they take no lock
        // on the feed's log.
        if !self.list.is_disabled(&subject) {
            return false;
        }
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest_kept = log.retained.front().map_or(log.latest + 1, |c| c.sequence);
        let disabled_since_read = oldest_kept > read_from + 1
            || log
                .retained
                .iter()
                .rev()
                .take_while(|change| change.sequence > read_from)
                .any(|change| {
                    matches!(
                        &change.revocation,
                        Revocation::Account { user_id, disabled: true } if *user_id == subject
                    )
                });
        if disabled_since_read {
            return false;
        }
        self.record_locked(&mut log, [account(subject, false)]);
        true
    }

    /// The disabled accounts as the database has them, which also takes up
    /// accounts enabled again elsewhere.
    pub fn replace_disabled(&self, user_ids: Vec<Uuid>) {
        let now: HashSet<String> = user_ids.iter().map(Uuid::to_string).collect();
        let before: HashSet<String> = self.list.disabled().into_iter().collect();
        let enabled = before
            .difference(&now)
            .map(|user_id| account(user_id.clone(), false));
        let disabled = now
            .difference(&before)
            .map(|user_id| account(user_id.clone(), true));
        self.record(enabled.chain(disabled).collect::<Vec<_>>());
    }

    /// Revoked tokens and cutoffs as the database holds them; nothing
    /// already known is lost or announced again.
    pub fn merge(&self, revocations: Vec<RevokedToken>, cutoffs: Vec<(Uuid, i64)>) {
        self.record(stored(revocations, cutoffs));
    }

    /// [`merge`](Self::merge) before anyone watches, unnumbered (see
    /// [`load`](Self::load)): for start-up.
    pub fn load_stored(&self, revocations: Vec<RevokedToken>, cutoffs: Vec<(Uuid, i64)>) {
        self.load(stored(revocations, cutoffs));
    }

    /// Sessions ended at the times given, and the disabled accounts, before
    /// anyone watches (see [`load`](Self::load)): for start-up.
    pub fn load_ended(&self, ended_sessions: Vec<(Uuid, i64)>, disabled: Vec<Uuid>) {
        let ended = ended_sessions
            .into_iter()
            .map(|(session_id, ended_at)| self.session_ended(session_id, ended_at));
        let disabled = disabled
            .into_iter()
            .map(|user_id| account(user_id.to_string(), true));
        self.load(ended.chain(disabled));
    }

    /// Takes up one revocation another instance announced.
    pub fn apply_event(&self, event: RevocationEvent) {
        match event {
            RevocationEvent::Token(revocation) => {
                self.revoke_token(&revocation.jti, revocation.expires_at);
            }
            RevocationEvent::AllOf {
                user_id,
                revoked_through,
            } => self.cut_off(user_id, revoked_through),
            RevocationEvent::Session {
                session_id,
                ended_at,
                ..
            } => self.end_session(session_id, ended_at),
            RevocationEvent::AccountDisabled { user_id, disabled } => {
                self.set_disabled(user_id, disabled);
            }
        }
    }

    /// Forgets what no token still valid at `before` could be refused by.
    /// Not announced: watchers prune by the same rule themselves.
    pub fn prune_expired_before(&self, before: i64) -> usize {
        let pruned = self.list.prune_expired_before(before);
        crate::metrics::revoked_tokens(self.list.len());
        pruned
    }

    /// Subscribes a watcher: from a snapshot without `cursor`, else from
    /// the change after it.
    ///
    /// # Errors
    /// `CursorInvalid` for a cursor that is no cursor; `CursorExpired` for
    /// another run's, one older than the changes kept, or one from the
    /// future.
    pub fn subscribe(&self, cursor: Option<Cursor>) -> Result<Subscription, AuthError> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let live = self.changes.subscribe();
        let position = Cursor {
            epoch: log.epoch,
            sequence: log.latest,
        };
        let Some(cursor) = cursor else {
            return Ok(Subscription {
                snapshot: Some(self.list.snapshot()),
                backlog: Vec::new(),
                position,
                live,
            });
        };
        let oldest_kept = log.retained.front().map_or(log.latest + 1, |c| c.sequence);
        let resumable = cursor.epoch == log.epoch
            && cursor.sequence <= log.latest
            && cursor.sequence + 1 >= oldest_kept;
        if !resumable {
            return Err(AuthError::CursorExpired);
        }
        let backlog = log
            .retained
            .iter()
            .filter(|change| change.sequence > cursor.sequence)
            .cloned()
            .collect();
        Ok(Subscription {
            snapshot: None,
            backlog,
            position,
            live,
        })
    }

    /// Ends every watch (the server is stopping): watchers reconnect to
    /// another instance, or to this one after its restart.
    pub fn close(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes once [`close`](Self::close) is called.
    pub async fn closed(&self) {
        let mut stopping = self.stopping.subscribe();
        // An error means the sender is gone: closed too.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed() -> Revocations {
        Revocations::new(Duration::from_secs(900)).unwrap()
    }

    #[test]
    fn a_resumed_watch_gets_exactly_the_changes_after_its_cursor() {
        let revocations = feed();
        revocations.revoke_token("a", 100);
        let first = revocations.subscribe(None).unwrap();
        assert_eq!(first.snapshot.as_ref().map(Vec::len), Some(1));
        revocations.revoke_token("b", 100);
        revocations.revoke_token("b", 100);
        revocations.cut_off(Uuid::from_u128(1), 50);

        let resumed = revocations.subscribe(Some(first.position)).unwrap();

        let sequences: Vec<u64> = resumed.backlog.iter().map(|c| c.sequence).collect();
        assert_eq!(sequences, [2, 3], "a repeated revocation is no change");
        assert_eq!(resumed.position.sequence, 3);
    }

    #[test]
    fn cursors_of_another_run_or_too_old_are_expired() {
        let revocations = feed();
        let other = feed();
        let foreign = other.subscribe(None).unwrap().position;
        assert!(matches!(
            revocations.subscribe(Some(foreign)),
            Err(AuthError::CursorExpired)
        ));
        let start = revocations.subscribe(None).unwrap().position;
        for n in 0..=RETAINED_CHANGES {
            revocations.revoke_token(&format!("t{n}"), 100);
        }
        assert!(matches!(
            revocations.subscribe(Some(start)),
            Err(AuthError::CursorExpired)
        ));
        let future = Cursor {
            sequence: start.sequence + 10_000_000,
            ..start
        };
        assert!(matches!(
            revocations.subscribe(Some(future)),
            Err(AuthError::CursorExpired)
        ));
        assert_eq!(
            start.to_string().parse::<Cursor>().unwrap(),
            start,
            "a cursor reads back as written"
        );
        assert!(matches!(
            "nonsense".parse::<Cursor>(),
            Err(AuthError::CursorInvalid)
        ));
    }

    #[test]
    fn an_enable_a_login_saw_is_taken_up_and_announced_unless_disabled_since_its_read() {
        let revocations = feed();
        let user = Uuid::from_u128(9);
        revocations.set_disabled(user, true);
        let mut live = revocations.subscribe(None).unwrap().live;

        let read_from = revocations.position();
        assert!(revocations.take_up_enabled(user, read_from));
        assert!(!revocations.list().is_disabled(&user.to_string()));
        assert_eq!(
            live.try_recv().unwrap().revocation,
            account(user.to_string(), false)
        );
        assert!(!revocations.take_up_enabled(user, read_from), "once");

        // Disabled again while a login read the account as enabled: the
        // disable may be the newer, and stays until the catch-up decides.
        let read_from = revocations.position();
        revocations.set_disabled(user, true);
        assert!(!revocations.take_up_enabled(user, read_from));
        assert!(revocations.list().is_disabled(&user.to_string()));
    }

    #[test]
    fn enabling_an_account_elsewhere_is_taken_up_and_announced() {
        let revocations = feed();
        let user = Uuid::from_u128(9);
        revocations.set_disabled(user, true);
        let watch = revocations.subscribe(None).unwrap();
        let mut live = watch.live;

        revocations.replace_disabled(Vec::new());

        let change = live.try_recv().unwrap();
        assert_eq!(
            change.revocation,
            Revocation::Account {
                user_id: user.to_string(),
                disabled: false
            }
        );
    }
}
