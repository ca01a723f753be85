//! `envoy.service.auth.v3.Authorization/Check`, called as Envoy's ext_authz
//! filter calls it (no Envoy binary exists here): the request's attributes
//! with its headers, and assertions on the very fields Envoy reads.

use std::collections::HashMap;

use envoy_types::ext_authz::v3::pb::{
    CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValueOption,
    HttpResponse, OkHttpResponse,
};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, unique_username, with_broken_signature};
use crate::second_factor::one_and_two_factor_tokens;
use crate::token_attacks::{claims_of, header, server_key, sign};

/// The attributes Envoy sends for `GET /api/orders` from a client that sent
/// `client_headers`: lower-case names, pseudo-headers included, plus the
/// headers Envoy adds itself.
fn check_request(client_headers: &[(&str, &str)]) -> CheckRequest {
    let mut headers: HashMap<String, String> = [
        (":authority", "shop.example"),
        (":method", "GET"),
        (":path", "/api/orders"),
        (":scheme", "http"),
        ("user-agent", "curl/8.5.0"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "4f0b2a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    for (name, value) in client_headers {
        headers.insert(name.to_ascii_lowercase(), (*value).to_owned());
    }
    with_http(HttpRequest {
        id: "1".into(),
        method: "GET".into(),
        headers,
        path: "/api/orders".into(),
        host: "shop.example".into(),
        scheme: "http".into(),
        protocol: "HTTP/1.1".into(),
        ..HttpRequest::default()
    })
}

fn with_http(http: HttpRequest) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(http),
                ..Request::default()
            }),
            ..AttributeContext::default()
        }),
    }
}

async fn check(app: &TestApp, request: CheckRequest) -> CheckResponse {
    AuthorizationClient::new(app.channel.clone())
        .check(request)
        .await
        .expect("Check answers")
        .into_inner()
}

fn allowed(response: CheckResponse) -> OkHttpResponse {
    assert_eq!(response.status.as_ref().map(|status| status.code), Some(0));
    match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not an OK response: {other:?}"),
    }
}

/// The denial's HTTP status, headers and problem body, checking that the
/// gRPC status is not OK (Envoy's only test of a denial).
fn denied(response: CheckResponse) -> (i32, HashMap<String, String>, serde_json::Value) {
    let code = response.status.as_ref().map(|status| status.code);
    assert_eq!(code, Some(Code::Unauthenticated as i32));
    let Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
        status,
        headers,
        body,
    })) = response.http_response
    else {
        panic!("not a denial: {:?}", response.http_response);
    };
    let headers = headers
        .into_iter()
        .map(|option| {
            let header = option.header.expect("header");
            (header.key, header.value)
        })
        .collect();
    let body = serde_json::from_str(&body).expect("problem+json body");
    (status.expect("an HTTP status").code, headers, body)
}

/// The headers Envoy sets on the upstream request, by name, each checked to
/// replace whatever the client sent.
fn upstream_headers(options: &[HeaderValueOption]) -> HashMap<String, String> {
    options
        .iter()
        .map(|option| {
            #[allow(deprecated)]
            let append = option.append.as_ref().map(|append| append.value);
            assert_eq!(append, Some(false), "{option:?}");
            assert_eq!(
                option.append_action(),
                HeaderAppendAction::OverwriteIfExistsOrAdd,
                "{option:?}"
            );
            let header = option.header.clone().expect("header");
            (header.key, header.value)
        })
        .collect()
}

#[tokio::test]
async fn a_valid_bearer_token_is_allowed_with_the_identity_headers_replacing_the_clients() {
    let app = TestApp::spawn().await;
    let username = unique_username();
    let registered = app.register(&username, PASSWORD).await.expect("registered");
    let user = registered.user.expect("user");
    let bearer = format!("Bearer {}", registered.access_token);

    let ok = allowed(
        check(
            &app,
            check_request(&[
                ("authorization", &bearer),
                ("x-authd-user-id", "someone-else"),
                ("remote-user", "admin"),
            ]),
        )
        .await,
    );

    let upstream = upstream_headers(&ok.headers);
    assert_eq!(upstream.len(), 5, "{upstream:?}");
    assert_eq!(upstream["x-authd-user-id"], user.id);
    assert_eq!(upstream["x-authd-username"], username);
    assert_eq!(upstream["remote-user"], username);
    assert_eq!(upstream["x-authd-amr"], "pwd");
    assert_eq!(upstream["x-authd-acr"], "aal1");
    // Envoy removes after it sets: removing these would drop authd's values.
    assert!(ok.headers_to_remove.is_empty(), "{ok:?}");
}

