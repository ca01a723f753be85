//! One call of each kind, over gRPC, grpc-web and REST, as the services,
//! browsers and proxies that use authd make them.

use std::net::IpAddr;

use authd::grpc::pb::auth_service_client::AuthServiceClient;
use authd::grpc::pb::{
    LoginRequest, RefreshRequest, RegisterRequest, VerifyRequest, VerifyResponse,
};
use envoy_types::ext_authz::v3::pb::{CheckRequest, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A password the policy accepts, for every benchmark user.
pub const PASSWORD: &str = "bench-Pa55word-for-load";

fn failed(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// The no-op ceiling: a health check, answered from memory through the same
/// server, runtime and layers as every other call.
pub async fn noop(channel: Channel) -> Result<(), String> {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(drop)
        .map_err(|status| failed(&status))
}

pub async fn verify(channel: Channel, token: String) -> Result<(), String> {
    AuthServiceClient::new(channel)
        .verify(VerifyRequest {
            access_token: token,
        })
        .await
        .map(drop)
        .map_err(|status| failed(&status))
}

/// Envoy's ext_authz `Check` for the request the nginx cases send (`GET
/// /orders` bearing `token`), with the attributes Envoy would send: its
/// lower-case headers, pseudo-headers included, and those Envoy adds. Only
/// an OK answer that allows the request succeeds.
pub async fn check(channel: Channel, token: String) -> Result<(), String> {
    let authorization = format!("Bearer {token}");
    let headers = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "app.example"),
        (":path", "/orders"),
        ("authorization", authorization.as_str()),
        ("user-agent", "authd-bench"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "0196f2a1-7c3e-7d2a-9b41-3e5f6a7b8c9d"),
    ];
    let http = HttpRequest {
        method: "GET".into(),
        scheme: "http".into(),
        host: "app.example".into(),
        path: "/orders".into(),
        protocol: "HTTP/1.1".into(),
        headers: headers
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        ..HttpRequest::default()
    };
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(http),
                ..Request::default()
            }),
            ..AttributeContext::default()
        }),
    };
    let response = AuthorizationClient::new(channel)
        .check(request)
        .await
        .map_err(|status| failed(&status))?
        .into_inner();
    match (response.status, response.http_response) {
        (Some(status), Some(HttpResponse::OkResponse(_))) if status.code == Code::Ok as i32 => {
            Ok(())
        }
        (status, _) => Err(format!("not allowed: {status:?}")),
    }
}

/// Logs in; the token on success.
pub async fn login(channel: Channel, username: String) -> Result<String, Status> {
    login_from(channel, username, None).await
}

/// Logs in as a client behind a proxy that reports the client's address in
/// `x-forwarded-for`, when given; the token on success.
pub async fn login_from(
    channel: Channel,
    username: String,
    forwarded_for: Option<IpAddr>,
) -> Result<String, Status> {
    let mut request = tonic::Request::new(LoginRequest {
        username,
        password: PASSWORD.into(),
    });
    if let Some(address) = forwarded_for {
        let value = address
            .to_string()
            .parse()
            .expect("an IP address is a valid header value");
        request.metadata_mut().insert("x-forwarded-for", value);
    }
    AuthServiceClient::new(channel)
        .login(request)
        .await
        .map(|response| response.into_inner().access_token)
}

/// Registers; the token on success.
pub async fn register(channel: Channel, username: String) -> Result<String, Status> {
    AuthServiceClient::new(channel)
        .register(RegisterRequest {
            username,
            password: PASSWORD.into(),
            email: String::new(),
        })
        .await
        .map(|response| response.into_inner().access_token)
}

/// Registers; the new session's access token, refresh token and id.
pub async fn register_session(
    channel: Channel,
    username: String,
) -> Result<(String, String, String), Status> {
    AuthServiceClient::new(channel)
        .register(RegisterRequest {
            username,
            password: PASSWORD.into(),
            email: String::new(),
        })
        .await
        .map(|response| {
            let response = response.into_inner();
            (
                response.access_token,
                response.refresh_token,
                response.session_id,
            )
        })
}

