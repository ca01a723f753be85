//! The public keys tokens may be signed with, by key id.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::jws::ALGORITHM_NAME;

/// A public key in JWK form (RFC 8037), as authd publishes it in its JWKS
/// (`/.well-known/jwks.json`, `GetJwks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key id tokens name in their header.
    pub kid: String,
    /// `EdDSA`: the only algorithm this key may be used with.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
}

impl PublicJwk {
    /// The JWK of a raw Ed25519 public key.
    pub fn ed25519(kid: &str, public_key: &[u8]) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(public_key),
            kid: kid.to_owned(),
            alg: ALGORITHM_NAME.into(),
            key_use: "sig".into(),
        }
    }

    /// Whether this is an Ed25519 signing key for EdDSA, the only kind a
    /// token may be verified with.
    fn is_eddsa_signing_key(&self) -> bool {
        self.kty == "OKP"
            && self.crv == "Ed25519"
            && self.alg == ALGORITHM_NAME
            && self.key_use == "sig"
    }
}

/// A key that is no Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {kid} is not an Ed25519 public key")]
pub struct KeyError {
    /// The key's id.
    pub kid: String,
}

/// Public keys by key id, parsed once (the curve point decompressed), not
/// per token.
#[derive(Debug, Clone, Default)]
pub struct VerifyingKeys {
    by_kid: HashMap<String, VerifyingKey>,
    published: Vec<PublicJwk>,
}

impl VerifyingKeys {
    /// From raw 32-byte Ed25519 public keys and their ids.
    ///
    /// # Errors
    /// `KeyError` for the first key that is not an Ed25519 public key.
    pub fn from_raw<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, KeyError> {
        let mut set = Self::default();
        for (kid, public_key) in keys {
            let key = parse(public_key).ok_or_else(|| KeyError {
                kid: kid.to_owned(),
            })?;
            set.by_kid.insert(kid.to_owned(), key);
            set.published.push(PublicJwk::ed25519(kid, public_key));
        }
        Ok(set)
    }

    /// From a JWKS as authd publishes it. Keys for anything but EdDSA with
    /// Ed25519 are left out: no token may be verified with them.
    ///
    /// # Errors
    /// `KeyError` for an EdDSA key whose `x` is no Ed25519 public key.
    pub fn from_jwks(jwks: &[PublicJwk]) -> Result<Self, KeyError> {
        let mut set = Self::default();
        for jwk in jwks.iter().filter(|jwk| jwk.is_eddsa_signing_key()) {
            let key = URL_SAFE_NO_PAD
                .decode(&jwk.x)
                .ok()
                .and_then(|bytes| parse(&bytes))
                .ok_or_else(|| KeyError {
                    kid: jwk.kid.clone(),
                })?;
            set.by_kid.insert(jwk.kid.clone(), key);
            set.published.push(jwk.clone());
        }
        Ok(set)
    }

    /// The key a token naming `kid` must verify with.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.by_kid.get(kid)
    }

    /// Every key, in JWK form.
    pub fn published(&self) -> &[PublicJwk] {
        &self.published
    }

    /// Whether every key of `self` is also in `other`.
    pub fn all_in(&self, other: &Self) -> bool {
        self.by_kid
            .iter()
            .all(|(kid, key)| other.by_kid.get(kid) == Some(key))
    }
}

fn parse(public_key: &[u8]) -> Option<VerifyingKey> {
    let bytes = <[u8; 32]>::try_from(public_key).ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwks_reads_back_as_the_keys_it_was_made_of() {
        let public = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .to_bytes();
        let raw = VerifyingKeys::from_raw([("k1", public.as_slice())]).unwrap();
        let mut jwks = raw.published().to_vec();
        jwks.push(PublicJwk {
            alg: "RS256".into(),
            ..PublicJwk::ed25519("rsa", &public)
        });

        let read = VerifyingKeys::from_jwks(&jwks).unwrap();

        assert!(read.get("k1").is_some() && read.get("rsa").is_none());
        assert!(raw.all_in(&read) && read.all_in(&raw));
        assert!(VerifyingKeys::from_raw([("bad", [0u8; 3].as_slice())]).is_err());
    }
}
