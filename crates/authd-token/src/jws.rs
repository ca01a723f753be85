//! Compact JWS signatures (RFC 7515) for the one algorithm authd accepts:
//! EdDSA with Ed25519 (RFC 8037).
//!
//! Checking is done here rather than by `jsonwebtoken::decode`, which on
//! every call parses the header twice, decompresses the public key again and
//! deserializes the claims twice; that was most of a Verify's cost. Signing
//! stays with `jsonwebtoken`. Accepting a single algorithm keeps this small:
//! no algorithm is chosen by the token, only refused by it.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Deserializer};

use crate::TokenRejection;

/// The only `alg` authd accepts.
pub const ALGORITHM_NAME: &str = "EdDSA";
/// Larger headers are not ours: ours are about 60 bytes.
const MAX_HEADER_BYTES: usize = 512;
const SIGNATURE_BYTES: usize = 64;

/// The header fields authd looks at; the rest (`jku`, `x5u`, `jwk` and the
/// like) are ignored, because keys come only from our own store.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    /// We understand no JWS extensions, so a `crit` (even `null`) is refused.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// Checks a compact JWS and returns its decoded payload, once the header is
/// acceptable (`typ_accepted`) and the signature holds under the key its
/// `kid` names (`key_for`; `UnknownKey` when it has none).
pub fn verify<'k>(
    token: &str,
    typ_accepted: impl FnOnce(&str) -> bool,
    key_for: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
) -> Result<Vec<u8>, TokenRejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenRejection::Malformed);
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];

    let mut header_json = [0u8; MAX_HEADER_BYTES];
    let header_len = decode_into(header, &mut header_json)?;
    let header: Header<'_> = serde_json::from_slice(&header_json[..header_len])
        .map_err(|_| TokenRejection::Malformed)?;
    if header.crit {
        return Err(TokenRejection::Malformed);
    }
    if !header.typ.as_deref().is_some_and(typ_accepted) {
        return Err(TokenRejection::WrongClaims);
    }
    // An unsigned token is not one at all; another algorithm is a
    // signature authd does not accept.
    if header.alg == "none" {
        return Err(TokenRejection::Malformed);
    }
    if header.alg != ALGORITHM_NAME {
        return Err(TokenRejection::BadSignature);
    }
    let kid = header.kid.as_deref().ok_or(TokenRejection::BadSignature)?;
    let key = key_for(kid).ok_or(TokenRejection::UnknownKey)?;

    let mut signature_bytes = [0u8; SIGNATURE_BYTES + 2];
    if decode_into(signature, &mut signature_bytes)? != SIGNATURE_BYTES {
        return Err(TokenRejection::BadSignature);
    }
    let signature = Signature::from_slice(&signature_bytes[..SIGNATURE_BYTES])
        .map_err(|_| TokenRejection::BadSignature)?;
    // Strict: also refuses the weak keys and signature forms that let one
    // message have several valid signatures.
    key.verify_strict(signing_input.as_bytes(), &signature)
        .map_err(|_| TokenRejection::BadSignature)?;

    URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenRejection::Malformed)
}

/// Decodes unpadded base64url into `buffer`, without allocating; returns the
/// decoded length. Only the canonical encoding is accepted, so a signature
/// cannot be re-spelled into a second valid token.
fn decode_into(encoded: &str, buffer: &mut [u8]) -> Result<usize, TokenRejection> {
    if base64::decoded_len_estimate(encoded.len()) > buffer.len() {
        return Err(TokenRejection::Malformed);
    }
    URL_SAFE_NO_PAD
        .decode_slice(encoded, buffer)
        .map_err(|_| TokenRejection::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn token(header: &str, payload: &str, key: &SigningKey) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = key.sign(input.as_bytes()).to_bytes();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn check(token: &str) -> Result<Vec<u8>, TokenRejection> {
        let public = key().verifying_key();
        verify(
            token,
            |typ| typ == "at+jwt",
            |kid| (kid == "k1").then_some(&public),
        )
    }

    const HEADER: &str = r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#;

    #[test]
    fn a_good_signature_gives_the_payload() {
        assert_eq!(check(&token(HEADER, "{}", &key())).unwrap(), b"{}");
    }

    #[test]
    fn headers_outside_policy_are_refused() {
        for (header, rejection) in [
            (
                r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#,
                TokenRejection::BadSignature,
            ),
            (
                r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#,
                TokenRejection::Malformed,
            ),
            (
                r#"{"alg":{"EdDSA":null},"typ":"at+jwt","kid":"k1"}"#,
                TokenRejection::Malformed,
            ),
            (
                r#"{"alg":"EdDSA","typ":"JWT","kid":"k1"}"#,
                TokenRejection::WrongClaims,
            ),
            (r#"{"alg":"EdDSA","kid":"k1"}"#, TokenRejection::WrongClaims),
            (
                r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k2"}"#,
                TokenRejection::UnknownKey,
            ),
            (
                r#"{"alg":"EdDSA","typ":"at+jwt"}"#,
                TokenRejection::BadSignature,
            ),
            (
                r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1","crit":null}"#,
                TokenRejection::Malformed,
            ),
            (
                r#"{"alg":"EdDSA","alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#,
                TokenRejection::Malformed,
            ),
        ] {
            assert_eq!(
                check(&token(header, "{}", &key())),
                Err(rejection),
                "{header}"
            );
        }
    }

    #[test]
    fn foreign_signatures_and_edited_tokens_are_refused() {
        let foreign = token(HEADER, "{}", &SigningKey::from_bytes(&[8; 32]));
        assert_eq!(check(&foreign), Err(TokenRejection::BadSignature));

        let genuine = token(HEADER, r#"{"sub":"a"}"#, &key());
        let (input, signature) = genuine.rsplit_once('.').unwrap();
        let (header, _) = input.split_once('.').unwrap();
        let edited = format!(
            "{header}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(r#"{"sub":"b"}"#)
        );
        assert_eq!(check(&edited), Err(TokenRejection::BadSignature));

        // The last character of an 86-character signature carries 4 unused
        // bits; setting one must not make a second valid spelling.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut respelled = genuine.clone().into_bytes();
        let last = respelled.last_mut().unwrap();
        let sextet = ALPHABET.iter().position(|c| c == last).unwrap();
        *last = ALPHABET[sextet ^ 1];
        let respelled = String::from_utf8(respelled).unwrap();
        assert_eq!(check(&respelled), Err(TokenRejection::Malformed));
    }

    #[test]
    fn tokens_that_are_not_three_parts_are_malformed() {
        let genuine = token(HEADER, "{}", &key());
        for broken in [
            String::new(),
            "a.b".into(),
            format!("{genuine}."),
            format!("{genuine}.x"),
            genuine.replacen('.', "..", 1),
        ] {
            assert!(check(&broken).is_err(), "{broken}");
        }
        assert_eq!(check("a.b"), Err(TokenRejection::Malformed));
    }
}
