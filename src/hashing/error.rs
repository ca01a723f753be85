//! What can go wrong while hashing, for the domain to map to its own error.

use std::time::Duration;

/// A boxed cause, kept for the logs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The hashes ahead and this one would not be done within the bound or
    /// the caller's deadline; admitted again after `retry_after`.
    #[error("password hashing is at capacity")]
    Overloaded { retry_after: Duration },
    /// The hash could not be computed: parameters argon2 refuses, a stored
    /// string that does not parse, or the blocking pool gone.
    #[error("password hashing failed: {0}")]
    Failed(BoxError),
}

impl HashError {
    /// Wraps any cause as [`HashError::Failed`].
    pub fn failed(cause: impl Into<BoxError>) -> Self {
        Self::Failed(cause.into())
    }
}
