use std::time::Duration;

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{TestApp, postgres_admin, postgres_admin_url};

/// The health of Envoy's `Check`, which follows the process, not the
/// database.
const ENVOY_CHECK: &str = "envoy.service.auth.v3.Authorization";

async fn health_of(app: &TestApp, service: &str) -> Result<ServingStatus, tonic::Status> {
    let response = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(ServingStatus::try_from(response.into_inner().status).expect("known status"))
}

/// Polls until `service` reports `expected`, for at most ten seconds.
async fn wait_for_health(app: &TestApp, service: &str, expected: ServingStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = health_of(app, service).await.expect("health answers");
        if status == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_auth_service() {
    let app = TestApp::spawn().await;

    assert_eq!(
        health_of(&app, "").await.expect("answers"),
        ServingStatus::Serving
    );
    assert_eq!(
        health_of(&app, "auth.v1.AuthService")
            .await
            .expect("answers"),
        ServingStatus::Serving
    );
    assert_eq!(
        health_of(&app, ENVOY_CHECK).await.expect("answers"),
        ServingStatus::Serving
    );
    let unknown = health_of(&app, "no.such.Service")
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn a_database_outage_is_survived_and_recovered_from_without_a_restart() {
    // Needs a database that can become unreachable and come back: PostgreSQL.
    // SQLite is a file the process holds open.
    if postgres_admin_url().is_none() {
        eprintln!("skipped: set TEST_DATABASE_URL to run on PostgreSQL");
        return;
    }
    let app = TestApp::spawn().await;
    let name = app
        .database
        .postgres_name
        .clone()
        .expect("PostgreSQL database");
    let token = app.registered_token("Olga").await;

    // The outage: no new connections, and the open ones cut.
    postgres_admin(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
    ))
    .await;
    postgres_admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;

    wait_for_health(&app, "", ServingStatus::NotServing).await;
    wait_for_health(&app, "auth.v1.AuthService", ServingStatus::NotServing).await;
    assert_eq!(
        health_of(&app, ENVOY_CHECK).await.expect("answers"),
        ServingStatus::Serving,
        "checks need no database"
    );
    let status = app
        .register("unreachable", crate::helpers::PASSWORD)
        .await
        .expect_err("the database is unreachable");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(crate::helpers::reason(&status), "SERVICE_UNAVAILABLE");
    assert!(
        !status.message().contains(&name),
        "no internals leak: {status:?}"
    );
    let response = app
        .rest_register("unreachable", crate::helpers::PASSWORD)
        .await;
    assert_eq!(response.headers()["retry-after"], "1");
    let (code, reason, body) = crate::helpers::problem(response).await;
    assert_eq!((code, reason.as_str()), (503, "SERVICE_UNAVAILABLE"));
    assert!(
        !body.to_string().contains(&name),
        "no internals leak: {body}"
    );
    app.verify(&token)
        .await
        .expect("Verify answers from memory while the database is down");

    postgres_admin(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
    ))
    .await;

    wait_for_health(&app, "", ServingStatus::Serving).await;
    app.login("Olga", crate::helpers::PASSWORD)
        .await
        .expect("data from before the outage is all there");
    app.registered_token("Pavel").await;
}

#[tokio::test]
async fn a_graceful_shutdown_reports_not_serving_while_it_still_serves() {
    let mut app = TestApp::spawn().await;
    let token = app.registered_token("Ivy").await;

    app.begin_shutdown(Duration::from_secs(2));

    wait_for_health(&app, "", ServingStatus::NotServing).await;
    wait_for_health(&app, "auth.v1.AuthService", ServingStatus::NotServing).await;
    wait_for_health(&app, ENVOY_CHECK, ServingStatus::NotServing).await;
    app.verify(&token)
        .await
        .expect("calls are still served while load balancers drain");
    tokio::time::timeout(Duration::from_secs(30), app.stop())
        .await
        .expect("then it stops");
}
