//! The REST endpoints: read the body, call the domain, shape the answer.
//! Each is documented for the OpenAPI document by its `#[utoipa::path]`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, HeaderName};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use super::RestState;
use super::body::{Fields, FromFields, JsonBody, OptionalJsonBody};
use super::caller::{Caller, Client};
use super::origin::from_this_or_allowed_origin;
use super::second_factor::{MfaRequiredResponseBody, SecondFactorBody as _};
use crate::domain::{
    AccessToken, AuthError, Claims, Credentials, LoginOutcome, Password, PublicJwk,
    SecondFactorProof, Session, SessionSummary, Store, TokenRejection, User,
};
use crate::http::problem::Problem;

/// A new account's username and password, and perhaps its email address.
#[derive(Debug, ToSchema)]
pub struct CredentialsBody {
    #[schema(schema_with = username_schema)]
    pub username: String,
    /// 8 to 128 characters (code points, counted before NFKC
    /// normalization), any Unicode; not one of the most common passwords
    /// (refused with 400, reason PASSWORD_TOO_COMMON).
    #[schema(example = "correct horse battery staple", format = Password, min_length = 8, max_length = 128)]
    pub password: String,
    /// Optional: stored unverified, and a verification link is mailed to
    /// it when authd sends mail (refused with 400, reason INVALID_EMAIL).
    #[schema(schema_with = super::email::email_schema, nullable = false)]
    pub email: Option<String>,
}

/// A username and password to log in with.
#[derive(Debug, ToSchema)]
pub struct LoginBody {
    #[schema(schema_with = username_schema)]
    pub username: String,
    /// 1 to 128 characters: only the upper bound of new passwords, so that
    /// raising their minimum never locks anyone out.
    #[schema(example = "correct horse battery staple", format = Password, min_length = 1, max_length = 128)]
    pub password: String,
}

/// A username as `CredentialsBody` and `LoginBody` document it. JSON Schema
/// sees it before normalization, so its pattern says only what holds then:
/// no whitespace or control character except around it (it is trimmed), and
/// at most 512 characters in between (more than 512 bytes are refused
/// before normalizing). NFKC can make one character several ("ﬃ" is "ffi") and several
/// one, so the 3 to 32 limit applies only after it and is left to the
/// description.
pub(super) fn username_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^\s*[^\s\x00-\x1f\x7f]{1,512}\s*$"))
        .description(Some(
            "Trimmed and NFKC-normalized, then 3 to 32 letters or digits of any script, \
             `.`, `_` or `-`, starting with a letter or digit; compared case-insensitively. \
             The pattern states only what holds before normalization; a name that breaks \
             the rest is refused with 400 (reason INVALID_USERNAME).",
        ))
        .examples(["alice"])
        .build()
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    /// Stable account id; the `sub` claim of its tokens.
    #[schema(example = "01a20ab2-7f11-74ba-b77a-ec6a007c16d9")]
    pub id: String,
    #[schema(example = "alice")]
    pub username: String,
    /// The account's email address as given; absent when it has none, and
    /// where the answer comes from the token alone (`/verify`, `/user/me`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "alice@example.com", nullable = false)]
    pub email: Option<String>,
    /// Whether the mailed link came back; absent where the answer comes
    /// from the token alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub email_verified: Option<bool>,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username,
            email: user.email,
            email_verified: Some(user.email_verified),
        }
    }
}

/// A session's new tokens (also set as cookies).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenBody {
    /// A signed JWT; send it as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u32,
    pub user: UserBody,
    /// Opaque; exchange it at `POST /token/refresh` for new tokens.
    #[schema(example = "authd_rt_q3Jt3yqQ7rjG9pVtWc0G9H9n6Ck1e3cI2yGQ8QbQy6w")]
    pub refresh_token: String,
    /// Seconds until the session can no longer be refreshed.
    #[schema(example = 1_209_600)]
    pub refresh_expires_in: u32,
    /// The session these tokens belong to (the access token's `sid`).
    pub session_id: String,
}

/// A refresh token to exchange; without a body, the refresh cookie is used.
#[derive(Debug, ToSchema)]
pub struct RefreshBody {
    #[schema(min_length = 1)]
    pub refresh_token: String,
}

