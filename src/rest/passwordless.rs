//! The REST twins of the passwordless RPCs: signing up with a passkey
//! (`StartPasskeySignup`, `RegisterWithPasskey`) and giving such an account
//! a password later (`SetPassword`). Bodies use the proto's field names.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum_extra::extract::CookieJar;
use http::StatusCode;
use utoipa::ToSchema;

use super::RestState;
use super::body::{Fields, FromFields, JsonBody};
use super::caller::{Caller, Client};
use super::handlers::{
    BODY_TOO_LARGE, EmptyBody, TokenBody, UNREADABLE_BODY, UNSUPPORTED_MEDIA_TYPE, username_schema,
};
use super::passkeys::PasskeyCeremonyBody;
use crate::domain::{Password, Store};
use crate::http::problem::Problem;

/// The name of the account to sign up with a passkey.
#[derive(Debug, ToSchema)]
pub struct StartPasskeySignupBody {
    #[schema(schema_with = username_schema)]
    pub username: String,
}

impl FromFields for StartPasskeySignupBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            username: fields.string("username"),
        }
    }
}

/// Start signing up a new account whose only credential is a passkey.
#[utoipa::path(
    post,
    path = "/user/register/passkey/start",
    tag = "passkeys",
    request_body = StartPasskeySignupBody,
    responses(
        (status = 200, description = "A sign-up ceremony: pass options_json (a discoverable credential with user verification) to navigator.credentials.create, then `POST /user/register/passkey`. The name is claimed only then", body = PasskeyCeremonyBody),
        (status = 400, description = format!("A username the rules refuse (reason INVALID_USERNAME), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken (reason USERNAME_TAKEN), as `POST /user/register` says it", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_passkey_signup<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    JsonBody(body): JsonBody<StartPasskeySignupBody>,
) -> Result<Json<PasskeyCeremonyBody>, Problem> {
    let body = body.complete()?;
    let ceremony = state
        .auth
        .start_passkey_signup(&body.username, &client)
        .await?;
    Ok(Json(ceremony.into()))
}

/// The browser's new credential, finishing a sign-up ceremony.
#[derive(Debug, ToSchema)]
pub struct RegisterWithPasskeyBody {
    /// From `POST /user/register/passkey/start`.
    pub ceremony_id: String,
    /// `credential.toJSON()` of what navigator.credentials.create returned.
    pub credential_json: String,
    /// The passkey's name: 64 characters at most; `Passkey` when empty or
    /// left out.
    #[schema(example = "Laptop", max_length = 64, nullable = false)]
    pub name: Option<String>,
}

impl FromFields for RegisterWithPasskeyBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            ceremony_id: fields.string("ceremony_id"),
            credential_json: fields.string("credential_json"),
            name: fields.optional_string("name"),
        }
    }
}

/// Finish signing up with a passkey: the account is created, without a
/// password, and signed in, as `POST /user/register` does.
#[utoipa::path(
    post,
    path = "/user/register/passkey",
    tag = "passkeys",
    request_body = RegisterWithPasskeyBody,
    responses(
        (status = 201, description = "Registered and signed in (amr hwk or swk, user, mfa); the tokens are also set as cookies", body = TokenBody,
            headers(("set-cookie" = String, description = "The access and refresh tokens, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = format!("A name over 64 characters or with control characters (reason INVALID_PASSKEY_NAME), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A credential that does not parse or check out (reason PASSKEY_VERIFICATION_FAILED) or whose authenticator did not verify the user (reason USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 409, description = "The name was taken since the start, by another sign-up or registration (reason USERNAME_TAKEN); the ceremony is unknown, expired, finished or not a sign-up's: start again (reason PASSKEY_CEREMONY_INVALID); or the credential is registered already (reason PASSKEY_ALREADY_REGISTERED)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register_with_passkey<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    jar: CookieJar,
    JsonBody(body): JsonBody<RegisterWithPasskeyBody>,
) -> Result<(StatusCode, CookieJar, Json<TokenBody>), Problem> {
    let body = body.complete()?;
    let session = state
        .auth
        .register_with_passkey(
            &body.ceremony_id,
            &body.credential_json,
            body.name.as_deref().unwrap_or_default(),
            &client,
        )
        .await?;
    let (jar, body) = state.session_response(jar, session);
    Ok((StatusCode::CREATED, jar, body))
}

/// The first password of an account that has none.
#[derive(Debug, ToSchema)]
pub struct SetPasswordBody {
    /// As at registration: 8 to 128 characters (code points, counted before
    /// NFKC normalization), not one of the most common passwords (refused
    /// with 400, reason PASSWORD_TOO_COMMON).
    #[schema(example = "staple battery horse correct", format = Password, min_length = 8, max_length = 128)]
    pub new_password: String,
}

impl FromFields for SetPasswordBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            new_password: fields.string("new_password"),
        }
    }
}

/// Give the caller's account, which signs in with passkeys only, a
/// password. Its sessions stay.
#[utoipa::path(
    put,
    path = "/user/password",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    request_body = SetPasswordBody,
    responses(
        (status = 200, description = "The account has a password now", body = EmptyBody),
        (status = 400, description = format!("A new password the rules refuse (reason PASSWORD_TOO_COMMON; the lengths are in the schema), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token, or one from an authentication older than --reauthentication-max-age (reason REAUTHENTICATION_REQUIRED, with max_age): sign in with a passkey again", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge; RFC 9470's insufficient_user_authentication with max_age"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account has a password already: `POST /user/password` changes it (reason PASSWORD_ALREADY_SET)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_password<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
    Client(client): Client,
    JsonBody(body): JsonBody<SetPasswordBody>,
) -> Result<Json<EmptyBody>, Problem> {
    let new = body.parse(|body| Password::for_setting(body.new_password))?;
    state
        .auth
        .set_password(&caller.0, new, &client, None)
        .await?;
    Ok(Json(EmptyBody {}))
}
