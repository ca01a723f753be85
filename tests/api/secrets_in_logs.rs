//! Passwords, tokens and the secrets key never reach the log, even at the
//! most verbose level, through every call that carries them; a reused
//! refresh token is logged at warn with its session and user, and nothing
//! secret.

use authd::grpc::pb::auth_service_client::AuthServiceClient;
use authd::grpc::pb::{LoginRequest, RefreshRequest, RegisterRequest};
use tonic::transport::Channel;

use crate::helpers::{
    PASSWORD, TestDatabase, secrets_key_file_of, spawn_authd_process_logged, terminate,
    unique_username, with_bearer,
};

const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test]
async fn no_secret_reaches_the_log() {
    let database = TestDatabase::create().await;
    let (mut authd, address, _, log) = spawn_authd_process_logged(
        &[("RUST_LOG", "trace")],
        &[
            "--database-url",
            &database.url,
            "--argon2-memory-kib",
            "256",
            "--argon2-iterations",
            "1",
            "--refresh-grace",
            "0s",
        ],
    )
    .await;
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to authd");
    let mut client = AuthServiceClient::new(channel);
    let name = unique_username();
    let http = reqwest::Client::new();

    let registered = client
        .register(RegisterRequest {
            username: name.clone(),
            password: PASSWORD.into(),
        })
        .await
        .expect("registered")
        .into_inner();
    let rest_login: serde_json::Value = http
        .post(format!("http://{address}/login"))
        .json(&serde_json::json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .expect("logged in")
        .json()
        .await
        .expect("json");
    let rest_refresh = rest_login["refresh_token"].as_str().expect("token");
    let by_cookie: serde_json::Value = http
        .post(format!("http://{address}/token/refresh"))
        .header("cookie", format!("authd_refresh={rest_refresh}"))
        .send()
        .await
        .expect("refreshed")
        .json()
        .await
        .expect("json");
    let rotated = client
        .refresh(RefreshRequest {
            refresh_token: registered.refresh_token.clone(),
        })
        .await
        .expect("refreshed")
        .into_inner();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let reused = client
        .refresh(RefreshRequest {
            refresh_token: registered.refresh_token.clone(),
        })
        .await
        .expect_err("reuse");
    assert_eq!(reused.code(), tonic::Code::Unauthenticated);
    client
        .login(LoginRequest {
            username: name.clone(),
            password: "a wrong password".into(),
        })
        .await
        .expect_err("wrong password");
    let changed = client
        .change_password(with_bearer(
            authd::grpc::pb::ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: NEW_PASSWORD.into(),
                second: None,
            },
            by_cookie["access_token"].as_str().expect("token"),
        ))
        .await
        .expect("changed")
        .into_inner();
    client
        .delete_account(with_bearer(
            authd::grpc::pb::DeleteAccountRequest {
                password: NEW_PASSWORD.into(),
                second: None,
            },
            &changed.access_token,
        ))
        .await
        .expect("deleted");
    terminate(&mut authd).await;

    let log = log.lock().expect("log").join("\n");
    let key_file = secrets_key_file_of(&database.url);
    let secrets_key = std::fs::read_to_string(&key_file).expect("the secrets key file");
    assert!(
        log.contains(&format!("path={}", key_file.display())),
        "where the secrets key is goes to the log:\n{log}"
    );
    let secrets = [
        secrets_key.trim().to_owned(),
        PASSWORD.to_owned(),
        NEW_PASSWORD.to_owned(),
        "a wrong password".to_owned(),
        registered.refresh_token,
        registered.access_token,
        rest_refresh.to_owned(),
        by_cookie["refresh_token"]
            .as_str()
            .expect("token")
            .to_owned(),
        rotated.refresh_token,
        changed.refresh_token,
        changed.access_token,
    ];
    for secret in &secrets {
        // Any 20 characters of it would be a leak.
        let probe = &secret[secret.len().saturating_sub(20)..];
        assert!(!log.contains(probe), "{probe} appears in the log");
    }
    let user_id = registered.user.expect("user").id;
    let warning = log
        .lines()
        .find(|line| line.contains("retired refresh token"))
        .unwrap_or_else(|| panic!("no warning about the reuse in:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(&registered.session_id), "{warning}");
    assert!(warning.contains(&user_id), "{warning}");
}