/// A password change.
#[derive(Debug, ToSchema)]
pub struct ChangePasswordBody {
    /// As at login: 1 to 128 characters.
    #[schema(example = "correct horse battery staple", format = Password, min_length = 1, max_length = 128)]
    pub current_password: String,
    /// As at registration: 8 to 128 characters (code points, counted before
    /// NFKC normalization), not one of the most common passwords (refused
    /// with 400, reason PASSWORD_TOO_COMMON).
    #[schema(example = "staple battery horse correct", format = Password, min_length = 8, max_length = 128)]
    pub new_password: String,
    /// For an account with a second factor, unless the caller's token
    /// comes from a recent authentication with it (else 401
    /// REAUTHENTICATION_REQUIRED); or send `recovery_code`.
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

/// The password of the account to delete.
#[derive(Debug, ToSchema)]
pub struct PasswordBody {
    /// As at login: 1 to 128 characters.
    #[schema(example = "correct horse battery staple", format = Password, min_length = 1, max_length = 128)]
    pub password: String,
    /// As `ChangePasswordBody`'s.
    #[schema(example = "123456", nullable = false)]
    pub totp_code: Option<String>,
    /// As `ChangePasswordBody`'s.
    #[schema(example = "7KQ2M-XH9RT-C4WNZ", nullable = false)]
    pub recovery_code: Option<String>,
    /// A passkey's assertion for the challenge, as the browser's
    /// `credential.toJSON()` writes it (a JSON string).
    #[schema(nullable = false)]
    pub passkey_credential_json: Option<String>,
}

/// One of the caller's live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionBody {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// The session's start or its latest refresh.
    pub last_used_at: DateTime<Utc>,
    /// When it ends unless refreshed before (or at all, if sooner).
    pub expires_at: DateTime<Utc>,
    /// Whether the caller's token belongs to this session.
    pub current: bool,
    /// The client's address when the session started.
    pub client_address: String,
    /// The client's User-Agent when the session started.
    pub user_agent: String,
    /// How the session's user last authenticated, as `POST /verify`'s
    /// `amr`: `pwd` for a password; `pwd`, `otp`, `mfa` with TOTP; `hwk` or
    /// `swk`, `user`, `mfa` for a passkey.
    #[schema(example = json!(["pwd", "otp", "mfa"]))]
    pub amr: Vec<String>,
    /// 1 for one factor, 2 for two, as `POST /verify`'s.
    #[schema(example = 2)]
    pub assurance_level: u32,
}

/// The caller's live sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsBody {
    pub sessions: Vec<SessionBody>,
}

/// The empty answer of an operation that has nothing to return.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmptyBody {}

/// A token to check.
#[derive(Debug, ToSchema)]
pub struct VerifyBody {
    /// The access token, without the `Bearer ` prefix.
    pub access_token: String,
}

/// Whom a valid token belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimsBody {
    pub user: UserBody,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The token's unique id (its `jti` claim).
    pub token_id: String,
    /// The token's session (its `sid` claim); absent from tokens issued
    /// before sessions existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// How the user authenticated (RFC 8176, the `amr` claim): `pwd`;
    /// `pwd`, `otp`, `mfa` with TOTP; `pwd`, `rc`, `mfa` with a recovery
    /// code. Empty for tokens issued before authd recorded it.
    #[schema(example = json!(["pwd", "otp", "mfa"]))]
    pub amr: Vec<String>,
    /// When the user last authenticated (the `auth_time` claim); absent
    /// from tokens issued before authd recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<DateTime<Utc>>,
    /// 1 for one factor, 2 for two (the `acr` claim: `aal1`, `aal2`); 0
    /// for tokens issued before authd recorded it.
    #[schema(example = 2)]
    pub assurance_level: u32,
}

/// A JSON Web Key Set.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksBody {
    pub keys: Vec<JwkBody>,
}

/// A public key in JWK form (RFC 8037).
#[derive(Debug, Serialize, ToSchema)]
pub struct JwkBody {
    /// `OKP`.
    #[schema(example = "OKP")]
    pub kty: String,
    /// `Ed25519`.
    #[schema(example = "Ed25519")]
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key id tokens name in their header.
    pub kid: String,
    /// `EdDSA`: the only algorithm this key may be used with.
    #[schema(example = "EdDSA")]
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub key_use: String,
}

impl FromFields for CredentialsBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            username: fields.string("username"),
            password: fields.string("password"),
            email: fields.optional_string("email"),
        }
    }
}