#[tokio::test]
async fn the_access_cookie_is_read_from_the_cookie_header() {
    let app = TestApp::spawn().await;
    let username = unique_username();
    let token = app.registered_token(&username).await;
    let cookie = format!("theme=dark; authd_token={token}");

    let ok = allowed(check(&app, check_request(&[("cookie", &cookie)])).await);
    assert_eq!(upstream_headers(&ok.headers)["x-authd-username"], username);

    // Envoy joins repeated HTTP/1 cookie headers with a comma; a bad
    // Authorization still wins over a good cookie.
    let (status, _, body) = denied(
        check(
            &app,
            check_request(&[("cookie", &cookie), ("authorization", "Bearer a.b.c")]),
        )
        .await,
    );
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("TOKEN_MALFORMED"))
    );
}

#[tokio::test]
async fn raw_headers_are_read_as_well() {
    let app = TestApp::spawn().await;
    let username = unique_username();
    let token = app.registered_token(&username).await;

    // With `encode_raw_headers`, Envoy sends a list with byte values instead.
    let raw = |key: &str, value: &str| HeaderValue {
        key: key.into(),
        raw_value: value.as_bytes().to_vec(),
        ..HeaderValue::default()
    };
    let request = with_http(HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        header_map: Some(HeaderMap {
            headers: vec![
                raw(":path", "/"),
                raw("authorization", &format!("Bearer {token}")),
            ],
        }),
        ..HttpRequest::default()
    });
    let ok = allowed(check(&app, request).await);
    assert_eq!(upstream_headers(&ok.headers)["x-authd-username"], username);
}

#[tokio::test]
async fn no_token_is_denied_with_401_a_bare_challenge_and_a_problem_body() {
    let app = TestApp::spawn().await;

    let (status, headers, body) = denied(check(&app, check_request(&[])).await);

    assert_eq!(status, 401, "Envoy would answer 403 without it");
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="authd""#);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["status"], 401);
    assert_eq!(body["reason"], "MISSING_TOKEN");

    // A check without HTTP attributes at all has no token either.
    let (status, _, body) = denied(check(&app, CheckRequest::default()).await);
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("MISSING_TOKEN"))
    );
}

#[tokio::test]
async fn forged_and_logged_out_tokens_are_denied_with_invalid_token() {
    let app = TestApp::spawn().await;
    let token = app.registered_token(&unique_username()).await;
    let forged = format!("Bearer {}", with_broken_signature(&token));

    let (status, headers, body) =
        denied(check(&app, check_request(&[("authorization", &forged)])).await);
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"].contains(r#"error="invalid_token""#));
    assert_eq!(body["reason"], "TOKEN_INVALID_SIGNATURE");

    let bearer = format!("Bearer {token}");
    allowed(check(&app, check_request(&[("authorization", &bearer)])).await);
    app.logout(&token).await.expect("logged out");
    let (status, headers, body) =
        denied(check(&app, check_request(&[("authorization", &bearer)])).await);
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"].contains(r#"error="invalid_token""#));
    assert_eq!(body["reason"], "TOKEN_REVOKED");
}

