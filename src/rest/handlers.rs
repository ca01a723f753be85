//! The REST endpoints: read the body, call the domain, shape the answer.
//! Each is documented for the OpenAPI document by its `#[utoipa::path]`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, HeaderName};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RestState;
use super::caller::{Caller, ClientAddress};
use super::problem::Problem;
use crate::domain::{AuthError, Claims, Credentials, PublicJwk, Session, TokenRejection};
use crate::storage::Store;

/// A JSON body whose rejections are problem+json like every other error.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// A username and password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CredentialsBody {
    /// 3 to 32 letters, digits, `.`, `_` or `-`, starting with a letter or
    /// digit; compared case-insensitively.
    #[schema(example = "alice")]
    pub username: String,
    /// 8 to 128 characters, any Unicode.
    #[schema(example = "correct horse battery staple", format = Password)]
    pub password: String,
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    /// Stable account id; the `sub` claim of its tokens.
    #[schema(example = "01a20ab2-7f11-74ba-b77a-ec6a007c16d9")]
    pub id: String,
    #[schema(example = "alice")]
    pub username: String,
}

/// A new access token (also set as a cookie).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenBody {
    /// A signed JWT; send it as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub expires_in: u32,
    pub user: UserBody,
}

/// A token to check.
#[derive(Debug, Deserialize, ToSchema)]
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
}

/// A JSON Web Key Set.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksBody {
    pub keys: Vec<PublicJwk>,
}

/// The empty answer to a logout.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutBody {}

const TOKEN_TYPE: &str = "Bearer";

/// Register a new account and log it in.
#[utoipa::path(
    post,
    path = "/user/register",
    tag = "auth",
    request_body = CredentialsBody,
    responses(
        (status = 201, description = "Registered and logged in; the token is also set as a cookie", body = TokenBody,
            headers(("set-cookie" = String, description = "The access token, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = "Invalid username or password, or an unreadable body", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken (reason USERNAME_TAKEN)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    ClientAddress(client): ClientAddress,
    jar: CookieJar,
    JsonBody(body): JsonBody<CredentialsBody>,
) -> Result<(StatusCode, CookieJar, Json<TokenBody>), Problem> {
    let credentials = Credentials::for_registration(&body.username, body.password)?;
    // REST clients state no deadline: only `--hash-queue-timeout` (and the
    // request timeout within it) limits the wait.
    let session = state.auth.register(credentials, client, None).await?;
    let (jar, body) = state.session_response(jar, session);
    Ok((StatusCode::CREATED, jar, body))
}

/// Log in with a username and password.
#[utoipa::path(
    post,
    path = "/login",
    tag = "auth",
    request_body = CredentialsBody,
    responses(
        (status = 200, description = "Logged in; the token is also set as a cookie", body = TokenBody,
            headers(("set-cookie" = String, description = "The access token, HttpOnly; Secure; SameSite=Strict"))),
        (status = 400, description = "Invalid input or an unreadable body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong username or password (reason INVALID_CREDENTIALS)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address or for this username (reason RATE_LIMITED)", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds until a retry can succeed"))),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy (reason SERVER_BUSY) or the database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    ClientAddress(client): ClientAddress,
    jar: CookieJar,
    JsonBody(body): JsonBody<CredentialsBody>,
) -> Result<(CookieJar, Json<TokenBody>), Problem> {
    let credentials = Credentials::for_login(&body.username, body.password)?;
    let session = state.auth.login(credentials, client, None).await?;
    Ok(state.session_response(jar, session))
}

/// Log out: revoke the caller's token everywhere and clear the cookie.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The token is revoked; the cookie is cleared", body = LogoutBody),
        (status = 401, description = "No valid token (reasons MISSING_TOKEN, TOKEN_REVOKED, TOKEN_EXPIRED, ...)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    jar: CookieJar,
    caller: Caller,
) -> Result<(CookieJar, Json<LogoutBody>), Problem> {
    state.auth.logout(&caller.0).await?;
    Ok((state.clear_session_cookie(jar), Json(LogoutBody {})))
}

/// Log out everywhere: revoke every token of the caller issued up to now.
#[utoipa::path(
    post,
    path = "/logout/all",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "All the caller's tokens are revoked; the cookie is cleared", body = LogoutBody),
        (status = 401, description = "No valid token (reasons MISSING_TOKEN, TOKEN_REVOKED, TOKEN_EXPIRED, ...)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 503, description = "The database is unreachable; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout_all<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    jar: CookieJar,
    caller: Caller,
) -> Result<(CookieJar, Json<LogoutBody>), Problem> {
    state.auth.logout_all(&caller.0).await?;
    Ok((state.clear_session_cookie(jar), Json(LogoutBody {})))
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
    let keys = state.auth.tokens().published_keys();
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
        (status = 400, description = "An unreadable body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The token is refused (reasons TOKEN_EXPIRED, TOKEN_REVOKED, TOKEN_MALFORMED, ...)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
    )
)]
pub async fn verify<S: Store>(
    State(state): State<Arc<RestState<S>>>,
    JsonBody(body): JsonBody<VerifyBody>,
) -> Result<Json<ClaimsBody>, Problem> {
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
    )
)]
pub async fn me(caller: Caller) -> Result<Json<ClaimsBody>, Problem> {
    Ok(Json(claims_body(&caller.0)?))
}

fn claims_body(claims: &Claims) -> Result<ClaimsBody, AuthError> {
    let timestamp = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0).ok_or(AuthError::from(TokenRejection::Malformed))
    };
    Ok(ClaimsBody {
        issued_at: timestamp(claims.iat)?,
        expires_at: timestamp(claims.exp)?,
        user: UserBody {
            id: claims.sub.clone(),
            username: claims.username.clone(),
        },
        token_id: claims.jti.clone(),
    })
}

impl<S> RestState<S> {
    /// The JSON body of a new session and the cookie that carries its token.
    fn session_response(&self, jar: CookieJar, session: Session) -> (CookieJar, Json<TokenBody>) {
        let Session { user, token } = session;
        let mut cookie = self.session_cookie(token.token.clone());
        cookie.set_max_age(cookie::time::Duration::seconds(i64::from(token.expires_in)));
        let body = TokenBody {
            access_token: token.token,
            token_type: TOKEN_TYPE,
            expires_in: token.expires_in,
            user: UserBody {
                id: user.id.to_string(),
                username: user.username,
            },
        };
        (jar.add(cookie), Json(body))
    }

    /// Replaces the session cookie by an expired, empty one.
    fn clear_session_cookie(&self, jar: CookieJar) -> CookieJar {
        let mut expired = self.session_cookie(String::new());
        expired.make_removal();
        jar.add(expired)
    }

    /// The session cookie: unreadable by scripts, HTTPS only, never sent
    /// along with requests from other sites.
    fn session_cookie(&self, value: String) -> Cookie<'static> {
        Cookie::build((self.cookie_name.clone(), value))
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .path("/")
            .build()
    }
}
