//! Password hashing with argon2id, off the async runtime and bounded, so that
//! token checks stay fast however many logins pour in, and admission
//! controlled, so that a flood is refused at once instead of queueing
//! without end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
};
use tokio::sync::{Semaphore, TryAcquireError};
use tracing::Instrument;

use super::credentials::Password;
use super::error::AuthError;

/// Argon2id cost parameters and how many hashes may run at once.
#[derive(Debug, Clone)]
pub struct HashingSettings {
    /// Memory per hash in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Passes over the memory (OWASP: 2).
    pub iterations: u32,
    /// Lanes per hash (OWASP: 1).
    pub parallelism: u32,
    /// Hashes computed concurrently; the rest wait their turn.
    pub max_concurrent: usize,
    /// Hashes that may wait for a turn; beyond that, calls are refused at
    /// once with [`AuthError::Overloaded`].
    pub max_queued: usize,
}

/// Ceilings on the parameters of a stored hash: 1 GiB, far above any sane
/// configuration, and still bounded.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

/// The outcome of checking a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The user exists and the password is theirs.
    pub matches: bool,
    /// A fresh hash with the configured parameters, when the stored one was
    /// made with others (OWASP: upgrade hashes on login).
    pub rehashed: Option<String>,
}

/// Hashes new passwords and verifies offered ones.
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    params: Params,
    slots: Arc<Semaphore>,
    /// How many calls wait for a slot now.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    /// Verified against when the user does not exist, so that an unknown
    /// username costs as much time as a wrong password and timing reveals
    /// nothing.
    dummy_hash: String,
}

impl PasswordHasher {
    /// Builds the hasher and its dummy hash (one hash at start).
    pub fn new(settings: &HashingSettings) -> Result<Self, AuthError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(AuthError::internal)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let dummy_hash = argon2
            .hash_password(b"authd dummy password for unknown users")
            .map_err(AuthError::internal)?
            .to_string();
        // The series exists from the start, not only after the first wait.
        crate::metrics::hash_queue_depth(0);
        Ok(Self {
            argon2,
            params,
            slots: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued: settings.max_queued,
            dummy_hash,
        })
    }

    /// Returns the PHC string of a new salted hash.
    pub async fn hash(&self, password: Password) -> Result<String, AuthError> {
        let argon2 = self.argon2.clone();
        self.run_blocking(move || {
            argon2
                .hash_password(password.expose_bytes())
                .map(|hash| hash.to_string())
                .map_err(AuthError::internal)
        })
        .await
    }

    /// Whether `password` matches the stored PHC string. With no stored hash
    /// (unknown user) it still does the same work and answers no. A match
    /// against a hash made with other parameters than the configured ones
    /// also returns a new hash to store. Stored parameters beyond sane
    /// ceilings are refused, never computed: such a row could tie up the
    /// server for minutes or exhaust its memory.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verification, AuthError> {
        let argon2 = self.argon2.clone();
        let configured = self.params.clone();
        let user_exists = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.clone());
        self.run_blocking(move || {
            let hash = PasswordHash::new(&phc).map_err(AuthError::internal)?;
            let params = Params::try_from(&hash).map_err(AuthError::internal)?;
            if params.m_cost() > MAX_MEMORY_KIB
                || params.t_cost() > MAX_ITERATIONS
                || params.p_cost() > MAX_PARALLELISM
            {
                return Err(AuthError::internal(format!(
                    "stored password hash with parameters beyond the ceiling: {params}"
                )));
            }
            let matches = match argon2.verify_password(password.expose_bytes(), &hash) {
                Ok(()) => user_exists,
                Err(argon2::password_hash::Error::PasswordInvalid) => false,
                Err(other) => return Err(AuthError::internal(other)),
            };
            let outdated = hash.algorithm.as_str() != "argon2id"
                || hash.version != Some(Version::V0x13.into())
                || (params.m_cost(), params.t_cost(), params.p_cost())
                    != (
                        configured.m_cost(),
                        configured.t_cost(),
                        configured.p_cost(),
                    );
            let rehashed = if matches && outdated {
                Some(
                    argon2
                        .hash_password(password.expose_bytes())
                        .map_err(AuthError::internal)?
                        .to_string(),
                )
            } else {
                None
            };
            Ok(Verification { matches, rehashed })
        })
        .await
    }

    /// Runs `work` on the blocking pool once a slot is free, in the caller's
    /// tracing span. The slot stays taken until the work is done, even if the
    /// caller gives up (a cancelled RPC cannot stop a hash half-way).
    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(TryAcquireError::NoPermits) => {
                let Some(_place) = QueuePlace::take(&self.queued, self.max_queued) else {
                    crate::metrics::hash_refused();
                    return Err(AuthError::Overloaded);
                };
                Arc::clone(&self.slots)
                    .acquire_owned()
                    .instrument(tracing::debug_span!("wait_for_hash_slot"))
                    .await
                    .map_err(AuthError::internal)?
            }
            Err(TryAcquireError::Closed) => return Err(AuthError::internal("hash slots closed")),
        };
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            yield_to_the_runtime();
            let started = std::time::Instant::now();
            let outcome = span.in_scope(work);
            crate::metrics::hash_duration(started.elapsed());
            outcome
        })
        .await
        .map_err(AuthError::internal)?
    }
}

