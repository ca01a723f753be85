//! The `authd` binary as an operator meets it: help, start-up failures,
//! migrations, serving and SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::helpers::{
    TestDatabase, authd_command, postgres_admin_url, shared_secrets_key_file, spawn_authd_process,
    terminate,
};

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
async fn every_subcommand_documents_the_global_options_and_each_argument() {
    for subcommand in [
        &["serve"][..],
        &["migrate"],
        &["keys", "rotate"],
        &["keys", "list"],
        &["users", "list"],
        &["users", "show"],
        &["users", "disable"],
        &["users", "enable"],
        &["users", "logout"],
        &["users", "delete"],
    ] {
        let output = authd_command()
            .args(subcommand)
            .arg("--help")
            .output()
            .await
            .expect("runs");

        assert!(output.status.success(), "{subcommand:?}");
        let help = String::from_utf8(output.stdout).expect("utf-8");
        for option in ["--database-url", "DATABASE_URL", "--log-format"] {
            assert!(
                help.contains(option),
                "{subcommand:?} --help does not mention {option}:\n{help}"
            );
        }
        // Every argument has a description: after its name, or on the
        // next line in the long help.
        let lines: Vec<&str> = help.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let entry = line.trim_start();
            let short_option = entry.starts_with('-') && entry.get(2..3) == Some(",");
            if entry.starts_with('<') || entry.starts_with("--") || short_option {
                let after_name = entry.split_once("  ").map(|(_, about)| about.trim());
                let next_line = lines.get(index + 1).map(|next| next.trim());
                assert!(
                    after_name.is_some_and(|about| !about.is_empty())
                        || next_line.is_some_and(|about| !about.is_empty()),
                    "{subcommand:?}: an argument without a description: {line}"
                );
            }
        }
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
        .env("AUTHD_SECRETS_KEY_FILE", shared_secrets_key_file())
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
            email: String::new(),
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

#[tokio::test]
async fn a_missing_postgresql_database_is_one_line_that_says_how_to_create_it() {
    let Some(admin_url) = postgres_admin_url() else {
        eprintln!("skipped: set TEST_DATABASE_URL to run on PostgreSQL");
        return;
    };
    let name = format!("authd_no_such_db_{}", uuid::Uuid::new_v4().simple());
    let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&name);

    for command in [&[][..], &["users", "list"][..]] {
        let output = authd_command()
            .args(["--database-url", url.as_str()])
            .args(command)
            .output()
            .await
            .expect("runs");

        assert_eq!(output.status.code(), Some(1), "{command:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{command:?}: {stderr}");
        let line = lines[0];
        assert!(
            line.contains(&format!("database {name:?} does not exist")),
            "{line}"
        );
        assert!(line.contains(&format!("CREATE DATABASE {name}")), "{line}");
        assert_eq!(line.matches("does not exist").count(), 1, "{line}");
        assert!(!line.contains(".rs:"), "{line}");
    }
}

#[tokio::test]
async fn an_address_in_use_suggests_an_authd_still_draining_there() {
    let database = TestDatabase::create().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
    let address = taken.local_addr().expect("address").to_string();

    let output = authd_command()
        .args(["--database-url", &database.url, "--listen", &address])
        .output()
        .await
        .expect("runs");

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last_line = stderr.lines().last().unwrap_or_default();
    assert!(
        last_line.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(
        last_line.contains("another authd may still be draining on that address"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_serving_line_names_the_web_root_as_a_path() {
    let database = TestDatabase::create().await;
    let web_root = tempfile::tempdir().expect("temporary directory");
    let web_root = web_root.path().display().to_string();
    let (mut child, _, serving) = spawn_authd_process(&[
        "--database-url",
        &database.url,
        "--web-root",
        &web_root,
        "--shutdown-drain",
        "0s",
    ])
    .await;

    assert!(
        serving.contains(&format!("web_root={web_root}")),
        "{serving}"
    );
    assert!(!serving.contains("Some("), "{serving}");
    terminate(&mut child).await;
}
