//! Signing keys: the JWKS, rotation, keys from files.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{PASSWORD, TestApp};

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

async fn jwks(app: &TestApp) -> JwkSet {
    let response = app
        .get("/.well-known/jwks.json")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JWKS")
}

#[tokio::test]
async fn the_jwks_lets_another_service_verify_tokens_itself() {
    let app = TestApp::spawn().await;
    let token = app.registered_token("Bea").await;

    let set = jwks(&app).await;

    let jwk = set
        .find(&kid_of(&token))
        .expect("the token's kid is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["authd"]);
    validation.set_issuer(&["authd"]);
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("verifies locally")
    .claims;
    assert_eq!(claims["username"], "Bea");
    let raw: Value = app
        .get("/.well-known/jwks.json")
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    for key in raw["keys"].as_array().expect("keys") {
        assert!(key.get("d").is_none(), "no private key material: {key}");
        assert_eq!(
            (
                key["kty"].as_str(),
                key["crv"].as_str(),
                key["alg"].as_str(),
                key["use"].as_str()
            ),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
        );
    }
}

#[tokio::test]
async fn get_jwks_over_grpc_matches_the_http_document() {
    let app = TestApp::spawn().await;

    let keys = app
        .client
        .clone()
        .get_jwks(authd::grpc::pb::GetJwksRequest {})
        .await
        .expect("keys")
        .into_inner()
        .keys;

    let set = jwks(&app).await;
    assert_eq!(keys.len(), set.keys.len());
    for key in keys {
        let published = set.find(&key.kid).expect("same kid over HTTP");
        let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) = &published.algorithm else {
            panic!("an OKP key");
        };
        assert_eq!(okp.x, key.x);
        assert_eq!(
            (
                key.kty.as_str(),
                key.crv.as_str(),
                key.alg.as_str(),
                key.r#use.as_str()
            ),
            ("OKP", "Ed25519", "EdDSA", "sig")
        );
    }
}

#[tokio::test]
async fn a_rotated_key_is_published_first_then_signs_while_old_tokens_stay_valid() {
    let app = TestApp::spawn_with(|settings| {
        settings.key_refresh_interval = Duration::from_millis(200);
        // This test logs in until the new key signs.
        settings.login_rate_per_address = None;
    })
    .await;
    let old_token = app.registered_token("Cole").await;
    let old_kid = kid_of(&old_token);

    let output = Command::new(env!("CARGO_BIN_EXE_authd"))
        .env_clear()
        .args([
            "--database-url",
            &app.database.url,
            "--key-refresh-interval",
            "200ms",
            "keys",
            "rotate",
        ])
        .output()
        .await
        .expect("authd keys rotate runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let new_kid = String::from_utf8(output.stdout)
        .expect("utf-8")
        .split('\t')
        .next()
        .expect("kid")
        .to_owned();
    assert_ne!(new_kid, old_kid);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let token = app
            .login("Cole", PASSWORD)
            .await
            .expect("login")
            .access_token;
        if kid_of(&token) == new_kid {
            assert!(jwks(&app).await.find(&new_kid).is_some());
            app.verify(&token)
                .await
                .expect("tokens signed by the new key are valid");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new key never started signing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.verify(&old_token)
        .await
        .expect("tokens of the old key stay valid until they expire");
}

#[tokio::test]
async fn a_key_from_a_pem_file_signs_and_is_published() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("signing.pem");
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let pem = key.to_pkcs8_pem(Default::default()).expect("pem");
    std::fs::write(&path, pem.as_bytes()).expect("write");
    let app = TestApp::spawn_with(|settings| settings.signing_key_files = vec![path.clone()]).await;

    let token = app.registered_token("Dora").await;

    let kid = kid_of(&token);
    let published = jwks(&app).await;
    let jwk = published.find(&kid).expect("published");
    let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
        panic!("an OKP key");
    };
    assert_eq!(
        okp.x,
        URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())
    );
    app.verify(&token).await.expect("valid");
}

#[tokio::test]
async fn an_unreadable_key_file_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("not-a-key.pem");
    std::fs::write(
        &path,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let database = crate::helpers::TestDatabase::create().await;

    let output = Command::new(env!("CARGO_BIN_EXE_authd"))
        .env_clear()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database.url,
            "--signing-key-file",
        ])
        .arg(&path)
        .output()
        .await
        .expect("runs");

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a PKCS#8 PEM Ed25519 private key"),
        "{stderr}"
    );
    assert!(!stderr.contains("AAAA"), "{stderr}");
}
