//! authd's argon2 engine, the default implementation: the computation at the
//! C reference's speed, in memory that goes back to the system once the
//! hashes stop.
//!
//! The `argon2` crate stays authd's reference for everything around the
//! hash: it parses and writes the PHC strings, validates the parameters and
//! decides the output's length, exactly as before, so stored hashes keep
//! working. Only the memory-hard part, filling `m` KiB of blocks `t` times,
//! is computed here, by `argon2-rust`: a port of the C reference
//! (phc-winner-argon2) whose compression function is picked at run time
//! among AVX-512, AVX2, SSE2 and NEON, so one portable binary runs each
//! machine's best. On authd's parameters it hashes about twice as fast as
//! the crate and 1.3–1.4× as fast as libargon2 built for the machine
//! (BENCHMARKS.md, "argon2"). The unit tests below and the `argon2_engine`
//! fuzz target check that both give the same output, and the same errors.
//!
//! Memory: a hash's blocks are an anonymous mapping of their own (never the
//! allocator's heap, whose per-thread arenas kept every freed 19 MiB block
//! for good), borrowed from a small pool so that back-to-back hashes skip
//! the page faults of fresh memory. A block unused for
//! [`ARGON2_MEMORY_LINGER`] is unmapped, so resident memory follows the
//! hashes in flight: at most one block per concurrent hash, none soon after
//! the last one.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::password_hash::{self, CustomizedPasswordHasher, PasswordHasher};
use argon2::{Algorithm, Argon2, Params, Version};

/// How long a block of memory stays mapped after its hash, for the next one
/// to reuse. Longer than the gap between hashes under load (they queue),
/// short enough that resident memory is back to idle within seconds.
pub const ARGON2_MEMORY_LINGER: Duration = Duration::from_secs(1);

/// Computes argon2 for authd's password hashing (the default
/// [`Argon2Implementation`](super::Argon2Implementation)): a drop-in for the
/// `argon2` crate's `Argon2` in `hash_password` and `verify_password` (the
/// same traits, strings and errors), without a secret key.
#[derive(Clone)]
pub struct Argon2Engine {
    /// What new hashes are made with.
    algorithm: Algorithm,
    version: Version,
    params: Params,
    arenas: Arc<Arenas>,
}

