//! TOTP (RFC 6238) as every authenticator app reads it: HMAC-SHA-1, 30 s
//! steps, 6 digits, one step of clock skew either way. totp-rs computes the
//! codes and says which step matched; refusing a step used before is the
//! store's job (`FactorStore::spend_totp_step`), atomically.

use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

use crate::domain::error::AuthError;

/// Secret bytes: RFC 4226 recommends 160 bits.
const SECRET_BYTES: usize = 20;
const DIGITS: u8 = 6;
const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one (RFC 6238 §5.2).
const SKEW_STEPS: u16 = 1;

/// A TOTP secret; its bytes are wiped when dropped and never printed.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

/// What an authenticator app needs to add an account.
pub struct Enrollment {
    /// The secret, base32 without padding.
    pub secret: Zeroizing<String>,
    /// `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER`.
    pub otpauth_uri: Zeroizing<String>,
}

impl TotpSecret {
    /// Draws a new secret from the OS's random number generator.
    pub fn generate() -> Result<Self, AuthError> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        getrandom::fill(&mut bytes).map_err(AuthError::internal)?;
        Ok(Self(bytes))
    }

    /// A secret as stored (after unsealing).
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The bytes to store (sealed).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as an app is given it, for `account` at `issuer`.
    pub fn enrollment(&self, issuer: &str, account: &str) -> Result<Enrollment, AuthError> {
        let totp = self.totp(Some((issuer, account)))?;
        Ok(Enrollment {
            secret: Zeroizing::new(totp.secret().to_base32()),
            otpauth_uri: Zeroizing::new(totp.to_url().map_err(AuthError::internal)?),
        })
    }

    /// The step `code` is right for at Unix time `now`, within the skew, or
    /// `None`. Anything but 6 ASCII digits matches nothing.
    pub fn matching_step(&self, code: &TotpCode, now: u64) -> Result<Option<u64>, AuthError> {
        Ok(self.totp(None)?.check(code.0.as_str(), now))
    }

    /// The code for Unix time `now` (tests, and the page's own check).
    pub fn code_at(&self, now: u64) -> Result<String, AuthError> {
        Ok(self.totp(None)?.generate(now).to_string())
    }

    fn totp(&self, label: Option<(&str, &str)>) -> Result<Totp, AuthError> {
        let mut builder = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW_STEPS)
            .with_step_duration(STEP_SECONDS)
            .with_secret(Secret::from(self.0.as_slice()));
        if let Some((issuer, account)) = label {
            builder = builder.with_issuer(Some(issuer)).with_account_name(account);
        }
        builder.build().map_err(AuthError::internal)
    }
}

/// A code as typed: 6 digits, spaces allowed between them (apps show
/// "123 456").
#[derive(Clone)]
pub struct TotpCode(Zeroizing<String>);

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpCode([REDACTED])")
    }
}

impl TotpCode {
    /// `MfaCodeInvalid` unless it is 6 digits once spaces are removed.
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        // Longer input is no code: refused before it is copied.
        if raw.len() > 4 * usize::from(DIGITS) {
            return Err(AuthError::MfaCodeInvalid);
        }
        let digits: String = raw.chars().filter(|c| *c != ' ').collect();
        if digits.len() != usize::from(DIGITS) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuthError::MfaCodeInvalid);
        }
        Ok(Self(Zeroizing::new(digits)))
    }
}

/// A step's number as the store keeps it.
pub fn step_number(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc6238_secret() -> TotpSecret {
        TotpSecret::from_bytes(Zeroizing::new(b"12345678901234567890".to_vec()))
    }

    #[test]
    fn codes_match_rfc_6238s_sha1_vectors_within_one_step() {
        // RFC 6238 Appendix B, SHA-1, last 6 digits.
        let secret = rfc6238_secret();
        for (time, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (2000000000, "279037"),
        ] {
            let code = TotpCode::parse(code).unwrap();
            assert_eq!(secret.matching_step(&code, time).unwrap(), Some(time / 30));
            assert_eq!(
                secret.matching_step(&code, time + 30).unwrap(),
                Some(time / 30)
            );
            assert_eq!(
                secret.matching_step(&code, time - 30).unwrap(),
                Some(time / 30)
            );
            assert_eq!(secret.matching_step(&code, time + 60).unwrap(), None);
            if let Some(earlier) = time.checked_sub(60) {
                assert_eq!(secret.matching_step(&code, earlier).unwrap(), None);
            }
        }
    }

    #[test]
    fn only_six_digits_are_a_code() {
        assert!(TotpCode::parse("123 456").is_ok());
        for raw in [
            "",
            "12345",
            "1234567",
            "12345a",
            "+12345",
            "١٢٣٤٥٦",
            &"1".repeat(1000),
        ] {
            assert!(
                matches!(TotpCode::parse(raw), Err(AuthError::MfaCodeInvalid)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn an_enrollment_names_issuer_and_account_and_hides_nothing_else() {
        let secret = TotpSecret::generate().unwrap();
        let enrollment = secret.enrollment("authd", "alice").unwrap();
        assert_eq!(enrollment.secret.len(), 32, "160 bits in base32");
        assert_eq!(
            *enrollment.otpauth_uri,
            format!(
                "otpauth://totp/authd:alice?secret={}&issuer=authd",
                *enrollment.secret
            )
        );
        assert_eq!(format!("{secret:?}"), "TotpSecret([REDACTED])");
    }
}
