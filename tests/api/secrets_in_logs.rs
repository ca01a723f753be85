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
            email: String::new(),
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

#[tokio::test]
async fn no_second_factor_secret_reaches_the_log() {
    use crate::second_factor::{code, steady_now};
    use authd::grpc::pb::{
        CompleteLoginRequest, ConfirmTotpEnrollmentRequest, RegenerateRecoveryCodesRequest,
        StartTotpEnrollmentRequest, complete_login_request::Proof,
        regenerate_recovery_codes_request::Second,
    };

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
    let registered = client
        .register(RegisterRequest {
            username: name.clone(),
            password: PASSWORD.into(),
            email: String::new(),
        })
        .await
        .expect("registered")
        .into_inner();
    let token = registered.access_token;
    let started = client
        .start_totp_enrollment(with_bearer(StartTotpEnrollmentRequest {}, &token))
        .await
        .expect("started")
        .into_inner();
    let now = steady_now().await;
    let codes = client
        .confirm_totp_enrollment(with_bearer(
            ConfirmTotpEnrollmentRequest {
                code: code(&started.secret, now, -1),
            },
            &token,
        ))
        .await
        .expect("confirmed")
        .into_inner()
        .recovery_codes;
    let login = |client: &mut AuthServiceClient<Channel>| {
        let mut client = client.clone();
        let name = name.clone();
        async move {
            client
                .login(LoginRequest {
                    username: name,
                    password: PASSWORD.into(),
                })
                .await
                .expect("password accepted")
                .into_inner()
                .mfa_required
                .expect("second factor required")
                .ticket
        }
    };
    let wrong_ticket = login(&mut client).await;
    client
        .complete_login(CompleteLoginRequest {
            ticket: wrong_ticket.clone(),
            proof: Some(Proof::RecoveryCode("ABCDE-FGHJK-MNPQR".into())),
        })
        .await
        .expect_err("a wrong code");
    let ticket = login(&mut client).await;
    let session = client
        .complete_login(CompleteLoginRequest {
            ticket: ticket.clone(),
            proof: Some(Proof::RecoveryCode(codes[0].clone())),
        })
        .await
        .expect("completed")
        .into_inner();
    let regenerated = client
        .regenerate_recovery_codes(with_bearer(
            RegenerateRecoveryCodesRequest {
                second: Some(Second::TotpCode(code(&started.secret, now, 0))),
            },
            &session.access_token,
        ))
        .await
        .expect("regenerated")
        .into_inner()
        .recovery_codes;
    terminate(&mut authd).await;

    let log = log.lock().expect("log").join("\n");
    let mut secrets = vec![
        started.secret.clone(),
        started.otpauth_uri.clone(),
        wrong_ticket,
        ticket,
        session.access_token,
        session.refresh_token,
    ];
    for recovery_code in codes.iter().chain(&regenerated) {
        secrets.push(recovery_code.clone());
        secrets.push(recovery_code.replace('-', ""));
    }
    for secret in &secrets {
        let probe = &secret[secret.len().saturating_sub(15)..];
        assert!(!log.contains(probe), "{probe} appears in the log");
    }
    let user_id = registered.user.expect("user").id;
    for event in [
        "TOTP enabled",
        "second factor accepted",
        "wrong second-factor code",
        "recovery code used",
        "recovery codes regenerated",
    ] {
        let line = log
            .lines()
            .find(|line| line.contains(event))
            .unwrap_or_else(|| panic!("no line {event:?} in:\n{log}"));
        assert!(line.contains("INFO"), "{line}");
        assert!(line.contains(&user_id), "{line}");
    }
}
