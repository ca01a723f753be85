//! RFC 9457 problem details: the one mapping from domain errors, and from
//! requests the gateway cannot read, to HTTP responses.

use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{AuthError, FieldViolation, TokenRejection};

/// An `application/problem+json` body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`; `reason` is what clients branch on.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub problem_type: &'static str,
    /// The HTTP status phrase.
    #[schema(example = "Conflict")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 409)]
    pub status: u16,
    /// What went wrong, for people.
    #[schema(example = "username is already taken")]
    pub detail: String,
    /// Stable, machine-readable reason, the same as the gRPC surface's
    /// `google.rpc.ErrorInfo.reason`.
    #[schema(example = "USERNAME_TAKEN")]
    pub reason: String,
    /// On every `400`: one entry per invalid field, `""` naming the body
    /// as a whole (as a JSON Pointer does).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// With `REAUTHENTICATION_REQUIRED`: how recent, in seconds, the
    /// authentication must be.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 300)]
    pub max_age: Option<u64>,
    /// With `INSUFFICIENT_USER_AUTHENTICATION`: the assurance levels the
    /// route accepts (RFC 9470 `acr_values`), space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "aal2")]
    pub acr_values: Option<String>,
    /// `WWW-Authenticate` for `401` responses (RFC 6750 section 3).
    #[serde(skip)]
    www_authenticate: Option<String>,
    /// `Retry-After` seconds for `503` responses.
    #[serde(skip)]
    retry_after: Option<u32>,
}

/// One invalid field of a request body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field as the JSON body names it; `""` for the body as a whole.
    #[schema(example = "password")]
    pub field: String,
    /// Stable, machine-readable: `FIELD_REQUIRED` (missing),
    /// `FIELD_INVALID_TYPE` (not the JSON type documented, or a body that
    /// is no object), `MALFORMED_JSON` (not JSON), or a rule's own reason
    /// (`INVALID_USERNAME`, `PASSWORD_TOO_SHORT`, ...).
    #[schema(example = "PASSWORD_TOO_SHORT")]
    pub reason: String,
    #[schema(example = "password must be at least 8 characters long")]
    pub detail: String,
}

impl Problem {
    /// A problem with this status, reason and detail.
    pub fn new(status: StatusCode, reason: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            reason: reason.to_owned(),
            errors: Vec::new(),
            max_age: None,
            acr_values: None,
            www_authenticate: None,
            retry_after: None,
        }
    }

    /// A state-changing request authenticated by a cookie, from another
    /// origin (see `rest::origin`).
    pub fn cross_origin() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "CROSS_ORIGIN_REQUEST",
            "requests authenticated by a cookie must come from this origin or an allowed one",
        )
    }

    /// Not answered within `--request-timeout`; the call was dropped.
    pub fn request_timeout(timeout: std::time::Duration) -> Self {
        let mut problem = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "REQUEST_TIMEOUT",
            format!("the request was not answered within {timeout:?}"),
        );
        problem.retry_after = Some(1);
        problem
    }

    /// No route for this path.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no resource at {path}"),
        )
    }
}

