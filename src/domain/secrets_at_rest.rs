//! Secrets at rest, the rules: which stored values are sealed and with what
//! context, and the pass that seals what an earlier authd stored in clear
//! or what a previous secrets key sealed. The sealing itself is
//! `crate::secrets`; the key-encryption key never reaches the database.

use uuid::Uuid;
use zeroize::Zeroizing;

use super::error::AuthError;
use super::ports::{FactorStore, SigningKeyRecord, SigningKeyStore};

use crate::secrets::{SecretsKeyring, is_sealed};

/// Which stored values a pass seals (again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reseal {
    /// Only those still in clear: at start-up and at each key reload, so
    /// that keys an earlier authd stored (during a rolling upgrade, too)
    /// do not stay in clear.
    Clear,
    /// Those in clear and those sealed under a previous secrets key: `authd
    /// keys reseal`, after which the previous key is no longer needed.
    NotCurrent,
}

/// What a reseal pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resealed {
    /// Signing keys sealed by this pass.
    pub signing_keys: u64,
    /// Signing keys already sealed under the current key, or sealed by
    /// another instance while this pass ran.
    pub signing_keys_unchanged: u64,
    /// TOTP secrets sealed again under the current key.
    pub totp_secrets: u64,
    /// TOTP secrets already sealed under it.
    pub totp_secrets_unchanged: u64,
}

/// The context a signing key's private half is sealed with: it opens in its
/// own row only.
fn signing_key_context(kid: &str) -> Vec<u8> {
    format!("signing-key:{kid}").into_bytes()
}

/// `key` as it is stored: its private half sealed.
pub fn seal_signing_key(
    key: &SigningKeyRecord,
    secrets: &SecretsKeyring,
) -> Result<SigningKeyRecord, AuthError> {
    Ok(SigningKeyRecord {
        private_key: Zeroizing::new(
            secrets.seal(&key.private_key, &signing_key_context(&key.kid))?,
        ),
        ..key.clone()
    })
}

/// Stored keys with their private halves opened, for signing. A key still
/// in clear (stored by an authd from before sealing, and not sealed yet by
/// [`reseal_signing_keys`]) is taken as it is.
///
/// # Errors
/// `AuthError::Internal` when a key was sealed under a secrets key that is
/// not configured, or does not open (altered, or moved from another row).
pub fn open_signing_keys(
    stored: Vec<SigningKeyRecord>,
    secrets: &SecretsKeyring,
) -> Result<Vec<SigningKeyRecord>, AuthError> {
    stored
        .into_iter()
        .map(|key| open_signing_key(key, secrets))
        .collect()
}

fn open_signing_key(
    key: SigningKeyRecord,
    secrets: &SecretsKeyring,
) -> Result<SigningKeyRecord, AuthError> {
    if !is_sealed(&key.private_key) {
        return Ok(key);
    }
    let opened = secrets
        .open(&key.private_key, &signing_key_context(&key.kid))
        .map_err(|error| AuthError::internal(format!("signing key {}: {error}", key.kid)))?;
    Ok(SigningKeyRecord {
        private_key: opened,
        ..key
    })
}

/// Seals in place the signing keys among `stored` that `scope` covers,
/// under the current secrets key. Each row is replaced only while it still
/// holds what was read: instances doing this at once on one database seal
/// each key once between them, and never overwrite each other's work.
pub async fn reseal_signing_keys<S: SigningKeyStore>(
    store: &S,
    secrets: &SecretsKeyring,
    stored: &[SigningKeyRecord],
    scope: Reseal,
) -> Result<Resealed, AuthError> {
    let mut resealed = Resealed::default();
    for key in stored {
        let sealed = is_sealed(&key.private_key);
        let wanted = match scope {
            Reseal::Clear => !sealed,
            Reseal::NotCurrent => !secrets.is_current(&key.private_key),
        };
        if !wanted {
            resealed.signing_keys_unchanged += 1;
            continue;
        }
        let opened = open_signing_key(key.clone(), secrets)?;
        let replacement = seal_signing_key(&opened, secrets)?;
        if store
            .replace_signing_key_private_key(&key.kid, &key.private_key, &replacement.private_key)
            .await?
        {
            resealed.signing_keys += 1;
        } else {
            resealed.signing_keys_unchanged += 1;
        }
    }
    Ok(resealed)
}

/// The context a TOTP secret is sealed with: it opens in its account's row
/// only.
pub(super) fn totp_context(user_id: Uuid) -> Vec<u8> {
    format!("totp:{user_id}").into_bytes()
}

/// Seals again, under the current secrets key, every TOTP secret sealed
/// under a previous one (TOTP secrets were never stored in clear). Each
/// row is replaced only while it still holds what was read.
pub async fn reseal_totp_secrets<S: FactorStore>(
    store: &S,
    secrets: &SecretsKeyring,
    resealed: &mut Resealed,
) -> Result<(), AuthError> {
    for (user_id, sealed) in store.sealed_totp_secrets().await? {
        if secrets.is_current(&sealed) {
            resealed.totp_secrets_unchanged += 1;
            continue;
        }
        let context = totp_context(user_id);
        let opened = secrets
            .open(&sealed, &context)
            .map_err(|error| AuthError::internal(format!("TOTP secret of {user_id}: {error}")))?;
        let replacement = secrets.seal(&opened, &context)?;
        if store
            .replace_sealed_totp_secret(user_id, &sealed, &replacement)
            .await?
        {
            resealed.totp_secrets += 1;
        } else {
            resealed.totp_secrets_unchanged += 1;
        }
    }
    Ok(())
}
