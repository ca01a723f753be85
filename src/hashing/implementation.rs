//! Which code computes argon2, chosen by the operator (`--argon2-engine`):
//! authd's engine on argon2-rust (the default, about twice as fast), or the
//! `argon2` crate's own implementation, RustCrypto's, older and more widely
//! reviewed. Both read and write the same PHC strings, so an operator can
//! switch either way at any restart; the tests and the `argon2_engine` fuzz
//! target hold both to the same outputs.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{self, CustomizedPasswordHasher, PasswordHasher};
use argon2::{Algorithm, Argon2, Params, Version};

use super::engine::Argon2Engine;

/// The argon2 implementation hashes are computed with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Argon2Implementation {
    /// argon2-rust, a port of the C reference with run-time SIMD dispatch,
    /// in memory mapped per hash (`super::engine`).
    #[default]
    Argon2Rust,
    /// The `argon2` crate (RustCrypto), in memory from the allocator.
    RustCrypto,
}

impl Argon2Implementation {
    /// Every choice, by the name the flag takes.
    pub const ALL: [Self; 2] = [Self::Argon2Rust, Self::RustCrypto];

    /// The name the flag takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Argon2Rust => "argon2-rust",
            Self::RustCrypto => "rustcrypto",
        }
    }
}

impl fmt::Display for Argon2Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Argon2Implementation {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|choice| choice.name() == name)
            .ok_or_else(|| format!("expected argon2-rust or rustcrypto, not {name:?}"))
    }
}

/// Computes argon2 with the chosen implementation: the `argon2` crate's
/// `hash_password` and `verify_password` (the same traits, strings and
/// errors) whichever computes.
#[derive(Clone)]
pub enum Argon2Hasher {
    Argon2Rust(Argon2Engine),
    RustCrypto(Argon2<'static>),
}

impl Argon2Hasher {
    /// Hashes new passwords with these; verifies whatever a PHC string says.
    pub fn new(
        implementation: Argon2Implementation,
        algorithm: Algorithm,
        version: Version,
        params: Params,
    ) -> Self {
        match implementation {
            Argon2Implementation::Argon2Rust => {
                Self::Argon2Rust(Argon2Engine::new(algorithm, version, params))
            }
            Argon2Implementation::RustCrypto => {
                Self::RustCrypto(Argon2::new(algorithm, version, params))
            }
        }
    }
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Argon2Rust(engine) => engine.fmt(f),
            Self::RustCrypto(_) => f.write_str("Argon2 (RustCrypto)"),
        }
    }
}

impl PasswordHasher<PasswordHash> for Argon2Hasher {
    fn hash_password_with_salt(
        &self,
        password: &[u8],
        salt: &[u8],
    ) -> password_hash::Result<PasswordHash> {
        match self {
            Self::Argon2Rust(engine) => engine.hash_password_with_salt(password, salt),
            Self::RustCrypto(argon2) => argon2.hash_password_with_salt(password, salt),
        }
    }
}

impl CustomizedPasswordHasher<PasswordHash> for Argon2Hasher {
    type Params = Params;

    fn hash_password_customized(
        &self,
        password: &[u8],
        salt: &[u8],
        algorithm: Option<&str>,
        version: Option<u32>,
        params: Params,
    ) -> password_hash::Result<PasswordHash> {
        match self {
            Self::Argon2Rust(engine) => {
                engine.hash_password_customized(password, salt, algorithm, version, params)
            }
            Self::RustCrypto(argon2) => {
                argon2.hash_password_customized(password, salt, algorithm, version, params)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordVerifier as _;

    use super::*;

    fn hasher(implementation: Argon2Implementation) -> Argon2Hasher {
        Argon2Hasher::new(
            implementation,
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
    }

    #[test]
    fn the_flag_names_every_implementation_and_nothing_else() {
        for choice in Argon2Implementation::ALL {
            assert_eq!(choice.name().parse(), Ok(choice));
        }
        assert!("argon2".parse::<Argon2Implementation>().is_err());
        assert_eq!(
            Argon2Implementation::default(),
            Argon2Implementation::Argon2Rust
        );
    }

    #[test]
    fn either_implementation_verifies_what_the_other_hashed() {
        let salt = b"a salt of sixteen";
        for (maker, checker) in [
            (
                Argon2Implementation::Argon2Rust,
                Argon2Implementation::RustCrypto,
            ),
            (
                Argon2Implementation::RustCrypto,
                Argon2Implementation::Argon2Rust,
            ),
        ] {
            let made = hasher(maker)
                .hash_password_with_salt(b"correct horse", salt)
                .unwrap();
            let again = hasher(checker)
                .hash_password_with_salt(b"correct horse", salt)
                .unwrap();
            assert_eq!(
                made.to_string(),
                again.to_string(),
                "{maker} then {checker}"
            );
            assert!(
                hasher(checker)
                    .verify_password(b"correct horse", &made)
                    .is_ok()
            );
            assert_eq!(
                hasher(checker).verify_password(b"wrong horse", &made),
                Err(password_hash::Error::PasswordInvalid)
            );
        }
    }
}
