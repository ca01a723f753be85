//! Signing keys. Kept in the database (made on first start, rotated with
//! `authd keys rotate`) or supplied as PEM files from a secret store; the
//! public halves are published as a JWKS so other services can verify
//! tokens themselves.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::{Algorithm, EncodingKey};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use authd_token::{ALGORITHM_NAME, VerifyingKeys};

use super::error::AuthError;
use super::ports::{SigningKeyRecord, SigningKeyStore};
use super::secrets_at_rest::{Reseal, open_signing_keys, reseal_signing_keys, seal_signing_key};
use crate::secrets::SecretsKeyring;

/// The only algorithm authd signs with or accepts.
pub const ALGORITHM: Algorithm = Algorithm::EdDSA;

/// A key read from a PEM file (PKCS#8 Ed25519 private key).
pub struct FileKey {
    kid: String,
    private_key: Zeroizing<Vec<u8>>,
    public_key: [u8; 32],
}

impl FileKey {
    /// Reads a key; its id is derived from the public key (a truncated RFC
    /// 7638 thumbprint), so every instance given the file agrees on it.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| {
            AuthError::internal(format!("cannot read key file {}: {error}", path.display()))
        })?);
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
            AuthError::internal(format!(
                "{} is not a PKCS#8 PEM Ed25519 private key",
                path.display()
            ))
        })?;
        let public_key = key.verifying_key().to_bytes();
        Ok(Self {
            kid: thumbprint(&public_key),
            private_key: Zeroizing::new(
                key.to_pkcs8_der()
                    .map_err(AuthError::internal)?
                    .as_bytes()
                    .to_vec(),
            ),
            public_key,
        })
    }
}

/// The first 16 bytes of the RFC 7638 JWK thumbprint, base64url.
fn thumbprint(public_key: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public_key)
    );
    URL_SAFE_NO_PAD.encode(&Sha256::digest(canonical.as_bytes())[..16])
}

/// The keys in force: one signs, all verify, all are published.
pub struct KeySet {
    signing_kid: String,
    signing_key: EncodingKey,
    verifying: VerifyingKeys,
}

impl KeySet {
    /// From file keys (the first signs, when there are any) and database
    /// keys (latest activation first; the latest already active signs).
    pub fn new(
        files: &[FileKey],
        stored: &[SigningKeyRecord],
        now: DateTime<Utc>,
    ) -> Result<Self, AuthError> {
        let stored: Vec<&SigningKeyRecord> = stored
            .iter()
            .filter(|key| key.algorithm == ALGORITHM_NAME)
            .collect();
        let (signing_kid, signing_key) = match (files.first(), stored.as_slice()) {
            (Some(file), _) => (
                file.kid.clone(),
                EncodingKey::from_ed_der(&file.private_key),
            ),
            (None, [.., oldest]) => {
                let active = stored
                    .iter()
                    .find(|key| key.activates_at <= now)
                    .unwrap_or(oldest);
                (
                    active.kid.clone(),
                    EncodingKey::from_ed_der(&active.private_key),
                )
            }
            (None, []) => return Err(AuthError::internal("no EdDSA signing key")),
        };
        let public_keys = files
            .iter()
            .map(|file| (file.kid.as_str(), file.public_key.as_slice()))
            .chain(
                stored
                    .iter()
                    .map(|key| (key.kid.as_str(), key.public_key.as_slice())),
            );
        let verifying = VerifyingKeys::from_raw(public_keys).map_err(AuthError::internal)?;
        Ok(Self {
            signing_kid,
            signing_key,
            verifying,
        })
    }

    /// The key new tokens are signed with, and its id.
    pub fn signing(&self) -> (&str, &EncodingKey) {
        (&self.signing_kid, &self.signing_key)
    }

    /// The keys tokens are verified with.
    pub fn verifying(&self) -> &VerifyingKeys {
        &self.verifying
    }
}

