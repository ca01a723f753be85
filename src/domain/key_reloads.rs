//! Reloads of the signing keys that token checks ask for. A token naming a
//! key this instance does not hold may be signed by a key that `authd keys
//! rotate` added since the last periodic refresh, however long this
//! instance's refresh interval: its check waits for the keys to be read
//! again, and only then refuses it. One task does every reload
//! (the key refresh among `crate::app`'s tasks), so two never overlap, and it spaces the ones
//! asked for here; checks of known keys never come near this.

use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::error::AuthError;

/// The longest a token check waits for its reload: the spacing between
/// reloads plus a database read, with room to spare. Reached only when the
/// reload task is not running.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

/// Reloads started and finished so far, and how the last one went.
#[derive(Debug, Clone, Copy, Default)]
struct Rounds {
    started: u64,
    finished: u64,
    failed: bool,
}

/// Where token checks that need fresh keys meet the task that reloads them.
#[derive(Debug)]
pub struct KeyReloads {
    /// Wakes the reload task.
    asked: Notify,
    /// Every waiting check holds a receiver, so the receiver count tells the
    /// task whether anyone still waits.
    rounds: watch::Sender<Rounds>,
}

impl Default for KeyReloads {
    fn default() -> Self {
        Self {
            asked: Notify::new(),
            rounds: watch::Sender::new(Rounds::default()),
        }
    }
}

impl KeyReloads {
    /// Waits until the keys have been read again by a reload that started
    /// after this call: an earlier read may predate the key that signed the
    /// token at hand.
    ///
    /// # Errors
    /// `AuthError::Unavailable` when that reload failed (the database is
    /// unreachable) or none came within [`LONGEST_WAIT`]: the token can be
    /// neither accepted nor refused.
    pub async fn reload_after_now(&self) -> Result<(), AuthError> {
        let mut rounds = self.rounds.subscribe();
        let started_before = rounds.borrow_and_update().started;
        self.asked.notify_one();
        let finished = rounds.wait_for(|rounds| rounds.finished > started_before);
        match tokio::time::timeout(LONGEST_WAIT, finished).await {
            Ok(Ok(rounds)) if !rounds.failed => Ok(()),
            Ok(Ok(_)) => Err(AuthError::Unavailable(
                "the signing keys could not be reloaded".into(),
            )),
            Ok(Err(_)) | Err(_) => Err(AuthError::Unavailable(
                "no reload of the signing keys came in time".into(),
            )),
        }
    }

    /// For the reload task: completes once a token check waits for a reload.
    pub async fn asked(&self) {
        loop {
            self.asked.notified().await;
            // A check served by a reload that was under way when it asked
            // leaves a wake-up behind that nobody needs.
            if self.rounds.receiver_count() > 0 {
                return;
            }
        }
    }

    /// For the reload task: a reload starts; it reads the database after
    /// this.
    pub fn start(&self) {
        self.rounds.send_modify(|rounds| rounds.started += 1);
    }

    /// For the reload task: the reload started last is over.
    pub fn finish(&self, succeeded: bool) {
        self.rounds.send_modify(|rounds| {
            rounds.finished = rounds.started;
            rounds.failed = !succeeded;
        });
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    #[tokio::test]
    async fn a_check_waits_for_a_reload_that_starts_after_it_asks() {
        let reloads = KeyReloads::default();
        // A reload under way when the check asks cannot serve it.
        reloads.start();
        let check = reloads.reload_after_now();
        tokio::pin!(check);
        assert!(check.as_mut().now_or_never().is_none());
        reloads.finish(true);
        assert!(check.as_mut().now_or_never().is_none());

        reloads.asked().await;
        reloads.start();
        reloads.finish(true);

        assert!(check.await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_reload_leaves_the_token_undecided() {
        let reloads = KeyReloads::default();
        let check = reloads.reload_after_now();
        tokio::pin!(check);
        assert!(check.as_mut().now_or_never().is_none());

        reloads.start();
        reloads.finish(false);

        assert!(matches!(check.await, Err(AuthError::Unavailable(_))));
    }
}
