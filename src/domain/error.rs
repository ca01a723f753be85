//! The one error type of the domain. Each surface maps it in exactly one
//! place: `grpc::status` to a gRPC status, later the REST gateway to
//! problem+json. The `reason()` strings are a public contract: clients branch
//! on them (they travel in `google.rpc.ErrorInfo`), so never rename one.

use std::fmt;

/// A boxed cause, kept for the logs and never sent to clients.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the domain, as a client should see it.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request is malformed; each violation names the field and why.
    /// Clients see INVALID_ARGUMENT with `google.rpc.BadRequest` details.
    #[error("{}", FieldViolation::join(.0))]
    InvalidInput(Vec<FieldViolation>),
    /// The username is registered already. Clients see ALREADY_EXISTS.
    #[error("username is already taken")]
    UsernameTaken,
    /// Wrong username or wrong password. One message for both on purpose, so
    /// that nobody learns which usernames exist. Clients see UNAUTHENTICATED.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The access token is missing or refused. Clients see UNAUTHENTICATED.
    #[error("{0}")]
    InvalidToken(#[from] TokenRejection),
    /// The refresh token is missing, malformed or unknown. Clients see
    /// UNAUTHENTICATED (401).
    #[error("invalid refresh token")]
    RefreshTokenInvalid,
    /// A refresh token that was already exchanged, outside the grace window:
    /// the sign of a stolen token. Its whole session has just ended.
    /// Clients see UNAUTHENTICATED (401).
    #[error("refresh token was already used; the session has ended")]
    RefreshTokenReused,
    /// The refresh token's session has ended (logged out, revoked, expired,
    /// password changed). Clients see UNAUTHENTICATED (401).
    #[error("the session has ended")]
    SessionEnded,
    /// No live session of the caller has this id: the same answer for
    /// another user's session, so ids cannot be probed. Clients see
    /// NOT_FOUND (404).
    #[error("no such session")]
    SessionNotFound,
    /// The password was right, but an operator disabled the account.
    /// Clients see PERMISSION_DENIED (403).
    #[error("the account is disabled")]
    AccountDisabled,
    /// Too many attempts from this address or for this username. Clients see
    /// RESOURCE_EXHAUSTED (gRPC) or 429 (REST), with when to retry. The same
    /// refusal whether or not the password was right.
    #[error("too many attempts, retry later")]
    RateLimited { retry_after: std::time::Duration },
    /// The password hashes ahead of this call would not be done in time
    /// (within `--hash-queue-timeout` and the client's deadline); the call
    /// was refused without queueing. Clients see RESOURCE_EXHAUSTED (gRPC)
    /// or 503 (REST), with when the call would be admitted again.
    #[error("server busy, retry shortly")]
    Overloaded { retry_after: std::time::Duration },
    /// The caller's deadline passed before the call could be served. Clients
    /// see DEADLINE_EXCEEDED.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The database cannot be reached. Clients see UNAVAILABLE and may retry;
    /// the cause is logged, never sent.
    #[error("service temporarily unavailable")]
    Unavailable(#[source] BoxError),
    /// A bug or an impossible state. Clients see INTERNAL with this generic
    /// message; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl AuthError {
    /// The stable, machine-readable reason (`google.rpc.ErrorInfo.reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidInput(violations) => violations
                .first()
                .map_or("INVALID_ARGUMENT", |violation| violation.reason),
            Self::UsernameTaken => "USERNAME_TAKEN",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InvalidToken(rejection) => rejection.reason(),
            Self::RefreshTokenInvalid => "REFRESH_TOKEN_INVALID",
            Self::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            Self::SessionEnded => "SESSION_ENDED",
            Self::SessionNotFound => "SESSION_NOT_FOUND",
            Self::AccountDisabled => "ACCOUNT_DISABLED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Overloaded { .. } => "SERVER_BUSY",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// Wraps an unexpected failure; see [`AuthError::Internal`].
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self::Internal(cause.into())
    }
}

/// One thing wrong with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The request field, as named in the proto and the JSON body.
    pub field: &'static str,
    /// Stable reason, e.g. `INVALID_USERNAME` or `PASSWORD_TOO_SHORT`.
    pub reason: &'static str,
    /// What is wrong, for people.
    pub description: String,
}

impl FieldViolation {
    fn join(violations: &[FieldViolation]) -> String {
        let descriptions: Vec<&str> = violations.iter().map(|v| v.description.as_str()).collect();
        descriptions.join("; ")
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

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
    /// The token names a key this instance does not hold, even after
    /// reading the keys again. Clients see the same reason and message as
    /// for a bad signature; inside authd, met with the keys in memory only,
    /// it is no final answer (see `TokenService::verify_in_memory`).
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
    /// The stable, machine-readable reason.
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
