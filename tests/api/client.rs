//! `authd-client` against real authd instances: logouts reach a running
//! verifier at once, from this instance or another; a new verifier starts
//! from the snapshot; restarts, outages and key rotations; and its tonic
//! layer and axum extractor answer as authd does.

use std::time::Duration;

use authd::grpc::pb::LogoutAllRequest;
use authd_client::{
    AuthenticatedUser, AuthenticationPolicy, AuthenticationPolicyLayer, RequireTokenLayer,
    StalePolicy, Verifier, VerifierConfig, VerifyError,
};
use axum::Router;
use axum::routing::get;
use chrono::Utc;
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{
    FEED_TOKEN, PASSWORD, TestApp, assert_refused, problem, unique_username, with_bearer,
    with_broken_signature,
};
use crate::keys::{kid_of, login_signed_by, rotate};
use crate::second_factor::one_and_two_factor_tokens;
use crate::token_attacks::{b64, claims_of, foreign_key_claiming, header, server_key, sign};

/// How long a logout may take to reach a running verifier.
const LOGOUT_REACHES_VERIFIER: Duration = Duration::from_secs(2);

fn config(app: &TestApp) -> VerifierConfig {
    VerifierConfig::new(app.base_url.clone(), FEED_TOKEN)
}

async fn connect(config: VerifierConfig) -> Verifier {
    Verifier::connect(config)
        .await
        .expect("the verifier connects")
}

/// The reason `verifier` refuses `token` with, or None if it accepts it.
async fn outcome(verifier: &Verifier, token: &str) -> Option<&'static str> {
    verifier.verify(token).await.err().map(VerifyError::reason)
}

/// Polls until `verifier` refuses `token` for `reason`, within `deadline`.
async fn refused_within(verifier: &Verifier, token: &str, reason: &str, deadline: Duration) {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let seen = outcome(verifier, token).await;
        if seen == Some(reason) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "still {seen:?} after {deadline:?}, expected {reason}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `ready(state)` holds, within five seconds.
async fn state_becomes(
    verifier: &Verifier,
    what: &str,
    ready: impl Fn(&authd_client::VerifierState) -> bool,
) {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while !ready(&verifier.state()) {
        assert!(
            tokio::time::Instant::now() < until,
            "never {what}: {:?}",
            verifier.state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn logout_all(app: &TestApp, token: &str) {
    app.client
        .clone()
        .logout_all(with_bearer(LogoutAllRequest {}, token))
        .await
        .expect("LogoutAll");
}

#[tokio::test]
async fn a_logout_and_a_logout_all_reach_a_running_verifier_at_once() {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app)).await;
    let username = unique_username();
    let first = app.registered_token(&username).await;
    let second = app
        .login(&username, PASSWORD)
        .await
        .expect("login")
        .access_token;
    let third = app
        .login(&username, PASSWORD)
        .await
        .expect("login")
        .access_token;
    for token in [&first, &second, &third] {
        let claims = verifier.verify(token).await.expect("a fresh token is good");
        assert_eq!(claims.username, username);
    }

    app.logout(&first).await.expect("logout");
    refused_within(&verifier, &first, "TOKEN_REVOKED", LOGOUT_REACHES_VERIFIER).await;
    assert_eq!(
        outcome(&verifier, &second).await,
        None,
        "other sessions live on"
    );

    logout_all(&app, &second).await;
    refused_within(&verifier, &second, "TOKEN_REVOKED", LOGOUT_REACHES_VERIFIER).await;
    refused_within(&verifier, &third, "TOKEN_REVOKED", LOGOUT_REACHES_VERIFIER).await;
    let state = verifier.state();
    assert!(state.connected && !state.stale, "{state:?}");
    assert!(!state.cursor.is_empty());
}

#[tokio::test]
async fn a_logout_on_another_instance_reaches_the_verifier() {
    let app = TestApp::spawn().await;
    let other = app.spawn_beside().await;
    let verifier = connect(config(&app)).await;
    let token = app.registered_token(&unique_username()).await;
    assert_eq!(outcome(&verifier, &token).await, None);

    other
        .logout(&token)
        .await
        .expect("logout on the other instance");

    refused_within(&verifier, &token, "TOKEN_REVOKED", LOGOUT_REACHES_VERIFIER).await;
}

#[tokio::test]
async fn a_verifier_started_after_a_logout_refuses_from_its_snapshot() {
    let app = TestApp::spawn().await;
    let token = app.registered_token(&unique_username()).await;
    app.logout(&token).await.expect("logout");

    let verifier = connect(config(&app)).await;

    assert_eq!(outcome(&verifier, &token).await, Some("TOKEN_REVOKED"));
}

#[tokio::test]
async fn after_authd_restarts_the_verifier_reconnects_and_sees_new_logouts() {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app)).await;
    let username = unique_username();
    let logged_out_before = app.registered_token(&username).await;
    let kept = app
        .login(&username, PASSWORD)
        .await
        .expect("login")
        .access_token;
    let logged_out_after = app
        .login(&username, PASSWORD)
        .await
        .expect("login")
        .access_token;
    app.logout(&logged_out_before).await.expect("logout");
    refused_within(
        &verifier,
        &logged_out_before,
        "TOKEN_REVOKED",
        LOGOUT_REACHES_VERIFIER,
    )
    .await;
    let cursor_before = verifier.state().cursor;

    // On the same address, where the verifier looks for it.
    let address = app
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let app = app.restart_with(|settings| settings.listen = address).await;
    app.logout(&logged_out_after)
        .await
        .expect("logout after the restart");

    refused_within(
        &verifier,
        &logged_out_after,
        "TOKEN_REVOKED",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        outcome(&verifier, &logged_out_before).await,
        Some("TOKEN_REVOKED")
    );
    assert_eq!(outcome(&verifier, &kept).await, None);
    let state = verifier.state();
    assert!(state.connected && !state.stale, "{state:?}");
    assert_ne!(state.cursor, cursor_before, "a cursor of the new run");
}

