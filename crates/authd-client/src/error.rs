//! Why a token is refused, and why a verifier could not start.

use std::fmt;

use authd_token::{InsufficientAuthentication, TokenRejection};

/// `google.rpc.ErrorInfo.domain` of authd's errors, and of this crate's.
pub const ERROR_DOMAIN: &str = "authd";

/// Why [`Verifier::verify`](crate::Verifier::verify) refused a token. Each
/// has a stable [`reason`](Self::reason), the same strings authd sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The token fails authd's rules, checked here or, for a stale verifier
    /// under [`StalePolicy::FallBackToAuthd`](crate::StalePolicy), by authd:
    /// `MISSING_TOKEN`, `TOKEN_MALFORMED`, `TOKEN_INVALID_SIGNATURE`,
    /// `TOKEN_INVALID_CLAIMS`, `TOKEN_EXPIRED`, `TOKEN_NOT_YET_VALID`,
    /// `TOKEN_REVOKED` or `ACCOUNT_DISABLED`. The caller should log in again
    /// (or refresh); the front ends answer 401 / UNAUTHENTICATED.
    Rejected(TokenRejection),
    /// `AUTHD_UNAVAILABLE`: the verifier is stale and authd did not answer
    /// the fallback `Verify`. Not the token's fault: the front ends answer
    /// 503 / UNAVAILABLE, and the caller may retry.
    AuthdUnavailable,
    /// `VERIFIER_STALE`: the verifier is stale and its policy is
    /// [`StalePolicy::FailClosed`](crate::StalePolicy). The front ends
    /// answer 503 / UNAVAILABLE.
    Stale,
    /// `INSUFFICIENT_USER_AUTHENTICATION`: a valid token, refused by the
    /// route's [`AuthenticationPolicy`](crate::AuthenticationPolicy) (too
    /// low a level, too old an authentication). The caller should
    /// authenticate again as the policy asks; the front ends answer 401
    /// with RFC 9470's challenge / UNAUTHENTICATED with `acr_values` and
    /// `max_age` in the `ErrorInfo` metadata.
    InsufficientAuthentication(InsufficientAuthentication),
}

impl VerifyError {
    /// The stable, machine-readable reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Rejected(rejection) => rejection.reason(),
            Self::AuthdUnavailable => "AUTHD_UNAVAILABLE",
            Self::Stale => "VERIFIER_STALE",
            Self::InsufficientAuthentication(refused) => refused.reason(),
        }
    }

    /// Whether the token itself was refused (as opposed to the verifier
    /// being unable to tell).
    pub fn is_rejection(self) -> bool {
        matches!(
            self,
            Self::Rejected(_) | Self::InsufficientAuthentication(_)
        )
    }

    /// authd's answer for a reason it sends, when that reason is one of the
    /// token's.
    pub(crate) fn from_authd_reason(reason: &str) -> Option<Self> {
        [
            TokenRejection::Missing,
            TokenRejection::Malformed,
            TokenRejection::BadSignature,
            TokenRejection::WrongClaims,
            TokenRejection::Expired,
            TokenRejection::NotYetValid,
            TokenRejection::Revoked,
            TokenRejection::AccountDisabled,
        ]
        .into_iter()
        .find(|rejection| rejection.reason() == reason)
        .map(Self::Rejected)
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(rejection) => rejection.fmt(f),
            Self::AuthdUnavailable => f.write_str("authd is unavailable to confirm the token"),
            Self::Stale => f.write_str("the token cannot be checked for revocation now"),
            Self::InsufficientAuthentication(refused) => refused.fmt(f),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<InsufficientAuthentication> for VerifyError {
    fn from(refused: InsufficientAuthentication) -> Self {
        Self::InsufficientAuthentication(refused)
    }
}

impl From<TokenRejection> for VerifyError {
    fn from(rejection: TokenRejection) -> Self {
        // A key still unknown after the keys were fetched again is a
        // signature nobody can check.
        match rejection {
            TokenRejection::UnknownKey => Self::Rejected(TokenRejection::BadSignature),
            rejection => Self::Rejected(rejection),
        }
    }
}

/// Why [`Verifier::connect`](crate::Verifier::connect) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The endpoint is no URL tonic can connect to.
    InvalidEndpoint(String),
    /// The feed credential cannot be sent as gRPC metadata (it is not
    /// visible ASCII).
    InvalidFeedCredential,
    /// authd's JWKS holds a key that is no Ed25519 public key.
    InvalidKeys(authd_token::KeyError),
    /// authd refused to let this verifier watch revocations: the feed is
    /// off (`REVOCATION_FEED_DISABLED`: start authd with
    /// `--revocation-feed-token`) or the credential is wrong
    /// (`FEED_CREDENTIAL_INVALID`).
    FeedRefused(tonic::Status),
    /// The keys and the first revocation snapshot did not arrive within the
    /// connect timeout; the last error seen, if any.
    Timeout(Option<tonic::Status>),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEndpoint(endpoint) => write!(f, "invalid authd endpoint {endpoint:?}"),
            Self::InvalidFeedCredential => f.write_str("the feed credential is not visible ASCII"),
            Self::InvalidKeys(error) => write!(f, "authd published an unusable key: {error}"),
            Self::FeedRefused(status) => {
                write!(f, "authd refused the revocation feed: {}", status.message())
            }
            Self::Timeout(None) => f.write_str("timed out connecting to authd"),
            Self::Timeout(Some(status)) => write!(
                f,
                "timed out connecting to authd; last error: {:?}: {}",
                status.code(),
                status.message()
            ),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidKeys(error) => Some(error),
            Self::FeedRefused(status) | Self::Timeout(Some(status)) => Some(status),
            Self::InvalidEndpoint(_) | Self::InvalidFeedCredential | Self::Timeout(None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authd_reasons_read_back_as_the_rejections_they_name() {
        assert_eq!(
            VerifyError::from_authd_reason("TOKEN_REVOKED"),
            Some(VerifyError::Rejected(TokenRejection::Revoked))
        );
        assert_eq!(VerifyError::from_authd_reason("INTERNAL"), None);
        assert_eq!(
            VerifyError::from(TokenRejection::UnknownKey).reason(),
            "TOKEN_INVALID_SIGNATURE"
        );
    }
}
