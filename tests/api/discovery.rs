//! Standard discovery (OpenID Connect Discovery, RFC 8414), RFC 9068's
//! claims, RFC 7662 introspection and a change of issuer, against the real
//! server.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, unique_username, with_broken_signature};

const PUBLIC_URL: &str = "https://auth.example.com/";
const INTROSPECTION_TOKEN: &str = "test-introspection-credential";

/// The payload of a compact JWT, unverified.
fn payload(token: &str) -> Value {
    let encoded = token.split('.').nth(1).expect("a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).expect("base64url")).expect("JSON")
}

async fn spawn_public() -> TestApp {
    TestApp::spawn_with(|settings| {
        settings.public_url = Some(PUBLIC_URL.parse().expect("URL"));
        settings.introspection_tokens = vec![INTROSPECTION_TOKEN.into()];
    })
    .await
}

#[tokio::test]
async fn both_metadata_documents_name_the_issuer_of_the_tokens_exactly() {
    let app = spawn_public().await;
    let token = app.registered_token(&unique_username()).await;
    let iss = payload(&token)["iss"].clone();
    assert_eq!(
        iss, "https://auth.example.com",
        "the public URL is the issuer"
    );

    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = app.get(path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let cache_control = response.headers()["cache-control"].to_str().unwrap();
        assert!(
            cache_control.starts_with("public, max-age="),
            "{cache_control}"
        );
        let document: Value = response.json().await.unwrap();
        assert_eq!(document["issuer"], iss, "{path}");
        assert_eq!(
            document["jwks_uri"],
            "https://auth.example.com/.well-known/jwks.json"
        );
        assert_eq!(
            document["introspection_endpoint"],
            "https://auth.example.com/oauth2/introspect"
        );
        assert_eq!(
            document["id_token_signing_alg_values_supported"],
            json!(["EdDSA"])
        );
        assert_eq!(document["subject_types_supported"], json!(["public"]));
        assert_eq!(document["response_types_supported"], json!([]));
        for absent in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
        ] {
            assert!(document.get(absent).is_none(), "{path} lists {absent}");
        }
    }
}

#[tokio::test]
async fn discovery_without_a_public_url_is_a_404_that_says_so() {
    let app = TestApp::spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let (status, reason, _) = problem(app.get(path).send().await.unwrap()).await;
        assert_eq!(
            (status, reason.as_str()),
            (404, "PUBLIC_URL_NOT_CONFIGURED")
        );
    }
}

#[tokio::test]
async fn introspection_is_not_listed_when_it_is_off() {
    let app = TestApp::spawn_with(|settings| {
        settings.public_url = Some(PUBLIC_URL.parse().expect("URL"));
    })
    .await;
    let document: Value = app
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document.get("introspection_endpoint").is_none(),
        "{document}"
    );
}

#[tokio::test]
async fn tokens_carry_a_client_id_and_a_not_before_set_back_from_their_issue() {
    let app = TestApp::spawn().await;
    let claims = payload(&app.registered_token(&unique_username()).await);
    assert_eq!(claims["client_id"], "authd");
    assert_eq!(
        claims["iss"], "authd",
        "no public URL: the issuer is as before"
    );
    let (iat, nbf) = (
        claims["iat"].as_i64().unwrap(),
        claims["nbf"].as_i64().unwrap(),
    );
    assert_eq!(iat - nbf, 60, "{claims}");
}

