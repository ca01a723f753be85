//! `authd users ...` against the database of a running authd, which
//! honours each change (at once on PostgreSQL, within its revocation
//! catch-up on SQLite).

use tonic::Code;

use crate::helpers::{
    PASSWORD, TestApp, assert_refused, authd_command, unique_username, wait_until_refused,
};

/// Runs `authd users ARGS...` on the app's database; its standard output,
/// or its standard error if it failed.
async fn users(app: &TestApp, args: &[&str]) -> Result<String, String> {
    let output = authd_command()
        .args(["--database-url", &app.database.url, "users"])
        .args(args)
        .output()
        .await
        .expect("authd users runs");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
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
