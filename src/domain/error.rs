//! The one error type of the domain. It is mapped in exactly one place per
//! kind of answer: `grpc::status` to a gRPC status, `http::problem` to
//! problem+json for REST and the proxies' checks. The `reason()` strings are a public contract: clients branch
//! on them (they travel in `google.rpc.ErrorInfo`), so never rename one.

use std::fmt;

pub use authd_token::{InsufficientAuthentication, TokenRejection};

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
    /// Another account has verified this email address (compared in lower
    /// case). Clients see ALREADY_EXISTS (409).
    #[error("email address is already in use")]
    EmailTaken,
    /// The operation mails someone, and authd has no `--smtp-url`: email
    /// verification is off. Clients see FAILED_PRECONDITION (409 over REST,
    /// as every failed precondition: a 5xx would say "retry", and retrying
    /// changes nothing until an operator configures mail).
    #[error("mail is not configured on this server")]
    MailNotConfigured,
    /// ResendEmailVerification for an address already verified. Clients see
    /// FAILED_PRECONDITION (409 over REST).
    #[error("the email address is already verified")]
    EmailAlreadyVerified,
    /// ResendEmailVerification for an account without an address: set one
    /// with SetEmail. Clients see FAILED_PRECONDITION (409 over REST).
    #[error("the account has no email address; set one first")]
    EmailNotSet,
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
    /// The revocation feed has no credential configured, so nobody may
    /// watch it. Clients see PERMISSION_DENIED.
    #[error("the revocation feed is off; start authd with --revocation-feed-token")]
    FeedDisabled,
    /// The revocation feed's credential is missing or wrong. Clients see
    /// UNAUTHENTICATED.
    #[error("missing or wrong revocation feed credential")]
    FeedCredentialInvalid,
    /// Token introspection has no credential configured, so nobody may
    /// call it. Clients see 403.
    #[error("token introspection is off; start authd with --introspection-token")]
    IntrospectionDisabled,
    /// The introspection caller's credential is missing or wrong. Clients
    /// see 401 with a `WWW-Authenticate: Bearer` challenge.
    #[error("missing or wrong introspection credential")]
    IntrospectionCredentialInvalid,
    /// Discovery needs `--public-url` to say where authd is. Clients see
    /// 404.
    #[error("discovery is off; start authd with --public-url")]
    PublicUrlNotConfigured,
    /// A second-factor ticket that is unknown, expired, used, or out of
    /// attempts: log in again. Clients see UNAUTHENTICATED (401).
    #[error("invalid second-factor ticket; log in again")]
    MfaTicketInvalid,
    /// A TOTP or recovery code that is wrong, used before, or no code at
    /// all. Clients see INVALID_ARGUMENT (400).
    #[error("invalid code")]
    MfaCodeInvalid,
    /// ResetPassword for an account with a second factor (TOTP or a
    /// passkey), without one in the request (ASVS 6.4.3): send a
    /// `totp_code`, a `recovery_code`, or a passkey's assertion for
    /// StartPasskeyPasswordReset's challenge. The token is not spent.
    /// Clients see FAILED_PRECONDITION (403 over REST: the token alone does
    /// not permit the reset).
    #[error(
        "this account has a second factor: send a code or a passkey assertion with the new password"
    )]
    MfaRequired,
    /// TOTP is active on the account already: disable it before enrolling
    /// again. Clients see FAILED_PRECONDITION (409 over REST).
    #[error("TOTP is already enabled; disable it first")]
    TotpAlreadyEnabled,
    /// DisableTotp or RegenerateRecoveryCodes on an account without TOTP.
    /// Clients see FAILED_PRECONDITION (409 over REST).
    #[error("TOTP is not enabled")]
    TotpNotEnabled,
    /// ConfirmTotpEnrollment with no enrollment started. Clients see
    /// FAILED_PRECONDITION (409 over REST).
    #[error("no TOTP enrollment started; call StartTotpEnrollment first")]
    TotpEnrollmentNotStarted,
    /// The operation needs a recent authentication (within `max_age`), with
    /// the second factor when the account has one: reauthenticate, or send
    /// the password or a code with the request. Clients see UNAUTHENTICATED
    /// with `max_age` in the ErrorInfo metadata; REST 401 with RFC 9470's
    /// `insufficient_user_authentication` challenge.
    #[error("this operation needs a recent authentication")]
    ReauthenticationRequired { max_age: std::time::Duration },
    /// A valid access token whose authentication does not meet what the
    /// route behind a proxy requires (`/auth/forward`'s `acr` and `max_age`,
    /// Envoy's `authd_acr` and `authd_max_age`): too low a level, too old.
    /// Clients see 401 with RFC 9470's `insufficient_user_authentication`
    /// challenge naming the route's `acr_values` and `max_age`
    /// (UNAUTHENTICATED with them in the ErrorInfo metadata).
    #[error("{0}")]
    InsufficientAuthentication(#[from] InsufficientAuthentication),
    /// A passkey ceremony that is unknown, expired, finished already, or of
    /// the other kind (a registration's id given to FinishPasskeyLogin):
    /// start again. Clients see FAILED_PRECONDITION (409 over REST).
    #[error("no such passkey ceremony in progress; start again")]
    PasskeyCeremonyInvalid,
    /// A credential that does not parse or does not check out against its
    /// ceremony (signature, challenge, origin, RP id, a counter that went
    /// backwards, a credential not registered). Clients see UNAUTHENTICATED
    /// (401).
    #[error("the passkey could not be verified")]
    PasskeyVerificationFailed,
    /// The authenticator did not verify the user (PIN, biometrics): a
    /// passkey counts only with it. Clients see UNAUTHENTICATED (401).
    #[error("the authenticator must verify the user")]
    UserVerificationRequired,
    /// The credential is registered already, to this account or another.
    /// Clients see ALREADY_EXISTS (409 over REST).
    #[error("this passkey is registered already")]
    PasskeyAlreadyRegistered,
    /// The account has no passkey with that id. Clients see NOT_FOUND.
    #[error("no such passkey")]
    PasskeyNotFound,
    /// A password operation (ChangePassword, DeleteAccount, Reauthenticate
    /// with a password) on an account that signs in with passkeys only:
    /// SetPassword gives it one. Clients see FAILED_PRECONDITION (409 over
    /// REST).
    #[error("the account has no password; set one first")]
    PasswordNotSet,
    /// SetPassword on an account that has a password: ChangePassword
    /// replaces it. Clients see FAILED_PRECONDITION (409 over REST).
    #[error("the account has a password already; change it instead")]
    PasswordAlreadySet,
    /// Removing the passkey of an account without a password that has no
    /// other: it would be left with no way to sign in. Clients see
    /// FAILED_PRECONDITION (409 over REST).
    #[error("this is the account's last way to sign in; add a password or another passkey first")]
    LastSignInMethod,
    /// A feed cursor that is no cursor. Clients see INVALID_ARGUMENT.
    #[error("malformed cursor")]
    CursorInvalid,
    /// A feed cursor this instance cannot resume from (another run's or
    /// instance's, or older than the changes it keeps): start again from a
    /// snapshot. Clients see FAILED_PRECONDITION.
    #[error("the cursor has expired; watch again without one for a new snapshot")]
    CursorExpired,
    /// A watcher fell too far behind the changes; it was dropped and may
    /// resume from its cursor. Clients see RESOURCE_EXHAUSTED.
    #[error("the watcher fell too far behind; resume from its cursor")]
    WatcherTooSlow,
    /// The server is stopping; watch another instance, or this one again
    /// after its restart. Clients see UNAVAILABLE.
    #[error("the server is shutting down")]
    ShuttingDown,
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
            Self::EmailTaken => "EMAIL_TAKEN",
            Self::MailNotConfigured => "MAIL_NOT_CONFIGURED",
            Self::EmailAlreadyVerified => "EMAIL_ALREADY_VERIFIED",
            Self::EmailNotSet => "EMAIL_NOT_SET",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InvalidToken(rejection) => rejection.reason(),
            Self::RefreshTokenInvalid => "REFRESH_TOKEN_INVALID",
            Self::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            Self::SessionEnded => "SESSION_ENDED",
            Self::SessionNotFound => "SESSION_NOT_FOUND",
            Self::AccountDisabled => "ACCOUNT_DISABLED",
            Self::FeedDisabled => "REVOCATION_FEED_DISABLED",
            Self::FeedCredentialInvalid => "FEED_CREDENTIAL_INVALID",
            Self::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            Self::IntrospectionCredentialInvalid => "INTROSPECTION_CREDENTIAL_INVALID",
            Self::PublicUrlNotConfigured => "PUBLIC_URL_NOT_CONFIGURED",
            Self::MfaTicketInvalid => "MFA_TICKET_INVALID",
            Self::MfaCodeInvalid => "MFA_CODE_INVALID",
            Self::MfaRequired => "MFA_REQUIRED",
            Self::TotpAlreadyEnabled => "TOTP_ALREADY_ENABLED",
            Self::TotpEnrollmentNotStarted => "TOTP_ENROLLMENT_NOT_STARTED",
            Self::TotpNotEnabled => "TOTP_NOT_ENABLED",
            Self::ReauthenticationRequired { .. } => "REAUTHENTICATION_REQUIRED",
            Self::InsufficientAuthentication(refused) => refused.reason(),
            Self::PasskeyCeremonyInvalid => "PASSKEY_CEREMONY_INVALID",
            Self::PasskeyVerificationFailed => "PASSKEY_VERIFICATION_FAILED",
            Self::UserVerificationRequired => "USER_VERIFICATION_REQUIRED",
            Self::PasskeyAlreadyRegistered => "PASSKEY_ALREADY_REGISTERED",
            Self::PasskeyNotFound => "PASSKEY_NOT_FOUND",
            Self::PasswordNotSet => "PASSWORD_NOT_SET",
            Self::PasswordAlreadySet => "PASSWORD_ALREADY_SET",
            Self::LastSignInMethod => "LAST_SIGN_IN_METHOD",
            Self::CursorInvalid => "CURSOR_INVALID",
            Self::CursorExpired => "CURSOR_EXPIRED",
            Self::WatcherTooSlow => "WATCHER_TOO_SLOW",
            Self::ShuttingDown => "SHUTTING_DOWN",
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

impl From<crate::hashing::HashError> for AuthError {
    fn from(error: crate::hashing::HashError) -> Self {
        match error {
            crate::hashing::HashError::Overloaded { retry_after } => {
                Self::Overloaded { retry_after }
            }
            crate::hashing::HashError::Failed(cause) => Self::Internal(cause),
        }
    }
}

impl From<crate::secrets::SecretsError> for AuthError {
    /// A secret that cannot be sealed or opened is the operator's to fix
    /// (a missing previous key, a tampered row): logged with its cause,
    /// never told to clients.
    fn from(error: crate::secrets::SecretsError) -> Self {
        Self::Internal(error.into())
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
