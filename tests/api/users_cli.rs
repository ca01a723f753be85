//! `authd users ...` against the database of a running authd, which
//! honours each change (at once on PostgreSQL, within its revocation
//! catch-up on SQLite).

use std::time::Duration;

use tonic::Code;

use crate::helpers::{
    PASSWORD, TestApp, TestDatabase, assert_refused, authd_command, unique_username,
    wait_until_refused,
};

/// Runs `authd users ARGS...` on the app's database; its standard output,
/// or its standard error if it failed.
pub(crate) async fn users(app: &TestApp, args: &[&str]) -> Result<String, String> {
    users_on(&app.database.url, args).await
}

/// Runs `authd users ARGS...` on the database at `database_url`. A command
/// that succeeds must write nothing to standard error (it logs at `info`).
async fn users_on(database_url: &str, args: &[&str]) -> Result<String, String> {
    let output = authd_command()
        .args(["--database-url", database_url, "users"])
        .args(args)
        .output()
        .await
        .expect("authd users runs");
    outcome(&output)
}

fn outcome(output: &std::process::Output) -> Result<String, String> {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        assert!(stderr.is_empty(), "a command that worked logged: {stderr}");
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(stderr)
    }
}

#[tokio::test]
async fn disable_refuses_the_account_everywhere_until_enabled() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");

    let printed = users(&app, &["disable", &name]).await.expect("disabled");
    assert!(printed.contains(&format!("disabled {name}")), "{printed}");

    wait_until_refused(&app, &registered.access_token, "ACCOUNT_DISABLED").await;
    assert_refused(
        app.login(&name, PASSWORD).await,
        Code::PermissionDenied,
        "ACCOUNT_DISABLED",
    );
    assert_refused(
        app.login(&name, "not the password").await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    assert_refused(
        app.refresh(&registered.refresh_token).await,
        Code::PermissionDenied,
        "ACCOUNT_DISABLED",
    );
    let shown = users(&app, &["show", &name]).await.expect("shown");
    assert!(shown.contains("disabled since"), "{shown}");
    assert!(shown.contains("sessions\t0"), "{shown}");

    users(&app, &["enable", &name]).await.expect("enabled");

    wait_until_refused(&app, &registered.access_token, "TOKEN_REVOKED").await;
    app.login(&name, PASSWORD)
        .await
        .expect("logs in again once enabled");
}

#[tokio::test]
async fn logout_ends_every_session_of_the_account() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    let first = app.register(&name, PASSWORD).await.expect("registered");
    let second = app.login(&name, PASSWORD).await.expect("logged in");
    let shown = users(&app, &["show", &name]).await.expect("shown");
    assert!(shown.contains("sessions\t2"), "{shown}");

    users(&app, &["logout", &name]).await.expect("logged out");

    for token in [&first.access_token, &second.access_token] {
        wait_until_refused(&app, token, "TOKEN_REVOKED").await;
    }
    assert_refused(
        app.refresh(&second.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
    app.login(&name, PASSWORD)
        .await
        .expect("a new login works at once");
}

#[tokio::test]
async fn mfa_reset_removes_the_second_factor_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let now = crate::second_factor::steady_now().await;
    let account = crate::second_factor::enroll_at(&app, now, 0).await;
    let printed = users(&app, &["mfa-reset", &account.username])
        .await
        .expect("reset");
    assert!(
        printed.contains(&format!(
            "removed TOTP and the recovery codes of {}",
            account.username
        )),
        "{printed}"
    );
    wait_until_refused(&app, &account.token, "TOKEN_REVOKED").await;
    let login = app
        .login(&account.username, PASSWORD)
        .await
        .expect("logged in");
    assert!(login.mfa_required.is_none(), "the password alone is asked");
    assert!(!login.access_token.is_empty());
    let again = users(&app, &["mfa-reset", &account.username])
        .await
        .expect("reset again");
    assert!(again.contains("had no second factor"), "{again}");
}

