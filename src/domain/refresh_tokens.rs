//! Refresh tokens: opaque, 256 bits of randomness behind a fixed prefix,
//! stored only as the SHA-256 of their secret. A fast hash is enough here,
//! unlike for passwords: nobody can guess 256 random bits, so there is no
//! dictionary to slow down.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::error::AuthError;

/// Marks the token as authd's, for people and for secret scanners.
const PREFIX: &str = "authd_rt_";
const SECRET_BYTES: usize = 32;
/// base64url without padding of the secret.
const ENCODED_SECRET_CHARS: usize = 43;

/// A new refresh token and the hash it is stored under.
pub struct NewRefreshToken {
    /// What the client keeps; never stored, never logged.
    pub token: String,
    pub hash: String,
}

impl std::fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRefreshToken")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Draws a new refresh token.
pub fn generate() -> Result<NewRefreshToken, AuthError> {
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(AuthError::internal)?;
    Ok(NewRefreshToken {
        token: format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(secret)),
        hash: hash(&secret),
    })
}

/// The hash a presented refresh token is stored under, or
/// `RefreshTokenInvalid` if it is not one of ours in form.
pub fn parse(presented: &str) -> Result<String, AuthError> {
    let encoded = presented
        .strip_prefix(PREFIX)
        .filter(|encoded| encoded.len() == ENCODED_SECRET_CHARS)
        .ok_or(AuthError::RefreshTokenInvalid)?;
    let mut secret = [0u8; SECRET_BYTES + 2];
    match URL_SAFE_NO_PAD.decode_slice(encoded, &mut secret) {
        Ok(SECRET_BYTES) => Ok(hash(&secret[..SECRET_BYTES])),
        _ => Err(AuthError::RefreshTokenInvalid),
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
        let new = generate().unwrap();
        assert_eq!(parse(&new.token).unwrap(), new.hash);
        assert!(!new.hash.contains(&new.token[PREFIX.len()..]));
        assert_ne!(generate().unwrap().hash, new.hash);
    }

    #[test]
    fn anything_else_is_invalid() {
        let token = generate().unwrap().token;
        let body = &token[PREFIX.len()..];
        for presented in [
            String::new(),
            body.to_owned(),
            format!("{PREFIX}{}", &body[1..]),
            format!("{token}A"),
            format!(" {token}"),
            format!("{PREFIX}{}", "*".repeat(ENCODED_SECRET_CHARS)),
            // Non-canonical trailing bits: 43 characters carry 258 bits.
            format!("{PREFIX}{}B", &body[..ENCODED_SECRET_CHARS - 1]),
        ] {
            assert!(
                matches!(parse(&presented), Err(AuthError::RefreshTokenInvalid)),
                "{presented:?}"
            );
        }
    }
}
