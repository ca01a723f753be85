//! `/auth/forward`, the endpoint nginx, Caddy and Traefik ask about each
//! request: 200 with the identity headers, or 401 with a challenge and a
//! problem body. (The same endpoint behind the real proxies: `proxies.rs`.)

use reqwest::Method;

use crate::helpers::{PASSWORD, TestApp, problem, unique_username, with_broken_signature};

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
