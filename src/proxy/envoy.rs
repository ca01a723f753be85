//! Envoy's external authorization (`envoy.service.auth.v3.Authorization`):
//! Envoy's `ext_authz` filter sends the headers of each request it receives
//! and forwards the request only if the answer is OK.
//!
//! The route's context extensions (`check_settings.context_extensions` of
//! its `ExtAuthzPerRoute`) say what it requires beyond a valid token, as
//! `/auth/forward`'s query does: `authd_acr: aal2`, `authd_max_age: "300"`.

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::pb::google::rpc;
use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};
use tonic::{Code, Request, Response, Status};

use super::{IdentityHeaders, required_authentication};
use crate::domain::{AuthError, TokenRejection, TokenService};
use crate::http::problem::Problem;
use crate::http::request_token::verify_request_token;

/// The `Check` RPC, deciding as `/auth/forward` does.
pub struct EnvoyAuthorization {
    tokens: Arc<TokenService>,
    cookie_name: String,
    identity: IdentityHeaders,
}

impl EnvoyAuthorization {
    pub fn new(tokens: Arc<TokenService>, cookie_name: String, identity: IdentityHeaders) -> Self {
        Self {
            tokens,
            cookie_name,
            identity,
        }
    }

    async fn allowed(&self, request: &CheckRequest) -> Result<CheckResponse, AuthError> {
        let required = required_authentication(
            request
                .attributes
                .iter()
                .flat_map(|attributes| &attributes.context_extensions)
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )?;
        let headers = request_headers(request)?;
        let claims = verify_request_token(&self.tokens, &headers, &self.cookie_name).await?;
        required.check(&claims)?;
        // Overwriting discards every value the client sent under these
        // names, so the upstream sees authd's and only authd's. What a token
        // lacks (the `amr` and `acr` of one issued before authd recorded
        // them) is removed instead: whether Envoy drops or adds a header set
        // to an empty value has changed between versions (ext_authz and
        // `keep_empty_value`, envoyproxy/envoy#45003), and dropping it would
        // leave the client's. Envoy removes after it sets, so no name is in
        // both lists.
        let (set, removed): (Vec<_>, Vec<_>) = self
            .identity
            .for_claims(&claims)
            .into_iter()
            .partition(|(_, value)| !value.is_empty());
        Ok(CheckResponse {
            status: Some(rpc_status(Code::Ok, String::new())),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: set
                    .into_iter()
                    .map(|(name, value)| header(name.as_str(), &value))
                    .collect(),
                headers_to_remove: removed
                    .into_iter()
                    .map(|(name, _)| name.as_str().to_owned())
                    .collect(),
                ..OkHttpResponse::default()
            })),
            dynamic_metadata: None,
        })
    }
}

#[tonic::async_trait]
impl Authorization for EnvoyAuthorization {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let allowed = self.allowed(request.get_ref()).await;
        Ok(Response::new(allowed.unwrap_or_else(denied)))
    }
}

/// The headers of the request Envoy asks about that can carry its token,
/// as an HTTP header map, so that the token is read exactly as on authd's
/// own endpoints. Envoy sends them as a map (repeated headers joined), or as
/// a list with `encode_raw_headers`. Only `authorization` and `cookie` are
/// copied: the others (a dozen, with the pseudo-headers) say nothing about
/// the caller, and a check should not pay for copying them.
fn request_headers(request: &CheckRequest) -> Result<HeaderMap, TokenRejection> {
    let Some(http) = request
        .attributes
        .as_ref()
        .and_then(|attributes| attributes.request.as_ref())
        .and_then(|request| request.http.as_ref())
    else {
        return Err(TokenRejection::Missing);
    };
    let joined = http
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let raw = http
        .header_map
        .iter()
        .flat_map(|map| &map.headers)
        .map(|header| {
            let value = if header.raw_value.is_empty() {
                header.value.as_bytes()
            } else {
                &header.raw_value
            };
            (header.key.as_str(), value)
        });
    let mut headers = HeaderMap::new();
    for (name, value) in joined.chain(raw) {
        let name = if name.eq_ignore_ascii_case(AUTHORIZATION.as_str()) {
            AUTHORIZATION
        } else if name.eq_ignore_ascii_case(COOKIE.as_str()) {
            COOKIE
        } else {
            continue;
        };
        match http::HeaderValue::from_bytes(value) {
            Ok(value) => {
                headers.append(name, value);
            }
            // A credential HTTP cannot carry is refused, not ignored: the
            // cookie must never stand in for a bad `Authorization`.
            Err(_) if name == AUTHORIZATION => return Err(TokenRejection::Malformed),
            Err(_) => {}
        }
    }
    Ok(headers)
}

/// A refusal Envoy relays to the client as it is: 401, the RFC 6750 (or
/// RFC 9470) challenge and the problem+json body of authd's other surfaces
/// (400 for a route requirement that cannot be read, 503 when the signing
/// keys could not be reloaded). Without an HTTP status in it, Envoy would
/// answer 403.
fn denied(error: AuthError) -> CheckResponse {
    let code = match error {
        AuthError::InvalidToken(_) | AuthError::InsufficientAuthentication(_) => {
            Code::Unauthenticated
        }
        AuthError::InvalidInput(_) => Code::InvalidArgument,
        _ => Code::Unavailable,
    };
    let message = error.to_string();
    let (status, headers, body) = Problem::from(error).into_http_parts();
    let headers = headers
        .iter()
        .filter_map(|(name, value)| Some(header(name.as_str(), value.to_str().ok()?)))
        .collect();
    CheckResponse {
        status: Some(rpc_status(code, message)),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status.as_u16()),
            }),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })),
        dynamic_metadata: None,
    }
}

/// A header that replaces every value of its name. Both spellings of
/// "replace" are set: Envoy up to 1.36 reads only the deprecated `append`,
/// and 1.37.0 read a missing `append` as `append_action`'s default, append.
#[allow(deprecated)]
fn header(name: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_owned(),
            value: value.to_owned(),
            ..HeaderValue::default()
        }),
        append: Some(BoolValue { value: false }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        ..HeaderValueOption::default()
    }
}

fn rpc_status(code: Code, message: String) -> rpc::Status {
    rpc::Status {
        code: i32::from(code),
        message,
        details: Vec::new(),
    }
}
