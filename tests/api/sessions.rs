//! Logging out everywhere, and ending one session.

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

/// The success of `DELETE /user/sessions/{id}`, which Schemathesis cannot
/// reach (it knows no session id of the accounts it makes).
#[tokio::test]
async fn revoking_a_session_over_rest_ends_that_one_only() {
    let app = TestApp::spawn().await;
    let caller = app.registered_token("Ines").await;
    let other = app
        .login("Ines", PASSWORD)
        .await
        .expect("login")
        .access_token;
    let sessions: serde_json::Value = app
        .get("/user/sessions")
        .bearer_auth(&caller)
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("JSON");
    let sessions = sessions["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2);
    let id = sessions
        .iter()
        .find(|session| session["current"] == false)
        .and_then(|session| session["id"].as_str())
        .expect("the other session");
    let revoke = |id: String| {
        app.http
            .delete(format!("{}/user/sessions/{id}", app.base_url))
            .bearer_auth(&caller)
            .send()
    };

    assert_eq!(revoke(id.to_owned()).await.expect("response").status(), 200);
    assert_refused(
        app.verify(&other).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    app.verify(&caller)
        .await
        .expect("the caller's session lives on");
    for again in [id.to_owned(), "not-a-session".to_owned()] {
        let (status, reason, _) = problem(revoke(again).await.expect("response")).await;
        assert_eq!((status, reason.as_str()), (404, "SESSION_NOT_FOUND"));
    }
}
