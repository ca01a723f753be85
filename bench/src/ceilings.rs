//! What the hardware allows, measured in the same run: the signature check
//! a token costs, and argon2id hashes per second on every core, by authd's
//! argon2 engine, by the argon2 crate (the reference authd's PHC strings go
//! through) and by the C reference implementation.

use std::hint::black_box;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use authd::hashing::Argon2Engine;
use ed25519_dalek::{Signer as _, SigningKey};

/// Argon2id parameters, authd's defaults unless told otherwise.
#[derive(Debug, Clone, Copy)]
pub struct HashParameters {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

pub const DEFAULT_HASHING: HashParameters = HashParameters {
    memory_kib: 19456,
    iterations: 2,
    parallelism: 1,
};

/// One Ed25519 verification, single-threaded, keys already parsed.
pub fn signature_verify_time(duration: Duration) -> Duration {
    let key = SigningKey::from_bytes(&[3; 32]);
    let public = key.verifying_key();
    // The size of authd's signing input.
    let message = [b'x'; 300];
    let signature = key.sign(&message);
    let started = Instant::now();
    let mut count = 0u32;
    while started.elapsed() < duration {
        for _ in 0..100 {
            public
                .verify_strict(black_box(&message), black_box(&signature))
                .expect("valid signature");
        }
        count += 100;
    }
    started.elapsed() / count
}

/// Which implementation hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argon2Implementation {
    /// The argon2 crate as authd calls it: a fresh memory block per hash.
    Crate,
    /// The argon2 crate with one memory block per thread, reused.
    CrateReusedMemory,
    /// libargon2, the C reference implementation (through argon2-sys).
    Reference,
    /// What authd hashes with (`src/hashing/engine.rs`): argon2-rust,
    /// one engine shared by the threads as authd's hashing slots share it.
    Engine,
}

impl Argon2Implementation {
    pub fn label(self) -> &'static str {
        match self {
            Self::Crate => "argon2 crate (as authd uses it)",
            Self::CrateReusedMemory => "argon2 crate, memory block reused",
            Self::Reference => "libargon2 (C reference, -march=native)",
            Self::Engine => "authd's engine (argon2-rust, runtime SIMD dispatch)",
        }
    }
}

const PASSWORD: &[u8] = b"bench-Pa55word-for-load";
const SALT: [u8; 16] = [7; 16];