/// `message` bearing `token` in `authorization`.
pub fn with_bearer<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// Refreshes; the next refresh token on success.
pub async fn refresh(channel: Channel, refresh_token: String) -> Result<String, String> {
    AuthServiceClient::new(channel)
        .refresh(RefreshRequest { refresh_token })
        .await
        .map(|response| response.into_inner().refresh_token)
        .map_err(|status| failed(&status))
}

/// Whether a Login refusal is the hash queue's overload answer.
pub fn is_overload(status: &Status) -> bool {
    matches!(status.code(), Code::ResourceExhausted | Code::Unavailable)
}

pub async fn rest_login(
    http: reqwest::Client,
    base: String,
    username: String,
) -> Result<(), String> {
    let body = serde_json::json!({ "username": username, "password": PASSWORD });
    post_json(http, format!("{base}/login"), body).await
}

pub async fn rest_verify(http: reqwest::Client, base: String, token: String) -> Result<(), String> {
    let body = serde_json::json!({ "access_token": token });
    post_json(http, format!("{base}/verify"), body).await
}

/// The credential of the bench servers' introspection callers.
pub const INTROSPECTION_TOKEN: &str = "bench-introspection-token";

/// RFC 7662 introspection of `token`, which must be active.
pub async fn introspect(http: reqwest::Client, base: String, token: String) -> Result<(), String> {
    let response = http
        .post(format!("{base}/oauth2/introspect"))
        .bearer_auth(INTROSPECTION_TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        // A JWT's characters (base64url and dots) need no form encoding.
        .body(format!("token={token}"))
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|error| error.to_string())?;
    let body = String::from_utf8_lossy(&body);
    if status.is_success() && body.contains("\"active\":true") {
        Ok(())
    } else {
        Err(format!("{status}: {body}"))
    }
}

/// A GET bearing `token` in `Authorization` that must succeed: a forward
/// auth check, or a request through a proxy.
pub async fn get_bearer(http: reqwest::Client, url: String, token: String) -> Result<(), String> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    success(response).await
}

/// A JSON POST that must succeed.
async fn post_json(
    http: reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> Result<(), String> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|error| error.to_string())?;
    success(response).await
}

async fn success(response: reqwest::Response) -> Result<(), String> {
    let status = response.status();
    let body = response.bytes().await.map_err(|error| error.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

/// Verify as a browser sends it over grpc-web (binary, HTTP/1.1): one
/// length-prefixed message in, a message frame and a trailer frame out.
pub async fn grpc_web_verify(
    http: reqwest::Client,
    base: String,
    token: String,
) -> Result<(), String> {
    let message = VerifyRequest {
        access_token: token,
    }
    .encode_to_vec();
    let mut body = Vec::with_capacity(5 + message.len());
    body.push(0);
    body.extend_from_slice(
        &u32::try_from(message.len())
            .map_err(|e| e.to_string())?
            .to_be_bytes(),
    );
    body.extend_from_slice(&message);
    let response = http
        .post(format!("{base}/auth.v1.AuthService/Verify"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let body = response.bytes().await.map_err(|error| error.to_string())?;
    let (frame, rest) = grpc_web_frame(&body).ok_or("no message frame")?;
    VerifyResponse::decode(frame).map_err(|error| error.to_string())?;
    let (trailers, _) = grpc_web_frame(rest).ok_or("no trailer frame")?;
    if String::from_utf8_lossy(trailers).contains("grpc-status:0") {
        Ok(())
    } else {
        Err(format!("trailers: {}", String::from_utf8_lossy(trailers)))
    }
}

/// The payload of the first grpc-web frame and what follows it.
fn grpc_web_frame(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let length = u32::from_be_bytes(bytes.get(1..5)?.try_into().ok()?) as usize;
    let end = 5usize.checked_add(length)?;
    Some((bytes.get(5..end)?, &bytes[end..]))
}
