//! Crash safety: `kill -9` in the middle of a flood of registrations and
//! logouts loses nothing that was answered successfully.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use authd::grpc::pb::auth_service_client::AuthServiceClient;
use authd::grpc::pb::{LogoutRequest, RegisterRequest, VerifyRequest};
use tonic::Code;

use crate::helpers::{PASSWORD, TestDatabase, reason, spawn_authd_process};

const CHEAP_AND_UNLIMITED: [&str; 8] = [
    "--argon2-memory-kib",
    "256",
    "--argon2-iterations",
    "1",
    "--register-rate-per-address",
    "off",
    "--login-rate-per-address",
    "off",
];

/// What the flood was told had succeeded.
#[derive(Default)]
struct Acknowledged {
    registered: Vec<String>,
    logged_out: Vec<String>,
}

#[tokio::test]
async fn kill_9_during_a_flood_loses_no_acknowledged_registration_or_logout() {
    let database = TestDatabase::create().await;
    let mut args = vec!["--database-url", database.url.as_str()];
    args.extend(CHEAP_AND_UNLIMITED);
    let (mut first, address, _) = spawn_authd_process(&args).await;
    let client = AuthServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connects");
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));

    // Four workers register and log out until the process dies (bounded).
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let mut client = client.clone();
            let acknowledged = Arc::clone(&acknowledged);
            tokio::spawn(async move {
                for round in 0..500 {
                    let username = format!("crash-{worker}-{round}");
                    let Ok(registered) = client
                        .register(RegisterRequest {
                            username: username.clone(),
                            password: PASSWORD.into(),
                            email: String::new(),
                        })
                        .await
                    else {
                        return;
                    };
                    let token = registered.into_inner().access_token;
                    acknowledged.lock().expect("lock").registered.push(username);
                    let mut logout = tonic::Request::new(LogoutRequest {});
                    logout.metadata_mut().insert(
                        "authorization",
                        format!("Bearer {token}").parse().expect("ascii"),
                    );
                    if client.logout(logout).await.is_err() {
                        return;
                    }
                    acknowledged.lock().expect("lock").logged_out.push(token);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("killed");
    for worker in workers {
        worker.await.expect("worker");
    }

    let (_second, address, _) = spawn_authd_process(&args).await;
    let mut client = AuthServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connects again");
    let acknowledged = std::mem::take(&mut *acknowledged.lock().expect("lock"));
    assert!(
        !acknowledged.logged_out.is_empty(),
        "the flood must have got some calls through before the kill"
    );
    for token in &acknowledged.logged_out {
        let status = client
            .verify(VerifyRequest {
                access_token: token.clone(),
            })
            .await
            .expect_err("a logout that was acknowledged must hold");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(reason(&status), "TOKEN_REVOKED");
    }
    for username in &acknowledged.registered {
        let taken = client
            .register(RegisterRequest {
                username: username.clone(),
                password: PASSWORD.into(),
                email: String::new(),
            })
            .await
            .expect_err("an acknowledged registration must hold");
        assert_eq!(taken.code(), Code::AlreadyExists, "{username}");
    }
}
