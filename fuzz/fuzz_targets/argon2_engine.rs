//! authd's argon2 engine (argon2-rust) against the `argon2` crate, on any
//! password, salt, secret, associated data, output length, algorithm,
//! version and cost (memory kept small, so that each input is quick),
//! through one engine, so that its kept memory serves hashes of every size.
//!
//! Property: both give the same output, or both refuse with the same error;
//! no panic. And whichever implementation an operator chooses
//! (`--argon2-engine`), a PHC string comes out as the crate's would.
#![no_main]

use std::sync::LazyLock;

use argon2::password_hash::CustomizedPasswordHasher as _;
use argon2::{Algorithm, Argon2, AssociatedData, Params, ParamsBuilder, Version};
use authd::hashing::{Argon2Engine, Argon2Hasher, Argon2Implementation};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// Configured as authd's tests configure it: costs up to 64 KiB reuse kept
/// memory, larger ones map their own.
static ENGINE: LazyLock<Argon2Engine> = LazyLock::new(|| {
    Argon2Engine::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(64, 1, 1, None).expect("params"),
    )
});

/// Each choice of `--argon2-engine`, configured alike.
static HASHERS: LazyLock<Vec<Argon2Hasher>> = LazyLock::new(|| {
    Argon2Implementation::ALL
        .into_iter()
        .map(|implementation| {
            Argon2Hasher::new(
                implementation,
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(64, 1, 1, None).expect("params"),
            )
        })
        .collect()
});

#[derive(Arbitrary, Debug)]
struct Input {
    algorithm: u8,
    old_version: bool,
    /// Memory beyond the minimum of 8 KiB per lane.
    extra_kib: u8,
    passes: u8,
    lanes: u8,
    output_len: u8,
    /// None: the output's own length; else this one (a mismatch is an error).
    declared_len: Option<u8>,
    data: Vec<u8>,
    secret: Vec<u8>,
    salt: Vec<u8>,
    password: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let algorithm = [Algorithm::Argon2d, Algorithm::Argon2i, Algorithm::Argon2id]
        [usize::from(input.algorithm % 3)];
    let version = if input.old_version {
        Version::V0x10
    } else {
        Version::V0x13
    };
    let lanes = u32::from(input.lanes % 4) + 1;
    let mut builder = ParamsBuilder::new();
    builder
        .m_cost(8 * lanes + u32::from(input.extra_kib % 128))
        .t_cost(u32::from(input.passes % 3) + 1)
        .p_cost(lanes);
    if let Some(len) = input.declared_len {
        builder.output_len(usize::from(len));
    }
    if let Ok(data) = AssociatedData::new(&input.data) {
        builder.data(data);
    }
    let Ok(params) = builder.build() else {
        return;
    };
    let mut ours = vec![0u8; usize::from(input.output_len)];
    let engine = ENGINE.hash_into(
        algorithm,
        version,
        &params,
        &input.secret,
        &input.password,
        &input.salt,
        &mut ours,
    );
    let mut theirs = vec![0u8; usize::from(input.output_len)];
    let reference = Argon2::new_with_secret(&input.secret, algorithm, version, params.clone())
        .and_then(|argon2| argon2.hash_password_into(&input.password, &input.salt, &mut theirs));
    assert_eq!(engine, reference, "{params} {input:?}");
    assert_eq!(ours, theirs, "{params} {input:?}");

    let expected = Argon2::default().hash_password_customized(
        &input.password,
        &input.salt,
        Some(algorithm.ident().as_str()),
        Some(version.into()),
        params.clone(),
    );
    for hasher in HASHERS.iter() {
        let phc = hasher.hash_password_customized(
            &input.password,
            &input.salt,
            Some(algorithm.ident().as_str()),
            Some(version.into()),
            params.clone(),
        );
        assert_eq!(phc, expected, "{hasher:?} {params} {input:?}");
    }
});