/// The argon2 crate's argon2id at `parameters`, for 32-byte hashes.
fn argon2id(parameters: HashParameters) -> Argon2<'static> {
    let params = Params::new(
        parameters.memory_kib,
        parameters.iterations,
        parameters.parallelism,
        Some(32),
    )
    .expect("argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes per second of `implementation` over `threads` threads.
pub fn hash_rate(
    implementation: Argon2Implementation,
    parameters: HashParameters,
    threads: usize,
    duration: Duration,
) -> f64 {
    hash_rates(&[implementation], parameters, threads, duration)[0]
}

/// Hashes per second of each implementation, over `duration` each on
/// `threads` threads. The implementations take turns of a second, so that
/// the machine's drift (shared CPUs) falls on all of them alike; each thread
/// lives through every turn, as authd's hash threads do, so no turn pays for
/// a thread's first allocations.
pub fn hash_rates(
    implementations: &[Argon2Implementation],
    parameters: HashParameters,
    threads: usize,
    duration: Duration,
) -> Vec<f64> {
    let slice = Duration::from_secs(1).min(duration);
    let turns = (duration.as_secs_f64() / slice.as_secs_f64()).ceil() as u32;
    let engine = engine(parameters);
    let per_thread: Vec<Vec<(u64, Duration)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let engine = engine.clone();
                scope.spawn(move || {
                    let mut hasher = Hasher::new(parameters, engine);
                    let mut done = vec![(0, Duration::ZERO); implementations.len()];
                    for _ in 0..turns {
                        for ((hashes, time), implementation) in done.iter_mut().zip(implementations)
                        {
                            let started = Instant::now();
                            *hashes += hasher.hash_for(*implementation, slice);
                            *time += started.elapsed();
                        }
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("hash thread"))
            .collect()
    });
    (0..implementations.len())
        .map(|index| {
            per_thread
                .iter()
                .map(|done| {
                    let (hashes, time) = done[index];
                    hashes as f64 / time.as_secs_f64()
                })
                .sum()
        })
        .collect()
}

/// One thread's hashing state: the crate's hasher, a memory block kept
/// for the implementation that reuses it, and the shared engine.
struct Hasher {
    parameters: HashParameters,
    argon2: Argon2<'static>,
    memory: Vec<Block>,
    engine: Argon2Engine,
    output: [u8; 32],
}

impl Hasher {
    fn new(parameters: HashParameters, engine: Argon2Engine) -> Self {
        let argon2 = argon2id(parameters);
        let memory = vec![Block::default(); argon2.params().block_count()];
        Self {
            parameters,
            argon2,
            memory,
            engine,
            output: [0; 32],
        }
    }

    /// How many hashes `implementation` makes in `duration`.
    fn hash_for(&mut self, implementation: Argon2Implementation, duration: Duration) -> u64 {
        let started = Instant::now();
        let mut count = 0;
        while started.elapsed() < duration {
            match implementation {
                Argon2Implementation::Crate => self
                    .argon2
                    .hash_password_into(PASSWORD, &SALT, &mut self.output)
                    .expect("argon2 hash"),
                Argon2Implementation::CrateReusedMemory => self
                    .argon2
                    .hash_password_into_with_memory(
                        PASSWORD,
                        &SALT,
                        &mut self.output,
                        &mut self.memory,
                    )
                    .expect("argon2 hash"),
                Argon2Implementation::Reference => {
                    reference_hash(self.parameters, PASSWORD, &SALT, &mut self.output);
                }
                Argon2Implementation::Engine => {
                    engine_hash(&self.engine, self.argon2.params(), &mut self.output);
                }
            }
            black_box(&self.output);
            count += 1;
        }
        count
    }
}

/// The three must agree, or the comparison means nothing.
pub fn implementations_agree(parameters: HashParameters) -> bool {
    let argon2 = argon2id(parameters);
    let mut output = [0u8; 32];
    argon2
        .hash_password_into(PASSWORD, &SALT, &mut output)
        .expect("argon2 hash");
    let mut reference = [0u8; 32];
    reference_hash(parameters, PASSWORD, &SALT, &mut reference);
    let mut engine = [0u8; 32];
    engine_hash(&self::engine(parameters), argon2.params(), &mut engine);
    reference == output && engine == output
}

/// authd's engine, configured as authd configures it.
fn engine(parameters: HashParameters) -> Argon2Engine {
    Argon2Engine::new(
        Algorithm::Argon2id,
        Version::V0x13,
        argon2id(parameters).params().clone(),
    )
}

/// argon2id by authd's engine, into `output`.
fn engine_hash(engine: &Argon2Engine, params: &Params, output: &mut [u8]) {
    engine
        .hash_into(
            Algorithm::Argon2id,
            Version::V0x13,
            params,
            &[],
            PASSWORD,
            &SALT,
            output,
        )
        .expect("argon2 hash");
}

/// argon2id by libargon2, into `output`.
fn reference_hash(parameters: HashParameters, password: &[u8], salt: &[u8], output: &mut [u8]) {
    // SAFETY: every pointer comes with its own slice's length, and the
    // library writes only `output.len()` bytes into `output`.
    let status = unsafe {
        argon2_sys::argon2id_hash_raw(
            parameters.iterations,
            parameters.memory_kib,
            parameters.parallelism,
            password.as_ptr().cast(),
            password.len(),
            salt.as_ptr().cast(),
            salt.len(),
            output.as_mut_ptr().cast(),
            output.len(),
        )
    };
    assert_eq!(status, 0, "libargon2 failed");
}
