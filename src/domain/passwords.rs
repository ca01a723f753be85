//! The password hashing policy: argon2id with the configured cost, a dummy
//! hash that makes an unknown username cost what a wrong password costs,
//! ceilings on what a stored hash may cost, and rehashing on login when the
//! configured cost changed. The computing, its scheduling and admission are
//! `crate::hashing`'s.

use std::time::{Duration, Instant};

use argon2::{Algorithm, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version};

use super::credentials::Password;
use super::credentials::recovery_codes::RecoveryCode;
use super::error::AuthError;
use crate::deadline::Deadline;
use crate::hashing::{Argon2Hasher, Argon2Implementation, HashError, HashPool, HashTicket};

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
    /// The longest a call may expect to wait for its hash to be done, its
    /// turn included; a call expected to take longer, or longer than its
    /// client's deadline, is refused at once with [`AuthError::Overloaded`].
    pub max_wait: Duration,
    /// What computes the hashes (`--argon2-engine`).
    pub implementation: Argon2Implementation,
}

/// Ceilings on the parameters of a stored hash: 1 GiB, far above any sane
/// configuration, and still bounded.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

/// Hashes timed at start for the first estimate of the hash time.
const FIRST_ESTIMATE_HASHES: usize = 3;

/// The outcome of checking a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The user exists and the password is theirs.
    pub matches: bool,
    /// A fresh hash with the configured parameters, when the stored one was
    /// made with others (OWASP: upgrade hashes on login).
    pub rehashed: Option<String>,
}

/// Recovery codes' argon2id cost: 75 random bits need no memory-hard
/// slowdown against guessing, only a salted one-way hash (ASVS 6.5.2), and
/// a Login with a recovery code checks up to ten of them.
const RECOVERY_CODE_MEMORY_KIB: u32 = 1024;
const RECOVERY_CODE_ITERATIONS: u32 = 1;

/// Hashes new passwords and verifies offered ones, and recovery codes.
pub struct PasswordHasher {
    argon2: Argon2Hasher,
    recovery_codes: Argon2Hasher,
    params: Params,
    pool: HashPool,
    /// Verified against when the user does not exist, so that an unknown
    /// username costs as much time as a wrong password and timing reveals
    /// nothing.
    dummy_hash: String,
}