#[tokio::test]
async fn a_verifier_of_a_stopped_authd_goes_stale_and_applies_its_policy() {
    let mut app = TestApp::spawn().await;
    let token = app.registered_token(&unique_username()).await;
    let staleness_limit = Duration::from_secs(1);
    let with_policy = |policy| {
        config(&app)
            .staleness_limit(staleness_limit)
            .stale_policy(policy)
            .request_timeout(Duration::from_millis(500))
    };
    let fall_back = connect(with_policy(StalePolicy::FallBackToAuthd)).await;
    let fail_closed = connect(with_policy(StalePolicy::FailClosed)).await;
    let fail_open = connect(with_policy(StalePolicy::FailOpen)).await;
    for verifier in [&fall_back, &fail_closed, &fail_open] {
        assert_eq!(outcome(verifier, &token).await, None);
    }

    app.stop().await;
    let stopped_at = tokio::time::Instant::now();
    for verifier in [&fall_back, &fail_closed, &fail_open] {
        state_becomes(verifier, "stale", |state| state.stale && !state.connected).await;
    }
    assert!(
        stopped_at.elapsed() >= staleness_limit / 2,
        "not stale before its time: {:?}",
        stopped_at.elapsed()
    );

    assert_eq!(outcome(&fall_back, &token).await, Some("AUTHD_UNAVAILABLE"));
    assert_eq!(outcome(&fail_closed, &token).await, Some("VERIFIER_STALE"));
    assert_eq!(outcome(&fail_open, &token).await, None);
    // What the local checks refuse stays refused, whatever the policy.
    for verifier in [&fall_back, &fail_closed, &fail_open] {
        assert_eq!(
            outcome(verifier, &with_broken_signature(&token)).await,
            Some("TOKEN_INVALID_SIGNATURE")
        );
    }
}

