//! The REST twins of the passkey RPCs: registering, listing, renaming and
//! removing the caller's passkeys, and signing in with one. Bodies use the
//! proto's field names.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum_extra::extract::CookieJar;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::RestState;
use super::body::{Fields, FromFields, JsonBody, OptionalJsonBody};
use super::caller::{Caller, Client};
use super::handlers::{
    BODY_TOO_LARGE, EmptyBody, TokenBody, UNREADABLE_BODY, UNSUPPORTED_MEDIA_TYPE,
};
use super::second_factor::{StepUpBody, step_up_proof};
use crate::domain::{AuthError, PasskeyCeremony, PasskeySummary, Store};
use crate::http::problem::Problem;

/// A started ceremony: the options for the browser, and the id to finish
/// it with.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyCeremonyBody {
    /// Single use, expires in minutes (`--passkey-ceremony-lifetime`).
    pub ceremony_id: String,
    /// The `publicKey` member of the WebAuthn options, as JSON: for
    /// `PublicKeyCredential.parseCreationOptionsFromJSON` or
    /// `parseRequestOptionsFromJSON`.
    pub options_json: String,
}

impl From<PasskeyCeremony> for PasskeyCeremonyBody {
    fn from(ceremony: PasskeyCeremony) -> Self {
        Self {
            ceremony_id: ceremony.ceremony_id.to_string(),
            options_json: ceremony.options_json,
        }
    }
}

/// One of the caller's passkeys.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyBody {
    pub id: String,
    #[schema(example = "Laptop")]
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Absent until the first sign-in with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Whether the authenticator says the credential is backed up (synced).
    pub backed_up: bool,
}

impl From<PasskeySummary> for PasskeyBody {
    fn from(passkey: PasskeySummary) -> Self {
        Self {
            id: passkey.id.to_string(),
            name: passkey.name,
            created_at: passkey.created_at,
            last_used_at: passkey.last_used_at,
            backed_up: passkey.backed_up,
        }
    }
}

/// The caller's passkeys, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeysBody {
    pub passkeys: Vec<PasskeyBody>,
}

/// Start registering a passkey for the caller.
#[utoipa::path(
    post,
    path = "/user/passkeys/registration",
    tag = "passkeys",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "A registration ceremony: pass options_json to navigator.credentials.create, then `POST /user/passkeys`", body = PasskeyCeremonyBody),
        (status = 401, description = "No valid token (reasons MISSING_TOKEN, TOKEN_EXPIRED, ...), or a token from an authentication older than --reauthentication-max-age (reason REAUTHENTICATION_REQUIRED, with max_age)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge; RFC 9470's insufficient_user_authentication with max_age"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_passkey_registration<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
) -> Result<Json<PasskeyCeremonyBody>, Problem> {
    let ceremony = state.auth.start_passkey_registration(&caller.0).await?;
    Ok(Json(ceremony.into()))
}

/// The browser's new credential, finishing a registration ceremony.
#[derive(Debug, ToSchema)]
pub struct FinishPasskeyRegistrationBody {
    /// From `POST /user/passkeys/registration`.
    pub ceremony_id: String,
    /// `credential.toJSON()` of what navigator.credentials.create returned.
    pub credential_json: String,
    /// 64 characters at most; `Passkey` when empty or left out.
    #[schema(example = "Laptop", max_length = 64, nullable = false)]
    pub name: Option<String>,
}

impl FromFields for FinishPasskeyRegistrationBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            ceremony_id: fields.string("ceremony_id"),
            credential_json: fields.string("credential_json"),
            name: fields.optional_string("name"),
        }
    }
}

/// Finish registering a passkey.
#[utoipa::path(
    post,
    path = "/user/passkeys",
    tag = "passkeys",
    security(("bearer" = []), ("cookie" = [])),
    request_body = FinishPasskeyRegistrationBody,
    responses(
        (status = 201, description = "The passkey is registered", body = PasskeyBody),
        (status = 400, description = format!("A name over 64 characters or with control characters (reason INVALID_PASSKEY_NAME), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token, or a credential that does not parse or check out (reason PASSKEY_VERIFICATION_FAILED) or whose authenticator did not verify the user (reason USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ceremony is unknown, expired, finished, another account's or a sign-in's: start again (reason PASSKEY_CEREMONY_INVALID); or the credential is registered already (reason PASSKEY_ALREADY_REGISTERED)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn finish_passkey_registration<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
    Client(client): Client,
    JsonBody(body): JsonBody<FinishPasskeyRegistrationBody>,
) -> Result<(StatusCode, Json<PasskeyBody>), Problem> {
    let body = body.complete()?;
    let passkey = state
        .auth
        .finish_passkey_registration(
            &caller.0,
            &body.ceremony_id,
            &body.credential_json,
            body.name.as_deref().unwrap_or_default(),
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(passkey.into())))
}

/// The caller's passkeys.
#[utoipa::path(
    get,
    path = "/user/passkeys",
    tag = "passkeys",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller's passkeys, oldest first", body = PasskeysBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_passkeys<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
) -> Result<Json<PasskeysBody>, Problem> {
    let passkeys = state.auth.list_passkeys(&caller.0).await?;
    Ok(Json(PasskeysBody {
        passkeys: passkeys.into_iter().map(PasskeyBody::from).collect(),
    }))
}

/// A passkey's new name.
#[derive(Debug, ToSchema)]
pub struct RenamePasskeyBody {
    /// 64 characters at most; `Passkey` when empty.
    #[schema(example = "Phone", max_length = 64)]
    pub name: String,
}

impl FromFields for RenamePasskeyBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            name: fields.string("name"),
        }
    }
}

