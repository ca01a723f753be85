//! The REST twins of the second-factor RPCs: completing a Login with a
//! code, enrolling TOTP and reading the caller's factors. Bodies use the
//! proto's field names.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum_extra::extract::CookieJar;
use serde::Serialize;
use utoipa::ToSchema;

use super::RestState;
use super::body::{Fields, FromFields, JsonBody, OptionalJsonBody, Unchecked};
use super::caller::{Caller, Client};
use super::handlers::{
    BODY_TOO_LARGE, EmptyBody, TokenBody, UNREADABLE_BODY, UNSUPPORTED_MEDIA_TYPE, UserBody,
};
use crate::domain::{
    Password, RecoveryCode, SecondFactorChallenge, SecondFactorFields, SecondFactorProof, Store,
    TotpCode,
};
use crate::http::problem::{BodyRejection, Problem};

/// A Login that needs a second factor before it starts a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequiredBody {
    /// Opaque and single use, for `POST /login/mfa` only: not a bearer
    /// token.
    #[schema(example = "authd_mt_Jq3t3yqQ7rjG9pVtWc0G9H9n6Ck1e3cI2yGQ8QbQy6w")]
    pub ticket: String,
    /// What this account can prove itself with: `totp`, `recovery_code`,
    /// `passkey`.
    #[schema(example = json!(["totp", "recovery_code", "passkey"]))]
    pub methods: Vec<&'static str>,
    /// Seconds until the ticket expires.
    #[schema(example = 300)]
    pub expires_in: u32,
    /// With `passkey`: the `publicKey` member of the WebAuthn request
    /// options for the account's passkeys, as JSON (for
    /// `PublicKeyCredential.parseRequestOptionsFromJSON`). Its challenge is
    /// bound to the ticket, single use, and expires with it at the latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub passkey_options_json: Option<String>,
}

/// `POST /login`'s answer when the account has a second factor: no token
/// and no cookie yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequiredResponseBody {
    pub mfa_required: MfaRequiredBody,
}

impl From<SecondFactorChallenge> for MfaRequiredResponseBody {
    fn from(challenge: SecondFactorChallenge) -> Self {
        Self {
            mfa_required: MfaRequiredBody {
                ticket: challenge.ticket,
                methods: challenge.methods,
                expires_in: challenge.expires_in,
                passkey_options_json: challenge.passkey_options_json,
            },
        }
    }
}

/// A ticket from `POST /login` and one second factor.
#[derive(Debug, ToSchema)]
pub struct CompleteLoginBody {
    /// `mfa_required.ticket` from `POST /login`.
    #[schema(min_length = 1)]
    pub ticket: String,
    /// The 6 digits the authenticator app shows now; or send
    /// `recovery_code`.
    #[schema(example = "123456", nullable = false)]
    pub totp_code: Option<String>,
    /// One of the recovery codes shown at enrollment; each works once.
    #[schema(example = "7KQ2M-XH9RT-C4WNZ", nullable = false)]
    pub recovery_code: Option<String>,
    /// A passkey's assertion for the challenge, as the browser's
    /// `credential.toJSON()` writes it (a JSON string).
    #[schema(nullable = false)]
    pub passkey_credential_json: Option<String>,
}

impl FromFields for CompleteLoginBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            ticket: fields.string("ticket"),
            totp_code: fields.optional_string("totp_code"),
            recovery_code: fields.optional_string("recovery_code"),
            passkey_credential_json: fields.optional_string("passkey_credential_json"),
        }
    }
}

/// A body with the second-factor fields, read as the domain reads them:
/// every REST body that takes a second factor, so they parse alike.
pub(super) trait SecondFactorBody {
    fn second_factor(&self) -> SecondFactorFields<'_>;
}

macro_rules! second_factor_body {
    ($($body:ty),+) => {$(
        impl SecondFactorBody for $body {
            fn second_factor(&self) -> SecondFactorFields<'_> {
                SecondFactorFields {
                    totp_code: self.totp_code.as_deref(),
                    recovery_code: self.recovery_code.as_deref(),
                    passkey_credential_json: self.passkey_credential_json.as_deref(),
                }
            }
        }
    )+};
}

second_factor_body!(
    CompleteLoginBody,
    StepUpBody,
    ReauthenticateBody,
    super::handlers::ChangePasswordBody,
    super::handlers::PasswordBody,
    super::email::SetEmailBody,
    super::password_reset::ResetPasswordBody
);

/// A completed Login: a new session's tokens (also set as cookies).
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletedLoginBody {
    #[serde(flatten)]
    pub tokens: TokenBody,
    /// When the proof was a recovery code: how many unused ones are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes_left: Option<u32>,
}

