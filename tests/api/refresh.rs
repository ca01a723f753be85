//! Refresh tokens: rotation, the grace window, reuse detection, racing
//! refreshes, lifetimes, and the REST endpoint with its cookie.

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, assert_refused, problem, unique_username};

/// A registered user's first session: (access token, refresh token).
async fn session(app: &TestApp) -> (String, String) {
    let registered = app
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");
    (registered.access_token, registered.refresh_token)
}

#[tokio::test]
async fn refresh_rotates_the_token_and_keeps_earlier_access_tokens_valid() {
    let app = TestApp::spawn().await;
    let registered = app.register("Rhea", PASSWORD).await.expect("registered");
    assert!(registered.refresh_token.starts_with("authd_rt_"));
    assert!(!registered.session_id.is_empty());
    let idle = app.settings.session_idle_timeout.as_secs();
    assert!(
        (idle - 5..=idle).contains(&u64::from(registered.refresh_expires_in)),
        "{}",
        registered.refresh_expires_in
    );

    let refreshed = app
        .refresh(&registered.refresh_token)
        .await
        .expect("refreshed");

    assert_ne!(refreshed.refresh_token, registered.refresh_token);
    assert_ne!(refreshed.access_token, registered.access_token);
    assert_eq!(refreshed.session_id, registered.session_id);
    assert_eq!(refreshed.token_type, "Bearer");
    assert_eq!(refreshed.user, registered.user);
    for token in [&registered.access_token, &refreshed.access_token] {
        let verified = app.verify(token).await.expect("still valid");
        assert_eq!(verified.session_id, registered.session_id);
    }
    // The new token rotates in turn.
    app.refresh(&refreshed.refresh_token)
        .await
        .expect("the successor is usable");
}

#[tokio::test]
async fn the_previous_token_within_the_grace_window_is_exchanged_once_more() {
    let app = TestApp::spawn().await;
    let (_, first) = session(&app).await;
    let second = app.refresh(&first).await.expect("rotated").refresh_token;

    // A second tab that still held the first token.
    let other_tab = app
        .refresh(&first)
        .await
        .expect("accepted within the grace window");

    // Both tabs carry on with what they hold.
    app.refresh(&second).await.expect("first tab's token");
    app.refresh(&other_tab.refresh_token)
        .await
        .expect("second tab's token");
}

