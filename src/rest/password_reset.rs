//! The REST twins of the password reset RPCs: asking for a reset mail,
//! resetting with its token (the session's cookies set, as `POST /login/mfa`
//! sets them), and a passkey challenge bound to the token. Bodies use the
//! proto's field names.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum_extra::extract::CookieJar;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use super::RestState;
use super::body::{Fields, FromFields, JsonBody};
use super::caller::Client;
use super::handlers::{BODY_TOO_LARGE, EmptyBody, UNREADABLE_BODY, UNSUPPORTED_MEDIA_TYPE};
use super::second_factor::{CompletedLoginBody, SecondFactorBody as _};
use crate::domain::{Password, ResetLookup, SecondFactorProof, Store};
use crate::http::problem::Problem;

/// A username or an email address as `ResetLookup::parse` takes it: at
/// most 254 characters, not only white space (Unicode White_Space, spelled
/// out as `email_schema` does).
fn username_or_email_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(ResetLookup::MAX_CHARS))
        .pattern(Some(
            r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
        ))
        .description(Some(
            "The account's username, or its verified email address; at most 254 characters.",
        ))
        .examples(["alice"])
        .build()
}

/// Whose password to reset.
#[derive(Debug, ToSchema)]
pub struct RequestPasswordResetBody {
    #[schema(schema_with = username_or_email_schema)]
    pub username_or_email: String,
}

impl FromFields for RequestPasswordResetBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            username_or_email: fields.string("username_or_email"),
        }
    }
}

/// A reset mail's token, a new password, and the account's second factor
/// when it has one.
#[derive(Debug, ToSchema)]
pub struct ResetPasswordBody {
    /// The `token` of the reset mail's link.
    #[schema(example = "authd_pr_q3Jt3yqQ7rjG9pVtWc0G9H9n6Ck1e3cI2yGQ8QbQy6w")]
    pub token: String,
    /// As at registration: 8 to 128 characters (code points, counted before
    /// NFKC normalization), not one of the most common passwords (refused
    /// with 400, reason PASSWORD_TOO_COMMON).
    #[schema(example = "staple battery horse correct", format = Password, min_length = 8, max_length = 128)]
    pub new_password: String,
    /// Required when the account has a second factor (else 403
    /// MFA_REQUIRED); or send `recovery_code` or `passkey_credential_json`.
    #[schema(example = "123456", nullable = false)]
    pub totp_code: Option<String>,
    /// Instead of `totp_code`.
    #[schema(example = "7KQ2M-XH9RT-C4WNZ", nullable = false)]
    pub recovery_code: Option<String>,
    /// Instead of a code: a passkey's assertion for the challenge of
    /// `POST /user/password/reset/passkey`, as the browser's
    /// `credential.toJSON()` writes it (a JSON string).
    #[schema(nullable = false)]
    pub passkey_credential_json: Option<String>,
}

impl FromFields for ResetPasswordBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            token: fields.string("token"),
            new_password: fields.string("new_password"),
            totp_code: fields.optional_string("totp_code"),
            recovery_code: fields.optional_string("recovery_code"),
            passkey_credential_json: fields.optional_string("passkey_credential_json"),
        }
    }
}

/// A reset mail's token, for a passkey challenge bound to it.
#[derive(Debug, ToSchema)]
pub struct ResetTokenBody {
    /// The `token` of the reset mail's link.
    #[schema(example = "authd_pr_q3Jt3yqQ7rjG9pVtWc0G9H9n6Ck1e3cI2yGQ8QbQy6w")]
    pub token: String,
}

impl FromFields for ResetTokenBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            token: fields.string("token"),
        }
    }
}

/// A passkey challenge for a password reset.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetPasskeyChallengeBody {
    /// The `publicKey` member of the WebAuthn request options for the
    /// account's passkeys, as JSON (for
    /// `PublicKeyCredential.parseRequestOptionsFromJSON`).
    pub passkey_options_json: String,
}

