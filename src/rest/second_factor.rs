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
use super::body::{Fields, FromFields, JsonBody};
use super::caller::{Caller, Client};
use super::handlers::{BODY_TOO_LARGE, TokenBody, UNREADABLE_BODY, UNSUPPORTED_MEDIA_TYPE};
use crate::domain::{RecoveryCode, SecondFactorChallenge, SecondFactorProof, Store, TotpCode};
use crate::http::problem::Problem;

/// A Login that needs a second factor before it starts a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequiredBody {
    /// Opaque and single use, for `POST /login/mfa` only: not a bearer
    /// token.
    #[schema(example = "authd_mt_Jq3t3yqQ7rjG9pVtWc0G9H9n6Ck1e3cI2yGQ8QbQy6w")]
    pub ticket: String,
    /// What this account can prove itself with: `totp`, `recovery_code`.
    #[schema(example = json!(["totp", "recovery_code"]))]
    pub methods: Vec<&'static str>,
    /// Seconds until the ticket expires.
    #[schema(example = 300)]
    pub expires_in: u32,
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
}

impl FromFields for CompleteLoginBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            ticket: fields.string("ticket"),
            totp_code: fields.optional_string("totp_code"),
            recovery_code: fields.optional_string("recovery_code"),
        }
    }
}

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
        (status = 400, description = format!("A wrong, used or malformed code (reason MFA_CODE_INVALID), neither or both of totp_code and recovery_code (reasons FIELD_REQUIRED, FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The ticket is unknown, expired, used or out of attempts: log in again (reason MFA_TICKET_INVALID)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "The account was disabled meanwhile (reason ACCOUNT_DISABLED)", body = Problem, content_type = "application/problem+json"),
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
        let proof =
            SecondFactorProof::parse(body.totp_code.as_deref(), body.recovery_code.as_deref())?;
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
    JsonBody(body): JsonBody<ConfirmTotpBody>,
) -> Result<Json<RecoveryCodesBody>, Problem> {
    let code = body.parse(|body| TotpCode::parse(&body.code))?;
    let codes = state
        .auth
        .confirm_totp_enrollment(&caller.0, code, None)
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
