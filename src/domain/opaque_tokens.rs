//! Opaque tokens: 256 bits of randomness behind a fixed prefix that says
//! what the token is for, stored only as the SHA-256 of their secret.
//! Refresh tokens, second-factor tickets, mailed email verification
//! tokens and mailed password reset tokens are four kinds. A fast hash is
//! enough here, unlike for passwords: nobody can guess 256 random bits, so
//! there is no dictionary to slow down.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::error::AuthError;

const SECRET_BYTES: usize = 32;
/// base64url without padding of the secret.
const ENCODED_SECRET_CHARS: usize = 43;

/// What a token is for, told by its prefix, for people and for secret
/// scanners: a token of one kind is never accepted as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpaqueTokenKind {
    prefix: &'static str,
}

/// Refresh tokens, exchanged with Refresh.
pub const REFRESH_TOKEN: OpaqueTokenKind = OpaqueTokenKind {
    prefix: "authd_rt_",
};

/// Second-factor tickets, which Login hands out and CompleteLogin takes.
pub const MFA_TICKET: OpaqueTokenKind = OpaqueTokenKind {
    prefix: "authd_mt_",
};

/// Email verification tokens, mailed in a link that VerifyEmail takes.
pub const EMAIL_VERIFICATION: OpaqueTokenKind = OpaqueTokenKind {
    prefix: "authd_ev_",
};

/// Password reset tokens, mailed in a link that ResetPassword takes.
pub const PASSWORD_RESET: OpaqueTokenKind = OpaqueTokenKind {
    prefix: "authd_pr_",
};

/// A new token and the hash it is stored under.
pub struct NewOpaqueToken {
    /// What the client keeps; never stored, never logged.
    pub token: String,
    pub hash: String,
}

impl std::fmt::Debug for NewOpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOpaqueToken")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl OpaqueTokenKind {
    /// The prefix every token of this kind starts with.
    pub fn prefix(self) -> &'static str {
        self.prefix
    }

    /// Draws a new token.
    pub fn generate(self) -> Result<NewOpaqueToken, AuthError> {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret).map_err(AuthError::internal)?;
        Ok(NewOpaqueToken {
            token: format!("{}{}", self.prefix, URL_SAFE_NO_PAD.encode(secret)),
            hash: hash(&secret),
        })
    }

    /// The hash a presented token is stored under, or `None` if it is not a
    /// token of this kind in form. One secret has exactly one spelling.
    pub fn parse(self, presented: &str) -> Option<String> {
        let encoded = presented
            .strip_prefix(self.prefix)
            .filter(|encoded| encoded.len() == ENCODED_SECRET_CHARS)?;
        let mut secret = [0u8; SECRET_BYTES + 2];
        match URL_SAFE_NO_PAD.decode_slice(encoded, &mut secret) {
            Ok(SECRET_BYTES) => Some(hash(&secret[..SECRET_BYTES])),
            _ => None,
        }
    }
}

fn hash(secret: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_to_its_hash() {
        for kind in [
            REFRESH_TOKEN,
            MFA_TICKET,
            EMAIL_VERIFICATION,
            PASSWORD_RESET,
        ] {
            let new = kind.generate().unwrap();
            assert_eq!(kind.parse(&new.token).unwrap(), new.hash);
            assert!(!new.hash.contains(&new.token[kind.prefix.len()..]));
            assert_ne!(kind.generate().unwrap().hash, new.hash);
        }
    }

    #[test]
    fn a_token_of_one_kind_is_no_token_of_another() {
        let ticket = MFA_TICKET.generate().unwrap().token;
        assert_eq!(REFRESH_TOKEN.parse(&ticket), None);
        let refresh = REFRESH_TOKEN.generate().unwrap().token;
        assert_eq!(MFA_TICKET.parse(&refresh), None);
        let verification = EMAIL_VERIFICATION.generate().unwrap().token;
        assert_eq!(PASSWORD_RESET.parse(&verification), None);
        let reset = PASSWORD_RESET.generate().unwrap().token;
        assert_eq!(EMAIL_VERIFICATION.parse(&reset), None);
    }

    #[test]
    fn anything_else_is_invalid() {
        let token = REFRESH_TOKEN.generate().unwrap().token;
        let prefix = REFRESH_TOKEN.prefix;
        let body = &token[prefix.len()..];
        for presented in [
            String::new(),
            body.to_owned(),
            format!("{prefix}{}", &body[1..]),
            format!("{token}A"),
            format!(" {token}"),
            format!("{prefix}{}", "*".repeat(ENCODED_SECRET_CHARS)),
            // Non-canonical trailing bits: 43 characters carry 258 bits.
            format!("{prefix}{}B", &body[..ENCODED_SECRET_CHARS - 1]),
        ] {
            assert_eq!(REFRESH_TOKEN.parse(&presented), None, "{presented:?}");
        }
    }
}
