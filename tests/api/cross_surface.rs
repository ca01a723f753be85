//! One revocation, every surface: a token logged out anywhere is refused
//! everywhere.

use serde_json::json;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, assert_refused, problem};

async fn assert_refused_over_rest(app: &TestApp, token: &str) {
    let (status, reason, _) = problem(
        app.post_json("/verify", json!({"access_token": token}))
            .await,
    )
    .await;
    assert_eq!((status, reason.as_str()), (401, "TOKEN_REVOKED"));
    let (status, reason, _) = problem(app.rest_logout(token).await).await;
    assert_eq!((status, reason.as_str()), (401, "TOKEN_REVOKED"));
}

#[tokio::test]
async fn logged_out_over_rest_is_refused_over_grpc() {
    let app = TestApp::spawn().await;
    let token = app.registered_token("Mona").await;

    assert_eq!(app.rest_logout(&token).await.status(), 200);

    assert_refused(
        app.verify(&token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_refused(
        app.logout(&token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_refused_over_rest(&app, &token).await;
}

#[tokio::test]
async fn logged_out_over_grpc_is_refused_over_rest() {
    let app = TestApp::spawn().await;
    let response: serde_json::Value = app.rest_login_after_register("Ned").await;
    let token = response["access_token"].as_str().expect("token");

    app.logout(token).await.expect("logged out over gRPC");

    assert_refused_over_rest(&app, token).await;
    let (status, reason, _) = problem(
        app.get("/user/me")
            .header("cookie", format!("authd_token={token}"))
            .send()
            .await
            .expect("response"),
    )
    .await;
    assert_eq!((status, reason.as_str()), (401, "TOKEN_REVOKED"));
}

impl TestApp {
    async fn rest_login_after_register(&self, username: &str) -> serde_json::Value {
        assert_eq!(self.rest_register(username, PASSWORD).await.status(), 201);
        self.rest_login(username, PASSWORD)
            .await
            .json()
            .await
            .expect("json")
    }
}
