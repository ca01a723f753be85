//! The one mapping from domain errors to gRPC statuses, with the standard
//! rich error details (`google.rpc.ErrorInfo`, `google.rpc.BadRequest`).

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::domain::AuthError;

/// `google.rpc.ErrorInfo.domain` of every authd error.
pub const ERROR_DOMAIN: &str = "authd";

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        let code = match &error {
            AuthError::InvalidInput(_) => Code::InvalidArgument,
            AuthError::UsernameTaken | AuthError::EmailTaken => Code::AlreadyExists,
            AuthError::InvalidCredentials
            | AuthError::InvalidToken(_)
            | AuthError::RefreshTokenInvalid
            | AuthError::RefreshTokenReused
            | AuthError::SessionEnded => Code::Unauthenticated,
            AuthError::SessionNotFound => Code::NotFound,
            AuthError::AccountDisabled | AuthError::FeedDisabled => Code::PermissionDenied,
            AuthError::FeedCredentialInvalid => Code::Unauthenticated,
            // Introspection and discovery are HTTP only; these never reach
            // gRPC.
            AuthError::IntrospectionDisabled => Code::PermissionDenied,
            AuthError::IntrospectionCredentialInvalid => Code::Unauthenticated,
            AuthError::PublicUrlNotConfigured => Code::NotFound,
            AuthError::MfaTicketInvalid
            | AuthError::ReauthenticationRequired { .. }
            | AuthError::InsufficientAuthentication(_) => Code::Unauthenticated,
            AuthError::MfaCodeInvalid => Code::InvalidArgument,
            AuthError::TotpAlreadyEnabled
            | AuthError::TotpEnrollmentNotStarted
            | AuthError::TotpNotEnabled
            | AuthError::PasswordNotSet
            | AuthError::PasswordAlreadySet
            | AuthError::LastSignInMethod
            | AuthError::MailNotConfigured
            | AuthError::EmailAlreadyVerified
            | AuthError::EmailNotSet
            | AuthError::MfaRequired => Code::FailedPrecondition,
            AuthError::PasskeyCeremonyInvalid => Code::FailedPrecondition,
            AuthError::PasskeyVerificationFailed | AuthError::UserVerificationRequired => {
                Code::Unauthenticated
            }
            AuthError::PasskeyAlreadyRegistered => Code::AlreadyExists,
            AuthError::PasskeyNotFound => Code::NotFound,
            AuthError::CursorInvalid => Code::InvalidArgument,
            AuthError::CursorExpired => Code::FailedPrecondition,
            AuthError::WatcherTooSlow => Code::ResourceExhausted,
            AuthError::ShuttingDown => Code::Unavailable,
            AuthError::RateLimited { .. } | AuthError::Overloaded { .. } => Code::ResourceExhausted,
            AuthError::DeadlineExceeded => Code::DeadlineExceeded,
            AuthError::Unavailable(_) => Code::Unavailable,
            AuthError::Internal(_) => Code::Internal,
        };
        let mut metadata = HashMap::new();
        match &error {
            AuthError::ReauthenticationRequired { max_age } => {
                metadata.insert("max_age".to_owned(), max_age.as_secs().to_string());
            }
            AuthError::InsufficientAuthentication(refused) => {
                metadata.extend(
                    refused
                        .metadata()
                        .into_iter()
                        .map(|(key, value)| (key.to_owned(), value)),
                );
            }
            _ => {}
        }
        let mut details = ErrorDetails::with_error_info(error.reason(), ERROR_DOMAIN, metadata);
        match &error {
            AuthError::InvalidInput(violations) => {
                // Each with its reason, as REST's `errors[]` has it.
                details.set_bad_request(
                    violations
                        .iter()
                        .map(|violation| FieldViolation {
                            reason: violation.reason.to_owned(),
                            ..FieldViolation::new(violation.field, &violation.description)
                        })
                        .collect::<Vec<_>>(),
                );
            }
            AuthError::RateLimited { retry_after } | AuthError::Overloaded { retry_after } => {
                details.set_retry_info(Some(*retry_after));
            }
            AuthError::Unavailable(cause) => {
                tracing::warn!(cause = ?cause, "database unavailable");
                details.set_retry_info(Some(Duration::from_secs(1)));
            }
            AuthError::Internal(cause) => tracing::error!(cause = ?cause, "internal error"),
            _ => {}
        }
        Status::with_error_details(code, error.to_string(), details)
    }
}
