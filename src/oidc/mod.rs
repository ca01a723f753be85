//! Standard discovery and introspection, so that off-the-shelf JWT
//! middleware and OAuth tooling verify authd's tokens without reading its
//! source: OpenID Connect Discovery and RFC 8414 metadata (one document at
//! both well-known paths), and RFC 7662 token introspection for callers
//! that cannot verify EdDSA themselves.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Settings;
use crate::domain::{AuthError, FieldViolation, ServiceCredentials, TokenService};
use crate::http::problem::{BodyRejection, Problem};
use crate::http::request_token::bearer_token;

/// Where the introspection endpoint is served.
pub const INTROSPECTION_PATH: &str = "/oauth2/introspect";

/// What discovery and introspection share.
struct OidcState {
    tokens: Arc<TokenService>,
    /// The metadata document, made once at start; `None` without
    /// `--public-url`.
    metadata: Option<Arc<str>>,
    /// As the JWKS's: the document names the JWKS and the issuer.
    cache_control: HeaderValue,
    introspection: ServiceCredentials,
}

/// Authorization server metadata (RFC 8414) and OpenID Provider metadata:
/// what authd has, and no endpoint it does not have.
#[derive(Debug, Serialize, ToSchema)]
pub struct Metadata {
    /// Exactly the `iss` of the tokens authd issues.
    issuer: String,
    /// The JWKS: the keys that verify authd's tokens.
    jwks_uri: String,
    /// RFC 7662 introspection; present when `--introspection-token` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<String>,
    /// authd has no authorization endpoint: users log in through its API.
    response_types_supported: Vec<String>,
    subject_types_supported: Vec<String>,
    /// Its tokens' signature algorithm, under the name verifiers know.
    id_token_signing_alg_values_supported: Vec<String>,
    /// The claims its access tokens carry.
    claims_supported: Vec<String>,
}

impl Metadata {
    /// The document for authd at `public_url`, issuing as `issuer`.
    fn new(public_url: &url::Url, issuer: String, introspection: bool) -> Self {
        let base = public_url.as_str().trim_end_matches('/');
        let strings = |values: &[&str]| values.iter().map(|value| (*value).to_owned()).collect();
        Self {
            issuer,
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            introspection_endpoint: introspection.then(|| format!("{base}{INTROSPECTION_PATH}")),
            response_types_supported: Vec::new(),
            subject_types_supported: strings(&["public"]),
            id_token_signing_alg_values_supported: strings(&[authd_token::ALGORITHM_NAME]),
            claims_supported: strings(&[
                "iss",
                "sub",
                "aud",
                "exp",
                "nbf",
                "iat",
                "jti",
                "username",
                "sid",
                "client_id",
            ]),
        }
    }
}

/// RFC 7662's answer: everything about a live token, or `active: false`
/// and nothing else.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    /// `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// The session the token belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// The introspection request's form (`application/x-www-form-urlencoded`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the form; the body is read by hand.
pub struct IntrospectionForm {
    /// The access token to look at.
    token: String,
    /// Ignored: authd has one kind of token to introspect.
    token_type_hint: Option<String>,
}

/// The discovery and introspection routes, documented, their state applied.
pub fn router(tokens: Arc<TokenService>, settings: &Settings) -> OpenApiRouter {
    let introspection = ServiceCredentials::new(&settings.introspection_tokens);
    let metadata = settings.public_url.as_ref().map(|url| {
        let document = Metadata::new(url, settings.issuer(), introspection.any());
        Arc::from(serde_json::to_string(&document).unwrap_or_default())
    });
    let cache_control = settings.jwks_cache_control();
    documented().with_state(Arc::new(OidcState {
        tokens,
        metadata,
        cache_control,
        introspection,
    }))
}

fn documented() -> OpenApiRouter<Arc<OidcState>> {
    OpenApiRouter::new()
        .routes(routes!(openid_configuration))
        .routes(routes!(authorization_server_metadata))
        .routes(routes!(introspect))
}