impl PasswordHasher {
    /// Builds the hasher and its dummy hash, and times the first estimate
    /// admission goes by (a few hashes at start).
    pub fn new(settings: &HashingSettings) -> Result<Self, AuthError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(AuthError::internal)?;
        let argon2 = Argon2Hasher::new(
            settings.implementation,
            Algorithm::Argon2id,
            Version::V0x13,
            params.clone(),
        );
        // The fastest of three: one hash may compete with whatever else
        // starts at the same moment, and admission goes by this until hashes
        // in service correct it.
        let mut dummy_hash = String::new();
        let mut first_hash = Duration::MAX;
        for _ in 0..FIRST_ESTIMATE_HASHES {
            let started = Instant::now();
            dummy_hash = argon2
                .hash_password(b"authd dummy password for unknown users")
                .map_err(AuthError::internal)?
                .to_string();
            first_hash = first_hash.min(started.elapsed());
        }
        let recovery_codes = Argon2Hasher::new(
            settings.implementation,
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(RECOVERY_CODE_MEMORY_KIB, RECOVERY_CODE_ITERATIONS, 1, None)
                .map_err(AuthError::internal)?,
        );
        Ok(Self {
            argon2,
            recovery_codes,
            params,
            pool: HashPool::new(settings.max_concurrent, settings.max_wait, first_hash),
            dummy_hash,
        })
    }

    /// Admits one hash if it is expected to be done before `deadline` and
    /// within the configured bound, or refuses at once with
    /// [`AuthError::Overloaded`]. Taken before the work that leads to the
    /// hash (database reads), so that a refused call costs nothing more; a
    /// ticket dropped unused gives its place back.
    pub fn admit(&self, deadline: Option<Deadline>) -> Result<HashTicket, AuthError> {
        Ok(self.pool.admit(deadline)?)
    }

    /// Returns the PHC string of a new salted hash.
    pub async fn hash(&self, ticket: HashTicket, password: Password) -> Result<String, AuthError> {
        let argon2 = self.argon2.clone();
        let hash = self
            .pool
            .run(ticket, move || {
                argon2
                    .hash_password(password.expose_bytes())
                    .map(|hash| hash.to_string())
                    .map_err(HashError::failed)
            })
            .await?;
        Ok(hash)
    }

    /// The PHC strings of new salted hashes of `codes`, in order, computed
    /// as one job.
    pub async fn hash_recovery_codes(
        &self,
        ticket: HashTicket,
        codes: Vec<RecoveryCode>,
    ) -> Result<Vec<String>, AuthError> {
        let argon2 = self.recovery_codes.clone();
        let hashes = self
            .pool
            .run(ticket, move || {
                codes
                    .iter()
                    .map(|code| {
                        argon2
                            .hash_password(code.as_bytes())
                            .map(|hash| hash.to_string())
                            .map_err(HashError::failed)
                    })
                    .collect()
            })
            .await?;
        Ok(hashes)
    }

    /// Which of the stored recovery code hashes `code` matches, if any.
    /// Every hash is checked, matched or not, so the time says nothing of
    /// which code it was. Stored hashes with another cost than recovery
    /// codes' are refused, never computed.
    pub async fn find_recovery_code<Id: Copy + Send + 'static>(
        &self,
        ticket: HashTicket,
        code: RecoveryCode,
        stored: Vec<(Id, String)>,
    ) -> Result<Option<Id>, AuthError> {
        let argon2 = self.recovery_codes.clone();
        let found = self
            .pool
            .run(ticket, move || {
                let mut found = None;
                for (id, phc) in &stored {
                    let hash = PasswordHash::new(phc).map_err(HashError::failed)?;
                    let params = Params::try_from(&hash).map_err(HashError::failed)?;
                    if params.m_cost() != RECOVERY_CODE_MEMORY_KIB
                        || params.t_cost() != RECOVERY_CODE_ITERATIONS
                    {
                        return Err(HashError::failed(format!(
                            "stored recovery code hash with unexpected parameters: {params}"
                        )));
                    }
                    match argon2.verify_password(code.as_bytes(), &hash) {
                        Ok(()) => found = found.or(Some(*id)),
                        Err(argon2::password_hash::Error::PasswordInvalid) => {}
                        Err(other) => return Err(HashError::failed(other)),
                    }
                }
                Ok(found)
            })
            .await?;
        Ok(found)
    }

    /// Whether `password` matches the stored PHC string. With no stored hash
    /// (unknown user) it still does the same work and answers no. A match
    /// against a hash made with other parameters than the configured ones
    /// also returns a new hash to store. Stored parameters beyond sane
    /// ceilings are refused, never computed: such a row could tie up the
    /// server for minutes or exhaust its memory.
    pub async fn verify(
        &self,
        ticket: HashTicket,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verification, AuthError> {
        let argon2 = self.argon2.clone();
        let configured = self.params.clone();
        let user_exists = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.clone());
        // Parsing and the ceilings are cheap: checked before the hash takes
        // a slot.
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
        let outdated = hash.algorithm.as_str() != "argon2id"
            || hash.version != Some(Version::V0x13.into())
            || (params.m_cost(), params.t_cost(), params.p_cost())
                != (
                    configured.m_cost(),
                    configured.t_cost(),
                    configured.p_cost(),
                );
        let verification = self
            .pool
            .run(ticket, move || {
                let matches = match argon2.verify_password(password.expose_bytes(), &hash) {
                    Ok(()) => user_exists,
                    Err(argon2::password_hash::Error::PasswordInvalid) => false,
                    Err(other) => return Err(HashError::failed(other)),
                };
                let rehashed = if matches && outdated {
                    Some(
                        argon2
                            .hash_password(password.expose_bytes())
                            .map_err(HashError::failed)?
                            .to_string(),
                    )
                } else {
                    None
                };
                Ok(Verification { matches, rehashed })
            })
            .await?;
        Ok(verification)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HashingSettings {
        HashingSettings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
            max_wait: Duration::from_secs(10),
            implementation: Argon2Implementation::default(),
        }
    }

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(&settings()).unwrap()
    }

    fn password(text: &str) -> Password {
        Password::parse_existing(text.into()).unwrap()
    }

    async fn hash(hasher: &PasswordHasher, text: &str) -> String {
        let ticket = hasher.admit(None).unwrap();
        hasher.hash(ticket, password(text)).await.unwrap()
    }

    async fn verify(hasher: &PasswordHasher, text: &str, stored: Option<String>) -> Verification {
        let ticket = hasher.admit(None).unwrap();
        hasher.verify(ticket, password(text), stored).await.unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_only_with_the_right_password() {
        let hasher = hasher();
        let phc = hash(&hasher, "correct horse").await;
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let right = verify(&hasher, "correct horse", Some(phc.clone())).await;
        assert_eq!(
            right,
            Verification {
                matches: true,
                rehashed: None
            }
        );
        let wrong = verify(&hasher, "wrong horse", Some(phc)).await;
        assert!(!wrong.matches);
    }

    #[tokio::test]
    async fn a_match_against_older_parameters_comes_with_an_upgraded_hash() {
        let old = hash(&hasher(), "correct horse").await;
        let upgraded_hasher = PasswordHasher::new(&HashingSettings {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 1,
            max_wait: Duration::from_secs(10),
            implementation: Argon2Implementation::default(),
        })
        .unwrap();

        let outcome = verify(&upgraded_hasher, "correct horse", Some(old.clone())).await;

        let rehashed = outcome.rehashed.expect("an upgraded hash");
        assert!(
            rehashed.starts_with("$argon2id$v=19$m=128,t=2,p=1$"),
            "{rehashed}"
        );
        let again = verify(&upgraded_hasher, "correct horse", Some(rehashed)).await;
        assert_eq!(
            again,
            Verification {
                matches: true,
                rehashed: None
            }
        );
        let wrong = verify(&upgraded_hasher, "wrong horse", Some(old)).await;
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
        let hasher = hasher();
        let genuine = hash(&hasher, "correct horse").await;
        // 4 GiB of memory: computing it would take the server down.
        let absurd = genuine.replace("m=64,", "m=4194304,");

        let ticket = hasher.admit(None).unwrap();
        let outcome = hasher
            .verify(ticket, password("correct horse"), Some(absurd))
            .await;

        assert!(
            matches!(outcome, Err(AuthError::Internal(_))),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn unknown_users_never_match_even_the_dummy_password() {
        let hasher = hasher();
        let dummy = "authd dummy password for unknown users";
        assert!(!verify(&hasher, dummy, None).await.matches);
    }

    #[test]
    fn a_hash_that_would_not_be_done_in_time_is_refused_at_once() {
        let hasher = hasher();
        let outcome = hasher.admit(Some(Deadline::after(Duration::ZERO)));
        assert!(
            matches!(outcome, Err(AuthError::Overloaded { .. })),
            "{outcome:?}"
        );
        let strict = PasswordHasher::new(&HashingSettings {
            max_wait: Duration::ZERO,
            ..settings()
        })
        .unwrap();
        let outcome = strict.admit(None);
        assert!(
            matches!(outcome, Err(AuthError::Overloaded { .. })),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_call_cancelled_while_it_waits_gives_its_place_back() {
        let hasher = PasswordHasher::new(&HashingSettings {
            max_concurrent: 1,
            ..settings()
        })
        .unwrap();
        let busy = hasher.pool.occupy_slot().await;
        let ticket = hasher.admit(None).unwrap();
        let waiting = hasher.hash(ticket, password("correct horse"));
        let outcome = tokio::time::timeout(Duration::from_millis(20), waiting).await;
        assert!(outcome.is_err(), "no slot: the call waits");
        assert_eq!(hasher.pool.pending(), 0);
        drop(hasher.admit(None).unwrap());
        assert_eq!(hasher.pool.pending(), 0, "an unused ticket too");
        drop(busy);
        hash(&hasher, "correct horse").await;
        assert_eq!(hasher.pool.pending(), 0);
    }
}
