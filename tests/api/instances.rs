//! Several instances on one database: a revocation made on one is refused
//! by the others after at most one catch-up interval.

use std::time::Duration;

use crate::helpers::{PASSWORD, TestApp, wait_until_refused};

/// Polls Verify until it refuses `token` as revoked, for at most ten seconds.
pub async fn wait_until_revoked(app: &TestApp, token: &str) {
    wait_until_refused(app, token, "TOKEN_REVOKED").await;
}

#[tokio::test]
async fn a_logout_on_one_instance_reaches_the_others() {
    let first = TestApp::spawn().await;
    let second = first.spawn_beside().await;
    let token = first.registered_token("Gus").await;
    second.verify(&token).await.expect("both accept the token");

    first.logout(&token).await.expect("logged out on the first");

    wait_until_revoked(&second, &token).await;
}

#[tokio::test]
async fn logging_out_everywhere_reaches_the_other_instances() {
    let first = TestApp::spawn().await;
    let second = first.spawn_beside().await;
    let token = first.registered_token("Hugo").await;
    let other = second
        .login("Hugo", PASSWORD)
        .await
        .expect("login")
        .access_token;
    let mut request = tonic::Request::new(authd::grpc::pb::LogoutAllRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {other}").parse().expect("ascii"),
    );

    second
        .client
        .clone()
        .logout_all(request)
        .await
        .expect("logged out everywhere");

    wait_until_revoked(&first, &token).await;
}

#[tokio::test]
async fn on_postgresql_revocations_are_announced_at_once() {
    if crate::helpers::postgres_admin_url().is_none() {
        eprintln!("skipped: LISTEN/NOTIFY needs PostgreSQL (set TEST_DATABASE_URL)");
        return;
    }
    // No periodic catch-up within the test: only the announcement can tell
    // the second instance.
    let first = TestApp::spawn_with(|settings| {
        settings.revocation_refresh_interval = Duration::from_secs(3600);
    })
    .await;
    let second = first.spawn_beside().await;
    let token = first.registered_token("Jude").await;
    let other = first
        .login("Jude", PASSWORD)
        .await
        .expect("login")
        .access_token;
    second.verify(&token).await.expect("both accept the token");
    // The first catch-up runs at start; later ones are an hour away.
    tokio::time::sleep(Duration::from_millis(200)).await;

    first.logout(&token).await.expect("logged out on the first");
    wait_until_revoked(&second, &token).await;

    let mut request = tonic::Request::new(authd::grpc::pb::LogoutAllRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {other}").parse().expect("ascii"),
    );
    first
        .client
        .clone()
        .logout_all(request)
        .await
        .expect("logged out everywhere");
    wait_until_revoked(&second, &other).await;
}