/// Finish a Login that answered `mfa_required`, with a TOTP code or a
/// recovery code.
#[utoipa::path(
    post,
    path = "/login/mfa",
    tag = "second factors",
    request_body = CompleteLoginBody,
    responses(
        (status = 200, description = "Logged in with both factors; the tokens are also set as cookies", body = CompletedLoginBody,
            headers(("set-cookie" = String, description = "The access and refresh tokens, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = format!("A wrong, used or malformed code (reason MFA_CODE_INVALID), none or more than one of totp_code, recovery_code and passkey_credential_json (reasons FIELD_REQUIRED, FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The ticket is unknown, expired, used or out of attempts: log in again (reason MFA_TICKET_INVALID); a refused passkey assertion (reasons PASSKEY_VERIFICATION_FAILED, USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "The account was disabled meanwhile (reason ACCOUNT_DISABLED)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket's passkey challenge was spent by an earlier assertion: log in again for a new one, or send a code (reason PASSKEY_CEREMONY_INVALID)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn complete_login<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    jar: CookieJar,
    JsonBody(body): JsonBody<CompleteLoginBody>,
) -> Result<(CookieJar, Json<CompletedLoginBody>), Problem> {
    let (ticket, proof) = body.parse(|body| {
        let proof = SecondFactorProof::parse(body.second_factor())?;
        Ok((body.ticket, proof))
    })?;
    let completed = state
        .auth
        .complete_login(&ticket, proof, &client, None)
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

/// A new TOTP secret, as an authenticator app takes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrollmentBody {
    /// The secret, base32 without padding, for typing into the app.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    /// `otpauth://totp/ISSUER:USERNAME?secret=...&issuer=ISSUER`.
    #[schema(
        example = "otpauth://totp/authd:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=authd"
    )]
    pub otpauth_uri: String,
    /// The same URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// Start enrolling TOTP: a new secret, active once confirmed with a code.
#[utoipa::path(
    post,
    path = "/user/mfa/totp",
    tag = "second factors",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "A new secret, pending until `POST /user/mfa/totp/confirm`; it replaces a pending one", body = TotpEnrollmentBody),
        (status = 401, description = "No valid token (reasons MISSING_TOKEN, TOKEN_EXPIRED, ...), or a token from an authentication older than --reauthentication-max-age (reason REAUTHENTICATION_REQUIRED, with max_age)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge; RFC 9470's insufficient_user_authentication with max_age"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TOTP is already enabled (reason TOTP_ALREADY_ENABLED)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_totp_enrollment<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
) -> Result<Json<TotpEnrollmentBody>, Problem> {
    let enrollment = state.auth.start_totp_enrollment(&caller.0).await?;
    Ok(Json(TotpEnrollmentBody {
        secret: enrollment.secret.to_string(),
        otpauth_uri: enrollment.otpauth_uri.to_string(),
        qr_svg: enrollment.qr_svg.to_string(),
    }))
}

/// A code from the authenticator app, confirming its enrollment.
#[derive(Debug, ToSchema)]
pub struct ConfirmTotpBody {
    /// The 6 digits the app shows now.
    #[schema(example = "123456")]
    pub code: String,
}

impl FromFields for ConfirmTotpBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            code: fields.string("code"),
        }
    }
}

/// The recovery codes, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesBody {
    /// Ten single-use codes for when the authenticator is lost; stored only
    /// as hashes.
    #[schema(example = json!(["7KQ2M-XH9RT-C4WNZ"]))]
    pub recovery_codes: Vec<String>,
}

/// Activate the pending TOTP secret with a current code.
#[utoipa::path(
    post,
    path = "/user/mfa/totp/confirm",
    tag = "second factors",
    security(("bearer" = []), ("cookie" = [])),
    request_body = ConfirmTotpBody,
    responses(
        (status = 200, description = "TOTP is enabled; every other session of the account has ended", body = RecoveryCodesBody),
        (status = 400, description = format!("A wrong or malformed code; the pending secret stays (reason MFA_CODE_INVALID), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No enrollment started (reason TOTP_ENROLLMENT_NOT_STARTED), or TOTP is already enabled (reason TOTP_ALREADY_ENABLED)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn confirm_totp_enrollment<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
    Client(client): Client,
    JsonBody(body): JsonBody<ConfirmTotpBody>,
) -> Result<Json<RecoveryCodesBody>, Problem> {
    let code = body.parse(|body| TotpCode::parse(&body.code))?;
    let codes = state
        .auth
        .confirm_totp_enrollment(&caller.0, code, &client, None)
        .await?;
    Ok(Json(RecoveryCodesBody {
        recovery_codes: codes.iter().map(RecoveryCode::display).collect(),
    }))
}

/// The caller's second factors.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaStatusBody {
    pub totp_enabled: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Whether an enrollment was started and not yet confirmed.
    pub totp_pending: bool,
}

/// Which second factors the caller's account has.
#[utoipa::path(
    get,
    path = "/user/mfa",
    tag = "second factors",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller's second factors", body = MfaStatusBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn mfa_status<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
) -> Result<Json<MfaStatusBody>, Problem> {
    let status = state.auth.second_factor_status(&caller.0).await?;
    Ok(Json(MfaStatusBody {
        totp_enabled: status.totp_enabled,
        recovery_codes_left: status.recovery_codes_left,
        totp_pending: status.totp_pending,
    }))
}

