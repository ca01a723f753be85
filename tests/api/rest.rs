//! The REST gateway over real HTTP/1.1: statuses, headers, cookies and
//! problem+json bodies.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TOKEN_LIFETIME, TestApp, problem, unique_username};

/// The attributes of the `authd_token` cookie a response sets.
fn session_cookie(response: &reqwest::Response) -> (String, Vec<String>) {
    let header = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("authd_token="))
        .expect("Set-Cookie authd_token")
        .to_owned();
    let mut parts = header.split("; ");
    let value = parts.next().expect("name=value")["authd_token=".len()..].to_owned();
    (value, parts.map(str::to_owned).collect())
}

fn assert_session_cookie_flags(attributes: &[String], max_age: u64) {
    for expected in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} missing: {attributes:?}"
        );
    }
    assert!(
        attributes.contains(&format!("Max-Age={max_age}")),
        "{attributes:?}"
    );
}

#[tokio::test]
async fn register_answers_201_with_the_token_in_body_and_cookie() {
    let app = TestApp::spawn().await;

    let response = app.rest_register("Amber", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let (cookie, attributes) = session_cookie(&response);
    assert_session_cookie_flags(&attributes, TOKEN_LIFETIME.as_secs());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], TOKEN_LIFETIME.as_secs());
    assert_eq!(body["user"]["username"], "Amber");
    assert_eq!(body["access_token"], cookie);
    let verified = app
        .verify(&cookie)
        .await
        .expect("the token works over gRPC");
    assert_eq!(verified.user.expect("user").id, body["user"]["id"]);
}

#[tokio::test]
async fn login_answers_200_with_the_token_in_body_and_cookie() {
    let app = TestApp::spawn().await;
    app.register("Basil", PASSWORD).await.expect("registered");

    let response = app.rest_login("BASIL", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    let (cookie, attributes) = session_cookie(&response);
    assert_session_cookie_flags(&attributes, TOKEN_LIFETIME.as_secs());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["access_token"], cookie);
    assert_eq!(body["user"]["username"], "Basil");
}

#[tokio::test]
async fn wrong_credentials_are_401_with_a_bearer_challenge() {
    let app = TestApp::spawn().await;
    app.register("Cyril", PASSWORD).await.expect("registered");

    for (username, password) in [("Cyril", "not the password"), ("nobody-at-all", PASSWORD)] {
        let response = app.rest_login(username, password).await;
        assert!(response.headers().get(SET_COOKIE).is_none());
        let challenge = response.headers().get(WWW_AUTHENTICATE).cloned();
        let (status, reason, body) = problem(response).await;
        assert_eq!((status, reason.as_str()), (401, "INVALID_CREDENTIALS"));
        assert_eq!(body["detail"], "invalid username or password");
        assert_eq!(
            challenge.expect("WWW-Authenticate"),
            r#"Bearer realm="authd""#
        );
    }
}

#[tokio::test]
async fn invalid_input_is_400_naming_every_field() {
    let app = TestApp::spawn().await;

    let (status, reason, body) = problem(app.rest_register("x", "short").await).await;

    assert_eq!((status, reason.as_str()), (400, "INVALID_USERNAME"));
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| error["field"].as_str().expect("field"))
        .collect();
    assert_eq!(fields, ["username", "password"]);
    assert_eq!(body["errors"][1]["reason"], "PASSWORD_TOO_SHORT");
}

#[tokio::test]
async fn a_taken_username_is_409() {
    let app = TestApp::spawn().await;
    app.rest_register("Delia", PASSWORD).await;

    let (status, reason, _) = problem(app.rest_register("DELIA", PASSWORD).await).await;

    assert_eq!((status, reason.as_str()), (409, "USERNAME_TAKEN"));
}

