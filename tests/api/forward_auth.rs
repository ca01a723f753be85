//! `/auth/forward`, the endpoint nginx, Caddy and Traefik ask about each
//! request: 200 with the identity headers, or 401 with a challenge and a
//! problem body. (The same endpoint behind the real proxies: `proxies.rs`.)

use reqwest::Method;

use std::time::Duration;

use crate::helpers::{PASSWORD, TestApp, problem, unique_username, with_broken_signature};
use crate::second_factor::one_and_two_factor_tokens;
use crate::token_attacks::{claims_of, server_key, sign};

/// `GET /auth/forward` with `Authorization: Bearer <token>`.
async fn ask_with_bearer(app: &TestApp, token: &str) -> reqwest::Response {
    app.get("/auth/forward")
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("visible ASCII")
}

#[tokio::test]
async fn a_valid_token_is_answered_200_with_who_it_belongs_to_for_any_method() {
    let app = TestApp::spawn().await;
    let username = unique_username();
    let registered = app.register(&username, PASSWORD).await.expect("registered");
    let user = registered.user.expect("user");

    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ] {
        let response = app
            .http
            .request(method.clone(), format!("{}/auth/forward", app.base_url))
            .bearer_auth(&registered.access_token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{method}");
        assert_eq!(header(&response, "x-authd-user-id"), user.id, "{method}");
        assert_eq!(header(&response, "x-authd-username"), username, "{method}");
        assert_eq!(header(&response, "remote-user"), username, "{method}");
        assert_eq!(header(&response, "x-authd-amr"), "pwd", "{method}");
        assert_eq!(header(&response, "x-authd-acr"), "aal1", "{method}");
        // A decision about one request must never be reused for another.
        assert_eq!(header(&response, "cache-control"), "no-store", "{method}");
    }
}

#[tokio::test]
async fn the_session_cookie_is_read_as_the_rest_gateway_reads_it() {
    let app = TestApp::spawn().await;
    let username = unique_username();
    let token = app.registered_token(&username).await;

    let response = app
        .get("/auth/forward")
        .header("cookie", format!("theme=dark; authd_token={token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-authd-username"), username);

    // A bad Authorization header is refused, never passed over for the cookie.
    let response = app
        .get("/auth/forward")
        .header("authorization", "Bearer not-a-token")
        .header("cookie", format!("authd_token={token}"))
        .send()
        .await
        .expect("request");
    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (401, "TOKEN_MALFORMED"));
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_bearer_challenge_and_no_identity() {
    let app = TestApp::spawn_with(|settings| {
        settings.cors_allowed_origins = vec!["https://app.example".parse().expect("origin")];
    })
    .await;

    // OPTIONS too: CORS must not answer it with a 200 a proxy reads as
    // "allowed", even with CORS on.
    for method in [Method::GET, Method::OPTIONS] {
        let response = app
            .http
            .request(method.clone(), format!("{}/auth/forward", app.base_url))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .expect("request");
        assert_eq!(
            header(&response, "www-authenticate"),
            r#"Bearer realm="authd""#,
            "{method}"
        );
        assert!(response.headers().get("x-authd-user-id").is_none());
        assert!(response.headers().get("location").is_none());
        let (status, reason, _) = problem(response).await;
        assert_eq!(
            (status, reason.as_str()),
            (401, "MISSING_TOKEN"),
            "{method}"
        );
    }
}

#[tokio::test]
async fn forged_and_logged_out_tokens_are_401_invalid_token() {
    let app = TestApp::spawn().await;
    let token = app.registered_token(&unique_username()).await;
    let forged = with_broken_signature(&token);

    let cases = [
        (forged.as_str(), "TOKEN_INVALID_SIGNATURE"),
        ("a.b.c", "TOKEN_MALFORMED"),
    ];
    for (bad, expected) in cases {
        let response = ask_with_bearer(&app, bad).await;
        assert!(
            header(&response, "www-authenticate").contains(r#"error="invalid_token""#),
            "{expected}"
        );
        assert!(response.headers().get("x-authd-user-id").is_none());
        let (status, reason, _) = problem(response).await;
        assert_eq!((status, reason.as_str()), (401, expected));
    }

    app.logout(&token).await.expect("logged out");
    let response = ask_with_bearer(&app, &token).await;
    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (401, "TOKEN_REVOKED"));
}