/// A second factor for a step-up; the body may be left out when the
/// caller's token comes from a recent authentication with one.
#[derive(Debug, ToSchema)]
pub struct StepUpBody {
    /// The 6 digits the authenticator app shows now; or send
    /// `recovery_code`.
    #[schema(example = "123456", nullable = false)]
    pub totp_code: Option<String>,
    /// One of the account's recovery codes.
    #[schema(example = "7KQ2M-XH9RT-C4WNZ", nullable = false)]
    pub recovery_code: Option<String>,
    /// A passkey's assertion for the challenge, as the browser's
    /// `credential.toJSON()` writes it (a JSON string).
    #[schema(nullable = false)]
    pub passkey_credential_json: Option<String>,
}

impl FromFields for StepUpBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            totp_code: fields.optional_string("totp_code"),
            recovery_code: fields.optional_string("recovery_code"),
            passkey_credential_json: fields.optional_string("passkey_credential_json"),
        }
    }
}

/// The second factor of an optional step-up body.
pub(super) fn step_up_proof(
    body: Option<Unchecked<StepUpBody>>,
) -> Result<Option<SecondFactorProof>, BodyRejection> {
    match body {
        None => Ok(None),
        Some(body) => body.parse(|body| SecondFactorProof::parse_optional(body.second_factor())),
    }
}

/// Turn TOTP off: the secret and the recovery codes are removed.
#[utoipa::path(
    delete,
    path = "/user/mfa/totp",
    tag = "second factors",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = ref("#/components/schemas/StepUpBody"), description = "A code; omit the body when the token comes from a recent authentication with the second factor"),
    responses(
        (status = 200, description = "TOTP is off; every other session of the account has ended", body = EmptyBody),
        (status = 400, description = format!("A wrong or malformed code (reason MFA_CODE_INVALID), more than one of totp_code, recovery_code and passkey_credential_json (reason FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token, or neither a code nor a recent authentication with the second factor (reason REAUTHENTICATION_REQUIRED, with max_age); a refused passkey assertion (reasons PASSKEY_VERIFICATION_FAILED, USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge; RFC 9470's insufficient_user_authentication with max_age"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TOTP is not enabled (reason TOTP_NOT_ENABLED); or no passkey challenge to answer: none started for the session (POST /user/reauthenticate/passkey) or spent by an earlier assertion (reason PASSKEY_CEREMONY_INVALID)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn disable_totp<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
    Client(client): Client,
    OptionalJsonBody(body): OptionalJsonBody<StepUpBody>,
) -> Result<Json<EmptyBody>, Problem> {
    let second = step_up_proof(body)?;
    state
        .auth
        .disable_totp(&caller.0, second, &client, None)
        .await?;
    Ok(Json(EmptyBody {}))
}

/// Replace the recovery codes with a new set, shown this once.
#[utoipa::path(
    post,
    path = "/user/mfa/recovery-codes",
    tag = "second factors",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = ref("#/components/schemas/StepUpBody"), description = "A code; omit the body when the token comes from a recent authentication with the second factor"),
    responses(
        (status = 200, description = "The new set; every earlier code stops working and every other session of the account has ended", body = RecoveryCodesBody),
        (status = 400, description = format!("A wrong or malformed code (reason MFA_CODE_INVALID), more than one of totp_code, recovery_code and passkey_credential_json (reason FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token, or neither a code nor a recent authentication with the second factor (reason REAUTHENTICATION_REQUIRED, with max_age); a refused passkey assertion (reasons PASSKEY_VERIFICATION_FAILED, USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge; RFC 9470's insufficient_user_authentication with max_age"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TOTP is not enabled (reason TOTP_NOT_ENABLED); or no passkey challenge to answer: none started for the session (POST /user/reauthenticate/passkey) or spent by an earlier assertion (reason PASSKEY_CEREMONY_INVALID)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn regenerate_recovery_codes<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
    Client(client): Client,
    OptionalJsonBody(body): OptionalJsonBody<StepUpBody>,
) -> Result<Json<RecoveryCodesBody>, Problem> {
    let second = step_up_proof(body)?;
    let codes = state
        .auth
        .regenerate_recovery_codes(&caller.0, second, &client, None)
        .await?;
    Ok(Json(RecoveryCodesBody {
        recovery_codes: codes.iter().map(RecoveryCode::display).collect(),
    }))
}

/// The password, and a second factor when the account has one.
#[derive(Debug, ToSchema)]
pub struct ReauthenticateBody {
    /// As at login: 1 to 128 characters.
    #[schema(example = "correct horse battery staple", format = Password, min_length = 1, max_length = 128)]
    pub password: String,
    /// Required when the account has TOTP; or send `recovery_code`.
    #[schema(example = "123456", nullable = false)]
    pub totp_code: Option<String>,
    /// Instead of `totp_code`.
    #[schema(example = "7KQ2M-XH9RT-C4WNZ", nullable = false)]
    pub recovery_code: Option<String>,
    /// A passkey's assertion for the challenge, as the browser's
    /// `credential.toJSON()` writes it (a JSON string).
    #[schema(nullable = false)]
    pub passkey_credential_json: Option<String>,
}

impl FromFields for ReauthenticateBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            password: fields.string("password"),
            totp_code: fields.optional_string("totp_code"),
            recovery_code: fields.optional_string("recovery_code"),
            passkey_credential_json: fields.optional_string("passkey_credential_json"),
        }
    }
}

