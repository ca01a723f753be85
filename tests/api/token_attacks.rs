//! Forged and tampered tokens, each refused with the exact reason, on Verify
//! and on the protected Logout alike.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{TestApp, assert_refused};

/// The server's own signing key, read from its database: with it the tests
/// can make tokens that differ from genuine ones in exactly one respect.
pub(crate) struct ServerKey {
    pub(crate) kid: String,
    private_key: Vec<u8>,
    public_key: Vec<u8>,
}

pub(crate) async fn server_key(app: &TestApp) -> ServerKey {
    let db = &app.database;
    let kid: String = db.query_value("SELECT kid FROM signing_keys", "kid").await;
    let sealed: Vec<u8> = db
        .query_value("SELECT private_key FROM signing_keys", "private_key")
        .await;
    let private_key = db
        .secrets_keyring()
        .open(&sealed, format!("signing-key:{kid}").as_bytes())
        .expect("the stored key opens")
        .to_vec();
    ServerKey {
        kid,
        private_key,
        public_key: db
            .query_value("SELECT public_key FROM signing_keys", "public_key")
            .await,
    }
}

/// A key of an attacker's, presenting itself under our key's id.
pub(crate) fn foreign_key_claiming(kid: &str) -> ServerKey {
    let foreign = authd::domain::generate_signing_key(chrono::Utc::now()).expect("key");
    ServerKey {
        kid: kid.to_owned(),
        private_key: foreign.private_key.to_vec(),
        public_key: foreign.public_key,
    }
}

/// Genuine-looking claims for a registered user.
pub(crate) async fn claims_of(app: &TestApp, token: &str) -> Value {
    let verified = app.verify(token).await.expect("genuine token");
    let user = verified.user.expect("user");
    let now = Utc::now().timestamp();
    json!({
        "iss": "authd", "aud": "authd", "sub": user.id, "username": user.username,
        "iat": now, "nbf": now, "exp": now + 600, "jti": "forged-token-id",
    })
}

pub(crate) fn header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    header
}

pub(crate) fn sign(header: &Header, claims: &Value, key: &ServerKey) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_ed_der(&key.private_key)).expect("sign")
}

pub(crate) fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Asserts that Verify and Logout both refuse `token` for `reason`.
async fn assert_token_refused(app: &TestApp, token: &str, reason: &str) {
    assert_refused(app.verify(token).await, Code::Unauthenticated, reason);
    assert_refused(app.logout(token).await, Code::Unauthenticated, reason);
}

#[tokio::test]
async fn a_token_made_like_ours_is_accepted() {
    // The control: the forging helpers make valid tokens when nothing is off,
    // so each refusal below is caused by its one difference.
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Rupert").await).await;

    let token = sign(&header(&key.kid), &claims, &key);

    app.verify(&token).await.expect("accepted");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Sybil").await).await;
    let unsigned_header = json!({"alg": "none", "typ": "at+jwt", "kid": key.kid});

    for signature in ["", "AAAA"] {
        let token = format!("{}.{}.{signature}", b64(&unsigned_header), b64(&claims));
        assert_token_refused(&app, &token, "TOKEN_MALFORMED").await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Trent").await).await;
    let mut hmac_header = Header::new(Algorithm::HS256);
    hmac_header.typ = Some("at+jwt".into());
    hmac_header.kid = Some(key.kid.clone());

    let token = jsonwebtoken::encode(
        &hmac_header,
        &claims,
        &EncodingKey::from_secret(&key.public_key),
    )
    .expect("sign");

    assert_token_refused(&app, &token, "TOKEN_INVALID_SIGNATURE").await;
}

#[tokio::test]
async fn a_token_signed_by_a_foreign_key_is_refused() {
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Uma").await).await;
    let foreign = foreign_key_claiming(&key.kid);

    let token = sign(&header(&key.kid), &claims, &foreign);

    assert_token_refused(&app, &token, "TOKEN_INVALID_SIGNATURE").await;
}

#[tokio::test]
async fn a_changed_payload_with_the_original_signature_is_refused() {
    let app = TestApp::spawn().await;
    let genuine = app.registered_token("Victor").await;
    let mut claims = claims_of(&app, &genuine).await;
    claims["username"] = json!("admin");
    let parts: Vec<&str> = genuine.split('.').collect();

    let token = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);

    assert_token_refused(&app, &token, "TOKEN_INVALID_SIGNATURE").await;
}