#[tokio::test]
async fn the_identity_header_names_are_configurable() {
    let app = TestApp::spawn_with_identity_headers("x-user-id", "x-user").await;
    let username = unique_username();
    let token = app.registered_token(&username).await;

    let response = ask_with_bearer(&app, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-user"), username);
    assert!(!header(&response, "x-user-id").is_empty());
    assert!(response.headers().get("x-authd-user-id").is_none());
    assert_eq!(header(&response, "remote-user"), username);
}

#[tokio::test]
async fn names_in_any_script_travel_as_utf8() {
    let app = TestApp::spawn().await;
    let username = "Ωmega-名前";
    let token = app.registered_token(username).await;

    let response = ask_with_bearer(&app, &token).await;
    assert_eq!(response.status(), 200);
    let value = response.headers().get("x-authd-username").expect("header");
    assert_eq!(value.as_bytes(), username.as_bytes());
}

/// `GET /auth/forward?<query>` with `Authorization: Bearer <token>`.
async fn ask_requiring(app: &TestApp, query: &str, token: &str) -> reqwest::Response {
    app.get(&format!("/auth/forward?{query}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_route_requiring_two_factors_refuses_a_password_only_token_with_the_rfc_9470_challenge() {
    let app = TestApp::spawn().await;
    let (password_only, two_factors) = one_and_two_factor_tokens(&app).await;

    let response = ask_requiring(&app, "authd_acr=aal2", &password_only).await;
    assert_eq!(
        header(&response, "www-authenticate"),
        r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="a second factor is required", acr_values="aal2""#
    );
    assert!(response.headers().get("x-authd-user-id").is_none());
    let (status, reason, body) = problem(response).await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "INSUFFICIENT_USER_AUTHENTICATION")
    );
    assert_eq!(body["acr_values"], "aal2");
    // The same token is good where nothing more is required.
    assert_eq!(ask_with_bearer(&app, &password_only).await.status(), 200);

    let response = ask_requiring(
        &app,
        "page=2&authd_acr=aal2&authd_max_age=300",
        &two_factors,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-authd-amr"), "pwd,otp,mfa");
    assert_eq!(header(&response, "x-authd-acr"), "aal2");
}

#[tokio::test]
async fn a_route_requiring_a_recent_authentication_refuses_a_token_from_an_older_one() {
    let app = TestApp::spawn().await;
    let token = app.registered_token(&unique_username()).await;
    assert_eq!(
        ask_requiring(&app, "authd_max_age=1", &token)
            .await
            .status(),
        200
    );

    // The age is what is tested: it has to pass.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let response = ask_requiring(&app, "authd_max_age=1", &token).await;
    assert_eq!(
        header(&response, "www-authenticate"),
        r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age=1"#
    );
    let (status, reason, body) = problem(response).await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "INSUFFICIENT_USER_AUTHENTICATION")
    );
    assert_eq!(body["max_age"], 1);
    // A client adding a looser requirement of its own changes nothing.
    let response = ask_requiring(&app, "authd_max_age=1&authd_max_age=3600", &token).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_requirement_that_cannot_be_read_is_refused_rather_than_ignored() {
    let app = TestApp::spawn().await;
    let token = app.registered_token(&unique_username()).await;

    for query in ["authd_acr=2", "authd_acr=aal3", "authd_max_age=5m"] {
        let response = ask_requiring(&app, query, &token).await;
        assert!(response.headers().get("x-authd-user-id").is_none());
        let (status, reason, _) = problem(response).await;
        assert_eq!(
            (status, reason.as_str()),
            (400, "INVALID_AUTHENTICATION_REQUIREMENT"),
            "{query}"
        );
    }
}

#[tokio::test]
async fn a_token_from_before_amr_and_acr_is_allowed_without_those_headers_but_meets_no_requirement()
{
    let app = TestApp::spawn().await;
    let genuine = app.registered_token(&unique_username()).await;
    let key = server_key(&app).await;
    // Signed by authd's key with the claims it issued before recording how
    // and when users authenticated: no amr, acr or auth_time.
    let old = sign(
        &crate::token_attacks::header(&key.kid),
        &claims_of(&app, &genuine).await,
        &key,
    );

    let response = ask_with_bearer(&app, &old).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-authd-user-id").is_some());
    assert!(response.headers().get("x-authd-amr").is_none());
    assert!(response.headers().get("x-authd-acr").is_none());

    for query in ["authd_acr=aal1", "authd_max_age=3600"] {
        let (status, reason, _) = problem(ask_requiring(&app, query, &old).await).await;
        assert_eq!(
            (status, reason.as_str()),
            (401, "INSUFFICIENT_USER_AUTHENTICATION"),
            "{query}"
        );
    }
}