#[tokio::test]
async fn while_stale_the_fallback_asks_authd_and_takes_its_answer() {
    // Stale at once: authd's checkpoints come every 200 ms, the limit is
    // shorter, so every check goes to authd's Verify.
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app).staleness_limit(Duration::from_millis(1))).await;
    let username = unique_username();
    let token = app.registered_token(&username).await;
    let other = app
        .login(&username, PASSWORD)
        .await
        .expect("login")
        .access_token;
    assert!(verifier.state().stale);

    assert_eq!(
        verifier
            .verify(&token)
            .await
            .expect("authd confirms")
            .username,
        username
    );
    app.logout(&token).await.expect("logout");
    assert_eq!(outcome(&verifier, &token).await, Some("TOKEN_REVOKED"));
    assert_eq!(outcome(&verifier, &other).await, None);
}

#[tokio::test]
async fn a_token_of_a_rotated_key_is_accepted_without_restarting_the_verifier() {
    let app = TestApp::spawn_with(|settings| {
        settings.key_refresh_interval = Duration::from_millis(200);
        // This test logs in until the new key signs.
        settings.login_rate_per_address = None;
    })
    .await;
    let verifier = connect(config(&app).key_refresh_spacing(Duration::from_millis(100))).await;
    let username = unique_username();
    let old_token = app.registered_token(&username).await;

    let new_kid = rotate(&app.database.url, "200ms").await;
    let new_token = login_signed_by(&app, &username, &new_kid).await;
    assert_ne!(kid_of(&old_token), kid_of(&new_token));

    let claims = verifier
        .verify(&new_token)
        .await
        .expect("the new key's token is good");
    assert_eq!(claims.username, username);
    assert_eq!(
        outcome(&verifier, &old_token).await,
        None,
        "the old key's too"
    );
}

#[tokio::test]
async fn forged_tokens_are_refused_by_the_verifier_as_by_authd() {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app).key_refresh_spacing(Duration::from_millis(100))).await;
    let key = server_key(&app).await;
    let genuine = app.registered_token(&unique_username()).await;
    let claims = claims_of(&app, &genuine).await;
    assert_eq!(
        outcome(&verifier, &sign(&header(&key.kid), &claims, &key)).await,
        None
    );

    let unsigned = json!({"alg": "none", "typ": "at+jwt", "kid": key.kid});
    let alg_none = format!("{}.{}.", b64(&unsigned), b64(&claims));
    let foreign = sign(&header(&key.kid), &claims, &foreign_key_claiming(&key.kid));
    let mut edited = claims.clone();
    edited["username"] = json!("admin");
    let parts: Vec<&str> = genuine.split('.').collect();
    let changed_payload = format!("{}.{}.{}", parts[0], b64(&edited), parts[2]);
    let unknown_kid = sign(
        &header("no-such-key"),
        &claims,
        &foreign_key_claiming("no-such-key"),
    );
    let mut other_audience = claims.clone();
    other_audience["aud"] = json!("somebody-else");
    let other_audience = sign(&header(&key.kid), &other_audience, &key);

    for (token, reason) in [
        (alg_none, "TOKEN_MALFORMED"),
        (foreign, "TOKEN_INVALID_SIGNATURE"),
        (changed_payload, "TOKEN_INVALID_SIGNATURE"),
        (unknown_kid, "TOKEN_INVALID_SIGNATURE"),
        (other_audience, "TOKEN_INVALID_CLAIMS"),
    ] {
        assert_eq!(outcome(&verifier, &token).await, Some(reason), "{token}");
        assert_refused(app.verify(&token).await, Code::Unauthenticated, reason);
    }
}

/// Tokens of every kind the front ends must tell apart: a good one, a bad
/// signature, an expired one and a revoked one.
struct Tokens {
    good: String,
    bad_signature: String,
    expired: String,
    revoked: String,
}

async fn tokens(app: &TestApp, verifier: &Verifier) -> Tokens {
    let username = unique_username();
    let good = app.registered_token(&username).await;
    let revoked = app
        .login(&username, PASSWORD)
        .await
        .expect("login")
        .access_token;
    app.logout(&revoked).await.expect("logout");
    refused_within(verifier, &revoked, "TOKEN_REVOKED", LOGOUT_REACHES_VERIFIER).await;
    let key = server_key(app).await;
    let mut expired = claims_of(app, &good).await;
    let now = Utc::now().timestamp();
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    Tokens {
        bad_signature: with_broken_signature(&good),
        expired: sign(&header(&key.kid), &expired, &key),
        good,
        revoked,
    }
}

