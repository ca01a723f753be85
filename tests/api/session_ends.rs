//! Every way a session ends, seen everywhere: its access tokens refused by
//! gRPC Verify, a bearer-protected RPC, REST and grpc-web, its refresh token
//! refused, on a second instance, and after a restart.

use authd::grpc::pb::VerifyRequest;
use tonic::Code;

use crate::grpc_web::{Encoding, call};
use crate::helpers::{PASSWORD, TestApp, assert_refused, problem, unique_username};
use crate::instances::wait_until_revoked;

/// The tokens of one session.
struct Tokens {
    access: String,
    refresh: String,
    session_id: String,
}

#[derive(Debug, Clone, Copy)]
enum Ending {
    Logout,
    LogoutAll,
    RevokeSession,
    ChangePassword,
    DeleteAccount,
}

/// The refresh token and every access token of the session are refused
/// on every surface of `app`.
async fn assert_ended_on_every_surface(app: &TestApp, tokens: &Tokens) {
    assert_refused(
        app.verify(&tokens.access).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_refused(
        app.list_sessions(&tokens.access).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    let response = app
        .get("/user/me")
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("response");
    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (401, "TOKEN_REVOKED"));
    let verify = VerifyRequest {
        access_token: tokens.access.clone(),
    };
    let reply = call(&app.http, app, Encoding::Binary, "Verify", &verify, None).await;
    assert_eq!(reply.grpc_status, "16", "{reply:?}");
    assert_refused(
        app.refresh(&tokens.refresh).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
}

async fn session_ends_everywhere(ending: Ending) {
    let app = TestApp::spawn().await;
    let beside = app.spawn_beside().await;
    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");
    let first = Tokens {
        access: registered.access_token,
        refresh: registered.refresh_token,
        session_id: registered.session_id,
    };
    let second = app.login(&name, PASSWORD).await.expect("logged in");
    beside
        .verify(&first.access)
        .await
        .expect("both instances accept it");

    match ending {
        Ending::Logout => drop(app.logout(&first.access).await.expect("logged out")),
        Ending::LogoutAll => drop(
            app.client
                .clone()
                .logout_all(crate::helpers::with_bearer(
                    authd::grpc::pb::LogoutAllRequest {},
                    &second.access_token,
                ))
                .await
                .expect("logged out everywhere"),
        ),
        Ending::RevokeSession => drop(
            app.revoke_session(&second.access_token, &first.session_id)
                .await
                .expect("revoked"),
        ),
        Ending::ChangePassword => drop(
            app.change_password(&second.access_token, PASSWORD, "a brand new passphrase")
                .await
                .expect("changed"),
        ),
        Ending::DeleteAccount => drop(
            app.delete_account(&second.access_token, PASSWORD)
                .await
                .expect("deleted"),
        ),
    }

    assert_ended_on_every_surface(&app, &first).await;
    wait_until_revoked(&beside, &first.access).await;
    assert_ended_on_every_surface(&beside, &first).await;
    let restarted = app.restart().await;
    assert_ended_on_every_surface(&restarted, &first).await;
}

#[tokio::test]
async fn logout_ends_the_session_everywhere() {
    session_ends_everywhere(Ending::Logout).await;
}

#[tokio::test]
async fn logout_all_ends_the_session_everywhere() {
    session_ends_everywhere(Ending::LogoutAll).await;
}

#[tokio::test]
async fn revoke_session_ends_the_session_everywhere() {
    session_ends_everywhere(Ending::RevokeSession).await;
}

#[tokio::test]
async fn change_password_ends_the_session_everywhere() {
    session_ends_everywhere(Ending::ChangePassword).await;
}

#[tokio::test]
async fn delete_account_ends_the_session_everywhere() {
    session_ends_everywhere(Ending::DeleteAccount).await;
}
