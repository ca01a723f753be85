//! Recovery codes: ten per set, each 75 random bits written as three groups
//! of five characters from an alphabet with no look-alikes (no 0, O, 1 or
//! I), e.g. `7KQ2M-XH9RT-C4WNZ`. Stored only as argon2id hashes (ASVS 6.5.2:
//! a secret under 112 bits needs a password hash), each spent once.

use zeroize::Zeroizing;

use crate::domain::error::AuthError;

/// Codes in a set.
pub const CODES_PER_SET: usize = 10;
/// 32 symbols: 5 bits each.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const GROUPS: usize = 3;
const GROUP_CHARS: usize = 5;
const CODE_CHARS: usize = GROUPS * GROUP_CHARS;

/// A recovery code in its canonical form (upper case, no separators); wiped
/// when dropped and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(Zeroizing<String>);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode([REDACTED])")
    }
}

impl RecoveryCode {
    /// Draws a new code from the OS's random number generator.
    pub fn generate() -> Result<Self, AuthError> {
        let mut bytes = Zeroizing::new([0u8; CODE_CHARS]);
        getrandom::fill(bytes.as_mut_slice()).map_err(AuthError::internal)?;
        // 256 is a multiple of 32: taking each byte modulo 32 is unbiased.
        let code = bytes
            .iter()
            .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
            .collect();
        Ok(Self(Zeroizing::new(code)))
    }

    /// A code as typed: case and the separators people add (`-`, spaces)
    /// do not matter. `MfaCodeInvalid` for anything that cannot be one.
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        if raw.len() > 4 * CODE_CHARS {
            return Err(AuthError::MfaCodeInvalid);
        }
        let code: String = raw
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if code.len() != CODE_CHARS || !code.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(AuthError::MfaCodeInvalid);
        }
        Ok(Self(Zeroizing::new(code)))
    }

    /// What is hashed.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// As shown to the user once: `XXXXX-XXXXX-XXXXX`.
    pub fn display(&self) -> String {
        self.0
            .as_bytes()
            .chunks(GROUP_CHARS)
            .map(|group| String::from_utf8_lossy(group).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// A new set of [`CODES_PER_SET`] codes.
pub fn generate_set() -> Result<Vec<RecoveryCode>, AuthError> {
    (0..CODES_PER_SET)
        .map(|_| RecoveryCode::generate())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_code_reads_back_however_it_is_typed() {
        let code = RecoveryCode::generate().unwrap();
        let shown = code.display();
        assert_eq!(shown.len(), CODE_CHARS + GROUPS - 1);
        assert_eq!(RecoveryCode::parse(&shown).unwrap(), code);
        assert_eq!(RecoveryCode::parse(&shown.to_lowercase()).unwrap(), code);
        assert_eq!(RecoveryCode::parse(&shown.replace('-', " ")).unwrap(), code);
        assert_ne!(RecoveryCode::generate().unwrap(), code);
    }

    #[test]
    fn a_set_has_ten_codes_of_75_bits() {
        let set = generate_set().unwrap();
        assert_eq!(set.len(), CODES_PER_SET);
        assert!((CODE_CHARS as f64) * (ALPHABET.len() as f64).log2() >= 64.0);
    }

    #[test]
    fn look_alikes_and_wrong_lengths_are_no_code() {
        for raw in [
            "",
            "ABCDE-FGHJK-MNPQ",
            "ABCDE-FGHJK-MNPQRS",
            "ABCDE-FGHJK-MNPQ0",
            "ABCDE-FGHJK-MNPQO",
            "ABCDE-FGHJK-MNPQ1",
            "ABCDE-FGHJK-MNPQI",
            "ABCDÉ-FGHJK-MNPQR",
            &"A".repeat(10_000),
        ] {
            assert!(
                matches!(RecoveryCode::parse(raw), Err(AuthError::MfaCodeInvalid)),
                "{raw:?}"
            );
        }
        assert!(RecoveryCode::parse("ABCDE-FGHJK-MNPQR").is_ok());
    }
}