#[tokio::test]
async fn the_tonic_layer_admits_good_tokens_and_refuses_the_rest_with_authds_reasons() {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app)).await;
    let tokens = tokens(&app, &verifier).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (_, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(RequireTokenLayer::new(verifier))
            .add_service(health)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let check = |token: Option<&str>| {
        let mut client = HealthClient::new(channel.clone());
        let request = match token {
            Some(token) => with_bearer(HealthCheckRequest::default(), token),
            None => tonic::Request::new(HealthCheckRequest::default()),
        };
        async move { client.check(request).await }
    };

    check(Some(&tokens.good))
        .await
        .expect("a good token passes");
    for (token, reason) in [
        (None, "MISSING_TOKEN"),
        (
            Some(tokens.bad_signature.as_str()),
            "TOKEN_INVALID_SIGNATURE",
        ),
        (Some(tokens.expired.as_str()), "TOKEN_EXPIRED"),
        (Some(tokens.revoked.as_str()), "TOKEN_REVOKED"),
    ] {
        assert_refused(check(token).await, Code::Unauthenticated, reason);
    }

    let _ = stop.send(());
    server.await.expect("server task").expect("server stops");
}

#[tokio::test]
async fn the_axum_extractor_admits_good_tokens_and_refuses_the_rest_as_authd_does() {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app).token_cookie("session")).await;
    let tokens = tokens(&app, &verifier).await;

    async fn me(AuthenticatedUser(claims): AuthenticatedUser) -> String {
        claims.username.clone()
    }
    let router = Router::new().route("/me", get(me)).with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/me", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let good = app
        .http
        .get(&url)
        .bearer_auth(&tokens.good)
        .send()
        .await
        .expect("request");
    assert_eq!(good.status(), 200);
    let username = good.text().await.expect("body");
    let from_cookie = app
        .http
        .get(&url)
        .header("cookie", format!("session={}", tokens.good))
        .send()
        .await
        .expect("request");
    assert_eq!(from_cookie.text().await.expect("body"), username);

    let missing = app.http.get(&url).send().await.expect("request");
    assert_eq!(
        missing.headers()["www-authenticate"],
        r#"Bearer realm="authd""#
    );
    assert_eq!(problem(missing).await.1, "MISSING_TOKEN");
    for (token, reason) in [
        (&tokens.bad_signature, "TOKEN_INVALID_SIGNATURE"),
        (&tokens.expired, "TOKEN_EXPIRED"),
        (&tokens.revoked, "TOKEN_REVOKED"),
    ] {
        let response = app
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .expect("ASCII")
            .to_owned();
        assert!(
            challenge
                .starts_with(r#"Bearer realm="authd", error="invalid_token", error_description=""#),
            "{challenge}"
        );
        let (status, refused_for, _) = problem(response).await;
        assert_eq!((status, refused_for.as_str()), (401, reason));
    }
    server.abort();
}

#[tokio::test]
async fn a_wrong_feed_credential_fails_the_connect_at_once() {
    let app = TestApp::spawn().await;
    let started = tokio::time::Instant::now();

    let refused = Verifier::connect(VerifierConfig::new(
        app.base_url.clone(),
        "not-the-feed-token",
    ))
    .await
    .expect_err("refused");

    assert!(
        matches!(refused, authd_client::ConnectError::FeedRefused(ref status) if status.code() == Code::Unauthenticated),
        "{refused}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no waiting for the timeout"
    );
}

