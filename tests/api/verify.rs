use tonic::Code;

use crate::helpers::{TOKEN_LIFETIME, TestApp, assert_refused};

#[tokio::test]
async fn verify_tells_whom_the_token_belongs_to() {
    let app = TestApp::spawn().await;
    let registered = app
        .register("Peggy", crate::helpers::PASSWORD)
        .await
        .expect("registered");

    let verified = app.verify(&registered.access_token).await.expect("valid");

    assert_eq!(verified.user, registered.user);
    let issued_at = verified.issued_at.expect("issued_at").seconds;
    let expires_at = verified.expires_at.expect("expires_at").seconds;
    assert_eq!(expires_at - issued_at, TOKEN_LIFETIME.as_secs() as i64);
    assert!(!verified.token_id.is_empty());
}

/// Every claim included (the longest name, `amr` of two factors, the
/// discovery issue's `client_id`, a public URL as issuer), a token stays
/// under 1 KiB: it travels in every request's header.
#[tokio::test]
async fn tokens_stay_small() {
    let app = TestApp::spawn_with(|settings| {
        settings.public_url = Some("https://auth.example.com".parse().expect("url"));
    })
    .await;
    let now = crate::second_factor::steady_now().await;
    let account = crate::second_factor::enroll_at(&app, now, -1).await;
    let ticket = crate::second_factor::ticket(&app, &account.username).await;
    let two_factors = app
        .client
        .clone()
        .complete_login(authd::grpc::pb::CompleteLoginRequest {
            ticket,
            proof: Some(authd::grpc::pb::complete_login_request::Proof::TotpCode(
                crate::second_factor::code(&account.secret, now, 0),
            )),
        })
        .await
        .expect("logged in")
        .into_inner()
        .access_token;
    let longest_name = app.registered_token(&"a".repeat(32)).await;

    for token in [two_factors, longest_name] {
        assert!(token.len() < 1024, "{} bytes", token.len());
    }
}

#[tokio::test]
async fn verify_refuses_an_empty_token_as_missing() {
    let app = TestApp::spawn().await;

    assert_refused(app.verify("").await, Code::Unauthenticated, "MISSING_TOKEN");
}

#[tokio::test]
async fn verify_refuses_garbage_as_malformed_never_internal() {
    let app = TestApp::spawn().await;
    let token = app.registered_token("Quentin").await;
    let truncated = &token[..token.len() / 2];
    let huge = "a".repeat(100 * 1024);
    let cases = [
        "not-a-jwt",
        "a.b.c",
        "...",
        "%%%.$$$.###",
        "eyJhbGciOiJFZERTQSJ9",
        truncated,
        huge.as_str(),
        "Bearer x.y.z",
    ];

    for garbage in cases {
        let status = app.verify(garbage).await.expect_err("refused");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{garbage:.40}: {status:?}"
        );
        let reason = crate::helpers::reason(&status);
        assert!(
            reason == "TOKEN_MALFORMED" || reason == "TOKEN_INVALID_SIGNATURE",
            "{garbage:.40}: {reason}"
        );
    }
    app.verify(&token).await.expect("the server is unharmed");
}