impl From<AuthError> for Problem {
    fn from(error: AuthError) -> Self {
        let status = match &error {
            AuthError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            AuthError::UsernameTaken | AuthError::EmailTaken => StatusCode::CONFLICT,
            AuthError::InvalidCredentials
            | AuthError::InvalidToken(_)
            | AuthError::RefreshTokenInvalid
            | AuthError::RefreshTokenReused
            | AuthError::SessionEnded => StatusCode::UNAUTHORIZED,
            AuthError::SessionNotFound => StatusCode::NOT_FOUND,
            AuthError::AccountDisabled | AuthError::FeedDisabled | AuthError::MfaRequired => {
                StatusCode::FORBIDDEN
            }
            // The feed is gRPC only; these never reach REST.
            AuthError::FeedCredentialInvalid => StatusCode::UNAUTHORIZED,
            AuthError::IntrospectionDisabled => StatusCode::FORBIDDEN,
            AuthError::IntrospectionCredentialInvalid => StatusCode::UNAUTHORIZED,
            AuthError::PublicUrlNotConfigured => StatusCode::NOT_FOUND,
            AuthError::MfaTicketInvalid
            | AuthError::ReauthenticationRequired { .. }
            | AuthError::InsufficientAuthentication(_) => StatusCode::UNAUTHORIZED,
            AuthError::MfaCodeInvalid => StatusCode::BAD_REQUEST,
            AuthError::TotpAlreadyEnabled
            | AuthError::TotpEnrollmentNotStarted
            | AuthError::TotpNotEnabled
            | AuthError::PasswordNotSet
            | AuthError::PasswordAlreadySet
            | AuthError::LastSignInMethod
            | AuthError::MailNotConfigured
            | AuthError::EmailAlreadyVerified
            | AuthError::EmailNotSet => StatusCode::CONFLICT,
            AuthError::PasskeyCeremonyInvalid | AuthError::PasskeyAlreadyRegistered => {
                StatusCode::CONFLICT
            }
            AuthError::PasskeyVerificationFailed | AuthError::UserVerificationRequired => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::PasskeyNotFound => StatusCode::NOT_FOUND,
            AuthError::CursorInvalid => StatusCode::BAD_REQUEST,
            AuthError::CursorExpired => StatusCode::PRECONDITION_FAILED,
            AuthError::WatcherTooSlow | AuthError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Overloaded { .. } | AuthError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AuthError::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut problem = Self::new(status, error.reason(), error.to_string());
        match &error {
            AuthError::InvalidInput(violations) => {
                problem.errors = violations
                    .iter()
                    .map(|violation| FieldError {
                        field: violation.field.to_owned(),
                        reason: violation.reason.to_owned(),
                        detail: violation.description.clone(),
                    })
                    .collect();
            }
            AuthError::InvalidCredentials
            | AuthError::RefreshTokenInvalid
            | AuthError::RefreshTokenReused
            | AuthError::SessionEnded
            | AuthError::MfaTicketInvalid
            | AuthError::PasskeyVerificationFailed
            | AuthError::UserVerificationRequired
            | AuthError::IntrospectionCredentialInvalid => {
                problem.www_authenticate = Some(r#"Bearer realm="authd""#.to_owned());
            }
            // RFC 9470's step-up challenge.
            AuthError::ReauthenticationRequired { max_age } => {
                problem.www_authenticate = Some(format!(
                    r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="a recent authentication is needed", max_age={}"#,
                    max_age.as_secs()
                ));
                problem.max_age = Some(max_age.as_secs());
            }
            // RFC 9470's challenge, naming what the route requires.
            AuthError::InsufficientAuthentication(refused) => {
                problem.www_authenticate = Some(refused.www_authenticate());
                problem.acr_values = refused.policy().acr_values();
                problem.max_age = refused.policy().max_age().map(|age| age.as_secs());
            }
            // RFC 6750: no error code when the request carried no token.
            AuthError::InvalidToken(TokenRejection::Missing) => {
                problem.www_authenticate = Some(r#"Bearer realm="authd""#.to_owned());
            }
            AuthError::InvalidToken(rejection) => {
                problem.www_authenticate = Some(format!(
                    r#"Bearer realm="authd", error="invalid_token", error_description="{rejection}""#
                ));
            }
            AuthError::RateLimited { retry_after } | AuthError::Overloaded { retry_after } => {
                // Whole seconds, rounded up and at least one: never invite a
                // retry too early.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                problem.retry_after = Some(u32::try_from(seconds.max(1)).unwrap_or(u32::MAX));
            }
            AuthError::Unavailable(cause) => {
                tracing::warn!(cause = ?cause, "database unavailable");
                problem.retry_after = Some(1);
            }
            AuthError::Internal(cause) => tracing::error!(cause = ?cause, "internal error"),
            AuthError::UsernameTaken
            | AuthError::EmailTaken
            | AuthError::MailNotConfigured
            | AuthError::EmailAlreadyVerified
            | AuthError::EmailNotSet
            | AuthError::DeadlineExceeded
            | AuthError::SessionNotFound
            | AuthError::AccountDisabled
            | AuthError::FeedDisabled
            | AuthError::FeedCredentialInvalid
            | AuthError::IntrospectionDisabled
            | AuthError::PublicUrlNotConfigured
            | AuthError::MfaCodeInvalid
            | AuthError::MfaRequired
            | AuthError::TotpAlreadyEnabled
            | AuthError::TotpEnrollmentNotStarted
            | AuthError::TotpNotEnabled
            | AuthError::PasskeyCeremonyInvalid
            | AuthError::PasskeyAlreadyRegistered
            | AuthError::PasskeyNotFound
            | AuthError::PasswordNotSet
            | AuthError::PasswordAlreadySet
            | AuthError::LastSignInMethod
            | AuthError::CursorInvalid
            | AuthError::CursorExpired
            | AuthError::WatcherTooSlow
            | AuthError::ShuttingDown => {}
        }
        problem
    }
}

/// Why a request body was not accepted (see `rest::body`), each answered in
/// authd's words, never the framework's or serde's.
#[derive(Debug)]
pub enum BodyRejection {
    /// Sent without `Content-Type: application/json` (or another `+json`
    /// type), or in a charset other than UTF-8, the only one JSON has
    /// (RFC 8259 section 8.1). Clients see 415 UNSUPPORTED_MEDIA_TYPE with
    /// this detail.
    UnsupportedMediaType(&'static str),
    /// Over `MAX_BODY_BYTES`, refused before it is read whole. Clients see
    /// 413 BODY_TOO_LARGE.
    TooLarge,
    /// Not read to its end (the client stopped sending it, or sent it
    /// broken). Clients see 400 INVALID_BODY.
    Unreadable,
    /// Not JSON, or not UTF-8. Clients see 400 MALFORMED_JSON, where it
    /// breaks as the one entry of `errors`.
    Malformed(serde_json::Error),
    /// JSON of the wrong shape: every field missing or of the wrong type,
    /// and what the domain's rules found wrong with the others. Clients see
    /// 400 INVALID_BODY with each in `errors`.
    Invalid(Vec<FieldViolation>),
    /// Read whole, and refused by the domain's rules: their own answer.
    Refused(AuthError),
}

impl From<BodyRejection> for Problem {
    fn from(rejection: BodyRejection) -> Self {
        // A `400` whose `errors` are the violations, as for invalid input,
        // under a reason of the body's own.
        let bad_body = |reason: &str, violations| {
            let mut problem = Self::from(AuthError::InvalidInput(violations));
            reason.clone_into(&mut problem.reason);
            problem
        };
        match rejection {
            BodyRejection::UnsupportedMediaType(detail) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                detail,
            ),
            BodyRejection::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                format!(
                    "request bodies are limited to {} bytes",
                    super::MAX_BODY_BYTES
                ),
            ),
            BodyRejection::Unreadable => bad_body(
                "INVALID_BODY",
                vec![FieldViolation {
                    field: "",
                    reason: "INVALID_BODY",
                    description: "the body could not be read".into(),
                }],
            ),
            BodyRejection::Malformed(error) => bad_body(
                "MALFORMED_JSON",
                vec![FieldViolation {
                    field: "",
                    reason: "MALFORMED_JSON",
                    description: format!("the body is not valid JSON: {error}"),
                }],
            ),
            BodyRejection::Invalid(violations) => bad_body("INVALID_BODY", violations),
            BodyRejection::Refused(error) => Self::from(error),
        }
    }
}

/// Bodies that cannot be read: too large, or cut off.
impl From<BytesRejection> for BodyRejection {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::TooLarge
        } else {
            Self::Unreadable
        }
    }
}

impl Problem {
    /// A path served, but not with this method. The router adds `Allow`.
    pub fn method_not_allowed(method: &Method, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("{path} does not answer {method}"),
        )
    }
}

impl Problem {
    /// The status, headers and body this problem is sent as: the one
    /// rendering for the REST gateway and for denials other programs relay
    /// (forward auth, Envoy's Check).
    pub fn into_http_parts(self) -> (StatusCode, HeaderMap, Vec<u8>) {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(value) = self
            .www_authenticate
            .as_deref()
            .and_then(|value| HeaderValue::from_str(value).ok())
        {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        // Serializing plain strings and numbers cannot fail.
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, headers, body)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_http_parts().into_response()
    }
}
