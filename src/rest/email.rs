//! The REST twins of the email RPCs: setting the caller's address,
//! verifying it with the mailed token, and mailing a new token. Bodies use
//! the proto's field names.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use super::RestState;
use super::body::{Fields, FromFields, JsonBody};
use super::caller::{Caller, Client};
use super::handlers::{
    BODY_TOO_LARGE, EmptyBody, UNREADABLE_BODY, UNSUPPORTED_MEDIA_TYPE, UserBody,
};
use super::second_factor::SecondFactorBody as _;
use crate::domain::{AuthError, EmailAddress, SecondFactorProof, Store};
use crate::http::problem::Problem;

/// An email address as `EmailAddress::parse` takes it, exactly: what Rust
/// trims around it (Unicode White_Space, spelled out: `\s` means more in
/// some regex engines), at most 254 characters between, an `@` after 1 to
/// 64 of them, dot-atoms of `atext` before it, and after it `localhost` in
/// any case or two or more labels of letters, digits and inner hyphens.
pub(super) fn email_schema() -> Object {
    const SPACE: &str =
        r"[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
    const ATEXT: &str = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
    const LABEL: &str = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let pattern = format!(
        "^{SPACE}*(?=[!-~]{{1,254}}{SPACE}*$)(?=[^@]{{1,64}}@){ATEXT}+(?:\\.{ATEXT}+)*@\
         (?:[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]|{LABEL}(?:\\.{LABEL})+){SPACE}*$"
    );
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(
            "Trimmed; one `@`; before it 1 to 64 ASCII letters, digits and \
             !#$%&'*+-/=?^_`{|}~ in dot-separated atoms; after it a host name with a dot \
             (letters, digits, inner hyphens; international domains in their xn-- form) or \
             localhost; at most 254 characters. Compared case-insensitively.",
        ))
        .examples(["alice@example.com"])
        .build()
}

/// A new address, and a second factor for the step-up when the account has
/// one.
#[derive(Debug, ToSchema)]
pub struct SetEmailBody {
    #[schema(schema_with = email_schema)]
    pub email: String,
    /// Unless the caller's token comes from a recent authentication with
    /// the second factor (else 401 REAUTHENTICATION_REQUIRED); or send
    /// `recovery_code`.
    #[schema(example = "123456", nullable = false)]
    pub totp_code: Option<String>,
    /// Instead of `totp_code`.
    #[schema(example = "7KQ2M-XH9RT-C4WNZ", nullable = false)]
    pub recovery_code: Option<String>,
    /// Instead of a code: a passkey's assertion for the challenge of
    /// `POST /user/reauthenticate/passkey`, as the browser's
    /// `credential.toJSON()` writes it (a JSON string).
    #[schema(nullable = false)]
    pub passkey_credential_json: Option<String>,
}

impl FromFields for SetEmailBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            email: fields.string("email"),
            totp_code: fields.optional_string("totp_code"),
            recovery_code: fields.optional_string("recovery_code"),
            passkey_credential_json: fields.optional_string("passkey_credential_json"),
        }
    }
}

/// The token of a verification mail's link.
#[derive(Debug, ToSchema)]
pub struct VerifyEmailBody {
    #[schema(example = "authd_ev_q3Jt3yqQ7rjG9pVtWc0G9H9n6Ck1e3cI2yGQ8QbQy6w")]
    pub token: String,
}

impl FromFields for VerifyEmailBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            token: fields.string("token"),
        }
    }
}

/// The account after the change.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserAnswerBody {
    pub user: UserBody,
}

/// Set or replace the caller's email address (unverified until the mailed
/// link comes back; an earlier link stops working).
#[utoipa::path(
    put,
    path = "/user/email",
    tag = "email",
    security(("bearer" = []), ("cookie" = [])),
    request_body = SetEmailBody,
    responses(
        (status = 200, description = "The address is set, unverified, and a verification mail is queued; setting the address the account has verified already changes nothing", body = UserAnswerBody),
        (status = 400, description = format!("An address the rules refuse (reason INVALID_EMAIL), a wrong or malformed code (reason MFA_CODE_INVALID), more than one of totp_code, recovery_code and passkey_credential_json (reason FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token, or a token older than --reauthentication-max-age or without the second factor the account has, and no code (reason REAUTHENTICATION_REQUIRED, with max_age); a refused passkey assertion (reasons PASSKEY_VERIFICATION_FAILED, USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge; RFC 9470's insufficient_user_authentication with max_age"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "authd sends no mail: no --smtp-url (reason MAIL_NOT_CONFIGURED); or no passkey challenge to answer: none started for the session (POST /user/reauthenticate/passkey) or spent by an earlier assertion (reason PASSKEY_CEREMONY_INVALID)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many verification mails for this account or address, or too many wrong codes (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_email<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
    Client(client): Client,
    JsonBody(body): JsonBody<SetEmailBody>,
) -> Result<Json<UserAnswerBody>, Problem> {
    let (email, second) = body.parse(|body| {
        let second = SecondFactorProof::parse_optional(body.second_factor());
        let email = EmailAddress::parse(&body.email)
            .map_err(|violation| AuthError::InvalidInput(vec![violation]))?;
        Ok((email, second?))
    })?;
    let user = state
        .auth
        .set_email(&caller.0, email, second, &client, None)
        .await?;
    Ok(Json(UserAnswerBody { user: user.into() }))
}

/// Verify an address with the token of its verification mail's link (no
/// bearer: the token is the proof).
#[utoipa::path(
    post,
    path = "/user/email/verify",
    tag = "email",
    request_body = VerifyEmailBody,
    responses(
        (status = 200, description = "The address is verified", body = UserAnswerBody),
        (status = 400, description = format!("A token that is malformed, unknown, expired, used, or replaced by a newer mail (reason EMAIL_TOKEN_INVALID), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another account has verified this address (reason EMAIL_TAKEN), or authd sends no mail: no --smtp-url (reason MAIL_NOT_CONFIGURED)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn verify_email<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    JsonBody(body): JsonBody<VerifyEmailBody>,
) -> Result<Json<UserAnswerBody>, Problem> {
    let body = body.complete()?;
    let user = state.auth.verify_email(&body.token).await?;
    Ok(Json(UserAnswerBody { user: user.into() }))
}

/// Mail a new verification link to the caller's unverified address; the
/// previous link stops working.
#[utoipa::path(
    post,
    path = "/user/email/verification",
    tag = "email",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "A verification mail is queued", body = EmptyBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account has no address (reason EMAIL_NOT_SET), it is verified already (reason EMAIL_ALREADY_VERIFIED), or authd sends no mail: no --smtp-url (reason MAIL_NOT_CONFIGURED)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many verification mails for this account or address (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resend_email_verification<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
) -> Result<Json<EmptyBody>, Problem> {
    state.auth.resend_email_verification(&caller.0).await?;
    Ok(Json(EmptyBody {}))
}