#[tokio::test]
async fn a_retired_token_outside_the_grace_window_ends_the_whole_session() {
    let app = TestApp::spawn_with(|settings| settings.refresh_grace = Duration::ZERO).await;
    let (access, first) = session(&app).await;
    let rotated = app.refresh(&first).await.expect("rotated");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    assert_refused(
        app.refresh(&first).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );

    // The thief's copy and the owner's are both dead, and so is every access
    // token of the session.
    assert_refused(
        app.refresh(&rotated.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
    for token in [&access, &rotated.access_token] {
        assert_refused(
            app.verify(token).await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
    }
    let metrics = app.get("/metrics").send().await.expect("metrics");
    let metrics = metrics.text().await.expect("text");
    assert!(
        metrics.contains("authd_refresh_token_reuse_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_token_older_than_the_previous_one_is_reuse_even_within_the_grace_window() {
    let app = TestApp::spawn().await;
    let (_, first) = session(&app).await;
    let second = app.refresh(&first).await.expect("rotated").refresh_token;
    let third = app.refresh(&second).await.expect("rotated").refresh_token;

    assert_refused(
        app.refresh(&first).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_refused(
        app.refresh(&third).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
}

/// Twenty tabs refresh with the same token at once: every one gets a
/// working token, nothing fails, the session lives on.
async fn assert_racing_refreshes_all_succeed(apps: &[&TestApp]) {
    let (access, refresh) = session(apps[0]).await;
    let outcomes = join_all((0..20).map(|n| apps[n % apps.len()].refresh(&refresh))).await;

    let mut tokens = Vec::new();
    for outcome in outcomes {
        let refreshed = outcome.expect("every racing refresh succeeds");
        tokens.push(refreshed.refresh_token);
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 20, "each caller holds its own token");
    // Whichever token a tab ends up with works, once.
    for (n, token) in tokens.iter().enumerate() {
        apps[n % apps.len()]
            .refresh(token)
            .await
            .expect("the session is usable with any of them");
    }
    apps[0].verify(&access).await.expect("the session lives on");
}

#[tokio::test]
async fn twenty_concurrent_refreshes_with_one_token_all_succeed() {
    let app = TestApp::spawn().await;
    assert_racing_refreshes_all_succeed(&[&app]).await;
}

#[tokio::test]
async fn twenty_concurrent_refreshes_split_over_two_instances_all_succeed() {
    let first = TestApp::spawn().await;
    let second = first.spawn_beside().await;
    assert_racing_refreshes_all_succeed(&[&first, &second]).await;
}

#[tokio::test]
async fn malformed_and_unknown_refresh_tokens_are_invalid() {
    let app = TestApp::spawn().await;
    let (access, refresh) = session(&app).await;
    let unknown = format!("authd_rt_{}", "A".repeat(43));
    let truncated = &refresh[..refresh.len() - 1];

    for presented in ["", "garbage", &unknown, truncated, &access] {
        assert_refused(
            app.refresh(presented).await,
            Code::Unauthenticated,
            "REFRESH_TOKEN_INVALID",
        );
    }
    app.refresh(&refresh)
        .await
        .expect("guessing does not end anyone's session");
}

#[tokio::test]
async fn refresh_after_logout_is_refused_as_session_ended() {
    let app = TestApp::spawn().await;
    let (access, refresh) = session(&app).await;
    let sibling = app.refresh(&refresh).await.expect("rotated");

    app.logout(&access).await.expect("logged out");

    assert_refused(
        app.refresh(&sibling.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
    assert_refused(
        app.verify(&sibling.access_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
}

#[tokio::test]
async fn a_session_not_refreshed_within_the_idle_timeout_ends() {
    let app =
        TestApp::spawn_with(|settings| settings.session_idle_timeout = Duration::from_secs(2))
            .await;
    let registered = app
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");
    assert!(
        registered.expires_in <= 2 && registered.refresh_expires_in <= 2,
        "no token outlives the session: {registered:?}"
    );
    let refreshed = app
        .refresh(&registered.refresh_token)
        .await
        .expect("refreshed in time");

    tokio::time::sleep(Duration::from_millis(2100)).await;

    assert_refused(
        app.refresh(&refreshed.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
    assert!(
        app.list_sessions(&refreshed.access_token)
            .await
            .map_or(true, |sessions| sessions.is_empty()),
        "an idle session is not listed"
    );
}

#[tokio::test]
async fn no_refresh_extends_a_session_past_its_absolute_lifetime() {
    let app = TestApp::spawn_with(|settings| {
        settings.session_lifetime = Duration::from_secs(3);
    })
    .await;
    let (_, first) = session(&app).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let refreshed = app.refresh(&first).await.expect("refreshed in time");
    assert!(
        refreshed.refresh_expires_in <= 2 && refreshed.expires_in <= 2,
        "{refreshed:?}"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_refused(
        app.refresh(&refreshed.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
}

/// The value and attributes of a `Set-Cookie` header for `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_owned())
        .expect("name=value")
}

#[tokio::test]
async fn rest_login_sets_a_refresh_cookie_only_the_refresh_endpoint_receives() {
    let app = TestApp::spawn().await;
    let response = app.rest_register("Rosa", PASSWORD).await;
    assert_eq!(response.status(), 201);
    let cookie = set_cookie(&response, "authd_refresh");
    let body: serde_json::Value = response.json().await.expect("json");

    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/token"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let max_age = cookie
        .split("; ")
        .find_map(|attribute| attribute.strip_prefix("Max-Age="))
        .expect("Max-Age")
        .parse::<u64>()
        .expect("seconds");
    assert_eq!(max_age, body["refresh_expires_in"]);
    assert_eq!(cookie_value(&cookie), body["refresh_token"]);
    assert!(body["session_id"].is_string());
}

#[tokio::test]
async fn rest_refresh_takes_the_cookie_or_the_body_and_renews_both_cookies() {
    let app = TestApp::spawn().await;
    let (_, refresh) = session(&app).await;

    let by_cookie = app
        .post("/token/refresh")
        .header("cookie", format!("authd_refresh={refresh}"))
        .send()
        .await
        .expect("response");
    assert_eq!(by_cookie.status(), 200);
    let renewed = cookie_value(&set_cookie(&by_cookie, "authd_refresh"));
    let access_cookie = cookie_value(&set_cookie(&by_cookie, "authd_token"));
    let body: serde_json::Value = by_cookie.json().await.expect("json");
    assert_eq!(body["refresh_token"], renewed.as_str());
    assert_eq!(body["access_token"], access_cookie.as_str());

    let by_body = app
        .post_json("/token/refresh", json!({"refresh_token": renewed}))
        .await;
    assert_eq!(by_body.status(), 200);
    let body: serde_json::Value = by_body.json().await.expect("json");
    let (user, access) = (&body["user"]["username"], &body["access_token"]);
    assert!(user.is_string() && access.is_string(), "{body}");
}

#[tokio::test]
async fn rest_refresh_refusals_are_problems() {
    let app = TestApp::spawn().await;

    let (status, reason, _) = problem(app.post("/token/refresh").send().await.expect("sent")).await;
    assert_eq!((status, reason.as_str()), (401, "REFRESH_TOKEN_INVALID"));

    let not_json = app
        .post("/token/refresh")
        .header("content-type", "text/plain")
        .body("authd_rt_x")
        .send()
        .await
        .expect("sent");
    let (status, reason, _) = problem(not_json).await;
    assert_eq!((status, reason.as_str()), (415, "UNSUPPORTED_MEDIA_TYPE"));

    let wrong_shape = app.post_json("/token/refresh", json!({"token": "x"})).await;
    assert_eq!(problem(wrong_shape).await.0, 400);
}

#[tokio::test]
async fn rest_logout_clears_both_cookies() {
    let app = TestApp::spawn().await;
    let (access, _) = session(&app).await;

    let response = app.rest_logout(&access).await;

    assert_eq!(response.status(), 200);
    for name in ["authd_token", "authd_refresh"] {
        let cookie = set_cookie(&response, name);
        assert_eq!(cookie_value(&cookie), "", "{cookie}");
        assert!(cookie.contains("Max-Age=0"), "{cookie}");
    }
}
