//! The Prometheus scrape. Metrics are per process (the `metrics` facade has
//! one recorder), so tests here assert what their own calls must have added.

use crate::helpers::TestApp;

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").send().await.expect("response");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    response.text().await.expect("text")
}

#[tokio::test]
async fn a_scrape_shows_requests_hashing_limits_revocations_and_the_pool() {
    let app = TestApp::spawn_with(|settings| {
        settings.login_failures_per_username = "1/1h".parse().ok();
    })
    .await;
    let token = app.registered_token("Iris").await;
    let _ = app.login("Iris", "not the password").await;
    let _ = app.login("Iris", "not the password").await;
    app.logout(&token).await.expect("logged out");
    // The pool gauge is set by the health loop, every 100 ms in tests.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let metrics = scrape(&app).await;

    for expected in [
        r#"authd_requests_total{route="/auth.v1.AuthService/Register",status="200",grpc_status="0"}"#,
        r#"authd_requests_total{route="/auth.v1.AuthService/Login",status="200",grpc_status="16"}"#,
        r#"authd_requests_total{route="/auth.v1.AuthService/Login",status="200",grpc_status="8"}"#,
        "authd_request_duration_seconds_bucket{route=\"/auth.v1.AuthService/Login\"",
        "authd_password_hash_duration_seconds_count",
        "authd_password_hash_queue_depth",
        r#"authd_rate_limit_refusals_total{limit="login_failures_per_username"}"#,
        "authd_revoked_tokens",
        r#"authd_database_connections{state="idle"}"#,
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn scanned_paths_share_one_series() {
    let app = TestApp::spawn().await;
    for path in [
        "/wp-admin",
        "/.env",
        "/auth.v1.AuthService/../../etc/passwd",
    ] {
        app.get(path).send().await.expect("response");
    }

    let metrics = scrape(&app).await;

    assert!(metrics.contains(r#"route="other""#));
    assert!(
        !metrics.contains("wp-admin") && !metrics.contains("passwd"),
        "{metrics}"
    );
}