impl std::fmt::Debug for Argon2Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Engine")
            .field("algorithm", &self.algorithm)
            .field("version", &self.version)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Argon2Engine {
    /// Hashes new passwords with these; verifies whatever a PHC string says.
    /// Memory is kept between hashes only for blocks up to `params`' size:
    /// a stored hash with a larger cost maps its own and gives it back.
    pub fn new(algorithm: Algorithm, version: Version, params: Params) -> Self {
        Self::with_linger(algorithm, version, params, ARGON2_MEMORY_LINGER)
    }

    fn with_linger(
        algorithm: Algorithm,
        version: Version,
        params: Params,
        linger: Duration,
    ) -> Self {
        let arenas = Arc::new(Arenas {
            largest_kept: params.block_count(),
            linger,
            parked: Mutex::new(Parked::default()),
        });
        Self {
            algorithm,
            version,
            params,
            arenas,
        }
    }

    /// Writes into `out` what
    /// `Argon2::new_with_secret(secret, algorithm, version, params)
    /// .hash_password_into(password, salt, out)` of the `argon2` crate
    /// writes, and fails where it fails, with the same error. (The
    /// arguments are those two calls', in their order.)
    #[allow(clippy::too_many_arguments)]
    pub fn hash_into(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: &Params,
        secret: &[u8],
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::Result<()> {
        check_inputs(params, secret, password, salt, out)?;
        match self.compute(algorithm, version, params, secret, password, salt, out) {
            Ok(()) => Ok(()),
            Err(argon2_rust::Error::MemoryAllocationError) => Err(argon2::Error::OutOfMemory),
            // argon2-rust refusing what the reference accepts: no such case
            // is known (the differential tests look for them). Should one
            // appear, the reference computes the hash, so that no stored
            // hash ever stops verifying because of the engine.
            Err(refusal) => {
                tracing::warn!(%refusal, %params, "argon2-rust refused, the argon2 crate hashes");
                Argon2::new_with_secret(secret, algorithm, version, params.clone())?
                    .hash_password_into(password, salt, out)
            }
        }
    }

    /// The hash by argon2-rust, in a kept block of memory when the cost
    /// allows, else in one of its own.
    #[allow(clippy::too_many_arguments)]
    fn compute(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: &Params,
        secret: &[u8],
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2_rust::Error> {
        use argon2_rust::params::{Memory, TagLen};
        let engine_params = argon2_rust::Params::builder()
            .memory(Memory::kib(params.m_cost().into()))
            .passes(params.t_cost())
            .lanes(params.p_cost())
            // Lanes one after the other on the calling thread: a hash holds
            // one hashing slot, so it uses one core.
            .threads(1)
            .tag_len(TagLen::bytes(out.len() as u64))
            .build()?;
        let engine = argon2_rust::Argon2::new(
            match algorithm {
                Algorithm::Argon2d => argon2_rust::Algorithm::Argon2d,
                Algorithm::Argon2i => argon2_rust::Algorithm::Argon2i,
                Algorithm::Argon2id => argon2_rust::Algorithm::Argon2id,
            },
            match version {
                Version::V0x10 => argon2_rust::Version::V0x10,
                Version::V0x13 => argon2_rust::Version::V0x13,
            },
            engine_params,
        );
        let ad = params.data();
        if params.block_count() > self.arenas.largest_kept {
            return engine.hash_into_with_ad(password, salt, secret, ad, out);
        }
        let mut hasher = self.arenas.take().unwrap_or_else(|| engine.hasher());
        hasher.set_argon2(engine);
        let outcome = hasher.hash_into_with_ad(password, salt, secret, ad, out);
        Arenas::park(&self.arenas, hasher);
        outcome
    }

    /// Blocks of memory kept for the next hash now.
    #[cfg(test)]
    fn kept_arenas(&self) -> usize {
        self.arenas.lock().hashers.len()
    }

    fn hash_phc(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: &[u8],
        salt: &[u8],
    ) -> password_hash::Result<PasswordHash> {
        // As the `argon2` crate's `hash_password_with_salt`, step by step.
        let salt = Salt::new(salt)?;
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let out = buffer
            .get_mut(..output_len)
            .ok_or(password_hash::Error::OutputSize)?;
        self.hash_into(algorithm, version, &params, &[], password, &salt, out)?;
        let output = Output::new(out)?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

/// The `argon2` crate's checks before it hashes, in its order, so that both
/// refuse the same inputs with the same error.
fn check_inputs(
    params: &Params,
    secret: &[u8],
    password: &[u8],
    salt: &[u8],
    out: &[u8],
) -> argon2::Result<()> {
    if secret.len() > argon2::MAX_SECRET_LEN {
        return Err(argon2::Error::SecretTooLong);
    }
    if out.len() < params.output_len().unwrap_or(Params::MIN_OUTPUT_LEN) {
        return Err(argon2::Error::OutputTooShort);
    }
    if out.len() > params.output_len().unwrap_or(Params::MAX_OUTPUT_LEN) {
        return Err(argon2::Error::OutputTooLong);
    }
    if password.len() > argon2::MAX_PWD_LEN {
        return Err(argon2::Error::PwdTooLong);
    }
    if salt.len() < argon2::MIN_SALT_LEN {
        return Err(argon2::Error::SaltTooShort);
    }
    if salt.len() > argon2::MAX_SALT_LEN {
        return Err(argon2::Error::SaltTooLong);
    }
    Ok(())
}

/// New hashes, with a random salt through the trait's `hash_password`, made
/// with the engine's algorithm, version and parameters.
impl PasswordHasher<PasswordHash> for Argon2Engine {
    fn hash_password_with_salt(
        &self,
        password: &[u8],
        salt: &[u8],
    ) -> password_hash::Result<PasswordHash> {
        self.hash_phc(
            self.algorithm,
            self.version,
            self.params.clone(),
            password,
            salt,
        )
    }
}

/// What `verify_password` computes (the `password_hash` crate implements it
/// for every `CustomizedPasswordHasher`): the algorithm, version and
/// parameters of the stored string, which the `argon2` crate parsed.
impl CustomizedPasswordHasher<PasswordHash> for Argon2Engine {
    type Params = Params;

    fn hash_password_customized(
        &self,
        password: &[u8],
        salt: &[u8],
        algorithm: Option<&str>,
        version: Option<u32>,
        params: Params,
    ) -> password_hash::Result<PasswordHash> {
        // The crate's defaults when the string names none.
        let algorithm = algorithm
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        self.hash_phc(algorithm, version, params, password, salt)
    }
}

/// Blocks of memory between hashes, each inside an argon2-rust `Hasher`
/// (which maps blocks of 2 MiB and more with `mmap`, unmaps them when
/// dropped, and wipes them after every hash).
///
/// A hash takes a parked block or, if none is, maps a new one; so there are
/// never more blocks than hashes that ran at once, and with authd's hashing
/// slots never more than the slots.
struct Arenas {
    /// Larger blocks (in 1 KiB blocks) are never kept: a stored hash with
    /// an exceptional cost must not pin its memory.
    largest_kept: usize,
    linger: Duration,
    parked: Mutex<Parked>,
}

#[derive(Default)]
struct Parked {
    /// With when each was parked, most recent last.
    hashers: Vec<(argon2_rust::Hasher, Instant)>,
    /// Whether a thread is there to unmap the blocks that linger too long.
    reaper: bool,
}

impl Arenas {
    fn lock(&self) -> std::sync::MutexGuard<'_, Parked> {
        // A panic while holding the lock leaves a list that is still whole.
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently parked block: the likeliest still in the caches.
    fn take(&self) -> Option<argon2_rust::Hasher> {
        self.lock().hashers.pop().map(|(hasher, _)| hasher)
    }

    /// Keeps `hasher`'s block for the linger ([`ARGON2_MEMORY_LINGER`]),
    /// then unmaps it, from a thread that lives only while blocks are kept.
    /// Spawned from a hash thread, it inherits its idle scheduling class,
    /// which is enough for the microseconds it needs even on a busy machine.
    fn park(arenas: &Arc<Self>, hasher: argon2_rust::Hasher) {
        let mut parked = arenas.lock();
        if !parked.reaper {
            let weak = Arc::downgrade(arenas);
            let spawned = std::thread::Builder::new()
                .name("argon2-reaper".into())
                .spawn(move || Self::reap(&weak));
            if spawned.is_err() {
                // No thread to give it back later: give it back now.
                drop(parked);
                drop(hasher);
                return;
            }
            parked.reaper = true;
        }
        parked.hashers.push((hasher, Instant::now()));
    }

    /// Unmaps the blocks parked longer than the linger, until none is left
    /// (or the engine is gone).
    fn reap(arenas: &Weak<Self>) {
        loop {
            let Some(arenas) = arenas.upgrade() else {
                return;
            };
            let mut parked = arenas.lock();
            let now = Instant::now();
            let fresh = parked
                .hashers
                .iter()
                .position(|(_, since)| now.duration_since(*since) < arenas.linger)
                .unwrap_or(parked.hashers.len());
            let expired: Vec<_> = parked.hashers.drain(..fresh).collect();
            let wait = match parked.hashers.first() {
                Some((_, oldest)) => arenas.linger.saturating_sub(now.duration_since(*oldest)),
                None => {
                    parked.reaper = false;
                    return;
                }
            };
            drop(parked);
            // Unmapped outside the lock: hashes need not wait for it.
            drop(expired);
            drop(arenas);
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordVerifier as _;
    use argon2::{AssociatedData, ParamsBuilder};

    use super::*;

    fn engine() -> Argon2Engine {
        Argon2Engine::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
    }

    /// RFC 9106, section 5: every input set, 32 KiB, 3 passes, 4 lanes.
    #[test]
    fn rfc_9106_test_vectors() {
        let vectors = [
            (
                Algorithm::Argon2d,
                "512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb",
            ),
            (
                Algorithm::Argon2i,
                "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8",
            ),
            (
                Algorithm::Argon2id,
                "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659",
            ),
        ];
        let params = ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .data(AssociatedData::new(&[4; 12]).unwrap())
            .output_len(32)
            .build()
            .unwrap();
        let (secret, password, salt) = ([3u8; 8], [1u8; 32], [2u8; 16]);
        for (algorithm, expected) in vectors {
            let mut out = [0u8; 32];
            engine()
                .hash_into(
                    algorithm,
                    Version::V0x13,
                    &params,
                    &secret,
                    &password,
                    &salt,
                    &mut out,
                )
                .unwrap();
            assert_eq!(hex(&out), expected, "{algorithm}");
            let mut reference = [0u8; 32];
            Argon2::new_with_secret(&secret, algorithm, Version::V0x13, params.clone())
                .unwrap()
                .hash_password_into(&password, &salt, &mut reference)
                .unwrap();
            assert_eq!(out, reference, "{algorithm}: the argon2 crate agrees");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// A small generator, seeded from the OS; every failure prints its
    /// inputs.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }

        fn in_range(&mut self, low: usize, high: usize) -> usize {
            low + self.below((high - low + 1) as u64) as usize
        }

        fn bytes(&mut self, low: usize, high: usize) -> Vec<u8> {
            let len = self.in_range(low, high);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    /// One case: the engine and the crate on the same inputs, compared
    /// output for output and error for error.
    #[allow(clippy::too_many_arguments)]
    fn same_as_the_crate(
        engine: &Argon2Engine,
        algorithm: Algorithm,
        version: Version,
        params: &Params,
        secret: &[u8],
        password: &[u8],
        salt: &[u8],
        out_len: usize,
    ) {
        let case = format!(
            "{algorithm} {version:?} {params} out={out_len} secret={secret:?} \
             password={password:?} salt={salt:?} data={:?}",
            params.data()
        );
        let mut out = vec![0u8; out_len];
        let ours = engine.hash_into(algorithm, version, params, secret, password, salt, &mut out);
        let mut expected = vec![0u8; out_len];
        let theirs = Argon2::new_with_secret(secret, algorithm, version, params.clone())
            .and_then(|argon2| argon2.hash_password_into(password, salt, &mut expected));
        assert_eq!(ours, theirs, "{case}");
        assert_eq!(out, expected, "{case}");
        if ours.is_ok() {
            // And never through the fallback: argon2-rust computed it.
            let mut again = vec![0u8; out_len];
            engine
                .compute(
                    algorithm, version, params, secret, password, salt, &mut again,
                )
                .unwrap_or_else(|error| panic!("argon2-rust refused ({error}): {case}"));
            assert_eq!(again, expected, "{case}");
        }
    }

    /// Thousands of random passwords, salts, secrets, associated data and
    /// parameter sets (small memory, so that it runs in seconds), through
    /// one engine, so that kept blocks are reused across sizes.
    #[test]
    fn random_inputs_hash_as_the_argon2_crate_does() {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).unwrap();
        let mut random = Random(u64::from_le_bytes(seed));
        let engine = engine();
        for _ in 0..3000 {
            let algorithm = [Algorithm::Argon2d, Algorithm::Argon2i, Algorithm::Argon2id]
                [random.in_range(0, 2)];
            let version = [Version::V0x10, Version::V0x13][random.in_range(0, 1)];
            let p_cost = random.in_range(1, 4) as u32;
            let m_cost = random.in_range(8 * p_cost as usize, 160) as u32;
            let t_cost = random.in_range(1, 3) as u32;
            let out_len = random.in_range(4, 64);
            let mut builder = ParamsBuilder::new();
            builder.m_cost(m_cost).t_cost(t_cost).p_cost(p_cost);
            // Unset, matching the output, or not matching it (an error).
            match random.below(4) {
                0 => {}
                1 => {
                    builder.output_len(random.in_range(4, 64));
                }
                _ => {
                    builder.output_len(out_len);
                }
            }
            if random.below(4) == 0 {
                builder.data(AssociatedData::new(&random.bytes(0, 32)).unwrap());
            }
            let params = builder.build().unwrap();
            let secret = if random.below(4) == 0 {
                random.bytes(0, 32)
            } else {
                Vec::new()
            };
            let password = random.bytes(0, 128);
            // Now and then too short a salt (an error).
            let salt = random.bytes(6, 48);
            same_as_the_crate(
                &engine, algorithm, version, &params, &secret, &password, &salt, out_len,
            );
        }
    }

    /// Costs whose memory is mapped rather than taken from the heap (2 MiB
    /// and more), kept between hashes or not, and over several lanes.
    #[test]
    fn mapped_memory_hashes_as_the_argon2_crate_does() {
        let engine = Argon2Engine::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(3072, 1, 1, None).unwrap(),
        );
        for (m_cost, p_cost) in [(3072, 1), (2048, 4), (4096, 1), (3000, 3)] {
            let params = Params::new(m_cost, 1, p_cost, None).unwrap();
            same_as_the_crate(
                &engine,
                Algorithm::Argon2id,
                Version::V0x13,
                &params,
                &[],
                b"correct horse battery staple",
                b"saltsaltsaltsalt",
                32,
            );
        }
    }

    #[test]
    fn phc_strings_are_interchangeable_with_the_argon2_crate() {
        let engine = engine();
        let crate_argon2 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        );
        let ours = engine.hash_password(b"correct horse").unwrap();
        assert!(
            ours.to_string().starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{ours}"
        );
        crate_argon2
            .verify_password(b"correct horse", &ours)
            .expect("the crate verifies the engine's hash");
        let theirs = crate_argon2.hash_password(b"correct horse").unwrap();
        engine
            .verify_password(b"correct horse", &theirs)
            .expect("the engine verifies the crate's hash");
        // Another algorithm, version, cost and output length, as an old
        // stored hash may have.
        let old = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(256, 3, 2, Some(16)).unwrap(),
        )
        .hash_password(b"hunter42")
        .unwrap();
        assert!(old.to_string().starts_with("$argon2i$v=16$m=256,t=3,p=2$"));
        engine
            .verify_password(b"hunter42", &old)
            .expect("the engine verifies an old hash");
        assert_eq!(
            engine.verify_password(b"wrong horse", &ours),
            Err(password_hash::Error::PasswordInvalid)
        );
    }

    #[test]
    fn kept_memory_is_given_back_after_the_linger() {
        let engine = Argon2Engine::with_linger(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(2048, 1, 1, None).unwrap(),
            Duration::from_millis(50),
        );
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| engine.hash_password(b"correct horse").unwrap());
            }
        });
        let kept = engine.kept_arenas();
        assert!(
            (1..=3).contains(&kept),
            "one block per concurrent hash: {kept}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while engine.kept_arenas() > 0 {
            assert!(Instant::now() < deadline, "blocks still kept");
            std::thread::sleep(Duration::from_millis(10));
        }
        // And kept again by the next hash, with a new reaper.
        engine.hash_password(b"correct horse").unwrap();
        assert_eq!(engine.kept_arenas(), 1);
    }

    #[test]
    fn larger_costs_than_configured_are_never_kept() {
        let engine = engine();
        let params = Params::new(4096, 1, 1, None).unwrap();
        engine
            .hash_phc(
                Algorithm::Argon2id,
                Version::V0x13,
                params,
                b"correct horse",
                b"saltsaltsaltsalt",
            )
            .unwrap();
        assert_eq!(engine.kept_arenas(), 0);
    }
}