#[tokio::test]
async fn a_logout_on_another_instance_is_denied_here_too() {
    let app = TestApp::spawn().await;
    let other = app.spawn_beside().await;
    let token = app.registered_token(&unique_username()).await;
    let bearer = format!("Bearer {token}");
    allowed(check(&other, check_request(&[("authorization", &bearer)])).await);

    app.logout(&token).await.expect("logged out");

    // Announced at once on PostgreSQL, caught up within the refresh
    // interval (100 ms in tests) on SQLite.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let response = check(&other, check_request(&[("authorization", &bearer)])).await;
        if response
            .status
            .as_ref()
            .is_some_and(|status| status.code != 0)
        {
            let (status, _, body) = denied(response);
            assert_eq!(
                (status, body["reason"].as_str()),
                (401, Some("TOKEN_REVOKED"))
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other instance still allows a logged-out token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_identity_header_names_are_configurable() {
    let app = TestApp::spawn_with_identity_headers("x-user-id", "x-user").await;
    let username = unique_username();
    let bearer = format!("Bearer {}", app.registered_token(&username).await);

    let ok = allowed(check(&app, check_request(&[("authorization", &bearer)])).await);
    let upstream = upstream_headers(&ok.headers);
    assert_eq!(upstream["x-user"], username);
    assert!(upstream.contains_key("x-user-id"));
    assert!(!upstream.contains_key("x-authd-user-id"));
}

/// The check of a request carrying `token`, on a route whose
/// `ExtAuthzPerRoute` sets these context extensions.
fn check_on_route(token: &str, extensions: &[(&str, &str)]) -> CheckRequest {
    let mut request = check_request(&[("authorization", &format!("Bearer {token}"))]);
    if let Some(attributes) = request.attributes.as_mut() {
        attributes.context_extensions = extensions
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
    }
    request
}

#[tokio::test]
async fn a_route_requiring_two_factors_denies_a_password_only_token_with_the_rfc_9470_challenge() {
    let app = TestApp::spawn().await;
    let (password_only, two_factors) = one_and_two_factor_tokens(&app).await;
    let required = [("authd_acr", "aal2"), ("authd_max_age", "300")];

    let response = check(&app, check_on_route(&password_only, &required)).await;
    let info = response.status.as_ref().expect("a status").message.clone();
    assert_eq!(info, "a second factor is required");
    let (status, headers, body) = denied(response);
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="a second factor is required", acr_values="aal2", max_age=300"#
    );
    assert_eq!(body["reason"], "INSUFFICIENT_USER_AUTHENTICATION");
    assert_eq!(body["acr_values"], "aal2");
    assert_eq!(body["max_age"], 300);
    allowed(check(&app, check_on_route(&password_only, &[])).await);

    let ok = allowed(check(&app, check_on_route(&two_factors, &required)).await);
    let upstream = upstream_headers(&ok.headers);
    assert_eq!(upstream["x-authd-amr"], "pwd,otp,mfa");
    assert_eq!(upstream["x-authd-acr"], "aal2");
}

#[tokio::test]
async fn a_route_requiring_a_recent_authentication_denies_a_token_from_an_older_one() {
    let app = TestApp::spawn().await;
    let token = app.registered_token(&unique_username()).await;
    let required = [("authd_max_age", "1")];
    allowed(check(&app, check_on_route(&token, &required)).await);

    // The age is what is tested: it has to pass.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let (status, headers, body) = denied(check(&app, check_on_route(&token, &required)).await);
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age=1"#
    );
    assert_eq!(body["reason"], "INSUFFICIENT_USER_AUTHENTICATION");
    assert_eq!(body["max_age"], 1);
}

#[tokio::test]
async fn a_route_requirement_that_cannot_be_read_is_denied_rather_than_ignored() {
    let app = TestApp::spawn().await;
    let token = app.registered_token(&unique_username()).await;

    let response = check(&app, check_on_route(&token, &[("authd_acr", "two")])).await;
    assert_eq!(
        response.status.as_ref().map(|status| status.code),
        Some(Code::InvalidArgument as i32)
    );
    let Some(HttpResponse::DeniedResponse(denial)) = response.http_response else {
        panic!("not a denial: {:?}", response.http_response);
    };
    assert_eq!(denial.status.map(|status| status.code), Some(400));
    let body: serde_json::Value = serde_json::from_str(&denial.body).expect("problem body");
    assert_eq!(body["reason"], "INVALID_AUTHENTICATION_REQUIREMENT");
}

#[tokio::test]
async fn a_token_from_before_amr_and_acr_is_allowed_with_those_headers_removed_but_meets_no_requirement()
 {
    let app = TestApp::spawn().await;
    let genuine = app.registered_token(&unique_username()).await;
    let key = server_key(&app).await;
    // Signed by authd's key with the claims it issued before recording how
    // and when users authenticated: no amr, acr or auth_time.
    let old = sign(&header(&key.kid), &claims_of(&app, &genuine).await, &key);

    let ok = allowed(check(&app, check_on_route(&old, &[])).await);
    let upstream = upstream_headers(&ok.headers);
    assert_eq!(upstream.len(), 3, "{upstream:?}");
    // Removed, not left to what the client sent.
    let mut removed = ok.headers_to_remove.clone();
    removed.sort();
    assert_eq!(removed, ["x-authd-acr", "x-authd-amr"]);

    for required in [("authd_acr", "aal1"), ("authd_max_age", "3600")] {
        let (status, _, body) = denied(check(&app, check_on_route(&old, &[required])).await);
        assert_eq!(
            (status, body["reason"].as_str()),
            (401, Some("INSUFFICIENT_USER_AUTHENTICATION")),
            "{required:?}"
        );
    }
}