async fn introspect(app: &TestApp, credential: Option<&str>, form: &str) -> reqwest::Response {
    let mut request = app
        .post("/oauth2/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn introspection_tells_a_live_token_from_a_dead_one_and_nothing_more() {
    let app = spawn_public().await;
    let username = unique_username();
    let token = app.registered_token(&username).await;

    let live = introspect(&app, Some(INTROSPECTION_TOKEN), &format!("token={token}")).await;
    assert_eq!(live.status(), 200);
    let live: Value = live.json().await.unwrap();
    let claims = payload(&token);
    assert_eq!(live["active"], true, "{live}");
    for field in [
        "sub",
        "exp",
        "iat",
        "nbf",
        "jti",
        "iss",
        "aud",
        "client_id",
        "sid",
        "username",
    ] {
        assert_eq!(live[field], claims[field], "{field}");
    }
    assert_eq!(live["token_type"], "Bearer");

    let dead = json!({"active": false});
    for refused in [
        with_broken_signature(&token),
        "not-a-token".to_owned(),
        format!("{token}x"),
    ] {
        let answer = introspect(&app, Some(INTROSPECTION_TOKEN), &format!("token={refused}")).await;
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.json::<Value>().await.unwrap(), dead, "{refused}");
    }
    app.logout(&token).await.expect("logged out");
    let answer = introspect(
        &app,
        Some(INTROSPECTION_TOKEN),
        &format!("token_type_hint=access_token&token={token}"),
    )
    .await;
    assert_eq!(answer.json::<Value>().await.unwrap(), dead, "logged out");
}

#[tokio::test]
async fn introspection_needs_its_own_credential() {
    let app = spawn_public().await;
    let user_token = app.registered_token(&unique_username()).await;
    let form = format!("token={user_token}");
    for credential in [None, Some("wrong"), Some(user_token.as_str())] {
        let response = introspect(&app, credential, &form).await;
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{credential:?}"
        );
        let (status, reason, _) = problem(response).await;
        assert_eq!(
            (status, reason.as_str()),
            (401, "INTROSPECTION_CREDENTIAL_INVALID"),
            "{credential:?}"
        );
    }

    let off = TestApp::spawn().await;
    let (status, reason, _) =
        problem(introspect(&off, Some(INTROSPECTION_TOKEN), &form).await).await;
    assert_eq!((status, reason.as_str()), (403, "INTROSPECTION_DISABLED"));
}

#[tokio::test]
async fn introspection_refuses_what_is_not_a_form_with_a_token() {
    let app = spawn_public().await;
    let (status, reason, body) =
        problem(introspect(&app, Some(INTROSPECTION_TOKEN), "hint=x").await).await;
    assert_eq!((status, reason.as_str()), (400, "INVALID_BODY"));
    assert_eq!(
        body["errors"],
        json!([{"field": "token", "reason": "FIELD_REQUIRED", "detail": "token is required"}])
    );
    let json = app
        .post("/oauth2/introspect")
        .bearer_auth(INTROSPECTION_TOKEN)
        .json(&json!({"token": "x"}))
        .send()
        .await
        .unwrap();
    let (status, reason, _) = problem(json).await;
    assert_eq!((status, reason.as_str()), (415, "UNSUPPORTED_MEDIA_TYPE"));
    let huge = format!("token={}", "a".repeat(17 * 1024));
    let (status, reason, _) =
        problem(introspect(&app, Some(INTROSPECTION_TOKEN), &huge).await).await;
    assert_eq!((status, reason.as_str()), (413, "BODY_TOO_LARGE"));
}

#[tokio::test]
async fn tokens_of_the_previous_issuer_verify_only_while_it_is_named() {
    let app = TestApp::spawn().await;
    let old = app.registered_token(&unique_username()).await;
    assert_eq!(payload(&old)["iss"], "authd");

    let moved = app
        .restart_with(|settings| {
            settings.public_url = Some(PUBLIC_URL.parse().expect("URL"));
            settings.previous_issuers = vec!["authd".into()];
        })
        .await;
    moved
        .verify(&old)
        .await
        .expect("the previous issuer's token");
    let new = moved.registered_token(&unique_username()).await;
    assert_eq!(payload(&new)["iss"], "https://auth.example.com");

    let forgotten = moved
        .restart_with(|settings| settings.previous_issuers.clear())
        .await;
    let refused = forgotten
        .verify(&old)
        .await
        .expect_err("issuer no longer accepted");
    assert_eq!(crate::helpers::reason(&refused), "TOKEN_INVALID_CLAIMS");
    forgotten
        .verify(&new)
        .await
        .expect("the current issuer's token");
}
