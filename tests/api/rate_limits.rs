//! Brute-force limits: per client address and per username, the same on
//! every surface and, for usernames, across instances.

use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{PASSWORD, TestApp, assert_refused, problem};

fn credentials(username: &str, password: &str) -> serde_json::Value {
    json!({"username": username, "password": password})
}

#[tokio::test]
async fn one_address_hits_the_login_limit_while_another_is_unaffected() {
    let app = TestApp::spawn_with(|settings| {
        settings.login_rate_per_address = "5/1h".parse().ok();
    })
    .await;
    app.register("Pia", PASSWORD).await.expect("registered");
    for _ in 0..5 {
        assert_eq!(app.rest_login("Pia", "wrong password").await.status(), 401);
    }

    let refused = app.rest_login("Pia", PASSWORD).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    let (status, reason, body) = problem(refused).await;
    assert_eq!((status, reason.as_str()), (429, "RATE_LIMITED"));
    assert_eq!(body["detail"], "too many attempts, retry later");
    assert!(retry_after > 0 && retry_after <= 720, "{retry_after}");
    let status = assert_refused(
        app.login("Pia", PASSWORD).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    assert!(
        status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay)
            .is_some()
    );

    let other = app
        .http_from("127.0.0.2")
        .post(format!("{}/login", app.base_url))
        .json(&credentials("Pia", PASSWORD))
        .send()
        .await
        .expect("response");
    assert_eq!(other.status(), 200, "another address has its own budget");
}

#[tokio::test]
async fn a_username_out_of_failures_is_refused_even_with_the_right_password() {
    let app = TestApp::spawn_with(|settings| {
        settings.login_rate_per_address = None;
        settings.login_failures_per_username = "3/1h".parse().ok();
    })
    .await;
    app.register("Quinn", PASSWORD).await.expect("registered");
    app.register("Rhea", PASSWORD).await.expect("registered");
    for _ in 0..3 {
        assert_refused(
            app.login("Quinn", "wrong password").await,
            Code::Unauthenticated,
            "INVALID_CREDENTIALS",
        );
    }

    for username in ["Quinn", "QUINN", " quinn "] {
        assert_refused(
            app.login(username, PASSWORD).await,
            Code::ResourceExhausted,
            "RATE_LIMITED",
        );
    }
    let (status, reason, _) = problem(app.rest_login("quinn", PASSWORD).await).await;
    assert_eq!((status, reason.as_str()), (429, "RATE_LIMITED"));
    app.login("Rhea", PASSWORD)
        .await
        .expect("other accounts are unaffected");
}

#[tokio::test]
async fn successful_logins_do_not_spend_the_failure_budget() {
    let app = TestApp::spawn_with(|settings| {
        settings.login_rate_per_address = None;
        settings.login_failures_per_username = "2/1h".parse().ok();
    })
    .await;
    app.register("Sage", PASSWORD).await.expect("registered");

    for _ in 0..5 {
        app.login("Sage", PASSWORD).await.expect("logged in");
    }
}

#[tokio::test]
async fn instances_on_one_database_share_the_username_budget() {
    let first = TestApp::spawn_with(|settings| {
        settings.login_rate_per_address = None;
        settings.login_failures_per_username = "3/1h".parse().ok();
    })
    .await;
    let second = first.spawn_beside().await;
    first.register("Tara", PASSWORD).await.expect("registered");

    for app in [&first, &first, &second] {
        assert_refused(
            app.login("Tara", "wrong password").await,
            Code::Unauthenticated,
            "INVALID_CREDENTIALS",
        );
    }

    for app in [&first, &second] {
        assert_refused(
            app.login("Tara", PASSWORD).await,
            Code::ResourceExhausted,
            "RATE_LIMITED",
        );
    }
}

#[tokio::test]
async fn registrations_are_limited_per_address() {
    let app = TestApp::spawn_with(|settings| {
        settings.register_rate_per_address = "2/1h".parse().ok();
    })
    .await;

    assert_eq!(app.rest_register("Uri", PASSWORD).await.status(), 201);
    app.register("Vera", PASSWORD).await.expect("registered");

    let (status, reason, _) = problem(app.rest_register("Wes", PASSWORD).await).await;
    assert_eq!((status, reason.as_str()), (429, "RATE_LIMITED"));
    assert_refused(
        app.register("Xavi", PASSWORD).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
}

#[tokio::test]
async fn a_trusted_proxy_header_names_the_client_and_is_ignored_otherwise() {
    let trusting = TestApp::spawn_with(|settings| {
        settings.login_rate_per_address = "1/1h".parse().ok();
        settings.client_address_header = Some("x-forwarded-for".parse().expect("header name"));
    })
    .await;
    let login_via = |app: &TestApp, forwarded_for: &'static str| {
        app.post("/login")
            .header("x-forwarded-for", forwarded_for)
            .json(&credentials("nobody", "wrong password"))
            .send()
    };

    assert_eq!(
        login_via(&trusting, "203.0.113.1")
            .await
            .expect("response")
            .status(),
        401
    );
    assert_eq!(
        login_via(&trusting, "198.51.100.9, 203.0.113.1")
            .await
            .expect("response")
            .status(),
        429
    );
    assert_eq!(
        login_via(&trusting, "203.0.113.2")
            .await
            .expect("response")
            .status(),
        401
    );

    let untrusting = TestApp::spawn_with(|settings| {
        settings.login_rate_per_address = "1/1h".parse().ok();
    })
    .await;
    assert_eq!(
        login_via(&untrusting, "203.0.113.1")
            .await
            .expect("response")
            .status(),
        401
    );
    assert_eq!(
        login_via(&untrusting, "203.0.113.2")
            .await
            .expect("response")
            .status(),
        429,
        "a forged header must not buy a fresh budget"
    );
}