#[tokio::test]
async fn unreadable_bodies_are_clear_4xx_never_500() {
    let app = TestApp::spawn().await;
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = app.post("/user/register").body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        request.send()
    };
    let json = Some("application/json");
    let cases = [
        (post(r#"{"username":"#, json).await, 400, "MALFORMED_JSON"),
        (post("not json at all", json).await, 400, "MALFORMED_JSON"),
        (
            post(r#"{"username":"eve"}"#, json).await,
            400,
            "INVALID_BODY",
        ),
        (
            post(r#"{"username":1,"password":true}"#, json).await,
            400,
            "INVALID_BODY",
        ),
        (post("[]", json).await, 400, "INVALID_BODY"),
        (
            post(r#"{"username":"eve","password":"pw"}"#, None).await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            post(r#"{"username":"eve","password":"pw"}"#, Some("text/plain")).await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];

    for (response, expected_status, expected_reason) in cases {
        let response = response.expect("response");
        let (status, reason, _) = problem(response).await;
        assert_eq!(
            (status, reason.as_str()),
            (expected_status, expected_reason)
        );
    }
}

#[tokio::test]
async fn a_10_mb_body_is_413_and_harms_nothing() {
    let app = TestApp::spawn().await;
    let huge = json!({"username": "frank", "password": "p".repeat(10 * 1024 * 1024)});

    let (status, reason, _) = problem(app.post_json("/login", huge).await).await;

    assert_eq!((status, reason.as_str()), (413, "BODY_TOO_LARGE"));
    assert_eq!(
        app.rest_register(&unique_username(), PASSWORD)
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn logout_with_a_bearer_token_revokes_it_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let token = app.registered_token("Gwen").await;

    let response = app.rest_logout(&token).await;

    assert_eq!(response.status(), StatusCode::OK);
    let (value, attributes) = session_cookie(&response);
    assert!(value.is_empty());
    assert!(
        attributes.iter().any(|a| a == "Max-Age=0"),
        "{attributes:?}"
    );
    let refused = app.verify(&token).await.expect_err("revoked");
    assert_eq!(crate::helpers::reason(&refused), "TOKEN_REVOKED");
}

#[tokio::test]
async fn logout_with_the_session_cookie_revokes_it() {
    let app = TestApp::spawn().await;
    let (token, _) = session_cookie(&app.rest_register("Hank", PASSWORD).await);

    let response = app
        .post("/logout")
        .header("cookie", format!("authd_token={token}"))
        .send()
        .await
        .expect("response");

    assert_eq!(response.status(), StatusCode::OK);
    let refused = app.verify(&token).await.expect_err("revoked");
    assert_eq!(crate::helpers::reason(&refused), "TOKEN_REVOKED");
}

#[tokio::test]
async fn logout_without_a_valid_token_is_401_with_an_rfc_6750_challenge() {
    let app = TestApp::spawn().await;
    let token = app.registered_token("Iris").await;
    app.rest_logout(&token).await;

    let missing = app.post("/logout").send().await.expect("response");
    let challenge = missing
        .headers()
        .get(WWW_AUTHENTICATE)
        .cloned()
        .expect("challenge");
    assert_eq!(challenge, r#"Bearer realm="authd""#);
    assert_eq!(problem(missing).await.1, "MISSING_TOKEN");

    let revoked = app.rest_logout(&token).await;
    let challenge = revoked
        .headers()
        .get(WWW_AUTHENTICATE)
        .cloned()
        .expect("challenge");
    let challenge = challenge.to_str().expect("ascii");
    assert!(
        challenge.starts_with(r#"Bearer realm="authd", error="invalid_token""#),
        "{challenge}"
    );
    let (status, reason, _) = problem(revoked).await;
    assert_eq!((status, reason.as_str()), (401, "TOKEN_REVOKED"));
}

#[tokio::test]
async fn a_bad_authorization_header_is_refused_even_with_a_good_cookie() {
    let app = TestApp::spawn().await;
    let token = app.registered_token("Jack").await;

    let response = app
        .post("/logout")
        .header("authorization", "Bearer not.a.token")
        .header("cookie", format!("authd_token={token}"))
        .send()
        .await
        .expect("response");

    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (401, "TOKEN_MALFORMED"));
    app.verify(&token)
        .await
        .expect("the cookie's token was not revoked");
}

#[tokio::test]
async fn verify_and_me_tell_whom_a_token_belongs_to() {
    let app = TestApp::spawn().await;
    let registered: Value = app
        .rest_register("Kate", PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    let token = registered["access_token"].as_str().expect("token");

    let verified: Value = app
        .post_json("/verify", json!({"access_token": token}))
        .await
        .json()
        .await
        .expect("json");
    let me_by_header: Value = app
        .get("/user/me")
        .bearer_auth(token)
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    let me_by_cookie: Value = app
        .get("/user/me")
        .header("cookie", format!("authd_token={token}"))
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");

    assert_eq!(verified["user"]["id"], registered["user"]["id"]);
    assert_eq!(verified["user"]["username"], registered["user"]["username"]);
    assert!(
        verified["user"].get("email_verified").is_none(),
        "the token alone says nothing of the address: {verified}"
    );
    assert_eq!(me_by_header, verified);
    assert_eq!(me_by_cookie, verified);
    let issued =
        chrono::DateTime::parse_from_rfc3339(verified["issued_at"].as_str().expect("issued_at"))
            .expect("RFC 3339");
    let expires =
        chrono::DateTime::parse_from_rfc3339(verified["expires_at"].as_str().expect("expires_at"))
            .expect("RFC 3339");
    assert_eq!(
        (expires - issued).num_seconds(),
        TOKEN_LIFETIME.as_secs() as i64
    );
}

#[tokio::test]
async fn verify_refuses_bad_tokens_with_401() {
    let app = TestApp::spawn().await;

    for (token, expected_reason) in [("", "MISSING_TOKEN"), ("a.b.c", "TOKEN_MALFORMED")] {
        let response = app
            .post_json("/verify", json!({"access_token": token}))
            .await;
        assert!(response.headers().get(WWW_AUTHENTICATE).is_some());
        let (status, reason, _) = problem(response).await;
        assert_eq!((status, reason.as_str()), (401, expected_reason));
    }
    let (status, reason, _) = problem(app.get("/user/me").send().await.expect("response")).await;
    assert_eq!((status, reason.as_str()), (401, "MISSING_TOKEN"));
}

#[tokio::test]
async fn unknown_paths_are_404_problems_and_unknown_rpcs_unimplemented() {
    let app = TestApp::spawn().await;

    let (status, reason, _) =
        problem(app.get("/no/such/page").send().await.expect("response")).await;
    assert_eq!((status, reason.as_str()), (404, "NOT_FOUND"));

    for (path, content_type) in [
        (
            "/auth.v1.AuthService/NoSuchMethod",
            "application/grpc-web+proto",
        ),
        ("/no.such.Service/Method", "application/grpc"),
    ] {
        let response = app
            .post(path)
            .header(CONTENT_TYPE, content_type)
            .body(vec![0u8, 0, 0, 0, 0])
            .send()
            .await
            .expect("response");
        assert_eq!(
            response.headers()["grpc-status"],
            "12",
            "UNIMPLEMENTED for {path}"
        );
    }
}