#[tokio::test]
async fn delete_removes_the_account_and_its_tokens() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");

    let printed = users(&app, &["delete", &name]).await.expect("deleted");
    assert!(printed.contains(&format!("deleted {name}")), "{printed}");

    wait_until_refused(&app, &registered.access_token, "TOKEN_REVOKED").await;
    assert_refused(
        app.login(&name, PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    let missing = users(&app, &["show", &name]).await.expect_err("gone");
    assert!(missing.contains("no account named"), "{missing}");
}

#[tokio::test]
async fn list_pages_through_accounts_filtered_by_name() {
    let app = TestApp::spawn().await;
    for name in ["Zeta-one", "zeta-two", "zeta-three", "Omega"] {
        app.register(name, PASSWORD).await.expect("registered");
    }

    let first_page = users(&app, &["list", "--filter", "ZETA", "--limit", "2"])
        .await
        .expect("listed");
    assert!(first_page.contains("Zeta-one") && first_page.contains("zeta-three"));
    assert!(!first_page.contains("Omega") && !first_page.contains("zeta-two"));
    assert!(first_page.contains("--after zeta-three"), "{first_page}");

    let second_page = users(
        &app,
        &[
            "list",
            "--filter",
            "zeta",
            "--after",
            "zeta-three",
            "--limit",
            "2",
        ],
    )
    .await
    .expect("listed");
    assert!(second_page.contains("zeta-two") && !second_page.contains("Zeta-one"));
    assert!(!second_page.contains("--after"), "{second_page}");
}

#[tokio::test]
async fn commands_in_a_directory_without_a_database_say_so_and_create_none() {
    // The default `--database-url` is a file in the working directory.
    let elsewhere = tempfile::tempdir().expect("temporary directory");
    let expected = std::path::absolute(elsewhere.path().join("authd.db")).expect("absolute");

    for args in [&["list"][..], &["disable", "grace"][..]] {
        let output = authd_command()
            .current_dir(elsewhere.path())
            .arg("users")
            .args(args)
            .output()
            .await
            .expect("authd users runs");

        let refused = outcome(&output).expect_err("no database to work on");
        assert!(
            refused.contains(&format!("no database at {}", expected.display())),
            "{args:?}: {refused}"
        );
        assert!(!refused.contains("no account named"), "{refused}");
        assert!(
            !expected.exists(),
            "{args:?} created {}",
            expected.display()
        );
    }
}

#[tokio::test]
async fn commands_on_a_database_authd_never_migrated_point_at_authd_migrate() {
    let database = TestDatabase::create().await;
    if database.postgres_name.is_none() {
        // An empty file is an empty SQLite database.
        let path = database
            .url
            .trim_start_matches("sqlite://")
            .trim_end_matches("?mode=rwc");
        std::fs::write(path, b"").expect("empty database file");
    }

    let refused = users_on(&database.url, &["list"])
        .await
        .expect_err("no schema to read");

    assert!(refused.contains("authd migrate"), "{refused}");
    let tables: i64 = database
        .query_value(
            if database.postgres_name.is_some() {
                "SELECT COUNT(*) AS n FROM information_schema.tables \
                 WHERE table_schema = 'public'"
            } else {
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'"
            },
            "n",
        )
        .await;
    assert_eq!(tables, 0, "the command migrated the database");
}

#[tokio::test]
async fn disable_and_enable_say_when_the_account_is_already_so_and_change_nothing() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    app.register(&name, PASSWORD).await.expect("registered");

    let enabled = users(&app, &["enable", &name]).await.expect("enabled");
    assert!(enabled.contains("already enabled"), "{enabled}");
    users(&app, &["disable", &name]).await.expect("disabled");
    let since = users(&app, &["show", &name]).await.expect("shown");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let again = users(&app, &["disable", &name]).await.expect("disabled");

    assert!(again.contains("already disabled"), "{again}");
    let shown = users(&app, &["show", &name]).await.expect("shown");
    let state = |shown: &str| {
        shown
            .lines()
            .find(|line| line.starts_with("state"))
            .map(str::to_owned)
    };
    assert_eq!(state(&shown), state(&since), "disabled since moved");
}

#[tokio::test]
async fn the_first_tokens_after_enable_are_accepted_at_once_by_an_instance_that_knew_of_the_disable()
 {
    // No catch-up within the test: only Login and Refresh can tell the
    // instances of the enable.
    let app = TestApp::spawn_with(|settings| {
        settings.revocation_refresh_interval = Duration::from_secs(3600);
    })
    .await;
    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");
    users(&app, &["disable", &name]).await.expect("disabled");
    // Both instances load the disabled accounts as they start.
    let app = app.restart().await;
    let beside = app.spawn_beside().await;
    assert_refused(
        app.verify(&registered.access_token).await,
        Code::Unauthenticated,
        "ACCOUNT_DISABLED",
    );
    assert_refused(
        app.login(&name, PASSWORD).await,
        Code::PermissionDenied,
        "ACCOUNT_DISABLED",
    );
    assert_refused(
        app.verify(&registered.access_token).await,
        Code::Unauthenticated,
        "ACCOUNT_DISABLED",
    );

    users(&app, &["enable", &name]).await.expect("enabled");
    let session = app.login(&name, PASSWORD).await.expect("logs in");

    app.verify(&session.access_token)
        .await
        .expect("the instance that logged in accepts its token");
    let refreshed = beside
        .refresh(&session.refresh_token)
        .await
        .expect("refreshes on the other instance");
    beside
        .verify(&refreshed.access_token)
        .await
        .expect("the instance that refreshed accepts its token");
    assert_refused(
        beside.verify(&registered.access_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
}

#[tokio::test]
async fn the_database_url_may_follow_the_subcommand() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    app.register(&name, PASSWORD).await.expect("registered");

    let output = authd_command()
        .args(["users", "list", "--database-url", &app.database.url])
        .output()
        .await
        .expect("authd users runs");

    let listed = outcome(&output).expect("listed");
    assert!(listed.contains(&name), "{listed}");
}

#[tokio::test]
async fn show_lists_the_accounts_passkeys_without_their_keys() {
    let app = crate::passkeys::spawn().await;
    let mut account = crate::passkeys::with_passkey(&app).await;
    let before = users(&app, &["show", &account.username])
        .await
        .expect("shown");
    assert!(before.contains("passkeys\t1\n"), "{before}");
    let line = before
        .lines()
        .find(|line| line.starts_with("passkey\t"))
        .expect("the passkey's line");
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields[1], account.passkey.id);
    assert_eq!(fields[2], "laptop");
    assert!(fields[3].starts_with("created "), "{line}");
    assert_eq!(fields[4], "last used never");
    assert_eq!(fields[5], "not backed up");
    assert!(!before.contains(&account.credential_id), "{before}");

    crate::passkeys::sign_in(&app, &mut account).await;
    let after = users(&app, &["show", &account.username])
        .await
        .expect("shown");
    assert!(!after.contains("last used never"), "{after}");
}
