use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, assert_refused};

#[tokio::test]
async fn logout_revokes_exactly_that_token() {
    let app = TestApp::spawn().await;
    let first = app.registered_token("Kim").await;
    let second = app
        .login("Kim", PASSWORD)
        .await
        .expect("login")
        .access_token;

    app.logout(&first).await.expect("logged out");

    assert_refused(
        app.verify(&first).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_refused(
        app.logout(&first).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    app.verify(&second)
        .await
        .expect("other sessions stay valid");
}

#[tokio::test]
async fn revocation_survives_a_restart_and_issued_tokens_stay_valid() {
    let app = TestApp::spawn().await;
    let revoked = app.registered_token("Leo").await;
    let kept = app
        .login("Leo", PASSWORD)
        .await
        .expect("login")
        .access_token;
    app.logout(&revoked).await.expect("logged out");

    let app = app.restart().await;

    assert_refused(
        app.verify(&revoked).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_refused(
        app.logout(&revoked).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    app.verify(&kept).await.expect("the signing key was kept");
}

#[tokio::test]
async fn logout_without_a_token_is_unauthenticated() {
    let app = TestApp::spawn().await;

    let status = app
        .client
        .clone()
        .logout(authd::grpc::pb::LogoutRequest {})
        .await
        .expect_err("refused");

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(crate::helpers::reason(&status), "MISSING_TOKEN");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_spacing_tolerant() {
    let app = TestApp::spawn().await;

    for template in ["bearer {}", "BEARER {}", "Bearer   {}", "  Bearer {}  "] {
        let token = app.login_or_register("Mallory").await;
        let value = template.replace("{}", &token);
        app.logout_with_authorization(&value)
            .await
            .unwrap_or_else(|status| panic!("{template:?}: {status:?}"));
        assert_refused(
            app.verify(&token).await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
    }
}

#[tokio::test]
async fn malformed_authorization_values_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.registered_token("Niaj").await;

    for value in [
        token.clone(),
        format!("Basic {token}"),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {token} extra"),
        format!("Bearer\t{token}"),
        format!("Token {token}"),
    ] {
        let status = app
            .logout_with_authorization(&value)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{value:?}");
    }
    app.verify(&token).await.expect("nothing was revoked");
}

#[tokio::test]
async fn duplicated_authorization_metadata_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.registered_token("Olivia").await;
    let mut request = tonic::Request::new(authd::grpc::pb::LogoutRequest {});
    let value: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().expect("ascii");
    request
        .metadata_mut()
        .append("authorization", value.clone());
    request.metadata_mut().append("authorization", value);

    let status = app
        .client
        .clone()
        .logout(request)
        .await
        .expect_err("refused");

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(crate::helpers::reason(&status), "TOKEN_MALFORMED");
    app.verify(&token).await.expect("nothing was revoked");
}

impl TestApp {
    /// A fresh token for `username`, registering it on first use.
    async fn login_or_register(&self, username: &str) -> String {
        match self.login(username, PASSWORD).await {
            Ok(response) => response.access_token,
            Err(_) => self.registered_token(username).await,
        }
    }
}
