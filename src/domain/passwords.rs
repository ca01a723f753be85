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

/// Hashes new passwords and verifies offered ones.
pub struct PasswordHasher {
    argon2: Argon2<'static>,
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
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = argon2
            .hash_password(b"authd dummy password for unknown users")
            .map_err(AuthError::internal)?
            .to_string();
        Ok(Self {
            argon2,
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
    /// (unknown user) it still does the same work and answers `false`.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, AuthError> {
        let argon2 = self.argon2.clone();
        let user_exists = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .run_blocking(move || {
                let hash = PasswordHash::new(&phc).map_err(AuthError::internal)?;
                match argon2.verify_password(password.expose_bytes(), &hash) {
                    Ok(()) => Ok(true),
                    Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                    Err(other) => Err(AuthError::internal(other)),
                }
            })
            .await?;
        Ok(user_exists && matches)
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
                let _place =
                    QueuePlace::take(&self.queued, self.max_queued).ok_or(AuthError::Overloaded)?;
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
            span.in_scope(work)
        })
        .await
        .map_err(AuthError::internal)?
    }
}

/// A place in the queue for a hash slot, given back when dropped, also when
/// the waiting call is cancelled.
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    fn take(queued: &'a AtomicUsize, max_queued: usize) -> Option<Self> {
        queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < max_queued).then_some(waiting + 1)
            })
            .ok()
            .map(|_| Self(queued))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        assert!(
            hasher
                .verify(password("correct horse"), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(password("wrong horse"), Some(phc))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn unknown_users_never_match_even_the_dummy_password() {
        let hasher = hasher();
        let dummy = password("authd dummy password for unknown users");
        assert!(!hasher.verify(dummy, None).await.unwrap());
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
