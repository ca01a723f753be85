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

#[tokio::test]
async fn tokens_stay_small() {
    let app = TestApp::spawn().await;
    let token = app.registered_token(&"a".repeat(32)).await;

    assert!(token.len() <= 512, "{} bytes", token.len());
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
