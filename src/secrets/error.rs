//! What can go wrong while sealing, opening or reading a key, for the
//! domain to map to its own error and for start-up to report.

use std::path::PathBuf;

use super::KeyId;

/// Why a value was not sealed or opened, or a key not read.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The bytes are no sealed value (too short, or an unknown version).
    #[error("not a sealed value")]
    Malformed,
    /// The value was sealed under a key this keyring does not hold.
    #[error(
        "sealed under secrets key {0}, which is neither --secrets-key-file nor a \
         --previous-secrets-key-file"
    )]
    UnknownKey(KeyId),
    /// The tag did not match: the value was altered, or belongs to another
    /// row (another context).
    #[error("a sealed value failed authentication: altered, or moved from another row")]
    Refused,
    /// A value too long for the cipher (about 256 GiB).
    #[error("value too long to seal")]
    TooLong,
    /// The system's random source failed.
    #[error("no randomness: {0}")]
    Random(getrandom::Error),
    /// A key's text is not base64.
    #[error("not base64 (make one with `openssl rand -base64 32`)")]
    KeyNotBase64,
    /// A key's text is base64 of the wrong length.
    #[error("{0} bytes where 32 are needed (make one with `openssl rand -base64 32`)")]
    KeyLength(usize),
    /// A key file that cannot be read, created, or does not hold a key.
    #[error("secrets key file {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },
}