#[tokio::test]
async fn a_disabled_account_is_refused_by_the_verifier_until_enabled() {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app)).await;
    let name = unique_username();
    let token = app.registered_token(&name).await;
    assert_eq!(outcome(&verifier, &token).await, None);
    let accounts = authd::domain::AccountAdmin::new(
        authd::storage::Database::connect(&app.settings.database())
            .await
            .expect("database"),
    );

    accounts.disable(&name).await.expect("disabled");
    refused_within(
        &verifier,
        &token,
        "ACCOUNT_DISABLED",
        LOGOUT_REACHES_VERIFIER,
    )
    .await;

    accounts.enable(&name).await.expect("enabled");
    // Its earlier tokens stay refused (disabling ended every session); a
    // new login is accepted again.
    refused_within(&verifier, &token, "TOKEN_REVOKED", LOGOUT_REACHES_VERIFIER).await;
    let fresh = app
        .login(&name, PASSWORD)
        .await
        .expect("logs in again")
        .access_token;
    assert_eq!(outcome(&verifier, &fresh).await, None);
}

/// A tonic server whose health service sits behind `layer`, and a check of
/// it with a token; the server stops when the returned sender is dropped.
async fn health_behind(
    layer: RequireTokenLayer,
) -> (
    impl Fn(&str) -> std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (_, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(health)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let check = move |token: &str| {
        let mut client = HealthClient::new(channel.clone());
        let request = with_bearer(HealthCheckRequest::default(), token);
        Box::pin(async move { client.check(request).await.map(|_| ()) })
            as std::pin::Pin<Box<dyn Future<Output = _> + Send>>
    };
    (check, stop)
}

/// An axum router on a free port with `/me` open to any valid token and
/// `/pay` wrapped in `layer`; its base URL.
async fn axum_behind(verifier: Verifier, layer: AuthenticationPolicyLayer) -> String {
    async fn me(AuthenticatedUser(claims): AuthenticatedUser) -> String {
        claims.username.clone()
    }
    let router = Router::new()
        .route("/me", get(me))
        .route("/pay", get(me).layer(layer))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// The `acr_values` and `max_age` of a refusal's ErrorInfo, checking it is
/// UNAUTHENTICATED for INSUFFICIENT_USER_AUTHENTICATION.
fn insufficient(refused: Result<(), tonic::Status>) -> (Option<String>, Option<String>) {
    let status = assert_refused(
        refused,
        Code::Unauthenticated,
        "INSUFFICIENT_USER_AUTHENTICATION",
    );
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("ErrorInfo");
    assert_eq!(info.domain, "authd");
    (
        info.metadata.get("acr_values").cloned(),
        info.metadata.get("max_age").cloned(),
    )
}

#[tokio::test]
async fn the_tonic_layer_requiring_two_factors_refuses_a_password_only_token_and_admits_a_two_factor_one()
 {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app)).await;
    let (password_only, two_factors) = one_and_two_factor_tokens(&app).await;
    let (check, _stop) = health_behind(
        RequireTokenLayer::new(verifier)
            .with_policy(AuthenticationPolicy::new().require_two_factors()),
    )
    .await;

    assert_eq!(
        insufficient(check(&password_only).await),
        (Some("aal2".to_owned()), None)
    );
    check(&two_factors)
        .await
        .expect("a two-factor token passes");
    // A bad token is still refused for what it is.
    assert_refused(
        check(&with_broken_signature(&two_factors)).await,
        Code::Unauthenticated,
        "TOKEN_INVALID_SIGNATURE",
    );
}

