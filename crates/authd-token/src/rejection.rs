//! Why a token is refused.

/// Why an access token was refused. Deliberately coarse: enough for a client
/// to decide between "log in again" and "report a bug", nothing an attacker
/// could use to refine a forgery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// No token was sent where one is required.
    #[error("missing bearer token")]
    Missing,
    /// Not a well-formed JWT, not a Bearer credential, or too large.
    #[error("malformed access token")]
    Malformed,
    /// The signature does not verify, the algorithm is not the key's, or
    /// the token names no key.
    #[error("access token signature is invalid")]
    BadSignature,
    /// The token names a key the verifier does not hold. Clients see the
    /// same reason and message as for a bad signature; a verifier that can
    /// fetch keys should do so and check again before it takes this as the
    /// final answer (a key may have been rotated in since it last looked).
    #[error("access token signature is invalid")]
    UnknownKey,
    /// Signed by us but not an access token for this audience and issuer.
    #[error("access token was not issued for this service")]
    WrongClaims,
    /// Past its `exp`.
    #[error("access token has expired")]
    Expired,
    /// Before its `nbf`.
    #[error("access token is not valid yet")]
    NotYetValid,
    /// Logged out, or its session ended.
    #[error("access token has been revoked")]
    Revoked,
    /// An operator disabled the account.
    #[error("the account is disabled")]
    AccountDisabled,
}

impl TokenRejection {
    /// The stable, machine-readable reason, the same as authd's
    /// `google.rpc.ErrorInfo.reason` and problem+json `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "MISSING_TOKEN",
            Self::Malformed => "TOKEN_MALFORMED",
            Self::BadSignature | Self::UnknownKey => "TOKEN_INVALID_SIGNATURE",
            Self::WrongClaims => "TOKEN_INVALID_CLAIMS",
            Self::Expired => "TOKEN_EXPIRED",
            Self::NotYetValid => "TOKEN_NOT_YET_VALID",
            Self::Revoked => "TOKEN_REVOKED",
            Self::AccountDisabled => "ACCOUNT_DISABLED",
        }
    }
}