/// Rename one of the caller's passkeys.
#[utoipa::path(
    patch,
    path = "/user/passkeys/{id}",
    tag = "passkeys",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = Uuid, description = "The passkey id, as `GET /user/passkeys` lists it; any other value is answered 404")),
    request_body = RenamePasskeyBody,
    responses(
        (status = 200, description = "The passkey is renamed", body = EmptyBody),
        (status = 400, description = format!("A name over 64 characters or with control characters (reason INVALID_PASSKEY_NAME), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no passkey with this id (reason PASSKEY_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rename_passkey<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<RenamePasskeyBody>,
) -> Result<Json<EmptyBody>, Problem> {
    // An id that does not even decode (`%FF`) is no passkey of the caller's
    // either.
    let Path(id) = id.map_err(|_| AuthError::PasskeyNotFound)?;
    let body = body.complete()?;
    state
        .auth
        .rename_passkey(&caller.0, &id, &body.name)
        .await?;
    Ok(Json(EmptyBody {}))
}

/// Remove one of the caller's passkeys.
#[utoipa::path(
    delete,
    path = "/user/passkeys/{id}",
    tag = "passkeys",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = Uuid, description = "The passkey id, as `GET /user/passkeys` lists it; any other value is answered 404")),
    request_body(content = ref("#/components/schemas/StepUpBody"), description = "A code; omit the body when the account has no TOTP or the token comes from a recent authentication with the second factor"),
    responses(
        (status = 200, description = "The passkey is removed", body = EmptyBody),
        (status = 400, description = format!("A wrong or malformed code (reason MFA_CODE_INVALID), more than one of totp_code, recovery_code and passkey_credential_json (reason FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token, or neither a code nor a recent authentication with the second factor (reason REAUTHENTICATION_REQUIRED, with max_age); a refused passkey assertion (reasons PASSKEY_VERIFICATION_FAILED, USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge; RFC 9470's insufficient_user_authentication with max_age"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no passkey with this id (reason PASSKEY_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No passkey challenge to answer: none started for the session (POST /user/reauthenticate/passkey) or spent by an earlier assertion (reason PASSKEY_CEREMONY_INVALID); or the account has no password and no other passkey: this one is its last way to sign in (reason LAST_SIGN_IN_METHOD)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn remove_passkey<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
    Client(client): Client,
    id: Result<Path<String>, PathRejection>,
    OptionalJsonBody(body): OptionalJsonBody<StepUpBody>,
) -> Result<Json<EmptyBody>, Problem> {
    let Path(id) = id.map_err(|_| AuthError::PasskeyNotFound)?;
    let second = step_up_proof(body)?;
    state
        .auth
        .remove_passkey(&caller.0, &id, second, &client, None)
        .await?;
    Ok(Json(EmptyBody {}))
}

/// Whom a passkey sign-in is for.
#[derive(Debug, ToSchema)]
pub struct StartPasskeyLoginBody {
    /// The account to sign in to; empty or left out for a discoverable
    /// credential (browser autofill).
    #[schema(example = "alice", nullable = false)]
    pub username: Option<String>,
}

impl FromFields for StartPasskeyLoginBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            username: fields.optional_string("username"),
        }
    }
}

/// Start signing in with a passkey.
#[utoipa::path(
    post,
    path = "/login/passkey/start",
    tag = "passkeys",
    request_body = StartPasskeyLoginBody,
    responses(
        (status = 200, description = "A sign-in ceremony: pass options_json to navigator.credentials.get, then `POST /login/passkey`; an unknown username gets options shaped like a known one's", body = PasskeyCeremonyBody),
        (status = 400, description = format!("A username no account could have (reason INVALID_USERNAME), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_passkey_login<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    JsonBody(body): JsonBody<StartPasskeyLoginBody>,
) -> Result<Json<PasskeyCeremonyBody>, Problem> {
    let body = body.complete()?;
    let ceremony = state
        .auth
        .start_passkey_login(body.username.as_deref().unwrap_or_default(), &client)
        .await?;
    Ok(Json(ceremony.into()))
}

/// The browser's assertion, finishing a sign-in ceremony.
#[derive(Debug, ToSchema)]
pub struct FinishPasskeyLoginBody {
    /// From `POST /login/passkey/start`.
    pub ceremony_id: String,
    /// `credential.toJSON()` of what navigator.credentials.get returned.
    pub credential_json: String,
}

impl FromFields for FinishPasskeyLoginBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            ceremony_id: fields.string("ceremony_id"),
            credential_json: fields.string("credential_json"),
        }
    }
}

/// Finish signing in with a passkey: a new session, as `POST /login`
/// starts one.
#[utoipa::path(
    post,
    path = "/login/passkey",
    tag = "passkeys",
    request_body = FinishPasskeyLoginBody,
    responses(
        (status = 200, description = "Signed in (amr hwk or swk, user, mfa); the tokens are also set as cookies", body = TokenBody,
            headers(("set-cookie" = String, description = "The access and refresh tokens, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = UNREADABLE_BODY, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A credential that does not parse or check out, or another account's (reason PASSKEY_VERIFICATION_FAILED), or whose authenticator did not verify the user (reason USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "The account is disabled (reason ACCOUNT_DISABLED)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ceremony is unknown, expired, finished or a registration's: start again (reason PASSKEY_CEREMONY_INVALID)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address or for this account (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn finish_passkey_login<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    jar: CookieJar,
    JsonBody(body): JsonBody<FinishPasskeyLoginBody>,
) -> Result<(CookieJar, Json<TokenBody>), Problem> {
    let body = body.complete()?;
    let session = state
        .auth
        .finish_passkey_login(&body.ceremony_id, &body.credential_json, &client)
        .await?;
    Ok(state.session_response(jar, session))
}