/// The caller's session's new access token, with a fresh `auth_time`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReauthenticatedBody {
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = 900)]
    pub expires_in: u32,
    pub user: UserBody,
    pub session_id: String,
}

/// Prove the caller is still there, for operations that need a recent
/// authentication: the same session gets a new access token (also set as
/// the cookie); its refresh token stays.
#[utoipa::path(
    post,
    path = "/user/reauthenticate",
    tag = "second factors",
    security(("bearer" = []), ("cookie" = [])),
    request_body = ReauthenticateBody,
    responses(
        (status = 200, description = "A new access token with a fresh auth_time, also set as the cookie", body = ReauthenticatedBody,
            headers(("set-cookie" = String, description = "The access token, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = format!("An empty or too long password (reasons PASSWORD_REQUIRED, PASSWORD_TOO_LONG), a wrong or malformed code (reason MFA_CODE_INVALID), more than one of totp_code, recovery_code and passkey_credential_json (reason FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token, a wrong password (reason INVALID_CREDENTIALS), no code for an account with a second factor (reason REAUTHENTICATION_REQUIRED), or a token of a session that has ended (reason SESSION_ENDED); a refused passkey assertion (reasons PASSKEY_VERIFICATION_FAILED, USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No passkey challenge to answer: none started for the session (POST /user/reauthenticate/passkey) or spent by an earlier assertion (reason PASSKEY_CEREMONY_INVALID); or the account has no password: it signs in with passkeys only; `PUT /user/password` gives it one (reason PASSWORD_NOT_SET)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reauthenticate<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    caller: Caller,
    jar: CookieJar,
    JsonBody(body): JsonBody<ReauthenticateBody>,
) -> Result<(CookieJar, Json<ReauthenticatedBody>), Problem> {
    let (password, second) = body.parse(|body| {
        let second = SecondFactorProof::parse_optional(body.second_factor());
        Ok((Password::for_confirmation(body.password)?, second?))
    })?;
    let renewed = state
        .auth
        .reauthenticate(&caller.0, password, second, &client, None)
        .await?;
    let jar = state.access_cookie(jar, &renewed.token);
    Ok((
        jar,
        Json(ReauthenticatedBody {
            access_token: renewed.token.token,
            token_type: "Bearer",
            expires_in: renewed.token.expires_in,
            user: renewed.user.into(),
            session_id: renewed.session_id.to_string(),
        }),
    ))
}

/// A passkey challenge for the caller's session.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyChallengeBody {
    /// The `publicKey` member of the WebAuthn request options for the
    /// account's passkeys, as JSON (for
    /// `PublicKeyCredential.parseRequestOptionsFromJSON`); expires in
    /// minutes.
    pub options_json: String,
}

/// Start a passkey challenge for the caller's session: its assertion is
/// the `passkey_credential_json` of `POST /user/reauthenticate` or of a
/// step-up body. One per session, single use; a new start replaces it.
#[utoipa::path(
    post,
    path = "/user/reauthenticate/passkey",
    tag = "second factors",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The challenge, bound to the caller's session", body = PasskeyChallengeBody),
        (status = 401, description = "No valid token, or a token of a session that has ended (reason SESSION_ENDED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account has no passkey (reason PASSKEY_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_passkey_reauthentication<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
) -> Result<Json<PasskeyChallengeBody>, Problem> {
    let options_json = state.auth.start_passkey_reauthentication(&caller.0).await?;
    Ok(Json(PasskeyChallengeBody { options_json }))
}