/// Makes a new Ed25519 key pair with a random id, to sign from `activates_at`.
pub fn generate_signing_key(activates_at: DateTime<Utc>) -> Result<SigningKeyRecord, AuthError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(AuthError::internal)?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let private_key = key.to_pkcs8_der().map_err(AuthError::internal)?;
    Ok(SigningKeyRecord {
        kid: super::random_id::random_id::<8>()?,
        algorithm: ALGORITHM_NAME.into(),
        private_key: Zeroizing::new(private_key.as_bytes().to_vec()),
        public_key: key.verifying_key().to_bytes().to_vec(),
        created_at: Utc::now(),
        activates_at,
    })
}

/// Makes a new key pair (see [`generate_signing_key`]) and stores it,
/// sealed; returns its id.
pub async fn add_signing_key<S: SigningKeyStore>(
    store: &S,
    secrets: &SecretsKeyring,
    activates_at: DateTime<Utc>,
) -> Result<String, AuthError> {
    let key = generate_signing_key(activates_at)?;
    store
        .insert_signing_key(&seal_signing_key(&key, secrets)?)
        .await?;
    Ok(key.kid)
}

/// Reads the database keys, creating the first one on a fresh database and
/// sealing any an earlier authd stored in clear; returns them opened.
pub async fn load_or_create_signing_keys<S: SigningKeyStore>(
    store: &S,
    secrets: &SecretsKeyring,
) -> Result<Vec<SigningKeyRecord>, AuthError> {
    let mut keys = store.signing_keys().await?;
    if keys.is_empty() {
        add_signing_key(store, secrets, Utc::now()).await?;
        // Instances starting together on one database may each have added
        // a key; reading again makes them all sign with the same one.
        keys = store.signing_keys().await?;
    }
    let resealed = reseal_signing_keys(store, secrets, &keys, Reseal::Clear).await?;
    if resealed.signing_keys > 0 {
        tracing::info!(
            sealed = resealed.signing_keys,
            secrets_key_id = %secrets.current_key_id(),
            "sealed the signing keys stored in clear"
        );
    }
    open_signing_keys(keys, secrets)
}

/// Database keys no valid token can be signed with any more: older than a
/// key that has been signing for longer than a token lives.
pub fn retired_keys(
    stored: &[SigningKeyRecord],
    now: DateTime<Utc>,
    token_lifetime: Duration,
) -> Vec<String> {
    let horizon = now - authd_token::horizons::acceptance_window(token_lifetime);
    match stored.iter().position(|key| key.activates_at <= horizon) {
        Some(settled) => stored[settled + 1..]
            .iter()
            .map(|key| key.kid.clone())
            .collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_activated(seconds_ago: i64, now: DateTime<Utc>) -> SigningKeyRecord {
        generate_signing_key(now - chrono::Duration::seconds(seconds_ago)).unwrap()
    }

    #[test]
    fn the_latest_active_key_signs_and_future_ones_only_verify() {
        let now = Utc::now();
        let future = key_activated(-60, now);
        let current = key_activated(10, now);
        let old = key_activated(5000, now);
        let keys = KeySet::new(&[], &[future.clone(), current.clone(), old.clone()], now).unwrap();

        assert_eq!(keys.signing().0, current.kid);
        for key in [&future, &current, &old] {
            assert!(keys.verifying().get(&key.kid).is_some());
        }
        assert_eq!(keys.verifying().published().len(), 3);
    }

    #[test]
    fn keys_retire_once_their_successor_has_signed_for_a_token_lifetime() {
        let now = Utc::now();
        let lifetime = Duration::from_secs(3600);
        let newest = key_activated(100, now);
        let settled = key_activated(4000, now);
        let retired = key_activated(9000, now);

        let keys = [newest.clone(), settled, retired.clone()];
        assert_eq!(retired_keys(&keys, now, lifetime), vec![retired.kid]);
        assert!(retired_keys(&[newest], now, lifetime).is_empty());
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let full = URL_SAFE_NO_PAD
            .decode("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
            .unwrap();
        assert_eq!(thumbprint(&x), URL_SAFE_NO_PAD.encode(&full[..16]));
    }
}