impl FromFields for LoginBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            username: fields.string("username"),
            password: fields.string("password"),
        }
    }
}

impl FromFields for RefreshBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            refresh_token: fields.string("refresh_token"),
        }
    }
}

impl FromFields for ChangePasswordBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            current_password: fields.string("current_password"),
            new_password: fields.string("new_password"),
            totp_code: fields.optional_string("totp_code"),
            recovery_code: fields.optional_string("recovery_code"),
            passkey_credential_json: fields.optional_string("passkey_credential_json"),
        }
    }
}

impl FromFields for PasswordBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            password: fields.string("password"),
            totp_code: fields.optional_string("totp_code"),
            recovery_code: fields.optional_string("recovery_code"),
            passkey_credential_json: fields.optional_string("passkey_credential_json"),
        }
    }
}

impl FromFields for VerifyBody {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            access_token: fields.string("access_token"),
        }
    }
}

impl From<PublicJwk> for JwkBody {
    fn from(key: PublicJwk) -> Self {
        Self {
            kty: key.kty,
            crv: key.crv,
            x: key.x,
            kid: key.kid,
            alg: key.alg,
            key_use: key.key_use,
        }
    }
}

const TOKEN_TYPE: &str = "Bearer";

/// The `400`s every JSON body can get before any rule runs (`body.rs`), as
/// each operation with a body documents them.
pub(super) const UNREADABLE_BODY: &str = "a body that is not the JSON above: not JSON at all \
    (reason MALFORMED_JSON), or a field missing or not a string (reason INVALID_BODY; \
    `errors` names each such field, reason FIELD_REQUIRED or FIELD_INVALID_TYPE, along \
    with what the rules find wrong with the others)";
/// The `413` of every operation with a body.
pub(super) const BODY_TOO_LARGE: &str = "The body is too large (reason BODY_TOO_LARGE)";
/// The `415` of every operation with a body.
pub(super) const UNSUPPORTED_MEDIA_TYPE: &str = "The body is not sent as application/json in UTF-8: \
    another media type, or a charset other than utf-8 (reason UNSUPPORTED_MEDIA_TYPE)";