/// Ask for a password reset mail (no bearer). The answer is the same, in
/// the same time, whether or not the name or address belongs to an account
/// with a verified address: only such an address is mailed.
#[utoipa::path(
    post,
    path = "/user/password/reset",
    tag = "email",
    request_body = RequestPasswordResetBody,
    responses(
        (status = 202, description = "Accepted: if the name or the verified address belongs to an account, a reset link is mailed to its verified address (within the mail budgets per account and address); a newer link voids the previous one. The same answer for every name", body = EmptyBody),
        (status = 400, description = format!("Empty, or over 254 characters (reasons FIELD_REQUIRED, INVALID_USERNAME_OR_EMAIL), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "authd sends no mail: no --smtp-url (reason MAIL_NOT_CONFIGURED)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this client address (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "Too many reset requests under way (reason SERVER_BUSY); retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn request_password_reset<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    JsonBody(body): JsonBody<RequestPasswordResetBody>,
) -> Result<(StatusCode, Json<EmptyBody>), Problem> {
    let lookup = body.parse(|body| ResetLookup::parse(&body.username_or_email))?;
    state.auth.request_password_reset(lookup, &client)?;
    Ok((StatusCode::ACCEPTED, Json(EmptyBody {})))
}

/// Reset the password with a reset mail's token (no bearer: the token is
/// the proof): every session of the account ends, a notice is mailed, and
/// a new session starts.
#[utoipa::path(
    post,
    path = "/user/password/reset/confirm",
    tag = "email",
    request_body = ResetPasswordBody,
    responses(
        (status = 200, description = "Reset; the body and cookies carry a new session's tokens, every earlier session has ended", body = CompletedLoginBody,
            headers(("set-cookie" = String, description = "The access and refresh tokens, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = format!("A token that is malformed, unknown, expired, used, or replaced by a newer mail (reason PASSWORD_RESET_TOKEN_INVALID), a new password the rules refuse (reason PASSWORD_TOO_COMMON; the lengths are in the schema), a wrong or malformed code (reason MFA_CODE_INVALID), more than one of totp_code, recovery_code and passkey_credential_json (reason FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A refused passkey assertion (reasons PASSKEY_VERIFICATION_FAILED, USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "The account has a second factor and none was sent: the token is not spent (reason MFA_REQUIRED); or the account is disabled (reason ACCOUNT_DISABLED)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "authd sends no mail: no --smtp-url (reason MAIL_NOT_CONFIGURED); or no passkey challenge to answer: none started for the token or spent by an earlier assertion (reason PASSKEY_CEREMONY_INVALID)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this client address, or too many wrong codes for the account (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reset_password<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    jar: CookieJar,
    JsonBody(body): JsonBody<ResetPasswordBody>,
) -> Result<(CookieJar, Json<CompletedLoginBody>), Problem> {
    let (token, new, second) = body.parse(|body| {
        let second = SecondFactorProof::parse_optional(body.second_factor())?;
        let new = Password::for_setting(body.new_password)?;
        Ok((body.token, new, second))
    })?;
    let completed = state
        .auth
        .reset_password(&token, new, second, &client, None)
        .await?;
    let (jar, Json(tokens)) = state.session_response(jar, completed.session);
    Ok((
        jar,
        Json(CompletedLoginBody {
            tokens,
            recovery_codes_left: completed.recovery_codes_left,
        }),
    ))
}

/// Start a passkey challenge for a reset of an account whose second factor
/// is a passkey (no bearer: the token is the proof); its assertion is the
/// `passkey_credential_json` of `POST /user/password/reset/confirm`.
#[utoipa::path(
    post,
    path = "/user/password/reset/passkey",
    tag = "email",
    request_body = ResetTokenBody,
    responses(
        (status = 200, description = "A challenge bound to the token, expiring with it at the latest; a new start replaces it", body = ResetPasskeyChallengeBody),
        (status = 400, description = format!("A token that is malformed, unknown, expired, used, or replaced by a newer mail (reason PASSWORD_RESET_TOKEN_INVALID), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is disabled (reason ACCOUNT_DISABLED)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account has no passkey (reason PASSKEY_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "authd sends no mail: no --smtp-url (reason MAIL_NOT_CONFIGURED)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_passkey_password_reset<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    JsonBody(body): JsonBody<ResetTokenBody>,
) -> Result<Json<ResetPasskeyChallengeBody>, Problem> {
    let body = body.complete()?;
    let passkey_options_json = state.auth.start_passkey_password_reset(&body.token).await?;
    Ok(Json(ResetPasskeyChallengeBody {
        passkey_options_json,
    }))
}