#[tokio::test]
async fn an_unknown_or_missing_key_id_is_refused() {
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Walter").await).await;

    for kid in [Some("no-such-key"), Some("../../etc/passwd"), None] {
        let mut header = header(&key.kid);
        header.kid = kid.map(str::to_owned);
        let token = sign(&header, &claims, &key);
        assert_token_refused(&app, &token, "TOKEN_INVALID_SIGNATURE").await;
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Xena").await).await;
    let now = Utc::now().timestamp();

    let mut expired = claims.clone();
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    assert_token_refused(
        &app,
        &sign(&header(&key.kid), &expired, &key),
        "TOKEN_EXPIRED",
    )
    .await;

    let mut early = claims;
    early["nbf"] = json!(now + 3600);
    assert_token_refused(
        &app,
        &sign(&header(&key.kid), &early, &key),
        "TOKEN_NOT_YET_VALID",
    )
    .await;
}

#[tokio::test]
async fn tokens_for_another_issuer_audience_or_type_are_refused() {
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Yuri").await).await;

    for (claim, value) in [("iss", json!("evil")), ("aud", json!("other-service"))] {
        let mut wrong = claims.clone();
        wrong[claim] = value;
        assert_token_refused(
            &app,
            &sign(&header(&key.kid), &wrong, &key),
            "TOKEN_INVALID_CLAIMS",
        )
        .await;
    }
    for claim in ["iss", "aud", "sub", "exp", "nbf", "iat", "jti"] {
        let mut missing = claims.clone();
        missing.as_object_mut().expect("object").remove(claim);
        let token = sign(&header(&key.kid), &missing, &key);
        let status = app.verify(&token).await.expect_err(claim);
        assert_eq!(status.code(), Code::Unauthenticated, "{claim}");
    }
    for typ in [None, Some("JWT"), Some("id+jwt")] {
        let mut header = header(&key.kid);
        header.typ = typ.map(str::to_owned);
        assert_token_refused(&app, &sign(&header, &claims, &key), "TOKEN_INVALID_CLAIMS").await;
    }
}

#[tokio::test]
async fn the_access_token_type_may_be_written_as_a_media_type() {
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Bart").await).await;

    for typ in ["application/at+jwt", "AT+JWT"] {
        let mut header = header(&key.kid);
        header.typ = Some(typ.into());
        app.verify(&sign(&header, &claims, &key)).await.expect(typ);
    }
}

#[tokio::test]
async fn unknown_critical_header_extensions_are_refused() {
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Zara").await).await;
    let mut header = header(&key.kid);
    header.crit = Some(vec!["exp-v2".into()]);

    assert_token_refused(&app, &sign(&header, &claims, &key), "TOKEN_MALFORMED").await;
}

#[tokio::test]
async fn key_urls_in_the_header_are_ignored() {
    // jku/x5u must never make authd fetch or trust another key: a token whose
    // header points elsewhere is judged by our own key alone.
    let app = TestApp::spawn().await;
    let key = server_key(&app).await;
    let claims = claims_of(&app, &app.registered_token("Abel").await).await;
    let foreign = foreign_key_claiming(&key.kid);
    let mut header = header(&key.kid);
    header.jku = Some("http://127.0.0.1:9/jwks.json".into());
    header.x5u = Some("http://127.0.0.1:9/cert.pem".into());

    assert_token_refused(
        &app,
        &sign(&header, &claims, &foreign),
        "TOKEN_INVALID_SIGNATURE",
    )
    .await;
    app.verify(&sign(&header, &claims, &key))
        .await
        .expect("our own signature still counts");
}
