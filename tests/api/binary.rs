//! The `authd` binary as an operator meets it: help, start-up failures,
//! migrations, serving and SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::helpers::{TestDatabase, authd_command, spawn_authd_process, terminate};

#[tokio::test]
async fn help_documents_every_option_and_its_environment_variable() {
    let output = authd_command().arg("--help").output().await.expect("runs");

    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("utf-8");
    for option in [
        "--listen",
        "AUTHD_LISTEN",
        "--database-url",
        "DATABASE_URL",
        "--token-lifetime",
        "--issuer",
        "--audience",
        "--argon2-memory-kib",
        "--argon2-iterations",
        "--argon2-parallelism",
        "--hash-concurrency",
        "--health-check-interval",
        "migrate",
    ] {
        assert!(help.contains(option), "--help does not mention {option}");
    }
}

#[tokio::test]
async fn a_bad_option_is_one_clear_error_not_a_panic() {
    let output = authd_command()
        .args(["--listen", "not-an-address"])
        .output()
        .await
        .expect("runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--listen"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_database_at_start_is_one_line_and_a_failure_exit() {
    let output = authd_command()
        .args([
            "--database-url",
            "postgres://postgres@127.0.0.1:1/authd",
            "--database-timeout",
            "2s",
        ])
        .output()
        .await
        .expect("runs");

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last_line = stderr.lines().last().unwrap_or_default();
    assert!(
        last_line.starts_with("authd: database postgres://postgres@127.0.0.1:1/authd"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn migrate_applies_the_schema_and_exits() {
    let database = TestDatabase::create().await;

    let output = authd_command()
        .args(["--database-url", &database.url, "migrate"])
        .output()
        .await
        .expect("runs");

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let users: i64 = database
        .query_value("SELECT COUNT(*) AS n FROM users", "n")
        .await;
    assert_eq!(users, 0);
}

#[tokio::test]
async fn the_binary_serves_logs_where_and_stops_cleanly_on_sigterm() {
    let database = TestDatabase::create().await;
    let (mut child, address, serving) =
        spawn_authd_process(&["--database-url", &database.url, "--shutdown-drain", "100ms"]).await;

    assert!(serving.contains("listen=127.0.0.1:"), "{serving}");
    assert!(serving.contains("database="), "{serving}");
    let mut client = authd::grpc::pb::auth_service_client::AuthServiceClient::connect(format!(
        "http://{address}"
    ))
    .await
    .expect("connects");
    client
        .register(authd::grpc::pb::RegisterRequest {
            username: "binary-user".into(),
            password: crate::helpers::PASSWORD.into(),
        })
        .await
        .expect("serves real requests");
    drop(client);

    let status = terminate(&mut child).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn json_logs_carry_the_request_id_that_the_response_returns() {
    let database = TestDatabase::create().await;
    let mut child = authd_command()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database.url,
            "--log-format",
            "json",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            let event: serde_json::Value = serde_json::from_str(&line).expect("every line is JSON");
            if let Some(listen) = event["listen"].as_str() {
                return listen.to_owned();
            }
        }
        panic!("authd exited before serving");
    })
    .await
    .expect("authd starts serving");
    let http = reqwest::Client::new();

    let echoed = http
        .get(format!("http://{address}/user/me"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("response");
    let made_up = http
        .get(format!("http://{address}/user/me"))
        .send()
        .await
        .expect("response");

    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
    let made_up = made_up.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    uuid::Uuid::parse_str(&made_up).expect("a fresh UUID when the caller sent none");
    let logged = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            if line.contains("trace-me-42") {
                return serde_json::from_str::<serde_json::Value>(&line).expect("JSON");
            }
        }
        panic!("no log line names the request id");
    })
    .await
    .expect("the request is logged");
    assert_eq!(logged["message"], "finished", "{logged}");
    assert_eq!(logged["span"]["status"], 401, "{logged}");
    child.kill().await.expect("stopped");
}
