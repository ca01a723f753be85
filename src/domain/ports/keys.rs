//! The signing keys port.

use std::future::Future;

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::domain::AuthError;

/// A token signing key pair.
#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// JWS algorithm name; the only one the key may verify.
    pub algorithm: String,
    /// PKCS#8 DER: sealed as stored (`domain::secrets_at_rest`; in clear in
    /// rows an authd from before sealing wrote), opened where keys sign.
    pub private_key: Zeroizing<Vec<u8>>,
    /// Raw public key bytes.
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// Signing starts at this time; verification at once.
    pub activates_at: DateTime<Utc>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// Where the token signing keys are kept.
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait SigningKeyStore: Send + Sync + 'static {
    /// Every signing key, the latest to activate first.
    fn signing_keys(&self)
    -> impl Future<Output = Result<Vec<SigningKeyRecord>, AuthError>> + Send;

    /// Stores a new signing key.
    fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Replaces a key's stored private half with `replacement` if it still
    /// is `expected` (another instance may have replaced it first);
    /// returns whether it did.
    fn replace_signing_key_private_key(
        &self,
        kid: &str,
        expected: &[u8],
        replacement: &[u8],
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Deletes signing keys; returns how many existed.
    fn delete_signing_keys(
        &self,
        kids: &[String],
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;
}