/// The paths served here, for the test that holds request metrics to them.
#[cfg(test)]
pub(crate) fn paths() -> Vec<String> {
    documented()
        .split_for_parts()
        .1
        .paths
        .paths
        .into_keys()
        .collect()
}

/// OpenID Connect Discovery: where authd's keys are, and what its tokens
/// are. Needs `--public-url`.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "keys",
    responses(
        (status = 200, description = "The provider metadata", body = Metadata,
            headers(("cache-control" = String, description = "As the JWKS's"))),
        (status = 404, description = "No --public-url configured (reason PUBLIC_URL_NOT_CONFIGURED)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn openid_configuration(State(state): State<Arc<OidcState>>) -> Response {
    metadata(&state)
}

/// RFC 8414 authorization server metadata: the same document.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "keys",
    responses(
        (status = 200, description = "The authorization server metadata", body = Metadata,
            headers(("cache-control" = String, description = "As the JWKS's"))),
        (status = 404, description = "No --public-url configured (reason PUBLIC_URL_NOT_CONFIGURED)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn authorization_server_metadata(State(state): State<Arc<OidcState>>) -> Response {
    metadata(&state)
}

fn metadata(state: &OidcState) -> Response {
    match &state.metadata {
        Some(document) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, state.cache_control.clone()),
            ],
            document.to_string(),
        )
            .into_response(),
        None => Problem::from(AuthError::PublicUrlNotConfigured).into_response(),
    }
}

/// RFC 7662 token introspection, for services that cannot verify EdDSA
/// themselves. The caller presents a credential of its own
/// (`--introspection-token`) as a bearer token.
#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "keys",
    request_body(content = IntrospectionForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token's claims with `active: true`, or `{\"active\": false}` alone for a token that is revoked, expired, forged or unknown", body = Introspection),
        (status = 400, description = "No `token` in the form (reason INVALID_BODY, its entry in `errors` FIELD_REQUIRED), or a body cut off (INVALID_BODY)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong introspection credential (reason INTROSPECTION_CREDENTIAL_INVALID)", body = Problem, content_type = "application/problem+json",
            headers(("www-authenticate" = String, description = "RFC 6750 Bearer challenge"))),
        (status = 403, description = "A credential, but no --introspection-token configured (reason INTROSPECTION_DISABLED)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A body over 16 KiB (reason BODY_TOO_LARGE)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not an application/x-www-form-urlencoded form (reason UNSUPPORTED_MEDIA_TYPE)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The token names a key this instance must read, and the database is unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn introspect(
    State(state): State<Arc<OidcState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Introspection>, Problem> {
    // RFC 6750: a request without a credential is challenged (401) before
    // anything is said about the endpoint itself.
    let presented = headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes);
    let Some(Ok(credential)) = bearer_token(presented) else {
        return Err(AuthError::IntrospectionCredentialInvalid.into());
    };
    if !state.introspection.any() {
        return Err(AuthError::IntrospectionDisabled.into());
    }
    if !state.introspection.accepts(credential) {
        return Err(AuthError::IntrospectionCredentialInvalid.into());
    }
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(BodyRejection::UnsupportedMediaType(
            "introspection takes an application/x-www-form-urlencoded form",
        )
        .into());
    }
    let body = body.map_err(BodyRejection::from)?;
    let token = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "token")
        .map(|(_, token)| token.into_owned())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            BodyRejection::Invalid(vec![FieldViolation {
                field: "token",
                reason: "FIELD_REQUIRED",
                description: "token is required".into(),
            }])
        })?;
    match state.tokens.verify(&token).await {
        Ok(claims) => Ok(axum::Json(Introspection {
            active: true,
            sub: Some(claims.sub.clone()),
            username: Some(claims.username.clone()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            jti: Some(claims.jti.clone()),
            iss: Some(claims.iss.clone()),
            aud: Some(claims.aud.clone()),
            token_type: Some("Bearer".to_owned()),
            client_id: claims.client_id.clone(),
            sid: claims.sid.clone(),
        })),
        Err(AuthError::InvalidToken(_)) => Ok(axum::Json(Introspection::default())),
        Err(other) => Err(other.into()),
    }
}