/// Register a new account and log it in.
#[utoipa::path(
    post,
    path = "/user/register",
    tag = "auth",
    request_body = CredentialsBody,
    responses(
        (status = 201, description = "Registered and logged in; the token is also set as a cookie", body = TokenBody,
            headers(("set-cookie" = String, description = "The access token, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = format!("A username, password or email address the rules above refuse (reasons INVALID_USERNAME, PASSWORD_REQUIRED, PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, PASSWORD_TOO_COMMON, INVALID_EMAIL), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken (reason USERNAME_TAKEN)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this client address, or verification mails to this email address (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    jar: CookieJar,
    JsonBody(body): JsonBody<CredentialsBody>,
) -> Result<(StatusCode, CookieJar, Json<TokenBody>), Problem> {
    let (credentials, email) = body.parse(|body| {
        Credentials::for_registration_with_email(
            &body.username,
            body.password,
            body.email.as_deref(),
        )
    })?;
    // REST clients state no deadline: only `--hash-queue-timeout` (and the
    // request timeout within it) limits the wait.
    let session = state
        .auth
        .register(credentials, email, &client, None)
        .await?;
    let (jar, body) = state.session_response(jar, session);
    Ok((StatusCode::CREATED, jar, body))
}

/// Log in with a username and password.
#[utoipa::path(
    post,
    path = "/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in, the tokens also set as cookies; or, for an account with a second factor, `{\"mfa_required\": {...}}` with no token and no cookie: complete it at `POST /login/mfa`", body = LoginAnswer,
            headers(("set-cookie" = String, description = "The access and refresh tokens (not with mfa_required), HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = format!("A username no account could have (reason INVALID_USERNAME), an empty or too long password (reasons PASSWORD_REQUIRED, PASSWORD_TOO_LONG), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong username or password (reason INVALID_CREDENTIALS)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "The password is right but the account is disabled (reason ACCOUNT_DISABLED)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address or for this username (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    jar: CookieJar,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<(CookieJar, Json<LoginAnswer>), Problem> {
    let credentials = body.parse(|body| Credentials::for_login(&body.username, body.password))?;
    Ok(match state.auth.login(credentials, &client, None).await? {
        LoginOutcome::Session(session) => {
            let (jar, Json(tokens)) = state.session_response(jar, session);
            (jar, Json(LoginAnswer::Tokens(tokens)))
        }
        LoginOutcome::SecondFactorRequired(challenge) => {
            (jar, Json(LoginAnswer::MfaRequired(challenge.into())))
        }
    })
}

/// `POST /login`'s answer: a session's tokens, or a second factor to give.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    Tokens(TokenBody),
    MfaRequired(MfaRequiredResponseBody),
}

/// Log out: end the caller's session everywhere and clear both cookies.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The session has ended; both cookies are cleared", body = EmptyBody),
        (status = 401, description = "No valid token (reasons MISSING_TOKEN, TOKEN_REVOKED, TOKEN_EXPIRED, ...)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    jar: CookieJar,
    caller: Caller,
) -> Result<(CookieJar, Json<EmptyBody>), Problem> {
    state.auth.logout(&caller.0).await?;
    Ok((state.clear_session_cookies(jar), Json(EmptyBody {})))
}

/// Log out everywhere: end every session of the caller.
#[utoipa::path(
    post,
    path = "/logout/all",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Every session of the caller has ended; both cookies are cleared", body = EmptyBody),
        (status = 401, description = "No valid token (reasons MISSING_TOKEN, TOKEN_REVOKED, TOKEN_EXPIRED, ...)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout_all<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    jar: CookieJar,
    caller: Caller,
) -> Result<(CookieJar, Json<EmptyBody>), Problem> {
    state.auth.logout_all(&caller.0).await?;
    Ok((state.clear_session_cookies(jar), Json(EmptyBody {})))
}

/// The public keys tokens are signed with (RFC 7517), for services that
/// verify tokens themselves.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    responses((status = 200, description = "The JSON Web Key Set", body = JwksBody,
        headers(("cache-control" = String, description = "public, max-age=N: shorter than a rotated key takes from its publication here to its first signature"))))
)]
pub async fn jwks<S: Store>(
    State(state): State<Arc<RestState<S>>>,
) -> ([(HeaderName, HeaderValue); 1], Json<JwksBody>) {
    let keys = state
        .auth
        .tokens()
        .published_keys()
        .into_iter()
        .map(JwkBody::from)
        .collect();
    // Never longer than a rotated key takes from its publication here to
    // its first signature (`Settings::jwks_max_age`), so that verifiers
    // fetch it before it signs.
    (
        [(CACHE_CONTROL, state.jwks_cache_control.clone())],
        Json(JwksBody { keys }),
    )
}
#[utoipa::path(
    post,
    path = "/verify",
    tag = "auth",
    request_body = VerifyBody,
    responses(
        (status = 200, description = "The token is valid", body = ClaimsBody),
        (status = 400, description = format!("Only {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The token is refused (reasons MISSING_TOKEN for an empty one, TOKEN_EXPIRED, TOKEN_REVOKED, TOKEN_MALFORMED, ...)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The token names a key not loaded yet and the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn verify<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    JsonBody(body): JsonBody<VerifyBody>,
) -> Result<Json<ClaimsBody>, Problem> {
    let body = body.complete()?;
    let claims = state.auth.verify(&body.access_token).await?;
    Ok(Json(claims_body(&claims)?))
}

/// Who am I: the caller's own token, from the `Authorization` header or the
/// cookie.
#[utoipa::path(
    get,
    path = "/user/me",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller's token is valid", body = ClaimsBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 503, description = "The token names a key not loaded yet and the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn me(caller: Caller) -> Result<Json<ClaimsBody>, Problem> {
    Ok(Json(claims_body(&caller.0)?))
}

/// Exchange a refresh token for new tokens (rotation): from the body, or
/// with no body from the refresh cookie.
#[utoipa::path(
    post,
    path = "/token/refresh",
    tag = "auth",
    // By reference, so that the body is optional (`Option<RefreshBody>`
    // would also document a JSON `null`, which the handler refuses).
    request_body(content = ref("#/components/schemas/RefreshBody"), description = "The refresh token; omit the body to use the refresh cookie"),
    responses(
        (status = 200, description = "New tokens; the one presented is retired. Both cookies are renewed", body = TokenBody,
            headers(("set-cookie" = String, description = "The access and refresh tokens, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = format!("Only {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The refresh token is refused (reasons REFRESH_TOKEN_INVALID, REFRESH_TOKEN_REUSED, SESSION_ENDED)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "The account is disabled (reason ACCOUNT_DISABLED), or the refresh cookie came from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = BODY_TOO_LARGE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refresh<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    jar: CookieJar,
    headers: HeaderMap,
    OptionalJsonBody(body): OptionalJsonBody<RefreshBody>,
) -> Result<(CookieJar, Json<TokenBody>), Problem> {
    let presented = match body {
        Some(body) => body.complete()?.refresh_token,
        None => {
            if !from_this_or_allowed_origin(&headers, &state.allowed_origins) {
                return Err(Problem::cross_origin());
            }
            jar.get(&state.refresh_cookie_name)
                .map(|cookie| cookie.value().to_owned())
                .ok_or(AuthError::RefreshTokenInvalid)?
        }
    };
    let session = state.auth.refresh(&presented).await?;
    Ok(state.session_response(jar, session))
}

/// Change the caller's password: every session of the account ends, and a
/// new one starts.
#[utoipa::path(
    post,
    path = "/user/password",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    request_body = ChangePasswordBody,
    responses(
        (status = 200, description = "Changed; the body and cookies carry a new session's tokens", body = TokenBody,
            headers(("set-cookie" = String, description = "The access and refresh tokens, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = format!("A new password the rules refuse (reason PASSWORD_TOO_COMMON; the lengths are in the schema), a wrong or malformed second-factor code (reason MFA_CODE_INVALID), more than one of totp_code, recovery_code and passkey_credential_json (reason FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token, a wrong current password (reason INVALID_CREDENTIALS), or an account with a second factor and neither a code nor a recent authentication with it (reason REAUTHENTICATION_REQUIRED); a refused passkey assertion (reasons PASSKEY_VERIFICATION_FAILED, USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
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
pub async fn change_password<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    caller: Caller,
    jar: CookieJar,
    JsonBody(body): JsonBody<ChangePasswordBody>,
) -> Result<(CookieJar, Json<TokenBody>), Problem> {
    let (current, new, second) = body.parse(|body| {
        let second = SecondFactorProof::parse_optional(body.second_factor());
        let (current, new) = Password::for_change(body.current_password, body.new_password)?;
        Ok((current, new, second?))
    })?;
    let session = state
        .auth
        .change_password(&caller.0, current, new, second, &client, None)
        .await?;
    Ok(state.session_response(jar, session))
}

/// Delete the caller's account, after checking its password.
#[utoipa::path(
    delete,
    path = "/user/me",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    request_body = PasswordBody,
    responses(
        (status = 200, description = "Deleted; both cookies are cleared", body = EmptyBody),
        (status = 400, description = format!("An empty or too long password (reasons PASSWORD_REQUIRED, PASSWORD_TOO_LONG), a wrong or malformed second-factor code (reason MFA_CODE_INVALID), more than one of totp_code, recovery_code and passkey_credential_json (reason FIELD_CONFLICT), or {UNREADABLE_BODY}"), body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token, a wrong password (reason INVALID_CREDENTIALS), or an account with a second factor and neither a code nor a recent authentication with it (reason REAUTHENTICATION_REQUIRED); a refused passkey assertion (reasons PASSKEY_VERIFICATION_FAILED, USER_VERIFICATION_REQUIRED)", body = Problem, content_type = "application/problem+json",
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
pub async fn delete_me<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    Client(client): Client,
    caller: Caller,
    jar: CookieJar,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<(CookieJar, Json<EmptyBody>), Problem> {
    let (password, second) = body.parse(|body| {
        let second = SecondFactorProof::parse_optional(body.second_factor());
        Ok((Password::for_confirmation(body.password)?, second?))
    })?;
    state
        .auth
        .delete_account(&caller.0, password, second, &client, None)
        .await?;
    Ok((state.clear_session_cookies(jar), Json(EmptyBody {})))
}

/// The caller's live sessions, newest first.
#[utoipa::path(
    get,
    path = "/user/sessions",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller's live sessions", body = SessionsBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_sessions<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
) -> Result<Json<SessionsBody>, Problem> {
    let sessions = state.auth.list_sessions(&caller.0).await?;
    Ok(Json(SessionsBody {
        sessions: sessions.into_iter().map(SessionBody::from).collect(),
    }))
}

/// End one of the caller's sessions.
#[utoipa::path(
    delete,
    path = "/user/sessions/{id}",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = Uuid, description = "The session id, as `GET /user/sessions` lists it; any other value is answered 404")),
    responses(
        (status = 200, description = "The session has ended", body = EmptyBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "Authenticated by a cookie alone, from an origin that is neither this one nor an allowed one (reason CROSS_ORIGIN_REQUEST)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No live session of the caller has this id (reason SESSION_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_session<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<EmptyBody>, Problem> {
    // An id that does not even decode (`%FF`) is no session of the caller's
    // either.
    let Path(id) = id.map_err(|_| AuthError::SessionNotFound)?;
    state.auth.revoke_session(&caller.0, &id).await?;
    Ok(Json(EmptyBody {}))
}

impl From<SessionSummary> for SessionBody {
    fn from(session: SessionSummary) -> Self {
        Self {
            id: session.id.to_string(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            current: session.current,
            client_address: session.client_address,
            user_agent: session.user_agent,
            amr: session.amr,
            assurance_level: session.assurance_level,
        }
    }
}

fn claims_body(claims: &Claims) -> Result<ClaimsBody, AuthError> {
    let timestamp = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0).ok_or(AuthError::from(TokenRejection::Malformed))
    };
    Ok(ClaimsBody {
        issued_at: timestamp(claims.iat)?,
        expires_at: timestamp(claims.exp)?,
        // From the token alone: its address is no claim.
        user: UserBody {
            id: claims.sub.clone(),
            username: claims.username.clone(),
            email: None,
            email_verified: None,
        },
        token_id: claims.jti.clone(),
        session_id: claims.sid.clone(),
        amr: claims.amr.clone(),
        auth_time: claims.auth_time.map(timestamp).transpose()?,
        assurance_level: claims.assurance_level(),
    })
}

impl<S> RestState<S> {
    /// The JSON body of a new session and the cookies that carry its
    /// tokens.
    /// The cookie that carries an access token, added to `jar`.
    pub(super) fn access_cookie(&self, jar: CookieJar, token: &AccessToken) -> CookieJar {
        let cookie = self.cookie(&self.cookie_name, "/", token.token.clone());
        jar.add(with_max_age(cookie, token.expires_in))
    }

    pub(super) fn session_response(
        &self,
        jar: CookieJar,
        session: Session,
    ) -> (CookieJar, Json<TokenBody>) {
        let Session {
            id,
            user,
            token,
            refresh,
        } = session;
        let jar = self.access_cookie(jar, &token);
        let refresh_cookie = self.cookie(
            &self.refresh_cookie_name,
            REFRESH_COOKIE_PATH,
            refresh.token.clone(),
        );
        let jar = jar.add(with_max_age(refresh_cookie, refresh.expires_in));
        let body = TokenBody {
            access_token: token.token,
            token_type: TOKEN_TYPE,
            expires_in: token.expires_in,
            user: user.into(),
            refresh_token: refresh.token,
            refresh_expires_in: refresh.expires_in,
            session_id: id.to_string(),
        };
        (jar, Json(body))
    }

    /// Replaces both session cookies by expired, empty ones.
    fn clear_session_cookies(&self, jar: CookieJar) -> CookieJar {
        let mut access = self.cookie(&self.cookie_name, "/", String::new());
        access.make_removal();
        let mut refresh = self.cookie(
            &self.refresh_cookie_name,
            REFRESH_COOKIE_PATH,
            String::new(),
        );
        refresh.make_removal();
        jar.add(access).add(refresh)
    }

    /// A session cookie: unreadable by scripts, HTTPS only, never sent
    /// along with requests from other sites.
    fn cookie(&self, name: &str, path: &'static str, value: String) -> Cookie<'static> {
        Cookie::build((name.to_owned(), value))
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .path(path)
            .build()
    }
}

/// The refresh cookie goes only to the refresh endpoint.
const REFRESH_COOKIE_PATH: &str = "/token";

fn with_max_age(mut cookie: Cookie<'static>, seconds: u32) -> Cookie<'static> {
    cookie.set_max_age(cookie::time::Duration::seconds(i64::from(seconds)));
    cookie
}
