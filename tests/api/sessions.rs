//! Logging out everywhere.

use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, assert_refused, problem};

impl TestApp {
    async fn logout_all(
        &self,
        token: &str,
    ) -> Result<authd::grpc::pb::LogoutAllResponse, tonic::Status> {
        let mut request = tonic::Request::new(authd::grpc::pb::LogoutAllRequest {});
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        self.client
            .clone()
            .logout_all(request)
            .await
            .map(tonic::Response::into_inner)
    }
}

#[tokio::test]
async fn logout_all_revokes_every_session_of_the_caller_only() {
    let app = TestApp::spawn().await;
    let first = app.registered_token("Yara").await;
    let second = app
        .login("Yara", PASSWORD)
        .await
        .expect("login")
        .access_token;
    let someone_else = app.registered_token("Zed").await;

    app.logout_all(&first).await.expect("logged out everywhere");

    for token in [&first, &second] {
        assert_refused(
            app.verify(token).await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
        assert_refused(
            app.logout(token).await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
        let (status, reason, _) = problem(app.rest_logout(token).await).await;
        assert_eq!((status, reason.as_str()), (401, "TOKEN_REVOKED"));
    }
    app.verify(&someone_else)
        .await
        .expect("other users keep their sessions");
    let fresh = app
        .login("Yara", PASSWORD)
        .await
        .expect("login")
        .access_token;
    app.verify(&fresh)
        .await
        .expect("a session started afterwards is valid at once");
}

#[tokio::test]
async fn logout_all_over_rest_clears_the_cookie_and_survives_a_restart() {
    let app = TestApp::spawn().await;
    let first = app.registered_token("Abe").await;
    let second = app
        .login("Abe", PASSWORD)
        .await
        .expect("login")
        .access_token;

    let response = app
        .post("/logout/all")
        .bearer_auth(&second)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|value| {
            value.to_str().is_ok_and(|value| {
                value.starts_with("authd_token=;") && value.contains("Max-Age=0")
            })
        });
    assert!(cleared, "the session cookie is cleared");

    let app = app.restart().await;
    for token in [&first, &second] {
        assert_refused(
            app.verify(token).await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
    }
    let fresh = app
        .login("Abe", PASSWORD)
        .await
        .expect("login")
        .access_token;
    app.verify(&fresh)
        .await
        .expect("new sessions work after the restart");
}

#[tokio::test]
async fn logout_all_needs_a_valid_token() {
    let app = TestApp::spawn().await;

    let status = app
        .client
        .clone()
        .logout_all(authd::grpc::pb::LogoutAllRequest {})
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    let (status, reason, _) =
        problem(app.post("/logout/all").send().await.expect("response")).await;
    assert_eq!((status, reason.as_str()), (401, "MISSING_TOKEN"));
}