#[tokio::test]
async fn the_axum_extractor_on_a_two_factor_route_refuses_a_password_only_token_with_the_rfc_9470_challenge()
 {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app)).await;
    let (password_only, two_factors) = one_and_two_factor_tokens(&app).await;
    let url = axum_behind(
        verifier,
        AuthenticationPolicyLayer::new(AuthenticationPolicy::new().require_two_factors()),
    )
    .await;
    let get = |path: &str, token: &str| {
        app.http
            .get(format!("{url}{path}"))
            .bearer_auth(token)
            .send()
    };

    let response = get("/pay", &password_only).await.expect("request");
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="a second factor is required", acr_values="aal2""#
    );
    let (status, reason, body) = problem(response).await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "INSUFFICIENT_USER_AUTHENTICATION")
    );
    assert_eq!(body["acr_values"], "aal2");
    assert!(body.get("max_age").is_none(), "{body}");
    // The route without the layer asks nothing more.
    assert_eq!(
        get("/me", &password_only).await.expect("request").status(),
        200
    );

    let response = get("/pay", &two_factors).await.expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_authentication_older_than_the_max_age_is_refused_by_the_layer_and_the_extractor() {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app)).await;
    let token = app.registered_token(&unique_username()).await;
    let within_a_second = AuthenticationPolicy::new().max_auth_age(Duration::from_secs(1));
    let (check, _stop) =
        health_behind(RequireTokenLayer::new(verifier.clone()).with_policy(within_a_second)).await;
    let url = axum_behind(
        verifier.clone(),
        AuthenticationPolicyLayer::new(within_a_second),
    )
    .await;
    let pay = || {
        app.http
            .get(format!("{url}/pay"))
            .bearer_auth(&token)
            .send()
    };
    check(&token).await.expect("a fresh login passes");
    assert_eq!(pay().await.expect("request").status(), 200);

    // The age is what is tested: it has to pass.
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(
        insufficient(check(&token).await),
        (None, Some("1".to_owned()))
    );
    let response = pay().await.expect("request");
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age=1"#
    );
    let (status, reason, body) = problem(response).await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "INSUFFICIENT_USER_AUTHENTICATION")
    );
    assert_eq!(body["max_age"], 1);
    assert_eq!(
        verifier
            .verify_with(&token, &within_a_second)
            .await
            .err()
            .map(VerifyError::reason),
        Some("INSUFFICIENT_USER_AUTHENTICATION")
    );
    assert_eq!(
        outcome(&verifier, &token).await,
        None,
        "still a valid token"
    );
}

#[tokio::test]
async fn policy_layers_around_one_route_add_up_and_an_inner_one_never_loosens_an_outer_one() {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app)).await;
    let (password_only, two_factors) = one_and_two_factor_tokens(&app).await;
    async fn me(AuthenticatedUser(claims): AuthenticatedUser) -> String {
        claims.username.clone()
    }
    // Two factors for the whole admin area; one route adds an age limit,
    // and says nothing of the level.
    let admin = Router::new()
        .route(
            "/admin/keys",
            get(me).layer(AuthenticationPolicyLayer::new(
                AuthenticationPolicy::new().max_auth_age(Duration::from_secs(300)),
            )),
        )
        .layer(AuthenticationPolicyLayer::new(
            AuthenticationPolicy::new().require_two_factors(),
        ));
    let router = Router::new().merge(admin).with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/admin/keys",
        listener.local_addr().expect("address")
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    let response = app
        .http
        .get(&url)
        .bearer_auth(&password_only)
        .send()
        .await
        .expect("request");
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(
        challenge.ends_with(r#"acr_values="aal2", max_age=300"#),
        "{challenge}"
    );
    assert_eq!(problem(response).await.0, 401);
    let response = app
        .http
        .get(&url)
        .bearer_auth(&two_factors)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_token_from_before_acr_and_auth_time_meets_no_policy_that_asks_for_them() {
    let app = TestApp::spawn().await;
    let verifier = connect(config(&app)).await;
    let genuine = app.registered_token(&unique_username()).await;
    let key = server_key(&app).await;
    let old = sign(&header(&key.kid), &claims_of(&app, &genuine).await, &key);

    assert_eq!(outcome(&verifier, &old).await, None, "still a valid token");
    for policy in [
        AuthenticationPolicy::new().min_assurance_level(1),
        AuthenticationPolicy::new().max_auth_age(Duration::from_secs(3600)),
    ] {
        assert_eq!(
            verifier
                .verify_with(&old, &policy)
                .await
                .err()
                .map(VerifyError::reason),
            Some("INSUFFICIENT_USER_AUTHENTICATION"),
            "{policy:?}"
        );
    }
    assert!(
        verifier
            .verify_with(&old, &AuthenticationPolicy::new())
            .await
            .is_ok()
    );
}