/// Moves the calling thread to the idle scheduling class (SCHED_IDLE), so
/// that the hashes, which may fill every core, run only in the time the
/// async runtime leaves: token checks keep their latency while logins flood
/// in, and an overloaded Login is refused at once. The blocking pool's
/// thread stays there for whatever it runs next, which is only more hashing
/// or file reads for the web page. Linux only: elsewhere the scheduler
/// decides.
fn yield_to_the_runtime() {
    #[cfg(target_os = "linux")]
    // SAFETY: `param` outlives the call, which only reads it; on Linux the
    // policy belongs to the thread, named here by its own id. Lowering it
    // needs no privilege, and a failure leaves the policy as it was.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(libc::gettid(), libc::SCHED_IDLE, &raw const param);
    }
}

/// A place in the queue for a hash slot, given back when dropped, also when
/// the waiting call is cancelled.
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    fn take(queued: &'a AtomicUsize, max_queued: usize) -> Option<Self> {
        let waiting = queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < max_queued).then_some(waiting + 1)
            })
            .ok()?;
        crate::metrics::hash_queue_depth(waiting + 1);
        Some(Self(queued))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        let waiting = self.0.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::hash_queue_depth(waiting.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(&HashingSettings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
            max_queued: 2,
        })
        .unwrap()
    }

    fn password(text: &str) -> Password {
        Password::parse_existing(text.into()).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_only_with_the_right_password() {
        let hasher = hasher();
        let phc = hasher.hash(password("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let right = hasher
            .verify(password("correct horse"), Some(phc.clone()))
            .await
            .unwrap();
        assert_eq!(
            right,
            Verification {
                matches: true,
                rehashed: None
            }
        );
        let wrong = hasher
            .verify(password("wrong horse"), Some(phc))
            .await
            .unwrap();
        assert!(!wrong.matches);
    }

    #[tokio::test]
    async fn a_match_against_older_parameters_comes_with_an_upgraded_hash() {
        let old = hasher().hash(password("correct horse")).await.unwrap();
        let upgraded_hasher = PasswordHasher::new(&HashingSettings {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 1,
            max_queued: 1,
        })
        .unwrap();

        let outcome = upgraded_hasher
            .verify(password("correct horse"), Some(old.clone()))
            .await
            .unwrap();

        let rehashed = outcome.rehashed.expect("an upgraded hash");
        assert!(
            rehashed.starts_with("$argon2id$v=19$m=128,t=2,p=1$"),
            "{rehashed}"
        );
        let again = upgraded_hasher
            .verify(password("correct horse"), Some(rehashed))
            .await
            .unwrap();
        assert_eq!(
            again,
            Verification {
                matches: true,
                rehashed: None
            }
        );
        let wrong = upgraded_hasher
            .verify(password("wrong horse"), Some(old))
            .await
            .unwrap();
        assert_eq!(
            wrong,
            Verification {
                matches: false,
                rehashed: None
            },
            "no upgrade without a match"
        );
    }

    #[tokio::test]
    async fn absurd_stored_parameters_are_refused_not_computed() {
        let genuine = hasher().hash(password("correct horse")).await.unwrap();
        // 4 GiB of memory: computing it would take the server down.
        let absurd = genuine.replace("m=64,", "m=4194304,");

        let outcome = hasher()
            .verify(password("correct horse"), Some(absurd))
            .await;

        assert!(
            matches!(outcome, Err(AuthError::Internal(_))),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn unknown_users_never_match_even_the_dummy_password() {
        let hasher = hasher();
        let dummy = password("authd dummy password for unknown users");
        assert!(!hasher.verify(dummy, None).await.unwrap().matches);
    }
}

#[cfg(test)]
mod admission_tests {
    use super::*;

    #[test]
    fn queue_places_are_bounded_and_given_back() {
        let queued = AtomicUsize::new(0);
        let first = QueuePlace::take(&queued, 2).expect("room");
        let second = QueuePlace::take(&queued, 2).expect("room");
        assert!(QueuePlace::take(&queued, 2).is_none());
        drop(first);
        let third = QueuePlace::take(&queued, 2).expect("room again");
        drop((second, third));
        assert_eq!(queued.load(Ordering::Acquire), 0);
    }
}
